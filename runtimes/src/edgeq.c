/*
 * The edgeq runtime: validates a blob in place, plans a static activation arena and executes the
 * graph with the reference kernels. No malloc, no printf: everything lives in the caller's work
 * buffer; time comes from the platform hook (edgeq_pal.h).
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "edgeq/edgeq.h"
#include "edgeq/edgeq_blob.h"
#include "edgeq/edgeq_pal.h"
#include "../kernels/ref/ref_kernels.h"

#define MAX_TENSORS 4096
#define MAX_OPS 4096

typedef struct {
    const edgeq_tensor_t *rec;
    uint8_t *data;        /* arena pointer for activations, blob pointer for constants */
    size_t bytes;
    int first, last;      /* liveness: producing op, last consuming op */
} tensor_t;

struct edgeq_model {
    const uint8_t *blob;
    size_t blob_size;
    const edgeq_graph_t *graph;
    const edgeq_op_t *ops;
    const edgeq_tensor_t *records;
    const char *strings;
    size_t strings_size;
    int n_tensors, n_ops;
    tensor_t *tensors;
    edgeq_layer_time_t *profile;
    uint8_t *arena;
    size_t arena_size, scratch_size;
    int8_t *scratch;      /* padded activation row / im2col patch */
    int test_in, test_out, test_count;
    char error[160];
};

