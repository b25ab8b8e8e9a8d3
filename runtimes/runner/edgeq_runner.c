/*
 * edgeq_runner: the program the device runner pushes to a board (docs/runtime.md). Maps a blob,
 * runs its bundled test inputs (outputs for the host's accuracy check) and/or raw input files,
 * then W warm-up and N timed runs, and prints one JSON object on stdout. Portable C99 + POSIX.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgeq/edgeq.h"
#include "edgeq/edgeq_blob.h"
#include "edgeq/edgeq_pal.h"

#define MAX_FILES 8
#define MAX_TEST_BATCH 64
#define MAX_PROMPT 65536

typedef struct {
    const char *blob, *inputs[MAX_FILES], *out_dir, *pubkey;
    int n_inputs, warmup, runs, threads, tier, batch, tests, require_signature;
    const char *prompt_ids;  /* --generate: comma-separated prompt token ids */
    int gen_tokens, chunk;
    edgeq_sampler_t sampler;
} args_t;

static void usage(void) {
    fprintf(stderr,
            "usage: edgeq_runner BLOB [--warmup W] [--runs N] [--threads T] [--tier auto|ref|avx2|avxvnni|neon|neon_dotprod|neon_i8mm]\n"
            "                        [--batch B] [--input FILE]... [--outputs DIR] [--no-tests]\n"
            "                        [--pubkey FILE] [--require-signature]\n"
            "       edgeq_runner BLOB --generate ID,ID,... [--tokens N] [--chunk C] [--temperature F] [--top-k K]\n"
            "                        [--top-p F] [--seed S] [--threads T] [--tier ...]   (decoder blobs, docs/llm.md)\n"
            "  --pubkey FILE: Ed25519 public key, 64 hex digits (edgeq keygen's .pub); a signed blob must verify\n"
            "  --require-signature: refuse an unsigned blob (needs --pubkey)\n");
}

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", (unsigned)(unsigned char)*s);
        else putchar(*s);
    }
    putchar('"');
}

/* The one error object: {"error": "...", "code": N, "status": "EDGEQ_E_..."}. */
static int fail(int code, const char *what, const char *detail) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    printf("{\"error\": ");
    json_string(msg);
    printf(", \"code\": %d, \"status\": \"%s\"}\n", code, edgeq_status_name((edgeq_status_t)code));
    return 2;
}

static int parse(int argc, char **argv, args_t *a) {
    int i;
    memset(a, 0, sizeof *a);
    a->warmup = 3;
    a->runs = 20;
    a->threads = 1;
    a->batch = 1;
    a->tests = 1;
    a->tier = EDGEQ_TIER_AUTO;
    a->gen_tokens = 32;
    a->chunk = 32;
    a->sampler.top_p = 1.0f;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (o[0] != '-') {
            if (a->blob) return 0;
            a->blob = o;
        } else if (!strcmp(o, "--no-tests")) {
            a->tests = 0;
        } else if (!strcmp(o, "--require-signature")) {
            a->require_signature = 1;
        } else if (!v) {
            return 0;
        } else {
            i++;
            if (!strcmp(o, "--warmup")) a->warmup = atoi(v);
            else if (!strcmp(o, "--runs")) a->runs = atoi(v);
            else if (!strcmp(o, "--threads")) a->threads = atoi(v);
            else if (!strcmp(o, "--batch")) a->batch = atoi(v);
            else if (!strcmp(o, "--outputs")) a->out_dir = v;
            else if (!strcmp(o, "--pubkey")) a->pubkey = v;
            else if (!strcmp(o, "--input") && a->n_inputs < MAX_FILES) a->inputs[a->n_inputs++] = v;
            else if (!strcmp(o, "--generate")) a->prompt_ids = v;
            else if (!strcmp(o, "--tokens")) a->gen_tokens = atoi(v);
            else if (!strcmp(o, "--chunk")) a->chunk = atoi(v);
            else if (!strcmp(o, "--temperature")) a->sampler.temperature = (float)atof(v);
            else if (!strcmp(o, "--top-k")) a->sampler.top_k = (uint32_t)strtoul(v, NULL, 10);
            else if (!strcmp(o, "--top-p")) a->sampler.top_p = (float)atof(v);
            else if (!strcmp(o, "--seed")) a->sampler.seed = strtoull(v, NULL, 10);
            else if (!strcmp(o, "--tier"))
                a->tier = !strcmp(v, "ref") ? EDGEQ_TIER_REF : !strcmp(v, "avx2") ? EDGEQ_TIER_AVX2
                        : !strcmp(v, "avxvnni") ? EDGEQ_TIER_AVXVNNI : !strcmp(v, "neon") ? EDGEQ_TIER_NEON
                        : !strcmp(v, "neon_dotprod") ? EDGEQ_TIER_NEON_DOTPROD
                        : !strcmp(v, "neon_i8mm")    ? EDGEQ_TIER_NEON_I8MM
                                                     : EDGEQ_TIER_AUTO;
            else return 0;
        }
    }
    return a->blob && a->runs >= 0 && a->warmup >= 0 && a->threads >= 1 && a->batch >= 1 && a->gen_tokens >= 0 &&
           a->chunk >= 1;
}

