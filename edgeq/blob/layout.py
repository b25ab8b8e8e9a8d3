"""Python mirror of runtimes/include/edgeq/edgeq_blob.h (checked equal by tools/check_abi.py).

Struct and field names are the C names; constants are the C names without `EDGEQ_`.
"""

from __future__ import annotations

import ctypes as C

MAGIC = b"EDGQ"
VERSION_MAJOR = 1
VERSION_MINOR = 0
ALIGN = 64
MAX_DIMS = 4
OP_MAX_INPUTS = 6
OP_MAX_OUTPUTS = 2
OP_MAX_ATTRS = 16

FLAG_SIGNED = 0x1

SECTION_STRINGS = 1
SECTION_TENSORS = 2
SECTION_GRAPH = 3
SECTION_METADATA = 4
SECTION_DATA = 5
SECTION_SIGNATURE = 6
SECTION_NAMES = {
    SECTION_STRINGS: "strings",
    SECTION_TENSORS: "tensors",
    SECTION_GRAPH: "graph",
    SECTION_METADATA: "metadata",
    SECTION_DATA: "data",
    SECTION_SIGNATURE: "signature",
}

SIG_ED25519 = 1
SIG_PUBLIC_KEY_BYTES = 32
SIG_KEY_ID_BYTES = 16

TENSOR_CONST = 0x1
TENSOR_INPUT = 0x2
TENSOR_OUTPUT = 0x4
TENSOR_TEST_INPUT = 0x8
TENSOR_TEST_OUTPUT = 0x10
TENSOR_TEST_LABEL = 0x20
TENSOR_STATE = 0x40
OPF_LUT = 0x1  # op kernel hint: lookup-table mat-vec (T2/T158 weights), from the target's [kernels] rules
OPF_ALL = 0x1

OP_LINEAR = 1
OP_CONV2D = 2
OP_DWCONV2D = 3
OP_MAXPOOL2D = 4
OP_AVGPOOL2D = 5
OP_RELU = 6
OP_ADD = 7
OP_RESHAPE = 8
OP_SOFTMAX = 9
OP_QUANTIZE = 10
OP_DEQUANTIZE = 11
OP_BINARIZE = 12
OP_EMBED = 13
OP_LAYERNORM = 14
OP_RMSNORM = 15
OP_GELU = 16
OP_RELU2 = 17
OP_ATTENTION = 18
OP_MEANPOOL = 19
OP_LINEAR_DYN = 20
OP_ROPE = 21
OP_ATTENTION_KV = 22
OP_SWIGLU = 23
OP_NAMES = {
    OP_LINEAR: "linear",
    OP_CONV2D: "conv2d",
    OP_DWCONV2D: "dwconv2d",
    OP_MAXPOOL2D: "maxpool2d",
    OP_AVGPOOL2D: "avgpool2d",
    OP_RELU: "relu",
    OP_ADD: "add",
    OP_RESHAPE: "reshape",
    OP_SOFTMAX: "softmax",
    OP_QUANTIZE: "quantize",
    OP_DEQUANTIZE: "dequantize",
    OP_BINARIZE: "binarize",
    OP_EMBED: "embed",
    OP_LAYERNORM: "layernorm",
    OP_RMSNORM: "rmsnorm",
    OP_GELU: "gelu",
    OP_RELU2: "relu2",
    OP_ATTENTION: "attention",
    OP_MEANPOOL: "meanpool",
    OP_LINEAR_DYN: "linear_dyn",
    OP_ROPE: "rope",
    OP_ATTENTION_KV: "attention_kv",
    OP_SWIGLU: "swiglu",
}

ATTR_ACT_MIN = 0
ATTR_ACT_MAX = 1
ATTR_KH = 2
ATTR_KW = 3
ATTR_STRIDE_H = 4
ATTR_STRIDE_W = 5
ATTR_PAD_TOP = 6
ATTR_PAD_LEFT = 7
ATTR_PAD_BOTTOM = 8
ATTR_PAD_RIGHT = 9
ATTR_ADD_LEFT_SHIFT = 2
ATTR_ADD_MULT_A = 3
ATTR_ADD_SHIFT_A = 4
ATTR_ADD_MULT_B = 5
ATTR_ADD_SHIFT_B = 6
ATTR_ADD_MULT_OUT = 7
ATTR_ADD_SHIFT_OUT = 8
ATTR_EPS = 0
ATTR_HEADS = 0
ATTR_L2NORM = 0
ATTR_ACT_QUANT = 0
ATTR_KV_HEADS = 1
ATTR_F16_ROUND = 2

ACT_ABSMAX_ROW = 0
ACT_GGML_Q8_K = 1
ACT_GGML_Q8_0 = 2


class edgeq_header_t(C.LittleEndianStructure):
    _fields_ = [
        ("magic", C.c_char * 4),
        ("version_major", C.c_uint16),
        ("version_minor", C.c_uint16),
        ("flags", C.c_uint32),
        ("n_sections", C.c_uint32),
        ("file_size", C.c_uint64),
        ("target", C.c_char * 16),
        ("header_crc", C.c_uint32),
        ("file_crc", C.c_uint32),
        ("section_table_offset", C.c_uint64),
        ("reserved", C.c_uint64),
    ]


class edgeq_section_t(C.LittleEndianStructure):
    _fields_ = [
        ("kind", C.c_uint32),
        ("crc32", C.c_uint32),
        ("offset", C.c_uint64),
        ("size", C.c_uint64),
        ("reserved", C.c_uint64),
    ]


class edgeq_signature_t(C.LittleEndianStructure):
    _fields_ = [
        ("algorithm", C.c_uint32),
        ("reserved", C.c_uint32),
        ("key_id", C.c_uint8 * SIG_KEY_ID_BYTES),
        ("signature", C.c_uint8 * 64),
    ]


class edgeq_tensor_t(C.LittleEndianStructure):
    _fields_ = [
        ("name", C.c_uint32),
        ("format", C.c_uint16),
        ("layout", C.c_uint16),
        ("ndim", C.c_uint8),
        ("scale_kind", C.c_uint8),
        ("block", C.c_uint16),
        ("flags", C.c_uint32),
        ("shape", C.c_int32 * MAX_DIMS),
        ("data_offset", C.c_uint64),
        ("data_size", C.c_uint64),
        ("scales_at", C.c_uint64),
        ("zeros_at", C.c_uint64),
        ("qscale", C.c_float),
        ("qzero", C.c_int32),
        ("test_index", C.c_int32),
        ("reserved", C.c_uint32),
    ]


class edgeq_graph_t(C.LittleEndianStructure):
    _fields_ = [
        ("n_ops", C.c_uint32),
        ("n_inputs", C.c_uint32),
        ("n_outputs", C.c_uint32),
        ("reserved", C.c_uint32),
        ("inputs", C.c_int32 * 8),
        ("outputs", C.c_int32 * 8),
    ]


class edgeq_op_t(C.LittleEndianStructure):
    _fields_ = [
        ("op", C.c_uint16),
        ("n_inputs", C.c_uint8),
        ("n_outputs", C.c_uint8),
        ("flags", C.c_uint32),
        ("inputs", C.c_int32 * OP_MAX_INPUTS),
        ("outputs", C.c_int32 * OP_MAX_OUTPUTS),
        ("attrs", C.c_int32 * OP_MAX_ATTRS),
    ]


STRUCTS = [edgeq_header_t, edgeq_section_t, edgeq_signature_t, edgeq_tensor_t, edgeq_graph_t, edgeq_op_t]
