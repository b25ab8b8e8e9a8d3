/*
 * Blob validation: every byte the runtime will ever read is checked here, before use -- header,
 * section table, checksums, string references and every tensor record and payload. Offsets and
 * sizes are compared by subtraction so that no sum can overflow.
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define CRC_AT offsetof(edgeq_header_t, header_crc) /* header_crc, file_crc: 8 bytes read as zero */

static const char *SECTION_NAMES[] = {"?", "strings", "tensors", "graph", "metadata", "data", "signature"};

static int in_bounds(uint64_t offset, uint64_t size, uint64_t limit) {
    return size <= limit && offset <= limit - size;
}

static edgeq_status_t check_header(const uint8_t *p, size_t size, edgeq_diag_t *diag) {
    const edgeq_header_t *h = (const edgeq_header_t *)(const void *)p;
    size_t table_end;
    if (size < sizeof(edgeq_header_t))
        return eq_fail(diag, EDGEQ_E_TRUNCATED, "truncated: blob is %U bytes, the header alone needs %u",
                       (unsigned long long)size, (unsigned)sizeof(edgeq_header_t));
    if (memcmp(h->magic, EDGEQ_MAGIC, 4) != 0)
        return eq_fail(diag, EDGEQ_E_MAGIC, "not an edgeq blob: magic is %x, expected \"EDGQ\"",
                       (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3]);
    if (h->version_major > EDGEQ_VERSION_MAJOR)
        return eq_fail(diag, EDGEQ_E_VERSION_NEWER,
                       "blob format version %u.%u is newer than this runtime reads (%u.x); upgrade edgeq",
                       (unsigned)h->version_major, (unsigned)h->version_minor, (unsigned)EDGEQ_VERSION_MAJOR);
    if (h->version_major < 1)
        return eq_fail(diag, EDGEQ_E_VERSION, "blob format version %u.%u is not supported",
                       (unsigned)h->version_major, (unsigned)h->version_minor);
    if (h->file_size != size)
        return eq_fail(diag, EDGEQ_E_TRUNCATED, "truncated or extended: header says %U bytes, blob has %U",
                       (unsigned long long)h->file_size, (unsigned long long)size);
    if (h->n_sections < 1 || h->n_sections > EQ_MAX_SECTIONS || h->section_table_offset != sizeof(edgeq_header_t))
        return eq_fail(diag, EDGEQ_E_SECTION_TABLE, "header: %u sections at byte %U (expected 1..%u at %u)",
                       (unsigned)h->n_sections, (unsigned long long)h->section_table_offset,
                       (unsigned)EQ_MAX_SECTIONS, (unsigned)sizeof(edgeq_header_t));
    table_end = sizeof(edgeq_header_t) + h->n_sections * sizeof(edgeq_section_t);
    if (table_end > size)
        return eq_fail(diag, EDGEQ_E_TRUNCATED, "truncated: section table ends at byte %U, blob has %U",
                       (unsigned long long)table_end, (unsigned long long)size);
#ifndef EDGEQ_SKIP_CRC
    {
        uint32_t crc = eq_crc32(0, p, CRC_AT);
        crc = eq_crc32_zeros(crc, 8);
        crc = eq_crc32(crc, p + CRC_AT + 8, table_end - CRC_AT - 8);
        if (crc != h->header_crc)
            return eq_fail(diag, EDGEQ_E_HEADER_CRC, "header checksum mismatch (stored %x, computed %x)",
                           (unsigned)h->header_crc, (unsigned)crc);
    }
#endif
    return EDGEQ_OK;
}