/* Reads a whole file; malloc'd (the runner, not the runtime, may allocate). */
static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return buf;
}

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A .pub file: 64 hex digits (surrounding whitespace allowed) -> 32 key bytes. 0 on success. */
static int read_public_key(const char *path, uint8_t key[32]) {
    size_t size = 0, i, n = 0;
    char *text = (char *)read_file(path, &size);
    int ok = text != NULL;
    for (i = 0; ok && i < size; i++) {
        int v = hex_value(text[i]);
        if (v < 0) {
            ok = text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t';
        } else if (n < 64) {
            key[n / 2] = (uint8_t)(n % 2 ? key[n / 2] | v : v << 4);
            n++;
        } else {
            ok = 0;
        }
    }
    free(text);
    return ok && n == 64 ? 0 : -1;
}

static void print_values(const edgeq_tensor_info_t *t, const void *data, size_t count) {
    size_t j;
    for (j = 0; j < count; j++) {
        if (t->format == EDGEQ_FMT_F32) printf("%s%.9g", j ? ", " : "", (double)((const float *)data)[j]);
        else if (t->format == EDGEQ_FMT_I8) printf("%s%d", j ? ", " : "", ((const signed char *)data)[j]);
        else printf("%s%u", j ? ", " : "", ((const unsigned char *)data)[j]);
    }
}

static size_t value_count(const edgeq_tensor_info_t *t) {
    return t->format == EDGEQ_FMT_F32 || t->format == EDGEQ_FMT_I32 ? t->sample_bytes / 4 : t->sample_bytes;
}

/* Bundled test inputs (input 0 .. n-1 with the same sample count), in chunks of max_batch; prints
 * "outputs": graph output 0, one list per sample. Returns the number of samples (0 if none). */
static int run_tests(edgeq_model_t *m, uint32_t max_batch) {
    edgeq_tensor_info_t test[8], in, out;
    uint32_t i, s, samples = 0;
    for (i = 0; i < edgeq_num_inputs(m); i++) {
        if (edgeq_test_tensor(m, EDGEQ_TENSOR_TEST_INPUT, (int32_t)i, &test[i]) != EDGEQ_OK) return 0;
        edgeq_input(m, i, &in);
        if (test[i].format != in.format || test[i].sample_bytes % in.sample_bytes) return 0;
        if (i && test[i].sample_bytes / in.sample_bytes != samples) return 0;
        samples = (uint32_t)(test[i].sample_bytes / in.sample_bytes);
    }
    if (!samples) return 0;
    edgeq_output(m, 0, &out);
    printf(" \"outputs\": [");
    for (s = 0; s < samples; s += max_batch) {
        uint32_t n = samples - s < max_batch ? samples - s : max_batch, j;
        for (i = 0; i < edgeq_num_inputs(m); i++) {
            edgeq_input(m, i, &in);
            memcpy(in.data, (const char *)test[i].data + s * in.sample_bytes, n * in.sample_bytes);
        }
        if (edgeq_run(m, n) != EDGEQ_OK) return -1;
        for (j = 0; j < n; j++) {
            printf("%s[", s + j ? ",\n  " : "");
            print_values(&out, (const char *)out.data + j * out.sample_bytes, value_count(&out));
            printf("]");
        }
    }
    printf("],\n");
    return (int)samples;
}

