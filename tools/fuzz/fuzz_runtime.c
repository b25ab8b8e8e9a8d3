/*
 * libFuzzer harness for the C runtime's loader and executor (docs/security.md, "Fuzzing").
 *
 * Each input is a whole blob. It is copied to a 64-byte aligned buffer (the runtime requires it, as
 * an mmap gives), sized with edgeq_arena_size, loaded with edgeq_create into a caller arena and, if
 * it loads, run on a batch of 1 or 2 samples of pseudo-random input bytes seeded from the blob, after which
 * every accessor is called -- with the reference kernels on one thread and with a SIMD tier on two,
 * whose outputs must equal the reference's bit for bit (a differential check of every kernel). The runtime is built with EDGEQ_SKIP_CRC (and no public key is
 * given, so no signature is checked): a mutation that would only fail a checksum reaches the parser.
 *
 * The custom mutator is structure-aware: half of the time it parses the section table of the input
 * and overwrites one field of one tensor record, graph header or op record with a boundary value
 * (0, 1, -1, powers of two, the int8 limits, another record's value), otherwise libFuzzer's own
 * byte-level mutators run; when those change the length, the header's file_size is mostly updated
 * to match so that the mutant gets past the first check.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeq/edgeq.h"
#include "edgeq/edgeq_blob.h"

#define MAX_BLOB (4u << 20)
#define MAX_BATCH 2 /* runs of 1 or 2 samples: the matrix-vector and the batched (GEMM) kernels */
/* Models whose arena exceeds this are not created or run (edgeq_arena_size has validated and planned
 * them in full): 1 MB is 16x the largest seed's arena, and a mutant that grows an activation to
 * hundreds of MB would spend the campaign in memset and kernels instead of in new code paths. */
#define MAX_ARENA (1u << 20)

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static uint8_t blob[MAX_BLOB] __attribute__((aligned(64)));
volatile unsigned fuzz_sink; /* keeps the reads of results from being optimised away */