/* Section table -> by_kind[kind]; checks kinds, bounds, alignment, overlap, presence, signature. */
static edgeq_status_t check_sections(const uint8_t *p, size_t size, const edgeq_section_t **by_kind,
                                     edgeq_diag_t *diag) {
    const edgeq_header_t *h = (const edgeq_header_t *)(const void *)p;
    const edgeq_section_t *table = (const edgeq_section_t *)(const void *)(p + sizeof(edgeq_header_t));
    const edgeq_section_t *sorted[EQ_MAX_SECTIONS];
    const size_t table_end = sizeof(edgeq_header_t) + h->n_sections * sizeof(edgeq_section_t);
    uint32_t i, j, kind;
    for (i = 0; i < h->n_sections; i++) {
        const edgeq_section_t *s = &table[i];
        if (s->kind < EDGEQ_SECTION_STRINGS || s->kind > EDGEQ_SECTION_SIGNATURE)
            return eq_fail(diag, EDGEQ_E_SECTION_TABLE, "section %u: unknown section kind %u", i, (unsigned)s->kind);
        if (by_kind[s->kind])
            return eq_fail(diag, EDGEQ_E_SECTION_TABLE, "section %u: duplicate %s section", i, SECTION_NAMES[s->kind]);
        if (s->offset % EDGEQ_ALIGN || s->offset < table_end || !in_bounds(s->offset, s->size, size))
            return eq_fail(diag, EDGEQ_E_SECTION_BOUNDS,
                           "%s section: offset %U size %U lies outside the blob (%U bytes) or is not 64-byte aligned",
                           SECTION_NAMES[s->kind], (unsigned long long)s->offset, (unsigned long long)s->size,
                           (unsigned long long)size);
        by_kind[s->kind] = s;
        for (j = i; j > 0 && sorted[j - 1]->offset > s->offset; j--) sorted[j] = sorted[j - 1];
        sorted[j] = s;
    }
    for (i = 1; i < h->n_sections; i++)
        if (sorted[i]->offset < sorted[i - 1]->offset + sorted[i - 1]->size)
            return eq_fail(diag, EDGEQ_E_SECTION_OVERLAP, "%s and %s sections overlap", SECTION_NAMES[sorted[i - 1]->kind],
                           SECTION_NAMES[sorted[i]->kind]);
    for (kind = EDGEQ_SECTION_STRINGS; kind <= EDGEQ_SECTION_DATA; kind++)
        if (!by_kind[kind]) return eq_fail(diag, EDGEQ_E_SECTION_MISSING, "missing %s section", SECTION_NAMES[kind]);
    if (!by_kind[EDGEQ_SECTION_SIGNATURE] != !(h->flags & EDGEQ_FLAG_SIGNED))
        return eq_fail(diag, EDGEQ_E_SIGNATURE, "header signed flag and signature section disagree");
    if (by_kind[EDGEQ_SECTION_SIGNATURE] &&
        by_kind[EDGEQ_SECTION_SIGNATURE]->offset + by_kind[EDGEQ_SECTION_SIGNATURE]->size != size)
        return eq_fail(diag, EDGEQ_E_SIGNATURE, "signature section must be the last bytes of the blob");
    return EDGEQ_OK;
}

#ifndef EDGEQ_SKIP_CRC
static edgeq_status_t check_crcs(const uint8_t *p, size_t size, const edgeq_section_t **by_kind, edgeq_diag_t *diag) {
    const edgeq_header_t *h = (const edgeq_header_t *)(const void *)p;
    const edgeq_section_t *sig = by_kind[EDGEQ_SECTION_SIGNATURE];
    uint32_t kind, crc;
    for (kind = EDGEQ_SECTION_STRINGS; kind <= EDGEQ_SECTION_SIGNATURE; kind++) {
        const edgeq_section_t *s = by_kind[kind];
        if (!s) continue; /* only the optional SIGNATURE can be absent here */
        crc = eq_crc32(0, p + s->offset, (size_t)s->size);
        if (crc != s->crc32)
            return eq_fail(diag, EDGEQ_E_SECTION_CRC, "%s section checksum mismatch (stored %x, computed %x)",
                           SECTION_NAMES[kind], (unsigned)s->crc32, (unsigned)crc);
    }
    crc = eq_crc32(0, p, CRC_AT);
    crc = eq_crc32_zeros(crc, 8);
    if (sig) { /* the signature's own bytes are not covered: they sign the rest */
        crc = eq_crc32(crc, p + CRC_AT + 8, (size_t)sig->offset - CRC_AT - 8);
        crc = eq_crc32_zeros(crc, (size_t)sig->size);
    } else {
        crc = eq_crc32(crc, p + CRC_AT + 8, size - CRC_AT - 8);
    }
    if (crc != h->file_crc)
        return eq_fail(diag, EDGEQ_E_FILE_CRC, "file checksum mismatch (stored %x, computed %x)", (unsigned)h->file_crc,
                       (unsigned)crc);
    return EDGEQ_OK;
}
#endif

int eq_kernel_format(int format) {
    switch (format) {
    case EDGEQ_FMT_T2: return EQ_F_T2;
    case EDGEQ_FMT_T158: return EQ_F_T158;
    case EDGEQ_FMT_B1: return EQ_F_B1;
    case EDGEQ_FMT_Q4: return EQ_F_Q4;
    case EDGEQ_FMT_I8: return EQ_F_I8;
    default: return -1;
    }
}