/* Inputs of a timed run: the first `batch` bundled test samples, else zeros. Refilled before every run:
 * the planner reuses an input's bytes once its last reader ran, and token ids must stay valid. */
static void prime_inputs(edgeq_model_t *m, uint32_t batch) {
    edgeq_tensor_info_t test, in;
    uint32_t i;
    for (i = 0; i < edgeq_num_inputs(m); i++) {
        edgeq_input(m, i, &in);
        if (edgeq_test_tensor(m, EDGEQ_TENSOR_TEST_INPUT, (int32_t)i, &test) == EDGEQ_OK && test.format == in.format &&
            test.sample_bytes >= batch * in.sample_bytes)
            memcpy(in.data, test.data, batch * in.sample_bytes);
        else
            memset(in.data, 0, batch * in.sample_bytes);
    }
}

/* Raw input files -> one run of the batch they hold; outputs written to DIR/out<k>.bin if asked. */
static int run_files(edgeq_model_t *m, const args_t *a, uint32_t *batch) {
    edgeq_tensor_info_t in, out;
    uint32_t i, k;
    for (i = 0; i < (uint32_t)a->n_inputs; i++) {
        size_t size = 0;
        void *data = read_file(a->inputs[i], &size);
        if (!data || edgeq_input(m, i, &in) != EDGEQ_OK || size % in.sample_bytes || size == 0 ||
            size / in.sample_bytes > (size_t)a->batch) {
            free(data);
            return fail(EDGEQ_E_ARG, "bad input file (missing, not a whole number of samples, or more than --batch)",
                        a->inputs[i]);
        }
        memcpy(in.data, data, size);
        *batch = (uint32_t)(size / in.sample_bytes);
        free(data);
    }
    if (edgeq_run(m, *batch) != EDGEQ_OK) return fail(EDGEQ_E_ARG, "run failed", edgeq_last_error(m));
    printf(" \"input_run\": {\"batch\": %u, \"outputs\": [", *batch);
    for (k = 0; k < edgeq_num_outputs(m); k++) {
        edgeq_output(m, k, &out);
        printf("%s[", k ? ", " : "");
        print_values(&out, out.data, value_count(&out) * *batch);
        printf("]");
        if (a->out_dir) {
            char path[4096];
            FILE *f;
            snprintf(path, sizeof path, "%s/out%u.bin", a->out_dir, k);
            f = fopen(path, "wb");
            if (!f || fwrite(out.data, out.sample_bytes, *batch, f) != *batch) {
                if (f) fclose(f);
                return fail(EDGEQ_E_ARG, "cannot write", path);
            }
            fclose(f);
        }
    }
    printf("]},\n");
    return 0;
}

static uint64_t now_ns(void) { return edgeq_pal_ticks() * 1000000000ull / edgeq_pal_ticks_per_second(); }

/* Decoder blobs: the prompt in runs of up to `chunk` tokens, then one run per generated token, each
 * token sampled by edgeq_sample at its position. Prints "generate": tokens and the step times. */