/* xorshift: deterministic bytes for the "random" run, seeded from the input. */
static uint32_t next_random(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void fill_inputs(edgeq_model_t *m, uint32_t batch, uint32_t seed) {
    uint32_t i;
    for (i = 0; i < edgeq_num_inputs(m); i++) {
        edgeq_tensor_info_t info;
        size_t k;
        if (edgeq_input(m, i, &info) != EDGEQ_OK) abort();
        for (k = 0; k < batch * info.sample_bytes; k++) ((uint8_t *)info.data)[k] = (uint8_t)next_random(&seed);
    }
}

/* Reads every byte an application would: outputs, profiles, bundled test tensors, metadata. */
static unsigned touch_results(const edgeq_model_t *m) {
    unsigned sum = 0;
    uint32_t i, flag;
    size_t k, bytes = 0;
    const char *meta = edgeq_metadata(m, &bytes);
    for (k = 0; k < bytes; k++) sum += (unsigned char)meta[k];
    for (i = 0; i < edgeq_num_outputs(m); i++) {
        edgeq_tensor_info_t info;
        if (edgeq_output(m, i, &info) != EDGEQ_OK) abort();
        for (k = 0; k < info.sample_bytes; k++) sum += ((const uint8_t *)info.data)[k];
        sum += (unsigned)strlen(info.name);
    }
    for (i = 0; i < edgeq_num_layers(m); i++) {
        edgeq_layer_profile_t p;
        if (edgeq_layer_profile(m, i, &p) != EDGEQ_OK) abort();
        sum += (unsigned)strlen(p.op_name) + (unsigned)strlen(p.kernel);
    }
    for (flag = EDGEQ_TENSOR_TEST_INPUT; flag <= EDGEQ_TENSOR_TEST_LABEL; flag <<= 1) {
        edgeq_tensor_info_t info;
        if (edgeq_test_tensor(m, flag, 0, &info) != EDGEQ_OK) continue;
        for (k = 0; k < info.sample_bytes; k++) sum += ((const uint8_t *)info.data)[k];
    }
    return sum + (unsigned)strlen(edgeq_last_error(m));
}

/* Loads the blob with one kernel tier into a fresh arena; NULL if the blob is refused (with a
 * message) or its arena is over MAX_ARENA. Aborts if edgeq_create disagrees with edgeq_arena_size. */
static edgeq_model_t *load(size_t size, uint32_t tier, void **arena) {
    edgeq_options_t options;
    edgeq_diag_t diag;
    edgeq_model_t *model = NULL;
    size_t arena_bytes = 0;
    edgeq_status_t st;
    edgeq_default_options(&options);
    options.tier = tier;
    options.max_batch = MAX_BATCH;
    options.threads = tier == EDGEQ_TIER_REF ? 1 : 2; /* the SIMD run also splits each layer over 2 threads */
    st = edgeq_arena_size(blob, size, &options, &arena_bytes, &diag);
    if (st != EDGEQ_OK) {
        if (diag.status != st || !memchr(diag.message, 0, sizeof diag.message) || !diag.message[0]) abort();
        return NULL;
    }
    if (arena_bytes > MAX_ARENA) return NULL;
    *arena = aligned_alloc(64, (arena_bytes + 63) / 64 * 64);
    if (!*arena) abort();
    if (edgeq_create(blob, size, &options, *arena, arena_bytes, &model, &diag) != EDGEQ_OK) abort();
    return model;
}

/* Output bytes of the last run, back to back, into out (at most OUT_MAX); returns the count. Every
 * F32 NaN is written as one canonical NaN: which NaN an operation on NaN or Inf (from a mutated scale)
 * yields differs between scalar and SIMD code and is not part of bit-exactness. */
#define OUT_MAX (1u << 20)
static size_t outputs(const edgeq_model_t *m, uint32_t batch, uint8_t *out) {
    static const uint32_t canonical_nan = 0x7fc00000u;
    size_t n = 0;
    uint32_t i;
    for (i = 0; i < edgeq_num_outputs(m); i++) {
        edgeq_tensor_info_t info;
        size_t k = 0, bytes;
        if (edgeq_output(m, i, &info) != EDGEQ_OK) abort();
        bytes = batch * info.sample_bytes;
        if (bytes > OUT_MAX - n) bytes = OUT_MAX - n;
        memcpy(out + n, info.data, bytes);
        for (; info.format == EDGEQ_FMT_F32 && k + 4 <= bytes; k += 4) {
            float v;
            memcpy(&v, out + n + k, 4);
            if (v != v) memcpy(out + n + k, &canonical_nan, 4);
        }
        n += bytes;
    }
    return n;
}

static uint8_t ref_out[OUT_MAX], tier_out[OUT_MAX];

/* Every model that loads runs on the reference kernels (1 thread) and then on one SIMD tier (AVX2 or
 * AVX-VNNI, picked by the input's hash, if the CPU has it; 2 threads); the tier must reproduce the
 * reference bit for bit (docs/runtime.md). One tier per input rather than all: the reference kernels under ASan dominate
 * the time, and the campaign reaches both tiers over its inputs. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t ref_n = 0, k;
    uint32_t seed = 2463534242u, tiers[2] = {EDGEQ_TIER_REF, EDGEQ_TIER_AVX2}, t, batch;
    if (size > MAX_BLOB) return -1;
    memcpy(blob, data, size);
    for (k = 0; k < size && k < 64; k++) seed = seed * 31u + data[size - 1 - k];
    if (seed & 0x100) tiers[1] = EDGEQ_TIER_AVXVNNI;
    batch = 1 + ((seed >> 9) & 1);
    for (t = 0; t < 2; t++) {
        void *arena = NULL;
        edgeq_model_t *model = load(size, tiers[t], &arena);
        edgeq_status_t st;
        if (!model) {
            free(arena);
            return 0; /* refused, too large, or (SIMD tier) not on this CPU: EDGEQ_E_TIER */
        }
        fill_inputs(model, batch, seed | 1u);
        st = edgeq_run(model, batch);
        if (st != EDGEQ_OK && !edgeq_last_error(model)[0]) abort();
        if (st == EDGEQ_OK) {
            fuzz_sink = touch_results(model);
            if (t == 0) {
                ref_n = outputs(model, batch, ref_out);
            } else if (outputs(model, batch, tier_out) != ref_n || memcmp(tier_out, ref_out, ref_n)) {
                fprintf(stderr, "tier %s differs from the reference kernels\n", edgeq_kernel_tier(model));
                abort();
            }
        }
        if (edgeq_run(model, MAX_BATCH + 1) != EDGEQ_E_BATCH) abort(); /* above max_batch */
        edgeq_destroy(model);
        free(arena);
    }
    return 0;
}