int eq_is_weight_format(int format) { return eq_kernel_format(format) >= 0; }

static size_t element_bytes(int format) {
    switch (format) {
    case EDGEQ_FMT_F32: case EDGEQ_FMT_I32: return 4;
    case EDGEQ_FMT_F16: return 2;
    case EDGEQ_FMT_I8: case EDGEQ_FMT_U8: return 1;
    default: return 0;
    }
}

static int known_format(int format) { return element_bytes(format) || eq_is_weight_format(format); }

static int block_allowed(int format, int block) {
    switch (format) {
    case EDGEQ_FMT_T2: return block == EDGEQ_T2_BLOCK;
    case EDGEQ_FMT_T158: return block == EDGEQ_T158_BLOCK;
    case EDGEQ_FMT_B1: return block == EDGEQ_B1_BLOCK;
    case EDGEQ_FMT_Q4: return block == 32 || block == 64 || block == 128;
    default: return block == EDGEQ_I8_BLOCK || block == EDGEQ_I8_SCALE_BLOCK;
    }
}

/* Scale kinds of packed weights: T2/T158 row or block, B1/I8 row, Q4 block. */
static int weight_scale_allowed(int format, int kind) {
    switch (format) {
    case EDGEQ_FMT_T2: case EDGEQ_FMT_T158: return kind == EDGEQ_SCALE_ROW || kind == EDGEQ_SCALE_BLOCK;
    case EDGEQ_FMT_Q4: return kind == EDGEQ_SCALE_BLOCK;
    case EDGEQ_FMT_B1: return kind == EDGEQ_SCALE_ROW;
    case EDGEQ_FMT_I8: return kind == EDGEQ_SCALE_ROW || kind == EDGEQ_SCALE_BLOCK;
    default: return 0;
    }
}

static size_t code_bytes(int format, int block) {
    switch (format) {
    case EDGEQ_FMT_T2: return EDGEQ_T2_CODE_BYTES;
    case EDGEQ_FMT_T158: return EDGEQ_T158_CODE_BYTES;
    case EDGEQ_FMT_B1: return EDGEQ_B1_CODE_BYTES;
    case EDGEQ_FMT_Q4: return (size_t)block / 2;
    default: return (size_t)block; /* I8: one byte a weight */
    }
}

