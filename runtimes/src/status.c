/* Status names, descriptions and the one-line diagnostic formatter (the runtime has no printf). */
#include <stdarg.h>

#include "internal.h"

typedef struct {
    edgeq_status_t status;
    const char *name;
    const char *text;
} status_info_t;

static const status_info_t STATUSES[] = {
    {EDGEQ_OK, "EDGEQ_OK", "ok"},
    {EDGEQ_E_TRUNCATED, "EDGEQ_E_TRUNCATED", "blob truncated"},
    {EDGEQ_E_MAGIC, "EDGEQ_E_MAGIC", "not an edgeq blob"},
    {EDGEQ_E_VERSION_NEWER, "EDGEQ_E_VERSION_NEWER", "blob format version newer than this runtime"},
    {EDGEQ_E_VERSION, "EDGEQ_E_VERSION", "blob format version not supported"},
    {EDGEQ_E_HEADER_CRC, "EDGEQ_E_HEADER_CRC", "header checksum mismatch"},
    {EDGEQ_E_SECTION_TABLE, "EDGEQ_E_SECTION_TABLE", "bad section table"},
    {EDGEQ_E_SECTION_BOUNDS, "EDGEQ_E_SECTION_BOUNDS", "section outside the file or misaligned"},
    {EDGEQ_E_SECTION_OVERLAP, "EDGEQ_E_SECTION_OVERLAP", "sections overlap"},
    {EDGEQ_E_SECTION_MISSING, "EDGEQ_E_SECTION_MISSING", "required section missing"},
    {EDGEQ_E_SECTION_CRC, "EDGEQ_E_SECTION_CRC", "section checksum mismatch"},
    {EDGEQ_E_FILE_CRC, "EDGEQ_E_FILE_CRC", "file checksum mismatch"},
    {EDGEQ_E_SIGNATURE, "EDGEQ_E_SIGNATURE", "signature section inconsistent"},
    {EDGEQ_E_TENSOR_TABLE, "EDGEQ_E_TENSOR_TABLE", "bad tensor table"},
    {EDGEQ_E_STRING, "EDGEQ_E_STRING", "bad string reference"},
    {EDGEQ_E_FORMAT, "EDGEQ_E_FORMAT", "unknown tensor format"},
    {EDGEQ_E_LAYOUT, "EDGEQ_E_LAYOUT", "unknown tensor layout"},
    {EDGEQ_E_SCALE_KIND, "EDGEQ_E_SCALE_KIND", "scale kind not allowed for the format"},
    {EDGEQ_E_BLOCK, "EDGEQ_E_BLOCK", "block size not allowed for the format"},
    {EDGEQ_E_SHAPE, "EDGEQ_E_SHAPE", "bad tensor shape"},
    {EDGEQ_E_PAYLOAD_BOUNDS, "EDGEQ_E_PAYLOAD_BOUNDS", "tensor payload outside the data section"},
    {EDGEQ_E_PAYLOAD_SIZE, "EDGEQ_E_PAYLOAD_SIZE", "tensor payload size wrong"},
    {EDGEQ_E_REGIONS, "EDGEQ_E_REGIONS", "tensor payload regions misplaced"},
    {EDGEQ_E_ZERO_POINT, "EDGEQ_E_ZERO_POINT", "zero point out of range"},
    {EDGEQ_E_BLOB_ALIGN, "EDGEQ_E_BLOB_ALIGN", "blob not 64-byte aligned in memory"},
    {EDGEQ_E_UNSIGNED, "EDGEQ_E_UNSIGNED", "blob not signed, and a signature is required"},
    {EDGEQ_E_SIGNATURE_KEY, "EDGEQ_E_SIGNATURE_KEY", "blob signed by another key"},
    {EDGEQ_E_SIGNATURE_INVALID, "EDGEQ_E_SIGNATURE_INVALID", "signature does not verify (blob modified)"},
    {EDGEQ_E_GRAPH_SECTION, "EDGEQ_E_GRAPH_SECTION", "bad graph section"},
    {EDGEQ_E_GRAPH_IO, "EDGEQ_E_GRAPH_IO", "bad graph inputs or outputs"},
    {EDGEQ_E_OP, "EDGEQ_E_OP", "unknown op"},
    {EDGEQ_E_TENSOR_INDEX, "EDGEQ_E_TENSOR_INDEX", "tensor index out of range"},
    {EDGEQ_E_OPERANDS, "EDGEQ_E_OPERANDS", "wrong op operands"},
    {EDGEQ_E_USED_BEFORE_PRODUCED, "EDGEQ_E_USED_BEFORE_PRODUCED", "tensor used before it is produced"},
    {EDGEQ_E_PRODUCED_TWICE, "EDGEQ_E_PRODUCED_TWICE", "tensor produced twice"},
    {EDGEQ_E_OP_FORMAT, "EDGEQ_E_OP_FORMAT", "tensor format not accepted by the op"},
    {EDGEQ_E_OP_SHAPE, "EDGEQ_E_OP_SHAPE", "shape mismatch"},
    {EDGEQ_E_ATTR, "EDGEQ_E_ATTR", "op attribute out of range"},
    {EDGEQ_E_PARAM, "EDGEQ_E_PARAM", "quantization parameter out of range"},
    {EDGEQ_E_ARG, "EDGEQ_E_ARG", "bad argument"},
    {EDGEQ_E_ABI, "EDGEQ_E_ABI", "caller built against another ABI version"},
    {EDGEQ_E_ARENA_TOO_SMALL, "EDGEQ_E_ARENA_TOO_SMALL", "arena too small"},
    {EDGEQ_E_ARENA_ALIGN, "EDGEQ_E_ARENA_ALIGN", "arena not 64-byte aligned"},
    {EDGEQ_E_NO_MEMORY, "EDGEQ_E_NO_MEMORY", "out of memory"},
    {EDGEQ_E_TOO_LARGE, "EDGEQ_E_TOO_LARGE", "model too large"},
    {EDGEQ_E_BATCH, "EDGEQ_E_BATCH", "batch out of range"},
    {EDGEQ_E_TIER, "EDGEQ_E_TIER", "kernel tier not available"},
    {EDGEQ_E_THREADS, "EDGEQ_E_THREADS", "worker threads could not start"},
    {EDGEQ_E_NOT_FOUND, "EDGEQ_E_NOT_FOUND", "not found"},
};