/* ---- structure-aware mutation ------------------------------------------------------------- */

static const int64_t INTERESTING[] = {0, 1, 2, -1, -2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, -128,
                                      -129, 255, 256, 1 << 16, 1 << 30, (1 << 30) + 1, 0x7fffffff,
                                      -0x7fffffff - 1, 0xffffffffLL};

typedef struct {
    uint32_t at;    /* offset inside the record */
    uint8_t bytes;  /* field width */
} field_t;

#define FIELD(type, member, n) {(uint32_t)offsetof(type, member), n}
static const field_t TENSOR_FIELDS[] = {
    FIELD(edgeq_tensor_t, name, 4), FIELD(edgeq_tensor_t, format, 2), FIELD(edgeq_tensor_t, layout, 2),
    FIELD(edgeq_tensor_t, ndim, 1), FIELD(edgeq_tensor_t, scale_kind, 1), FIELD(edgeq_tensor_t, block, 2),
    FIELD(edgeq_tensor_t, flags, 4), FIELD(edgeq_tensor_t, shape[0], 4), FIELD(edgeq_tensor_t, shape[1], 4),
    FIELD(edgeq_tensor_t, shape[2], 4), FIELD(edgeq_tensor_t, shape[3], 4), FIELD(edgeq_tensor_t, data_offset, 8),
    FIELD(edgeq_tensor_t, data_size, 8), FIELD(edgeq_tensor_t, scales_at, 8), FIELD(edgeq_tensor_t, zeros_at, 8),
    FIELD(edgeq_tensor_t, qscale, 4), FIELD(edgeq_tensor_t, qzero, 4), FIELD(edgeq_tensor_t, test_index, 4)};
static const field_t GRAPH_FIELDS[] = {FIELD(edgeq_graph_t, n_ops, 4), FIELD(edgeq_graph_t, n_inputs, 4),
                                       FIELD(edgeq_graph_t, n_outputs, 4), FIELD(edgeq_graph_t, inputs[0], 4),
                                       FIELD(edgeq_graph_t, inputs[1], 4), FIELD(edgeq_graph_t, outputs[0], 4),
                                       FIELD(edgeq_graph_t, outputs[1], 4), FIELD(edgeq_graph_t, outputs[2], 4)};
static const field_t OP_FIELDS[] = {
    FIELD(edgeq_op_t, op, 2), FIELD(edgeq_op_t, n_inputs, 1), FIELD(edgeq_op_t, n_outputs, 1),
    FIELD(edgeq_op_t, inputs[0], 4), FIELD(edgeq_op_t, inputs[1], 4), FIELD(edgeq_op_t, inputs[2], 4),
    FIELD(edgeq_op_t, inputs[3], 4), FIELD(edgeq_op_t, inputs[4], 4), FIELD(edgeq_op_t, inputs[5], 4),
    FIELD(edgeq_op_t, outputs[0], 4), FIELD(edgeq_op_t, attrs[0], 4), FIELD(edgeq_op_t, attrs[1], 4),
    FIELD(edgeq_op_t, attrs[2], 4), FIELD(edgeq_op_t, attrs[3], 4), FIELD(edgeq_op_t, attrs[4], 4),
    FIELD(edgeq_op_t, attrs[5], 4), FIELD(edgeq_op_t, attrs[6], 4), FIELD(edgeq_op_t, attrs[7], 4),
    FIELD(edgeq_op_t, attrs[8], 4), FIELD(edgeq_op_t, attrs[9], 4), FIELD(edgeq_op_t, attrs[10], 4)};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Section `kind` of a blob whose table lies inside the input; 0 if absent or out of bounds. */
