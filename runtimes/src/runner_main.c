/*
 * edgeq_runner: the program the device runner pushes to a board. Maps a blob, runs its bundled
 * test inputs once each (outputs for the accuracy check), then W warm-up and N timed runs, and
 * prints one JSON object on stdout (docs/runtime.md). Portable C99 + POSIX, no dependencies.
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
#include "edgeq/edgeq_pal.h"

static const char *OP_NAMES[] = {"?", "linear", "conv2d", "dwconv2d", "maxpool2d", "avgpool2d", "relu",
                                 "add", "reshape", "softmax", "quantize", "dequantize", "binarize"};

static int die(const char *what, const char *detail) {
    printf("{\"error\": \"%s: %s\"}\n", what, detail);
    return 2;
}

int main(int argc, char **argv) {
    int warmup = 3, runs = 20, i, k, fd;
    struct stat st;
    void *blob, *work;
    size_t work_size, n_in, n_out, j;
    edgeq_model_t *m = NULL;
    edgeq_status_t s;
    uint64_t t0, load_ns;
    if (argc < 2) {
        fprintf(stderr, "usage: edgeq_runner BLOB [--warmup W] [--runs N]\n");
        return 2;
    }
    for (i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else return die("unknown option", argv[i]);
    }
    if (runs < 1 || warmup < 0) return die("bad option", "--runs must be >= 1, --warmup >= 0");
    fd = open(argv[1], O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) return die("cannot open blob", argv[1]);
    blob = mmap(NULL, (size_t)st.st_size ? (size_t)st.st_size : 1, PROT_READ, MAP_PRIVATE, fd, 0);
    if (blob == MAP_FAILED) return die("cannot map blob", argv[1]);
    t0 = edgeq_pal_now_ns();
    s = edgeq_work_size(blob, (size_t)st.st_size, &work_size);
    if (s != EDGEQ_OK) {
        printf("{\"error\": \"%s: %s\", \"code\": %d}\n", edgeq_strerror(s), edgeq_last_error(NULL), (int)s);
        return 2;
    }
    work = malloc(work_size); /* the runner's one allocation, before the runtime starts */
    if (!work) return die("out of memory", "work buffer");
    s = edgeq_load(blob, (size_t)st.st_size, work, work_size, &m);
    if (s != EDGEQ_OK) {
        printf("{\"error\": \"%s: %s\", \"code\": %d}\n", edgeq_strerror(s), edgeq_last_error(NULL), (int)s);
        return 2;
    }
    load_ns = edgeq_pal_now_ns() - t0;
    edgeq_input(m, 0, &n_in);
    edgeq_output(m, 0, &n_out);
    printf("{\"abi\": %d, \"arena_bytes\": %lu, \"work_bytes\": %lu, \"blob_bytes\": %ld, \"load_ns\": %llu,\n",
           EDGEQ_ABI_VERSION, (unsigned long)edgeq_arena_size(m), (unsigned long)work_size, (long)st.st_size,
           (unsigned long long)load_ns);
    printf(" \"outputs\": [");
    for (i = 0; i < edgeq_test_count(m); i++) {
        memcpy(edgeq_input(m, 0, NULL), edgeq_test_input(m, i), n_in * sizeof(float));
        edgeq_run(m);
        printf("%s[", i ? ",\n  " : "");
        for (j = 0; j < n_out; j++) printf("%s%.9g", j ? ", " : "", (double)edgeq_output(m, 0, NULL)[j]);
        printf("]");
    }
    printf("],\n \"runs_ns\": [");
    if (edgeq_test_count(m) > 0) memcpy(edgeq_input(m, 0, NULL), edgeq_test_input(m, 0), n_in * sizeof(float));
    for (i = 0; i < warmup; i++) edgeq_run(m);
    for (i = 0; i < runs; i++) {
        uint64_t r0 = edgeq_pal_now_ns();
        edgeq_run(m);
        printf("%s%llu", i ? ", " : "", (unsigned long long)(edgeq_pal_now_ns() - r0));
    }
    printf("],\n \"layers\": [");
    for (k = 0; k < edgeq_num_ops(m); k++) {
        const edgeq_layer_time_t *p = &edgeq_profile(m)[k];
        printf("%s{\"index\": %d, \"op\": \"%s\", \"kernel\": \"%s\", \"ns\": %llu}", k ? ", " : "", p->op_index,
               p->op < 13 ? OP_NAMES[p->op] : "?", p->kernel, (unsigned long long)p->ns);
    }
    printf("]}\n");
    free(work);
    return 0;
}