static const status_info_t *find(edgeq_status_t status) {
    size_t i;
    for (i = 0; i < sizeof STATUSES / sizeof STATUSES[0]; i++)
        if (STATUSES[i].status == status) return &STATUSES[i];
    return NULL;
}

const char *edgeq_strerror(edgeq_status_t status) {
    const status_info_t *s = find(status);
    return s ? s->text : "unknown status";
}

const char *edgeq_status_name(edgeq_status_t status) {
    const status_info_t *s = find(status);
    return s ? s->name : "EDGEQ_E_UNKNOWN";
}

uint32_t edgeq_abi_version(void) { return EDGEQ_ABI_VERSION; }

typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

static void put(out_t *o, char c) {
    if (o->len + 1 < o->cap) o->buf[o->len++] = c;
}

static void put_str(out_t *o, const char *s) {
    while (s && *s) put(o, *s++);
}

static void put_unsigned(out_t *o, unsigned long long v, unsigned base) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n) put(o, digits[--n]);
}

edgeq_status_t eq_fail(edgeq_diag_t *diag, edgeq_status_t status, const char *fmt, ...) {
    va_list ap;
    out_t o;
    if (!diag) return status;
    diag->status = status;
    o.buf = diag->message;
    o.cap = sizeof diag->message;
    o.len = 0;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%' || !fmt[1]) {
            put(&o, *fmt);
            continue;
        }
        switch (*++fmt) {
        case 's': put_str(&o, va_arg(ap, const char *)); break;
        case 'u': put_unsigned(&o, va_arg(ap, unsigned), 10); break;
        case 'U': put_unsigned(&o, va_arg(ap, unsigned long long), 10); break;
        case 'x': put_unsigned(&o, va_arg(ap, unsigned), 16); break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) put(&o, '-');
            put_unsigned(&o, v < 0 ? 0ull - (unsigned long long)(long long)v : (unsigned long long)v, 10);
            break;
        }
        default: put(&o, *fmt); break;
        }
    }
    va_end(ap);
    o.buf[o.len] = 0;
    return status;
}
