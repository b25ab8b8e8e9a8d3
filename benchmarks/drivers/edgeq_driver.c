/* Times edgeq_run on one blob (mat-vec or small batch, incl. the graph's input quantize op).
 * usage: edgeq_driver BLOB [threads] [batch] [tier]   (tier: an EDGEQ_TIER_* number, default auto) */
#include "bench_common.h"
#include <string.h>
#include "edgeq/edgeq.h"

static uint32_t batch = 1;

static int body(void *ctx) { return edgeq_run((edgeq_model_t *)ctx, batch) == EDGEQ_OK ? 0 : 1; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s BLOB [threads] [batch] [tier]\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *blob = aligned_alloc(64, ((size_t)size + 63) / 64 * 64);
    if (fread(blob, 1, (size_t)size, f) != (size_t)size) { fprintf(stderr, "short read\n"); return 2; }
    fclose(f);
    edgeq_options_t o;
    edgeq_diag_t d;
    edgeq_default_options(&o);
    o.threads = argc > 2 ? (uint32_t)atoi(argv[2]) : 1;
    batch = argc > 3 ? (uint32_t)atoi(argv[3]) : 1;
    o.max_batch = batch;
    o.tier = argc > 4 ? (uint32_t)atoi(argv[4]) : EDGEQ_TIER_AUTO;
    edgeq_model_t *m = NULL;
    edgeq_status_t st = edgeq_create(blob, (size_t)size, &o, NULL, 0, &m, &d);
    if (st != EDGEQ_OK) { fprintf(stderr, "create: %s %s\n", edgeq_strerror(st), d.message); return 1; }
    edgeq_tensor_info_t info;
    if (edgeq_input(m, 0, &info) != EDGEQ_OK) { fprintf(stderr, "no input 0\n"); return 1; }
    float *x = (float *)info.data;
    size_t n = info.sample_bytes / sizeof(float) * batch;
    srand(1);
    for (size_t i = 0; i < n; i++) x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    st = edgeq_run(m, batch);
    if (st != EDGEQ_OK) { fprintf(stderr, "run: %s\n", edgeq_strerror(st)); return 1; }
    /* label: kernel of each op, as the runtime reports it (e.g. ref/quantize,avx2/t2_row_matvec) */
    static char label[512];
    size_t at = 0;
    for (uint32_t i = 0; i < edgeq_num_layers(m) && at + 64 < sizeof label; i++) {
        edgeq_layer_profile_t p;
        if (edgeq_layer_profile(m, i, &p) == EDGEQ_OK)
            at += (size_t)snprintf(label + at, sizeof label - at, "%s%s", i ? "," : "", p.kernel ? p.kernel : "?");
    }
    return bench_serve(body, m, label);
}
