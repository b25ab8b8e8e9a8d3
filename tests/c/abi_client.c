/*
 * An app as the stable ABI sees it: includes nothing of edgeq but edgeq.h and links libedgeq.so.
 * tests/test_android_lib.py runs it on the freestanding aarch64 library under qemu-aarch64.
 *
 *   abi_client BLOB INPUT OUTDIR
 *
 * INPUT holds raw samples of graph input 0 back to back (the sample count is the batch). Writes
 * graph output k to OUTDIR/out<k>.bin (raw, batch samples back to back) and prints one summary line
 * per fact; on failure prints "error NAME CODE: strerror: message" and exits 2.
 */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeq/edgeq.h"

static void *read_file(const char *path, size_t *size) {
    void *buf = NULL;
    long n;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        posix_memalign(&buf, 64, (size_t)n) == 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = buf ? (size_t)n : 0;
    return buf;
}

static int fail(edgeq_status_t st, const char *message) {
    printf("error %s %d: %s: %s\n", edgeq_status_name(st), (int)st, edgeq_strerror(st), message);
    return 2;
}

int main(int argc, char **argv) {
    size_t blob_size, input_size, arena_bytes;
    void *blob, *input, *arena = NULL;
    edgeq_options_t opt;
    edgeq_diag_t diag;
    edgeq_model_t *model = NULL;
    edgeq_tensor_info_t in, out;
    edgeq_layer_profile_t prof;
    edgeq_memory_t mem;
    edgeq_status_t st;
    uint32_t batch, k;
    char path[4096];

    if (argc != 4) {
        fprintf(stderr, "usage: abi_client BLOB INPUT OUTDIR\n");
        return 64;
    }
    blob = read_file(argv[1], &blob_size);
    input = read_file(argv[2], &input_size);
    if (!blob || !input) {
        fprintf(stderr, "cannot read %s or %s\n", argv[1], argv[2]);
        return 64;
    }
    printf("abi %u header %u\n", (unsigned)edgeq_abi_version(), (unsigned)EDGEQ_ABI_VERSION);

    /* The sample size comes from the model: a one-sample plan first. */
    edgeq_default_options(&opt);
    if ((st = edgeq_arena_size(blob, blob_size, &opt, &arena_bytes, &diag)) != EDGEQ_OK)
        return fail(st, diag.message);
    if (posix_memalign(&arena, 64, arena_bytes) != 0) return 64;
    if ((st = edgeq_create(blob, blob_size, &opt, arena, arena_bytes, &model, &diag)) != EDGEQ_OK)
        return fail(st, diag.message);
    edgeq_input(model, 0, &in);
    edgeq_destroy(model);
    free(arena);
    batch = (uint32_t)(input_size / in.sample_bytes);
    if (batch == 0 || input_size % in.sample_bytes) return fail(EDGEQ_E_ARG, "input is not whole samples");

    /* Without an allocator hook (the freestanding library) the caller must bring the arena. */
    st = edgeq_create(blob, blob_size, NULL, NULL, 0, &model, &diag);
    printf("null-arena %s\n", edgeq_status_name(st));
    if (st == EDGEQ_OK) edgeq_destroy(model);

    opt.max_batch = batch;
    if ((st = edgeq_arena_size(blob, blob_size, &opt, &arena_bytes, &diag)) != EDGEQ_OK)
        return fail(st, diag.message);
    if (posix_memalign(&arena, 64, arena_bytes) != 0) return 64;
    if ((st = edgeq_create(blob, blob_size, &opt, arena, arena_bytes, &model, &diag)) != EDGEQ_OK)
        return fail(st, diag.message);
    edgeq_memory(model, &mem);
    printf("tier %s arena %zu inputs %u outputs %u layers %u batch %u\n", edgeq_kernel_tier(model),
           mem.arena_bytes, (unsigned)edgeq_num_inputs(model), (unsigned)edgeq_num_outputs(model),
           (unsigned)edgeq_num_layers(model), (unsigned)batch);

    edgeq_input(model, 0, &in);
    memcpy(in.data, input, input_size);
    if ((st = edgeq_run(model, batch)) != EDGEQ_OK) return fail(st, edgeq_last_error(model));
    if ((st = edgeq_run(model, batch + 1)) == EDGEQ_OK) return fail(st, "a batch over max_batch ran");
    printf("over-batch %s: %s\n", edgeq_status_name(st), edgeq_last_error(model));

    for (k = 0; k < edgeq_num_outputs(model); k++) {
        FILE *f;
        edgeq_output(model, k, &out);
        snprintf(path, sizeof path, "%s/out%u.bin", argv[3], (unsigned)k);
        if (!(f = fopen(path, "wb")) || fwrite(out.data, out.sample_bytes, batch, f) != batch) return 64;
        fclose(f);
        printf("output %u %s format %u bytes %zu\n", (unsigned)k, out.name, (unsigned)out.format,
               out.sample_bytes * batch);
    }
    for (k = 0; k < edgeq_num_layers(model); k++) {
        edgeq_layer_profile(model, k, &prof);
        printf("layer %u %s %s ticks %llu\n", (unsigned)k, prof.op_name, prof.kernel, (unsigned long long)prof.ticks);
    }
    edgeq_destroy(model);
    free(arena);
    free(input);

    /* Error strings through the ABI: the same blob with one byte of its data flipped. */
    ((unsigned char *)blob)[blob_size - 1] ^= 0x55;
    st = edgeq_arena_size(blob, blob_size, NULL, &arena_bytes, &diag);
    printf("corrupt %s: %s\n", edgeq_status_name(st), diag.message);
    free(blob);
    return 0;
}