static int generate(edgeq_model_t *m, const args_t *a) {
    static int32_t prompt[MAX_PROMPT];
    edgeq_tensor_info_t ids, pos, logits;
    const char *p = a->prompt_ids;
    uint32_t n = 0, done, vocab;
    uint64_t t0, prompt_ns;
    int i;
    int32_t next = 0;
    while (*p && n < MAX_PROMPT) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 0x7FFFFFFF) return fail(EDGEQ_E_ARG, "bad --generate token id list", a->prompt_ids);
        prompt[n++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return fail(EDGEQ_E_ARG, "bad --generate token id list", a->prompt_ids);
    }
    if (*p) return fail(EDGEQ_E_ARG, "the prompt has more than 65536 tokens", NULL);
    if (edgeq_num_inputs(m) != 2 || edgeq_num_outputs(m) != 1)
        return fail(EDGEQ_E_ARG, "not a decoder blob (inputs tokens, positions; output logits)", NULL);
    edgeq_input(m, 0, &ids);
    edgeq_input(m, 1, &pos);
    edgeq_output(m, 0, &logits);
    vocab = (uint32_t)(logits.sample_bytes / sizeof(float));
    if (n == 0) return fail(EDGEQ_E_ARG, "the prompt is empty", NULL);
    t0 = now_ns();
    for (done = 0; done < n;) {
        uint32_t c = n - done < (uint32_t)a->chunk ? n - done : (uint32_t)a->chunk, j;
        for (j = 0; j < c; j++) {
            ((int32_t *)ids.data)[j] = prompt[done + j];
            ((int32_t *)pos.data)[j] = (int32_t)(done + j);
        }
        if (edgeq_run(m, c) != EDGEQ_OK) return fail(EDGEQ_E_ARG, "prompt run failed", edgeq_last_error(m));
        done += c;
        if (done == n && edgeq_sample((const float *)logits.data + (size_t)(c - 1) * vocab, vocab, &a->sampler, n, &next) !=
                             EDGEQ_OK)
            return fail(EDGEQ_E_ARG, "bad sampler settings (top-p in (0, 1])", NULL);
    }
    prompt_ns = now_ns() - t0;
    printf(" \"generate\": {\"prompt_tokens\": %u, \"prompt_ns\": %llu, \"tokens\": [", n, (unsigned long long)prompt_ns);
    for (i = 0; i < a->gen_tokens; i++) {
        printf("%s%d", i ? ", " : "", (int)next);
        if (i + 1 == a->gen_tokens) break;
        ((int32_t *)ids.data)[0] = next;
        ((int32_t *)pos.data)[0] = (int32_t)(n + (uint32_t)i);
        if (edgeq_run(m, 1) != EDGEQ_OK) {
            printf("]},\n");
            return fail(EDGEQ_E_ARG, "decode run failed", edgeq_last_error(m));
        }
        edgeq_sample((const float *)logits.data, vocab, &a->sampler, n + (uint32_t)i + 1, &next);
    }
    printf("], \"decode_ns\": %llu, \"decode_steps\": %d},\n", (unsigned long long)(now_ns() - t0 - prompt_ns),
           a->gen_tokens > 0 ? a->gen_tokens - 1 : 0);
    return 0;
}

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