size_t eq_features(const edgeq_tensor_t *t) {
    size_t n = 1;
    int d;
    for (d = 1; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

size_t eq_sample_bytes(const edgeq_tensor_t *t) {
    if (t->format == EDGEQ_FMT_B1) return (eq_features(t) + 63) / 64 * 8;
    return eq_features(t) * element_bytes(t->format);
}

const char *eq_tensor_name(const eq_blob_t *b, uint32_t t) { return b->strings + b->tensors[t].name; }

const void *eq_const_data(const eq_blob_t *b, uint32_t t) { return b->base + b->tensors[t].data_offset; }

uint64_t eq_stored_rows(const edgeq_tensor_t *t) {
    const uint64_t rows = (uint64_t)t->shape[0];
    return t->layout == EDGEQ_LAYOUT_ROWS4 ? (rows + EDGEQ_ROWS4_GROUP - 1) / EDGEQ_ROWS4_GROUP * EDGEQ_ROWS4_GROUP : rows;
}

void eq_weights(const eq_blob_t *b, uint32_t t, eq_weights_t *w) {
    const edgeq_tensor_t *r = &b->tensors[t];
    const uint8_t *payload = b->base + r->data_offset;
    w->format = eq_kernel_format(r->format);
    w->acc_kind = r->scale_kind == EDGEQ_SCALE_BLOCK ? EQ_ACC_BLOCK : EQ_ACC_ROW;
    w->block = r->block;
    w->rows = r->shape[0];
    w->cols = r->shape[1];
    w->n_blocks = (w->cols + w->block - 1) / w->block;
    w->padded_cols = w->n_blocks * w->block;
    w->row_bytes = (size_t)w->n_blocks * code_bytes(r->format, r->block);
    w->codes = payload;
    w->scales = payload + r->scales_at;
    w->zeros = r->zeros_at ? payload + r->zeros_at : NULL;
    w->layout = r->layout;
    w->packed = NULL;
}

/* A packed weight: codes, scales (and Q4 zero points) regions exactly as docs/formats.md. */
static edgeq_status_t check_weight(const uint8_t *p, const edgeq_tensor_t *t, uint32_t i, const char *name,
                                   edgeq_diag_t *diag) {
    uint64_t rows, nb, padded, codes, scales, end;
    if (t->ndim != 2)
        return eq_fail(diag, EDGEQ_E_SHAPE, "tensor %u (%s): weight formats are 2-D [rows, cols], got ndim %u", i, name,
                       (unsigned)t->ndim);
    if (!block_allowed(t->format, t->block) ||
        (t->format == EDGEQ_FMT_I8 && (t->block == EDGEQ_I8_SCALE_BLOCK) != (t->scale_kind == EDGEQ_SCALE_BLOCK)))
        return eq_fail(diag, EDGEQ_E_BLOCK, "tensor %u (%s): block %u not allowed for format %u", i, name,
                       (unsigned)t->block, (unsigned)t->format);
    if (t->layout == EDGEQ_LAYOUT_ROWS4 && t->format != EDGEQ_FMT_T2 && t->format != EDGEQ_FMT_Q4)
        return eq_fail(diag, EDGEQ_E_LAYOUT, "tensor %u (%s): layout rows4 is only defined for T2 and Q4 weights", i,
                       name);
    rows = (uint64_t)t->shape[0];
    nb = ((uint64_t)t->shape[1] + t->block - 1) / t->block;
    padded = eq_stored_rows(t);
    codes = padded * nb * code_bytes(t->format, t->block);
    scales = t->scale_kind == EDGEQ_SCALE_BLOCK ? padded * nb * 2 : rows * 4;
    if (t->scales_at % EDGEQ_ALIGN || t->scales_at < codes || t->scales_at > t->data_size)
        return eq_fail(diag, EDGEQ_E_REGIONS, "tensor %u (%s): scales at %U (codes end at %U) misplaced or misaligned", i,
                       name, (unsigned long long)t->scales_at, (unsigned long long)codes);
    end = t->scales_at + scales;
    if (t->zeros_at) {
        if (t->format != EDGEQ_FMT_Q4 || t->scale_kind != EDGEQ_SCALE_BLOCK)
            return eq_fail(diag, EDGEQ_E_REGIONS, "tensor %u (%s): zero points are only defined for Q4 block scales", i,
                           name);
        if (t->zeros_at % EDGEQ_ALIGN || t->zeros_at < end || t->zeros_at > t->data_size)
            return eq_fail(diag, EDGEQ_E_REGIONS, "tensor %u (%s): zero points at %U misplaced or misaligned", i, name,
                           (unsigned long long)t->zeros_at);
        end = t->zeros_at + padded * nb;
    }
    if (end != t->data_size)
        return eq_fail(diag, EDGEQ_E_PAYLOAD_SIZE, "tensor %u (%s): payload is %U bytes, its regions need exactly %U",
                       i, name, (unsigned long long)t->data_size, (unsigned long long)end);
    if (t->zeros_at) {
        const uint8_t *z = p + t->data_offset + t->zeros_at;
        uint64_t k;
        for (k = 0; k < padded * nb; k++)
            if (z[k] > 15)
                return eq_fail(diag, EDGEQ_E_ZERO_POINT, "tensor %u (%s): zero point %u is outside 0..15", i, name,
                               (unsigned)z[k]);
    }
    return EDGEQ_OK;
}

static edgeq_status_t check_tensor(const uint8_t *p, const eq_blob_t *b, const edgeq_section_t *data, uint32_t i,
                                   edgeq_diag_t *diag) {
    const edgeq_tensor_t *t = &b->tensors[i];
    const char *name;
    uint64_t count = 1;
    int d;
    if (t->name >= b->strings_size || !memchr(b->strings + t->name, 0, b->strings_size - t->name))
        return eq_fail(diag, EDGEQ_E_STRING, "tensor %u: name offset %u is outside the strings section or not NUL-terminated",
                       i, (unsigned)t->name);
    name = b->strings + t->name;
    if (!known_format(t->format))
        return eq_fail(diag, EDGEQ_E_FORMAT, "tensor %u (%s): unknown format id %u", i, name, (unsigned)t->format);
    if (t->layout != EDGEQ_LAYOUT_ROW_MAJOR && t->layout != EDGEQ_LAYOUT_ROWS4)
        return eq_fail(diag, EDGEQ_E_LAYOUT, "tensor %u (%s): unknown layout id %u", i, name, (unsigned)t->layout);
    if (t->layout != EDGEQ_LAYOUT_ROW_MAJOR && (t->scale_kind == EDGEQ_SCALE_NONE || !(t->flags & EDGEQ_TENSOR_CONST)))
        return eq_fail(diag, EDGEQ_E_LAYOUT, "tensor %u (%s): layout %u is only defined for packed weights", i, name,
                       (unsigned)t->layout);
    if (t->ndim > EDGEQ_MAX_DIMS)
        return eq_fail(diag, EDGEQ_E_SHAPE, "tensor %u (%s): ndim %u exceeds %u", i, name, (unsigned)t->ndim,
                       (unsigned)EDGEQ_MAX_DIMS);
    for (d = 0; d < t->ndim; d++) {
        if (t->shape[d] <= 0 || t->shape[d] > (1 << 30))
            return eq_fail(diag, EDGEQ_E_SHAPE, "tensor %u (%s): dimension %d is %d", i, name, d, (int)t->shape[d]);
        count *= (uint64_t)t->shape[d];
        if (count > EQ_MAX_BYTES)
            return eq_fail(diag, EDGEQ_E_SHAPE, "tensor %u (%s): more than 2^40 elements", i, name);
    }
    if (t->scale_kind != EDGEQ_SCALE_NONE &&
        (!(t->flags & EDGEQ_TENSOR_CONST) || !weight_scale_allowed(t->format, t->scale_kind)))
        return eq_fail(diag, EDGEQ_E_SCALE_KIND, "tensor %u (%s): scale kind %u not allowed for format %u%s", i, name,
                       (unsigned)t->scale_kind, (unsigned)t->format,
                       t->flags & EDGEQ_TENSOR_CONST ? "" : " (activations carry none)");
    if (t->scale_kind == EDGEQ_SCALE_NONE && !element_bytes(t->format) &&
        (t->format != EDGEQ_FMT_B1 || (t->flags & EDGEQ_TENSOR_CONST)))
        return eq_fail(diag, EDGEQ_E_SCALE_KIND, "tensor %u (%s): packed format %u needs a scale kind", i, name,
                       (unsigned)t->format);
    if ((t->flags & EDGEQ_TENSOR_STATE) && (t->flags & EDGEQ_TENSOR_CONST))
        return eq_fail(diag, EDGEQ_E_PAYLOAD_SIZE, "tensor %u (%s): a state tensor cannot be a constant", i, name);
    if (!(t->flags & EDGEQ_TENSOR_CONST)) {
        if (t->data_size)
            return eq_fail(diag, EDGEQ_E_PAYLOAD_SIZE, "tensor %u (%s): activation tensor has a payload", i, name);
        return EDGEQ_OK;
    }
    if (t->data_offset % EDGEQ_ALIGN || t->data_offset < data->offset ||
        !in_bounds(t->data_offset - data->offset, t->data_size, data->size))
        return eq_fail(diag, EDGEQ_E_PAYLOAD_BOUNDS,
                       "tensor %u (%s): payload at %U size %U lies outside the data section [%U, %U) or is not 64-byte aligned",
                       i, name, (unsigned long long)t->data_offset, (unsigned long long)t->data_size,
                       (unsigned long long)data->offset, (unsigned long long)(data->offset + data->size));
    if (t->scale_kind != EDGEQ_SCALE_NONE) return check_weight(p, t, i, name, diag);
    if (t->data_size != count * element_bytes(t->format))
        return eq_fail(diag, EDGEQ_E_PAYLOAD_SIZE, "tensor %u (%s): payload is %U bytes, its shape needs %U", i, name,
                       (unsigned long long)t->data_size, (unsigned long long)(count * element_bytes(t->format)));
    return EDGEQ_OK;
}

/* Header, section table and checksums: every section located and intact, nothing inside parsed. */
static edgeq_status_t check_container(const uint8_t *p, size_t size, const edgeq_section_t **by_kind,
                                      edgeq_diag_t *diag) {
    edgeq_status_t st;
    if (!p) return eq_fail(diag, EDGEQ_E_ARG, "blob pointer is NULL");
    if ((uintptr_t)p % EDGEQ_ALIGN)
        return eq_fail(diag, EDGEQ_E_BLOB_ALIGN, "blob must start 64-byte aligned in memory (mmap it or copy it)");
    if ((st = check_header(p, size, diag)) != EDGEQ_OK) return st;
    if ((st = check_sections(p, size, by_kind, diag)) != EDGEQ_OK) return st;
#ifndef EDGEQ_SKIP_CRC
    if ((st = check_crcs(p, size, by_kind, diag)) != EDGEQ_OK) return st;
#endif
    return EDGEQ_OK;
}

edgeq_status_t edgeq_verify_signature(const void *blob, size_t size, const uint8_t public_key[32], edgeq_diag_t *diag) {
    const edgeq_section_t *by_kind[EDGEQ_SECTION_SIGNATURE + 1] = {0};
    edgeq_status_t st;
    if (!public_key) return eq_fail(diag, EDGEQ_E_ARG, "public key is NULL");
    if ((st = check_container((const uint8_t *)blob, size, by_kind, diag)) != EDGEQ_OK) return st;
    if ((st = eq_check_signature((const uint8_t *)blob, size, by_kind[EDGEQ_SECTION_SIGNATURE], public_key, 1, diag)) !=
        EDGEQ_OK)
        return st;
    if (diag) eq_fail(diag, EDGEQ_OK, "");
    return EDGEQ_OK;
}

edgeq_status_t eq_check_blob(const void *blob, size_t size, const uint8_t *public_key, int require_signature,
                             eq_blob_t *out, edgeq_diag_t *diag) {
    const uint8_t *p = (const uint8_t *)blob;
    const edgeq_section_t *by_kind[EDGEQ_SECTION_SIGNATURE + 1] = {0};
    const edgeq_section_t *s;
    edgeq_status_t st;
    uint32_t i;
    if ((st = check_container(p, size, by_kind, diag)) != EDGEQ_OK) return st;
    /* Before any tensor or op record is parsed: an untrusted blob is refused as early as possible. */
    if ((st = eq_check_signature(p, size, by_kind[EDGEQ_SECTION_SIGNATURE], public_key, require_signature, diag)) !=
        EDGEQ_OK)
        return st;
    out->base = p;
    out->size = size;
    s = by_kind[EDGEQ_SECTION_STRINGS];
    out->strings = (const char *)(p + s->offset);
    out->strings_size = (size_t)s->size;
    s = by_kind[EDGEQ_SECTION_METADATA];
    out->metadata = (const char *)(p + s->offset);
    out->metadata_size = (size_t)s->size;
    s = by_kind[EDGEQ_SECTION_TENSORS];
    if (s->size % sizeof(edgeq_tensor_t) || s->size / sizeof(edgeq_tensor_t) > 0x7FFFFFFF)
        return eq_fail(diag, EDGEQ_E_TENSOR_TABLE, "tensors section is %U bytes, not a whole number of %u-byte records",
                       (unsigned long long)s->size, (unsigned)sizeof(edgeq_tensor_t));
    out->tensors = (const edgeq_tensor_t *)(const void *)(p + s->offset);
    out->n_tensors = (uint32_t)(s->size / sizeof(edgeq_tensor_t));
    for (i = 0; i < out->n_tensors; i++)
        if ((st = check_tensor(p, out, by_kind[EDGEQ_SECTION_DATA], i, diag)) != EDGEQ_OK) return st;
    s = by_kind[EDGEQ_SECTION_GRAPH];
    if (s->size < sizeof(edgeq_graph_t) || (s->size - sizeof(edgeq_graph_t)) % sizeof(edgeq_op_t))
        return eq_fail(diag, EDGEQ_E_GRAPH_SECTION, "graph section is %U bytes: not a graph header plus whole %u-byte ops",
                       (unsigned long long)s->size, (unsigned)sizeof(edgeq_op_t));
    out->graph = (const edgeq_graph_t *)(const void *)(p + s->offset);
    out->ops = (const edgeq_op_t *)(const void *)(p + s->offset + sizeof(edgeq_graph_t));
    if ((s->size - sizeof(edgeq_graph_t)) / sizeof(edgeq_op_t) != out->graph->n_ops)
        return eq_fail(diag, EDGEQ_E_GRAPH_SECTION, "graph section: %u ops declared, %U present", (unsigned)out->graph->n_ops,
                       (unsigned long long)((s->size - sizeof(edgeq_graph_t)) / sizeof(edgeq_op_t)));
    out->n_ops = out->graph->n_ops;
    return EDGEQ_OK;
}