static uint32_t crc_table[256];
static int crc_ready;

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    size_t i;
    if (!crc_ready) {
        uint32_t c, k, j;
        for (k = 0; k < 256; k++) {
            c = k;
            for (j = 0; j < 8; j++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            crc_table[k] = c;
        }
        crc_ready = 1;
    }
    crc = ~crc;
    for (i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t crc32_zeroed(const uint8_t *p, size_t n, size_t zero_at, size_t zero_len, size_t z2_at,
                             size_t z2_len) {
    /* CRC of p[0..n) with two spans read as zero (the CRC fields, the signature payload). */
    static const uint8_t zeros[64];
    uint32_t crc = 0;
    size_t i = 0;
    while (i < n) {
        size_t end = n, zlen = 0;
        if (i < zero_at && zero_at < end) end = zero_at;
        if (z2_len && i < z2_at && z2_at < end) end = z2_at;
        crc = crc32_update(crc, p + i, end - i);
        i = end;
        if (i == zero_at) zlen = zero_len;
        if (z2_len && i == z2_at) zlen = z2_len;
        while (zlen) {
            size_t chunk = zlen < sizeof zeros ? zlen : sizeof zeros;
            crc = crc32_update(crc, zeros, chunk);
            zlen -= chunk;
            i += chunk;
        }
    }
    return crc;
}

static edgeq_status_t fail(edgeq_model_t *m, edgeq_status_t s, const char *msg, long a) {
    if (m) {
        /* small formatter: message + optional number, no printf in the runtime */
        size_t n = strlen(msg), k;
        char digits[24];
        int d = 0;
        unsigned long v = a < 0 ? (unsigned long)(-a) : (unsigned long)a;
        if (n > sizeof m->error - 24) n = sizeof m->error - 24;
        memcpy(m->error, msg, n);
        if (a >= -1000000000L) {
            if (a < 0) m->error[n++] = '-';
            do {
                digits[d++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            m->error[n++] = ' ';
            for (k = 0; k < (size_t)d; k++) m->error[n++] = digits[d - 1 - k];
        }
        m->error[n] = 0;
    }
    return s;
}
#define NO_NUM (-2000000000L)

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static int is_weight(const edgeq_tensor_t *t) { return t->scale_kind != EDGEQ_SCALE_NONE; }

static size_t elems(const edgeq_tensor_t *t) {
    size_t n = 1;
    int i;
    for (i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* Bytes of an activation / plain tensor; 0 for an unknown format. */
static size_t plain_bytes(const edgeq_tensor_t *t) {
    switch (t->format) {
    case EDGEQ_FMT_F32: case EDGEQ_FMT_I32: return 4 * elems(t);
    case EDGEQ_FMT_F16: return 2 * elems(t);
    case EDGEQ_FMT_I8: case EDGEQ_FMT_U8: return elems(t);
    case EDGEQ_FMT_B1: {
        size_t rows = t->ndim ? (size_t)t->shape[0] : 1, cols = elems(t) / (rows ? rows : 1);
        return rows * ((cols + 63) / 64) * 8;
    }
    default: return 0;
    }
}

static int code_bytes(int format, int block) {
    switch (format) {
    case EDGEQ_FMT_T2: return EDGEQ_T2_CODE_BYTES;
    case EDGEQ_FMT_T158: return EDGEQ_T158_CODE_BYTES;
    case EDGEQ_FMT_B1: return EDGEQ_B1_CODE_BYTES;
    case EDGEQ_FMT_Q4: return block / 2;
    case EDGEQ_FMT_I8: return EDGEQ_I8_BLOCK;
    default: return 0;
    }
}

static int block_ok(int format, int block) {
    switch (format) {
    case EDGEQ_FMT_T2: case EDGEQ_FMT_T158: return block == 256;
    case EDGEQ_FMT_B1: return block == 64;
    case EDGEQ_FMT_Q4: return block == 32 || block == 64 || block == 128;
    case EDGEQ_FMT_I8: return block == EDGEQ_I8_BLOCK;
    default: return 0;
    }
}

/* Resolves a weight tensor, checking its payload size equals what format and shape need. */
static int weight_view(const edgeq_model_t *m, const edgeq_tensor_t *t, edgeq_weight_t *w) {
    uint64_t codes, scales, need, zeros_at;
    if (t->ndim != 2 || !block_ok(t->format, t->block)) return 0;
    if (t->scale_kind != EDGEQ_SCALE_ROW && t->scale_kind != EDGEQ_SCALE_BLOCK) return 0;
    if ((t->format == EDGEQ_FMT_Q4) != (t->scale_kind == EDGEQ_SCALE_BLOCK) &&
        !(t->format == EDGEQ_FMT_T2 || t->format == EDGEQ_FMT_T158))
        return 0;
    w->format = t->format;
    w->block = t->block;
    w->scale_kind = t->scale_kind;
    w->rows = t->shape[0];
    w->cols = t->shape[1];
    w->n_blocks = (w->cols + w->block - 1) / w->block;
    w->code_bytes = code_bytes(t->format, t->block);
    w->row_bytes = w->n_blocks * w->code_bytes;
    codes = (uint64_t)w->rows * (uint64_t)w->row_bytes;
    scales = t->scale_kind == EDGEQ_SCALE_BLOCK ? (uint64_t)w->rows * w->n_blocks * 2 : (uint64_t)w->rows * 4;
    if (t->scales_at != align64((size_t)codes)) return 0;
    zeros_at = t->zeros_at;
    need = t->scales_at + scales;
    if (zeros_at) {
        if (t->format != EDGEQ_FMT_Q4 || zeros_at != align64((size_t)need)) return 0;
        need = zeros_at + (uint64_t)w->rows * w->n_blocks;
    }
    if (need != t->data_size) return 0;
    w->codes = m->blob + t->data_offset;
    w->scales16 = (const uint16_t *)(const void *)(w->codes + t->scales_at);
    w->scales32 = (const float *)(const void *)(w->codes + t->scales_at);
    w->zeros = zeros_at ? w->codes + zeros_at : NULL;
    return 1;
}

static edgeq_status_t parse(edgeq_model_t *m, const uint8_t *p, size_t size) {
    const edgeq_header_t *h = (const edgeq_header_t *)(const void *)p;
    const edgeq_section_t *sec;
    const edgeq_section_t *by_kind[7] = {0};
    uint32_t i;
    size_t table_end, sig_at = 0, sig_len = 0;
    if (size < sizeof(edgeq_header_t)) return fail(m, EDGEQ_E_TRUNCATED, "truncated: file smaller than the header", NO_NUM);
    if (memcmp(h->magic, EDGEQ_MAGIC, 4) != 0) return fail(m, EDGEQ_E_MAGIC, "not an edgeq blob (bad magic)", NO_NUM);
    if (h->version_major != EDGEQ_VERSION_MAJOR)
        return fail(m, EDGEQ_E_VERSION, "unsupported blob major version", h->version_major);
    if (h->file_size != size) return fail(m, EDGEQ_E_TRUNCATED, "truncated: header file_size differs from size", (long)size);
    if (h->n_sections == 0 || h->n_sections > 16 || h->section_table_offset != sizeof(edgeq_header_t))
        return fail(m, EDGEQ_E_SECTION, "bad section table", (long)h->n_sections);
    table_end = sizeof(edgeq_header_t) + h->n_sections * sizeof(edgeq_section_t);
    if (table_end > size) return fail(m, EDGEQ_E_TRUNCATED, "truncated section table", NO_NUM);
    if (crc32_zeroed(p, table_end, offsetof(edgeq_header_t, header_crc), 8, 0, 0) != h->header_crc)
        return fail(m, EDGEQ_E_HEADER_CRC, "header checksum mismatch", NO_NUM);
    sec = (const edgeq_section_t *)(const void *)(p + sizeof(edgeq_header_t));
    for (i = 0; i < h->n_sections; i++) {
        if (sec[i].kind < 1 || sec[i].kind > 6 || by_kind[sec[i].kind])
            return fail(m, EDGEQ_E_SECTION, "unknown or duplicate section kind", (long)sec[i].kind);
        if (sec[i].offset % EDGEQ_ALIGN || sec[i].offset < table_end || sec[i].offset > size ||
            sec[i].size > size - sec[i].offset)
            return fail(m, EDGEQ_E_SECTION, "section outside the file, kind", (long)sec[i].kind);
        by_kind[sec[i].kind] = &sec[i];
#ifndef EDGEQ_SKIP_CRC
        if (sec[i].kind != EDGEQ_SECTION_SIGNATURE &&
            crc32_update(0, p + sec[i].offset, (size_t)sec[i].size) != sec[i].crc32)
            return fail(m, EDGEQ_E_SECTION_CRC, "section checksum mismatch, kind", (long)sec[i].kind);
#endif
    }
    for (i = 1; i <= 5; i++)
        if (!by_kind[i]) return fail(m, EDGEQ_E_SECTION, "missing section kind", (long)i);
    if (by_kind[EDGEQ_SECTION_SIGNATURE]) {
        sig_at = (size_t)by_kind[EDGEQ_SECTION_SIGNATURE]->offset;
        sig_len = (size_t)by_kind[EDGEQ_SECTION_SIGNATURE]->size;
    }
#ifndef EDGEQ_SKIP_CRC
    if (crc32_zeroed(p, size, offsetof(edgeq_header_t, header_crc), 8, sig_at, sig_len) != h->file_crc)
        return fail(m, EDGEQ_E_FILE_CRC, "file checksum mismatch", NO_NUM);
#endif
    m->strings = (const char *)(p + by_kind[EDGEQ_SECTION_STRINGS]->offset);
    m->strings_size = (size_t)by_kind[EDGEQ_SECTION_STRINGS]->size;
    if (by_kind[EDGEQ_SECTION_TENSORS]->size % sizeof(edgeq_tensor_t))
        return fail(m, EDGEQ_E_TENSOR, "tensor table size", NO_NUM);
    m->n_tensors = (int)(by_kind[EDGEQ_SECTION_TENSORS]->size / sizeof(edgeq_tensor_t));
    if (m->n_tensors > MAX_TENSORS) return fail(m, EDGEQ_E_TENSOR, "too many tensors", m->n_tensors);
    m->records = (const edgeq_tensor_t *)(const void *)(p + by_kind[EDGEQ_SECTION_TENSORS]->offset);
    if (by_kind[EDGEQ_SECTION_GRAPH]->size < sizeof(edgeq_graph_t))
        return fail(m, EDGEQ_E_OP, "graph section too small", NO_NUM);
    m->graph = (const edgeq_graph_t *)(const void *)(p + by_kind[EDGEQ_SECTION_GRAPH]->offset);
    m->n_ops = (int)m->graph->n_ops;
    if (m->graph->n_ops > MAX_OPS ||
        by_kind[EDGEQ_SECTION_GRAPH]->size != sizeof(edgeq_graph_t) + (uint64_t)m->graph->n_ops * sizeof(edgeq_op_t))
        return fail(m, EDGEQ_E_OP, "graph section size does not match its op count", (long)m->graph->n_ops);
    m->ops = (const edgeq_op_t *)(const void *)(m->graph + 1);
    for (i = 0; i < (uint32_t)m->n_tensors; i++) {
        const edgeq_tensor_t *t = &m->records[i];
        const edgeq_section_t *data = by_kind[EDGEQ_SECTION_DATA];
        int d;
        if (t->name >= m->strings_size || !memchr(m->strings + t->name, 0, m->strings_size - t->name))
            return fail(m, EDGEQ_E_TENSOR, "tensor name outside strings, tensor", (long)i);
        if (t->ndim > EDGEQ_MAX_DIMS) return fail(m, EDGEQ_E_TENSOR, "bad ndim, tensor", (long)i);
        for (d = 0; d < t->ndim; d++)
            if (t->shape[d] <= 0 || t->shape[d] > (1 << 30)) return fail(m, EDGEQ_E_TENSOR, "bad shape, tensor", (long)i);
        if (!(t->flags & EDGEQ_TENSOR_CONST)) {
            if (t->data_size || !plain_bytes(t)) return fail(m, EDGEQ_E_FORMAT, "bad activation tensor", (long)i);
            continue;
        }
        if (t->data_offset % EDGEQ_ALIGN || t->data_offset < data->offset || t->data_offset > data->offset + data->size ||
            t->data_size > data->offset + data->size - t->data_offset)
            return fail(m, EDGEQ_E_PAYLOAD, "tensor payload outside the data section, tensor", (long)i);
        if (is_weight(t)) {
            edgeq_weight_t w;
            if (!weight_view(m, t, &w)) return fail(m, EDGEQ_E_FORMAT, "bad weight format/layout/size, tensor", (long)i);
            if (t->layout != EDGEQ_LAYOUT_ROW_MAJOR) return fail(m, EDGEQ_E_FORMAT, "unknown layout, tensor", (long)i);
        } else if (!plain_bytes(t) || plain_bytes(t) != t->data_size) {
            return fail(m, EDGEQ_E_FORMAT, "unknown format or payload size, tensor", (long)i);
        }
    }
    return EDGEQ_OK;
}

static int tensor_ok(const edgeq_model_t *m, int32_t idx) { return idx >= 0 && idx < m->n_tensors; }

/* Checks op ids, tensor indices, order and shapes; fills liveness. */
static edgeq_status_t check_graph(edgeq_model_t *m) {
    int k, i;
    uint32_t g;
    for (i = 0; i < m->n_tensors; i++) {
        m->tensors[i].rec = &m->records[i];
        m->tensors[i].first = (m->records[i].flags & EDGEQ_TENSOR_CONST) ? -2 : -1;
        m->tensors[i].last = -1;
    }
    if (m->graph->n_inputs != 1 || m->graph->n_outputs != 1)
        return fail(m, EDGEQ_E_UNSUPPORTED, "runtime supports one graph input and output, got", (long)m->graph->n_inputs);
    if (!tensor_ok(m, m->graph->inputs[0]) || !tensor_ok(m, m->graph->outputs[0]))
        return fail(m, EDGEQ_E_INDEX, "graph input/output index out of range", NO_NUM);
    m->tensors[m->graph->inputs[0]].first = -1;
    m->tensors[m->graph->inputs[0]].last = 0;
    for (k = 0; k < m->n_ops; k++) {
        const edgeq_op_t *op = &m->ops[k];
        if (op->op < EDGEQ_OP_LINEAR || op->op > EDGEQ_OP_BINARIZE)
            return fail(m, EDGEQ_E_OP, "unknown op id", op->op);
        if (op->n_inputs < 1 || op->n_inputs > EDGEQ_OP_MAX_INPUTS || op->n_outputs != 1)
            return fail(m, EDGEQ_E_OP, "bad input/output count, op", k);
        for (i = 0; i < op->n_inputs; i++) {
            int32_t t = op->inputs[i];
            if (t < 0) continue;
            if (!tensor_ok(m, t)) return fail(m, EDGEQ_E_INDEX, "tensor index out of range, op", k);
            if (m->tensors[t].first == -1 && t != m->graph->inputs[0])
                return fail(m, EDGEQ_E_ORDER, "tensor used before it is produced, op", k);
            m->tensors[t].last = k;
        }
        if (!tensor_ok(m, op->outputs[0])) return fail(m, EDGEQ_E_INDEX, "output index out of range, op", k);
        if (m->records[op->outputs[0]].flags & EDGEQ_TENSOR_CONST)
            return fail(m, EDGEQ_E_OP, "op writes a constant, op", k);
        m->tensors[op->outputs[0]].first = k;
        if (m->tensors[op->outputs[0]].last < k) m->tensors[op->outputs[0]].last = k;
    }
    g = (uint32_t)m->graph->outputs[0];
    m->tensors[g].last = m->n_ops;
    if (m->tensors[g].first < 0 && m->n_ops) return fail(m, EDGEQ_E_ORDER, "graph output is never produced", NO_NUM);
    return EDGEQ_OK;
}

/* Shape and format checks per op, and the scratch size the op needs. */
static edgeq_status_t check_op(edgeq_model_t *m, int k, size_t *scratch) {
    const edgeq_op_t *op = &m->ops[k];
    const edgeq_tensor_t *x = &m->records[op->inputs[0]], *y = &m->records[op->outputs[0]];
    if (op->op == EDGEQ_OP_LINEAR || op->op == EDGEQ_OP_CONV2D || op->op == EDGEQ_OP_DWCONV2D) {
        const edgeq_tensor_t *wt, *bias, *mult;
        edgeq_weight_t w;
        int out_f32 = y->format == EDGEQ_FMT_F32, need, i;
        if (op->n_inputs < 4 || op->inputs[1] < 0) return fail(m, EDGEQ_E_OP, "weight op lacks inputs, op", k);
        wt = &m->records[op->inputs[1]];
        if (!is_weight(wt) || !weight_view(m, wt, &w)) return fail(m, EDGEQ_E_FORMAT, "op weight is not a weight format, op", k);
        need = (out_f32 || w.scale_kind == EDGEQ_SCALE_BLOCK) ? 4 : 5;
        if (op->n_inputs < need) return fail(m, EDGEQ_E_OP, "weight op lacks inputs, op", k);
        for (i = 1; i < need; i++)
            if (op->inputs[i] < 0 || !(m->records[op->inputs[i]].flags & EDGEQ_TENSOR_CONST))
                return fail(m, EDGEQ_E_OP, "weight op input is not a constant, op", k);
        bias = &m->records[op->inputs[2]];
        mult = &m->records[op->inputs[3]];
        if (elems(bias) != (size_t)w.rows || elems(mult) != (size_t)w.rows)
            return fail(m, EDGEQ_E_SHAPE, "bias/requant length differs from weight rows, op", k);
        if (bias->format != (w.scale_kind == EDGEQ_SCALE_ROW ? EDGEQ_FMT_I32 : EDGEQ_FMT_F32) ||
            mult->format != ((w.scale_kind == EDGEQ_SCALE_ROW && !out_f32) ? EDGEQ_FMT_I32 : EDGEQ_FMT_F32))
            return fail(m, EDGEQ_E_FORMAT, "bias/requant formats do not match the weight scale kind, op", k);
        if (need == 5 && (op->inputs[4] < 0 || elems(&m->records[op->inputs[4]]) != (size_t)w.rows ||
             m->records[op->inputs[4]].format != EDGEQ_FMT_I32))
            return fail(m, EDGEQ_E_SHAPE, "requant shift missing or wrong length, op", k);
        if (y->format != EDGEQ_FMT_I8 && !out_f32) return fail(m, EDGEQ_E_FORMAT, "weight op output must be I8 or F32, op", k);
        if (op->op == EDGEQ_OP_LINEAR) {
            size_t K = elems(x) / (size_t)x->shape[0];
            if (x->format == EDGEQ_FMT_B1 && w.format != EDGEQ_FMT_B1 && w.format != EDGEQ_FMT_I8)
                return fail(m, EDGEQ_E_UNSUPPORTED, "binary activations need B1 or I8 weights, op", k);
            if (x->format != EDGEQ_FMT_I8 && x->format != EDGEQ_FMT_B1)
                return fail(m, EDGEQ_E_FORMAT, "linear input must be I8 or B1, op", k);
            if (K != (size_t)w.cols || elems(y) != (size_t)w.rows * (size_t)x->shape[0])
                return fail(m, EDGEQ_E_SHAPE, "linear shapes do not match, op", k);
        } else {
            const int32_t *a = op->attrs;
            int kh = a[EDGEQ_ATTR_KH], kw = a[EDGEQ_ATTR_KW], sh = a[EDGEQ_ATTR_STRIDE_H], sw = a[EDGEQ_ATTR_STRIDE_W];
            int oh, ow, c;
            if (x->ndim != 4 || y->ndim != 4 || x->format != EDGEQ_FMT_I8 || kh <= 0 || kw <= 0 || sh <= 0 || sw <= 0 ||
                a[EDGEQ_ATTR_PAD_TOP] < 0 || a[EDGEQ_ATTR_PAD_LEFT] < 0 || a[EDGEQ_ATTR_PAD_BOTTOM] < 0 ||
                a[EDGEQ_ATTR_PAD_RIGHT] < 0 || kh > 64 || kw > 64)
                return fail(m, EDGEQ_E_SHAPE, "bad conv attributes, op", k);
            c = x->shape[3];
            oh = (x->shape[1] + a[EDGEQ_ATTR_PAD_TOP] + a[EDGEQ_ATTR_PAD_BOTTOM] - kh) / sh + 1;
            ow = (x->shape[2] + a[EDGEQ_ATTR_PAD_LEFT] + a[EDGEQ_ATTR_PAD_RIGHT] - kw) / sw + 1;
            if (oh != y->shape[1] || ow != y->shape[2] || y->shape[0] != x->shape[0])
                return fail(m, EDGEQ_E_SHAPE, "conv output shape, op", k);
            if (op->op == EDGEQ_OP_CONV2D ? (w.cols != kh * kw * c || y->shape[3] != w.rows)
                                          : (w.cols != kh * kw || w.rows != c || y->shape[3] != c))
                return fail(m, EDGEQ_E_SHAPE, "conv weight shape, op", k);
        }
        if ((size_t)w.n_blocks * w.block > *scratch) *scratch = (size_t)w.n_blocks * w.block;
        return EDGEQ_OK;
    }
    switch (op->op) {
    case EDGEQ_OP_MAXPOOL2D: case EDGEQ_OP_AVGPOOL2D: {
        const int32_t *a = op->attrs;
        if (x->ndim != 4 || y->ndim != 4 || x->format != EDGEQ_FMT_I8 || y->format != EDGEQ_FMT_I8 ||
            a[EDGEQ_ATTR_KH] <= 0 || a[EDGEQ_ATTR_KW] <= 0 || a[EDGEQ_ATTR_STRIDE_H] <= 0 || a[EDGEQ_ATTR_STRIDE_W] <= 0 ||
            a[EDGEQ_ATTR_PAD_TOP] < 0 || a[EDGEQ_ATTR_PAD_LEFT] < 0 || y->shape[3] != x->shape[3] ||
            y->shape[1] != (x->shape[1] + a[EDGEQ_ATTR_PAD_TOP] + a[EDGEQ_ATTR_PAD_BOTTOM] - a[EDGEQ_ATTR_KH]) / a[EDGEQ_ATTR_STRIDE_H] + 1 ||
            y->shape[2] != (x->shape[2] + a[EDGEQ_ATTR_PAD_LEFT] + a[EDGEQ_ATTR_PAD_RIGHT] - a[EDGEQ_ATTR_KW]) / a[EDGEQ_ATTR_STRIDE_W] + 1)
            return fail(m, EDGEQ_E_SHAPE, "bad pool shape/attributes, op", k);
        return EDGEQ_OK;
    }
    case EDGEQ_OP_ADD:
        if (op->n_inputs != 2 || !tensor_ok(m, op->inputs[1]) || elems(&m->records[op->inputs[1]]) != elems(x) ||
            elems(y) != elems(x) || x->format != EDGEQ_FMT_I8 || m->records[op->inputs[1]].format != EDGEQ_FMT_I8)
            return fail(m, EDGEQ_E_SHAPE, "add shapes differ, op", k);
        return EDGEQ_OK;
    case EDGEQ_OP_RELU: case EDGEQ_OP_RESHAPE:
        if (plain_bytes(x) != plain_bytes(y) || x->format != y->format) return fail(m, EDGEQ_E_SHAPE, "shape mismatch, op", k);
        return EDGEQ_OK;
    case EDGEQ_OP_SOFTMAX: case EDGEQ_OP_QUANTIZE: case EDGEQ_OP_DEQUANTIZE:
        if (elems(x) != elems(y)) return fail(m, EDGEQ_E_SHAPE, "element count mismatch, op", k);
        if (op->op == EDGEQ_OP_QUANTIZE && (x->format != EDGEQ_FMT_F32 || y->format != EDGEQ_FMT_I8 || !(y->qscale > 0)))
            return fail(m, EDGEQ_E_FORMAT, "quantize needs F32 -> I8 with a positive scale, op", k);
        if (op->op == EDGEQ_OP_DEQUANTIZE && (x->format != EDGEQ_FMT_I8 || y->format != EDGEQ_FMT_F32))
            return fail(m, EDGEQ_E_FORMAT, "dequantize needs I8 -> F32, op", k);
        if (op->op == EDGEQ_OP_SOFTMAX && (y->format != EDGEQ_FMT_F32 || (x->format != EDGEQ_FMT_F32 && x->format != EDGEQ_FMT_I8)))
            return fail(m, EDGEQ_E_FORMAT, "softmax needs I8/F32 -> F32, op", k);
        return EDGEQ_OK;
    case EDGEQ_OP_BINARIZE:
        if (x->format != EDGEQ_FMT_I8 || y->format != EDGEQ_FMT_B1 || elems(x) != elems(y))
            return fail(m, EDGEQ_E_FORMAT, "binarize needs I8 -> B1 of the same shape, op", k);
        return EDGEQ_OK;
    default:
        return fail(m, EDGEQ_E_OP, "unknown op id", op->op);
    }
}

/* Liveness-based first-fit placement of activations in the arena. */
static size_t plan_arena(edgeq_model_t *m, int apply) {
    int i, j, placed = 0;
    size_t top = 0;
    static int order[MAX_TENSORS];
    for (i = 0; i < m->n_tensors; i++) {
        tensor_t *t = &m->tensors[i];
        if (t->rec->flags & EDGEQ_TENSOR_CONST) continue;
        t->bytes = align64(plain_bytes(t->rec));
        order[placed++] = i;
    }
    for (i = 1; i < placed; i++) /* biggest first */
        for (j = i; j > 0 && m->tensors[order[j]].bytes > m->tensors[order[j - 1]].bytes; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    for (i = 0; i < placed; i++) {
        tensor_t *t = &m->tensors[order[i]];
        size_t off = 0;
        int moved = 1;
        while (moved) {
            moved = 0;
            for (j = 0; j < i; j++) {
                tensor_t *o = &m->tensors[order[j]];
                size_t o_off = (size_t)(o->data - (uint8_t *)0);
                int live = !(o->last < t->first || t->last < o->first);
                if (live && off < o_off + o->bytes && o_off < off + t->bytes) {
                    off = o_off + o->bytes;
                    moved = 1;
                }
            }
        }
        t->data = (uint8_t *)0 + off; /* offset for now, rebased below */
        if (off + t->bytes > top) top = off + t->bytes;
    }
    if (apply)
        for (i = 0; i < placed; i++) m->tensors[order[i]].data = m->arena + (size_t)(m->tensors[order[i]].data - (uint8_t *)0);
    return top;
}

static size_t state_bytes(int n_tensors, int n_ops) {
    return align64(sizeof(edgeq_model_t)) + align64((size_t)n_tensors * sizeof(tensor_t)) +
           align64((size_t)n_ops * sizeof(edgeq_layer_time_t));
}

static edgeq_status_t prepare(edgeq_model_t *m, const void *blob, size_t size, int apply) {
    edgeq_status_t s;
    int k, i;
    m->blob = (const uint8_t *)blob;
    m->blob_size = size;
    if ((s = parse(m, m->blob, size)) != EDGEQ_OK) return s;
    if ((s = check_graph(m)) != EDGEQ_OK) return s;
    m->scratch_size = 64;
    for (k = 0; k < m->n_ops; k++)
        if ((s = check_op(m, k, &m->scratch_size)) != EDGEQ_OK) return s;
    m->scratch_size = align64(m->scratch_size);
    m->arena_size = plan_arena(m, apply);
    for (i = 0; i < m->n_tensors; i++)
        if (m->records[i].flags & EDGEQ_TENSOR_CONST) {
            m->tensors[i].data = (uint8_t *)(m->blob + m->records[i].data_offset);
            m->tensors[i].bytes = (size_t)m->records[i].data_size;
        }
    m->test_in = m->test_out = -1;
    m->test_count = 0;
    for (i = 0; i < m->n_tensors; i++) {
        const edgeq_tensor_t *t = &m->records[i];
        if ((t->flags & EDGEQ_TENSOR_TEST_INPUT) && t->test_index == 0 && t->format == EDGEQ_FMT_F32) m->test_in = i;
        if ((t->flags & EDGEQ_TENSOR_TEST_OUTPUT) && t->test_index == 0 && t->format == EDGEQ_FMT_F32) m->test_out = i;
    }
    if (m->test_in >= 0 && m->test_out >= 0) {
        const edgeq_tensor_t *in = &m->records[m->test_in], *out = &m->records[m->test_out];
        const edgeq_tensor_t *gi = &m->records[m->graph->inputs[0]], *go = &m->records[m->graph->outputs[0]];
        if (in->shape[0] == out->shape[0] && elems(in) == (size_t)in->shape[0] * elems(gi) &&
            elems(out) == (size_t)out->shape[0] * elems(go))
            m->test_count = in->shape[0];
    }
    return EDGEQ_OK;
}

/* One dry run over a static probe gives every size; the work buffer is laid out from it. */
static edgeq_model_t probe;
static tensor_t probe_tensors[MAX_TENSORS];

static edgeq_status_t dry_run(const void *blob, size_t size) {
    memset(&probe, 0, sizeof probe);
    probe.tensors = probe_tensors;
    return prepare(&probe, blob, size, 0);
}

edgeq_status_t edgeq_work_size(const void *blob, size_t blob_size, size_t *bytes) {
    edgeq_status_t s;
    if (!blob || !bytes) return EDGEQ_E_ARG;
    if ((s = dry_run(blob, blob_size)) != EDGEQ_OK) return s;
    *bytes = state_bytes(probe.n_tensors, probe.n_ops) + probe.scratch_size + probe.arena_size + 64;
    return EDGEQ_OK;
}

edgeq_status_t edgeq_load(const void *blob, size_t blob_size, void *work, size_t work_size, edgeq_model_t **out) {
    uint8_t *base;
    edgeq_model_t *m;
    edgeq_status_t s;
    size_t need;
    if (!blob || !work || !out) return EDGEQ_E_ARG;
    *out = NULL;
    if ((s = edgeq_work_size(blob, blob_size, &need)) != EDGEQ_OK) return s;
    if (work_size < need) return fail(&probe, EDGEQ_E_WORK_TOO_SMALL, "work buffer too small, need", (long)need);
    base = (uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    m = (edgeq_model_t *)(void *)base;
    memset(m, 0, sizeof *m);
    m->tensors = (tensor_t *)(void *)(base + align64(sizeof(edgeq_model_t)));
    m->profile = (edgeq_layer_time_t *)(void *)((uint8_t *)m->tensors + align64((size_t)probe.n_tensors * sizeof(tensor_t)));
    m->scratch = (int8_t *)((uint8_t *)m->profile + align64((size_t)probe.n_ops * sizeof(edgeq_layer_time_t)));
    m->arena = (uint8_t *)m->scratch + probe.scratch_size;
    if ((s = prepare(m, blob, blob_size, 1)) != EDGEQ_OK) return s;
    *out = m;
    return EDGEQ_OK;
}

/* ---- execution --------------------------------------------------------------------------- */

static int32_t srdhm(int32_t a, int32_t b) {
    int64_t ab, nudge, t;
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    t = ab + nudge;
    return (int32_t)(t / (1LL << 31)); /* C division truncates, as gemmlowp */
}

static int32_t rdbpot(int32_t x, int e) {
    int32_t mask = (int32_t)((1LL << e) - 1), rem = x & mask, threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier; the left shift saturates (docs/numerics.md). */
static int32_t mbqm(int32_t x, int32_t mult, int32_t shift) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)x * ((int64_t)1 << (left > 31 ? 31 : left));
    if (shifted > INT32_MAX) shifted = INT32_MAX;
    if (shifted < INT32_MIN) shifted = INT32_MIN;
    if (right > 31) right = 31;
    return rdbpot(srdhm((int32_t)shifted, mult), right);
}

static int32_t clamp32(int64_t v, int32_t lo, int32_t hi) { return (int32_t)(v < lo ? lo : v > hi ? hi : v); }

#define T(m, i) (&(m)->tensors[i])
#define REC(m, i) ((m)->records[i])

/* One output row value from x (padded int8 or B1 words) for weight row r. */
static void emit(const edgeq_model_t *m, const edgeq_op_t *op, const edgeq_weight_t *w, int r, int32_t acc, float accf,
                 const edgeq_tensor_t *y, uint8_t *out, size_t at) {
    const uint8_t *bias = T(m, op->inputs[2])->data, *mult = T(m, op->inputs[3])->data;
    if (w->scale_kind == EDGEQ_SCALE_ROW) {
        int32_t b, mu, sh;
        memcpy(&b, bias + 4 * (size_t)r, 4);
        acc += b;
        if (y->format == EDGEQ_FMT_F32) {
            float sc, v;
            memcpy(&sc, mult + 4 * (size_t)r, 4);
            v = (float)acc * sc;
            memcpy(out + 4 * at, &v, 4);
            return;
        }
        memcpy(&mu, mult + 4 * (size_t)r, 4);
        memcpy(&sh, T(m, op->inputs[4])->data + 4 * (size_t)r, 4);
        ((int8_t *)out)[at] = (int8_t)clamp32((int64_t)mbqm(acc, mu, sh) + y->qzero, op->attrs[EDGEQ_ATTR_ACT_MIN],
                                               op->attrs[EDGEQ_ATTR_ACT_MAX]);
    } else {
        float b, mu, v;
        memcpy(&b, bias + 4 * (size_t)r, 4);
        memcpy(&mu, mult + 4 * (size_t)r, 4);
        v = (accf + b) * mu;
        if (y->format == EDGEQ_FMT_F32) {
            memcpy(out + 4 * at, &v, 4);
            return;
        }
        v = rintf(v);
        if (v > 1073741824.0f) v = 1073741824.0f;
        if (v < -1073741824.0f) v = -1073741824.0f;
        ((int8_t *)out)[at] = (int8_t)clamp32((int64_t)(int32_t)v + y->qzero, op->attrs[EDGEQ_ATTR_ACT_MIN],
                                               op->attrs[EDGEQ_ATTR_ACT_MAX]);
    }
}

static void run_linear(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *x = &REC(m, op->inputs[0]), *y = &REC(m, op->outputs[0]);
    edgeq_weight_t w;
    int r, n, batch = x->shape[0];
    size_t K;
    weight_view(m, &REC(m, op->inputs[1]), &w);
    K = elems(x) / (size_t)batch;
    for (n = 0; n < batch; n++) {
        int32_t acc;
        float accf;
        if (x->format == EDGEQ_FMT_B1) {
            size_t words = (K + 63) / 64 * 2;
            const uint32_t *bits = (const uint32_t *)(const void *)(T(m, op->inputs[0])->data) + (size_t)n * words;
            if (w.format == EDGEQ_FMT_B1) {
                for (r = 0; r < w.rows; r++)
                    emit(m, op, &w, r, edgeq_ref_xnor_row(&w, r, bits, (int)K), 0.0f, y, T(m, op->outputs[0])->data,
                         (size_t)n * w.rows + r);
                continue;
            }
            memset(m->scratch, 0, (size_t)w.n_blocks * w.block); /* +-1 values for int8 weights */
            for (r = 0; r < (int)K; r++) m->scratch[r] = (bits[r / 32] >> (r % 32)) & 1 ? -1 : 1;
        } else {
            memset(m->scratch, 0, (size_t)w.n_blocks * w.block);
            memcpy(m->scratch, T(m, op->inputs[0])->data + (size_t)n * K, K);
        }
        for (r = 0; r < w.rows; r++) {
            edgeq_ref_row(&w, r, m->scratch, &acc, &accf);
            emit(m, op, &w, r, acc, accf, y, T(m, op->outputs[0])->data, (size_t)n * w.rows + r);
        }
    }
}

static void run_conv(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *x = &REC(m, op->inputs[0]), *y = &REC(m, op->outputs[0]);
    const int32_t *a = op->attrs;
    const int8_t *in = (const int8_t *)T(m, op->inputs[0])->data;
    edgeq_weight_t w;
    int H = x->shape[1], W = x->shape[2], C = x->shape[3], OH = y->shape[1], OW = y->shape[2], OC = y->shape[3];
    int kh = a[EDGEQ_ATTR_KH], kw = a[EDGEQ_ATTR_KW], n, oy, ox, i, j, c, r;
    int depthwise = op->op == EDGEQ_OP_DWCONV2D;
    int8_t pad = (int8_t)x->qzero;
    weight_view(m, &REC(m, op->inputs[1]), &w);
    for (n = 0; n < x->shape[0]; n++)
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++) {
                int iy0 = oy * a[EDGEQ_ATTR_STRIDE_H] - a[EDGEQ_ATTR_PAD_TOP];
                int ix0 = ox * a[EDGEQ_ATTR_STRIDE_W] - a[EDGEQ_ATTR_PAD_LEFT];
                size_t at = (((size_t)n * OH + oy) * OW + ox) * OC;
                int channels = depthwise ? C : 1;
                for (c = 0; c < channels; c++) {
                    size_t p = 0;
                    memset(m->scratch, 0, (size_t)w.n_blocks * w.block);
                    for (i = 0; i < kh; i++)
                        for (j = 0; j < kw; j++) {
                            int iy = iy0 + i, ix = ix0 + j, inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
                            const int8_t *src = in + (((size_t)n * H + (inside ? iy : 0)) * W + (inside ? ix : 0)) * C;
                            if (depthwise) {
                                m->scratch[p++] = inside ? src[c] : pad;
                            } else {
                                int cc;
                                for (cc = 0; cc < C; cc++) m->scratch[p++] = inside ? src[cc] : pad;
                            }
                        }
                    for (r = depthwise ? c : 0; r < (depthwise ? c + 1 : w.rows); r++) {
                        int32_t acc;
                        float accf;
                        edgeq_ref_row(&w, r, m->scratch, &acc, &accf);
                        emit(m, op, &w, r, acc, accf, y, T(m, op->outputs[0])->data, at + (size_t)r);
                    }
                }
            }
}

static void run_pool(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *x = &REC(m, op->inputs[0]), *y = &REC(m, op->outputs[0]);
    const int32_t *a = op->attrs;
    const int8_t *in = (const int8_t *)T(m, op->inputs[0])->data;
    int8_t *out = (int8_t *)T(m, op->outputs[0])->data;
    int H = x->shape[1], W = x->shape[2], C = x->shape[3], n, oy, ox, c, i, j;
    for (n = 0; n < x->shape[0]; n++)
        for (oy = 0; oy < y->shape[1]; oy++)
            for (ox = 0; ox < y->shape[2]; ox++)
                for (c = 0; c < C; c++) {
                    int32_t best = -128, sum = 0, count = 0;
                    for (i = 0; i < a[EDGEQ_ATTR_KH]; i++)
                        for (j = 0; j < a[EDGEQ_ATTR_KW]; j++) {
                            int iy = oy * a[EDGEQ_ATTR_STRIDE_H] - a[EDGEQ_ATTR_PAD_TOP] + i;
                            int ix = ox * a[EDGEQ_ATTR_STRIDE_W] - a[EDGEQ_ATTR_PAD_LEFT] + j;
                            int32_t v;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            v = in[(((size_t)n * H + iy) * W + ix) * C + c];
                            if (v > best) best = v;
                            sum += v;
                            count++;
                        }
                    if (op->op == EDGEQ_OP_AVGPOOL2D) {
                        int32_t avg = count == 0 ? 0 : sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                        best = clamp32(avg, -128, 127);
                    }
                    out[(((size_t)n * y->shape[1] + oy) * y->shape[2] + ox) * C + c] = (int8_t)best;
                }
}

static void run_add(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *ta = &REC(m, op->inputs[0]), *tb = &REC(m, op->inputs[1]), *y = &REC(m, op->outputs[0]);
    const int8_t *pa = (const int8_t *)T(m, op->inputs[0])->data, *pb = (const int8_t *)T(m, op->inputs[1])->data;
    int8_t *out = (int8_t *)T(m, op->outputs[0])->data;
    const int32_t *a = op->attrs;
    size_t i, n = elems(y);
    int left = a[EDGEQ_ATTR_ADD_LEFT_SHIFT] < 0 ? 0 : a[EDGEQ_ATTR_ADD_LEFT_SHIFT] > 24 ? 24 : a[EDGEQ_ATTR_ADD_LEFT_SHIFT];
    for (i = 0; i < n; i++) {
        int32_t xa = (int32_t)(pa[i] - ta->qzero) * (1 << left), xb = (int32_t)(pb[i] - tb->qzero) * (1 << left);
        int32_t sa = mbqm(xa, a[EDGEQ_ATTR_ADD_MULT_A], a[EDGEQ_ATTR_ADD_SHIFT_A]);
        int32_t sb = mbqm(xb, a[EDGEQ_ATTR_ADD_MULT_B], a[EDGEQ_ATTR_ADD_SHIFT_B]);
        int64_t sum = (int64_t)sa + sb;
        int32_t o = mbqm(clamp32(sum, INT32_MIN, INT32_MAX), a[EDGEQ_ATTR_ADD_MULT_OUT], a[EDGEQ_ATTR_ADD_SHIFT_OUT]);
        out[i] = (int8_t)clamp32((int64_t)o + y->qzero, a[EDGEQ_ATTR_ACT_MIN], a[EDGEQ_ATTR_ACT_MAX]);
    }
}

static void run_softmax(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *x = &REC(m, op->inputs[0]), *y = &REC(m, op->outputs[0]);
    const uint8_t *in = T(m, op->inputs[0])->data;
    float *out = (float *)(void *)T(m, op->outputs[0])->data;
    size_t rows = (size_t)x->shape[0], cols = elems(x) / rows, r, c;
    (void)y;
    for (r = 0; r < rows; r++) {
        float mx = -INFINITY, sum = 0.0f;
        for (c = 0; c < cols; c++) {
            float v;
            if (x->format == EDGEQ_FMT_I8) v = (float)(((const int8_t *)in)[r * cols + c] - x->qzero) * x->qscale;
            else memcpy(&v, in + 4 * (r * cols + c), 4);
            out[r * cols + c] = v;
            if (v > mx) mx = v;
        }
        for (c = 0; c < cols; c++) {
            out[r * cols + c] = expf(out[r * cols + c] - mx);
            sum += out[r * cols + c];
        }
        for (c = 0; c < cols; c++) out[r * cols + c] /= sum;
    }
}

static void run_op(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *x = &REC(m, op->inputs[0]), *y = &REC(m, op->outputs[0]);
    uint8_t *in = T(m, op->inputs[0])->data, *out = T(m, op->outputs[0])->data;
    size_t i, n = elems(x);
    switch (op->op) {
    case EDGEQ_OP_LINEAR: run_linear(m, op); break;
    case EDGEQ_OP_CONV2D: case EDGEQ_OP_DWCONV2D: run_conv(m, op); break;
    case EDGEQ_OP_MAXPOOL2D: case EDGEQ_OP_AVGPOOL2D: run_pool(m, op); break;
    case EDGEQ_OP_ADD: run_add(m, op); break;
    case EDGEQ_OP_SOFTMAX: run_softmax(m, op); break;
    case EDGEQ_OP_RELU:
        for (i = 0; i < n; i++) ((int8_t *)out)[i] = ((int8_t *)in)[i] < x->qzero ? (int8_t)x->qzero : ((int8_t *)in)[i];
        break;
    case EDGEQ_OP_RESHAPE:
        if (out != in) memmove(out, in, plain_bytes(x));
        break;
    case EDGEQ_OP_QUANTIZE: {
        float inv = 1.0f / y->qscale;
        for (i = 0; i < n; i++) {
            float v;
            memcpy(&v, in + 4 * i, 4);
            v = rintf(v * inv);
            if (v > 1e9f) v = 1e9f;
            if (v < -1e9f) v = -1e9f;
            ((int8_t *)out)[i] = (int8_t)clamp32((int64_t)(int32_t)v + y->qzero, -128, 127);
        }
        break;
    }
    case EDGEQ_OP_DEQUANTIZE:
        for (i = 0; i < n; i++) {
            float v = (float)(((int8_t *)in)[i] - x->qzero) * x->qscale;
            memcpy(out + 4 * i, &v, 4);
        }
        break;
    case EDGEQ_OP_BINARIZE: {
        size_t rows = (size_t)x->shape[0], cols = n / rows, words = (cols + 63) / 64 * 2, r, c;
        uint32_t *bits = (uint32_t *)(void *)out;
        memset(out, 0, rows * words * 4);
        for (r = 0; r < rows; r++)
            for (c = 0; c < cols; c++)
                if (((int8_t *)in)[r * cols + c] < x->qzero) bits[r * words + c / 32] |= 1u << (c % 32);
        break;
    }
    default: break;
    }
}

edgeq_status_t edgeq_run(edgeq_model_t *m) {
    int k;
    if (!m) return EDGEQ_E_ARG;
    for (k = 0; k < m->n_ops; k++) {
        uint64_t t0 = edgeq_pal_now_ns();
        run_op(m, &m->ops[k]);
        m->profile[k].op_index = k;
        m->profile[k].op = m->ops[k].op;
        m->profile[k].kernel = "ref";
        m->profile[k].ns = edgeq_pal_now_ns() - t0;
    }
    return EDGEQ_OK;
}

size_t edgeq_arena_size(const edgeq_model_t *m) { return m ? m->arena_size : 0; }
int edgeq_num_ops(const edgeq_model_t *m) { return m ? m->n_ops : 0; }
const edgeq_layer_time_t *edgeq_profile(const edgeq_model_t *m) { return m ? m->profile : NULL; }
int edgeq_test_count(const edgeq_model_t *m) { return m ? m->test_count : 0; }

static void *io(const edgeq_model_t *m, int32_t idx, size_t *count) {
    if (count) *count = elems(&m->records[idx]);
    return m->records[idx].format == EDGEQ_FMT_F32 ? m->tensors[idx].data : NULL;
}

float *edgeq_input(edgeq_model_t *m, int i, size_t *count) {
    return m && i == 0 ? (float *)io(m, m->graph->inputs[0], count) : NULL;
}

const float *edgeq_output(edgeq_model_t *m, int i, size_t *count) {
    return m && i == 0 ? (const float *)io(m, m->graph->outputs[0], count) : NULL;
}

const float *edgeq_test_input(const edgeq_model_t *m, int s) {
    if (!m || s < 0 || s >= m->test_count) return NULL;
    return (const float *)(const void *)m->tensors[m->test_in].data + (size_t)s * elems(&m->records[m->graph->inputs[0]]);
}

const float *edgeq_test_output(const edgeq_model_t *m, int s) {
    if (!m || s < 0 || s >= m->test_count) return NULL;
    return (const float *)(const void *)m->tensors[m->test_out].data + (size_t)s * elems(&m->records[m->graph->outputs[0]]);
}

const char *edgeq_last_error(const edgeq_model_t *m) { return m ? m->error : probe.error; }

const char *edgeq_strerror(edgeq_status_t s) {
    switch (s) {
    case EDGEQ_OK: return "ok";
    case EDGEQ_E_TRUNCATED: return "truncated blob";
    case EDGEQ_E_MAGIC: return "not an edgeq blob";
    case EDGEQ_E_VERSION: return "unsupported blob version";
    case EDGEQ_E_HEADER_CRC: return "header checksum mismatch";
    case EDGEQ_E_SECTION: return "bad section table";
    case EDGEQ_E_SECTION_CRC: return "section checksum mismatch";
    case EDGEQ_E_FILE_CRC: return "file checksum mismatch";
    case EDGEQ_E_TENSOR: return "bad tensor record";
    case EDGEQ_E_FORMAT: return "unknown or inconsistent format";
    case EDGEQ_E_PAYLOAD: return "tensor payload out of bounds";
    case EDGEQ_E_OP: return "bad op";
    case EDGEQ_E_INDEX: return "tensor index out of range";
    case EDGEQ_E_ORDER: return "tensor used before it is produced";
    case EDGEQ_E_SHAPE: return "shape mismatch";
    case EDGEQ_E_UNSUPPORTED: return "unsupported by this runtime";
    case EDGEQ_E_WORK_TOO_SMALL: return "work buffer too small";
    case EDGEQ_E_ARG: return "bad argument";
    }
    return "unknown error";
}
