"""Format, scale-kind and layout ids: a mirror of edgeq_blob.h (checked by tools/check_abi.py)."""

FMT_F32 = 1
FMT_F16 = 2
FMT_I32 = 3
FMT_I8 = 4
FMT_U8 = 5
FMT_T2 = 16
FMT_T158 = 17
FMT_B1 = 18
FMT_Q4 = 19

T2_BLOCK = 256
T2_CODE_BYTES = 64
T158_BLOCK = 256
T158_CODE_BYTES = 52
B1_BLOCK = 64
B1_CODE_BYTES = 8
I8_BLOCK = 16

SCALE_NONE = 0
SCALE_ROW = 1
SCALE_BLOCK = 2

LAYOUT_ROW_MAJOR = 0