int main(int argc, char **argv) {
    args_t a;
    edgeq_options_t opt;
    edgeq_diag_t diag;
    edgeq_memory_t mem;
    edgeq_model_t *m = NULL;
    struct stat st;
    void *blob;
    uint64_t t0, load_ns, e0 = 0, e1 = 0, *layer_ns;
    uint32_t batch, k, layers, max_batch;
    int fd, i, have_energy, samples;
    if (!parse(argc, argv, &a)) {
        usage();
        return 64;
    }
    fd = open(a.blob, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) return fail(EDGEQ_E_ARG, "cannot open blob", a.blob);
    blob = mmap(NULL, st.st_size ? (size_t)st.st_size : 1, PROT_READ, MAP_PRIVATE, fd, 0);
    if (blob == MAP_FAILED) return fail(EDGEQ_E_ARG, "cannot map blob", a.blob);
    edgeq_default_options(&opt);
    if (a.pubkey) {
        if (read_public_key(a.pubkey, opt.public_key) != 0)
            return fail(EDGEQ_E_ARG, "cannot read the public key (expected 64 hex digits)", a.pubkey);
        opt.has_public_key = 1;
    }
    opt.require_signature = (uint32_t)a.require_signature;
    opt.threads = (uint32_t)a.threads;
    opt.tier = (uint32_t)a.tier;
    max_batch = a.prompt_ids ? (uint32_t)a.chunk : (uint32_t)a.batch > MAX_TEST_BATCH ? (uint32_t)a.batch : MAX_TEST_BATCH;
    opt.max_batch = max_batch;
    t0 = edgeq_pal_ticks();
    if (edgeq_create(blob, (size_t)st.st_size, &opt, NULL, 0, &m, &diag) != EDGEQ_OK) {
        return fail((int)diag.status, diag.message, NULL);
    }
    load_ns = (edgeq_pal_ticks() - t0) * 1000000000ull / edgeq_pal_ticks_per_second();
    edgeq_memory(m, &mem);
    printf("{\"runner\": 1, \"abi\": %u, \"kernel_tier\": \"%s\", \"threads\": %d, \"batch\": %d,\n", edgeq_abi_version(),
           edgeq_kernel_tier(m), a.threads, a.batch);
    printf(" \"arena_bytes\": %lu, \"work_bytes\": %lu, \"state_bytes\": %lu, \"blob_bytes\": %ld, \"load_ns\": %llu,\n",
           (unsigned long)mem.activation_bytes, (unsigned long)mem.arena_bytes, (unsigned long)mem.state_bytes,
           (long)st.st_size, (unsigned long long)load_ns);
    if (a.prompt_ids) {
        edgeq_layer_profile_t p;
        if ((i = generate(m, &a)) != 0) return i;
        printf(" \"layers\": [");
        for (k = 0; k < edgeq_num_layers(m); k++) { /* the last decode step's kernels */
            edgeq_layer_profile(m, k, &p);
            printf("%s\n  {\"index\": %u, \"op\": \"%s\", \"kernel\": \"%s\", \"ns\": %llu}", k ? "," : "", k,
                   p.op_name, p.kernel, (unsigned long long)p.ns);
        }
        printf("]}\n");
        edgeq_destroy(m);
        return 0;
    }
    samples = a.tests ? run_tests(m, max_batch) : 0;
    if (samples < 0) return fail(EDGEQ_E_ARG, "run failed", edgeq_last_error(m));
    printf(" \"tests\": %d,\n", samples);
    batch = (uint32_t)a.batch;
    if (a.n_inputs && (i = run_files(m, &a, &batch)) != 0) return i;
    layers = edgeq_num_layers(m);
    layer_ns = (uint64_t *)calloc((size_t)layers * (size_t)(a.runs ? a.runs : 1), sizeof(uint64_t));
    if (!layer_ns) return fail(EDGEQ_E_NO_MEMORY, "out of memory", "per-layer times");
    for (i = 0; i < a.warmup; i++) {
        if (!a.n_inputs) prime_inputs(m, batch);
        edgeq_run(m, batch);
    }
    have_energy = edgeq_pal_energy_uj(&e0) == 0;
    printf(" \"warmup\": %d, \"runs_ns\": [", a.warmup);
    for (i = 0; i < a.runs; i++) {
        uint64_t r0;
        edgeq_layer_profile_t p;
        if (!a.n_inputs) prime_inputs(m, batch);
        r0 = edgeq_pal_ticks();
        if (edgeq_run(m, batch) != EDGEQ_OK) return fail(EDGEQ_E_ARG, "run failed", edgeq_last_error(m));
        printf("%s%llu", i ? ", " : "",
               (unsigned long long)((edgeq_pal_ticks() - r0) * 1000000000ull / edgeq_pal_ticks_per_second()));
        for (k = 0; k < layers; k++) {
            edgeq_layer_profile(m, k, &p);
            layer_ns[(size_t)k * (size_t)a.runs + (size_t)i] = p.ns;
        }
    }
    have_energy = have_energy && edgeq_pal_energy_uj(&e1) == 0;
    printf("],\n");
    if (have_energy) printf(" \"energy_uj\": %llu,\n", (unsigned long long)(e1 - e0));
    printf(" \"layers\": [");
    for (k = 0; k < layers; k++) {
        edgeq_layer_profile_t p;
        uint64_t *row = layer_ns + (size_t)k * (size_t)a.runs;
        edgeq_layer_profile(m, k, &p);
        printf("%s\n  {\"index\": %u, \"op\": \"%s\", \"kernel\": \"%s\", \"runs_ns\": [", k ? "," : "", k, p.op_name,
               p.kernel);
        for (i = 0; i < a.runs; i++) printf("%s%llu", i ? ", " : "", (unsigned long long)row[i]);
        qsort(row, (size_t)a.runs, sizeof *row, cmp_u64);
        printf("], \"ns\": %llu}", (unsigned long long)(a.runs ? row[a.runs / 2] : p.ns));
    }
    printf("]}\n");
    free(layer_ns);
    edgeq_destroy(m);
    munmap(blob, st.st_size ? (size_t)st.st_size : 1);
    close(fd);
    return 0;
}