static int find_section(const uint8_t *data, size_t size, uint32_t kind, uint64_t *offset, uint64_t *bytes) {
    edgeq_header_t h;
    uint32_t i;
    if (size < sizeof h) return 0;
    memcpy(&h, data, sizeof h);
    for (i = 0; i < h.n_sections && i < 16 && sizeof h + (i + 1) * sizeof(edgeq_section_t) <= size; i++) {
        edgeq_section_t s;
        memcpy(&s, data + sizeof h + i * sizeof s, sizeof s);
        if (s.kind == kind && s.offset <= size && s.size <= size - s.offset) {
            *offset = s.offset;
            *bytes = s.size;
            return 1;
        }
    }
    return 0;
}

static void put_field(uint8_t *p, const field_t *f, int64_t value) {
    uint64_t v = (uint64_t)value;
    memcpy(p + f->at, &v, f->bytes); /* little-endian host: the low bytes */
}

/* One field of one record of TENSORS or GRAPH set to a boundary value or to the same field of another record. */
static int mutate_record(uint8_t *data, size_t size, unsigned r) {
    uint64_t off, bytes;
    const field_t *fields, *f;
    size_t n_fields, rec_size, first, n_records;
    uint8_t *rec;
    if ((r & 1) && find_section(data, size, EDGEQ_SECTION_TENSORS, &off, &bytes)) {
        fields = TENSOR_FIELDS, n_fields = COUNT(TENSOR_FIELDS), rec_size = sizeof(edgeq_tensor_t), first = 0;
    } else if (find_section(data, size, EDGEQ_SECTION_GRAPH, &off, &bytes) && bytes >= sizeof(edgeq_graph_t)) {
        first = sizeof(edgeq_graph_t);
        if (bytes == first || (r & 2)) { /* the graph header itself */
            f = &GRAPH_FIELDS[(r >> 8) % COUNT(GRAPH_FIELDS)];
            put_field(data + off, f, INTERESTING[(r >> 16) % COUNT(INTERESTING)]);
            return 1;
        }
        fields = OP_FIELDS, n_fields = COUNT(OP_FIELDS), rec_size = sizeof(edgeq_op_t);
    } else {
        return 0;
    }
    n_records = (size_t)(bytes - first) / rec_size;
    if (!n_records) return 0;
    rec = data + off + first + ((r >> 2) % n_records) * rec_size;
    f = &fields[(r >> 8) % n_fields];
    if ((r >> 28) == 0) { /* copy the field from another record of the same table */
        const uint8_t *other = data + off + first + ((r >> 14) % n_records) * rec_size;
        memmove(rec + f->at, other + f->at, f->bytes);
    } else {
        put_field(rec, f, INTERESTING[(r >> 16) % COUNT(INTERESTING)]);
    }
    return 1;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint32_t s = seed | 1u;
    size_t n;
    if ((next_random(&s) & 1) && mutate_record(data, size, next_random(&s))) return size;
    n = LLVMFuzzerMutate(data, size, max_size);
    if (n != size && n >= sizeof(edgeq_header_t) && (next_random(&s) & 3)) {
        uint64_t file_size = n;
        memcpy(data + offsetof(edgeq_header_t, file_size), &file_size, sizeof file_size);
    }
    return n;
}
