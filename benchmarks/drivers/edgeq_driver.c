/* Times edgeq_run on one blob (batch-1 mat-vec incl. the graph's input quantize op). */
#include "bench_common.h"
#include <string.h>
#include "edgeq/edgeq.h"

static int body(void *ctx) { return edgeq_run((edgeq_model_t *)ctx) == EDGEQ_OK ? 0 : 1; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s BLOB\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *blob = aligned_alloc(64, ((size_t)size + 63) / 64 * 64);
    if (fread(blob, 1, (size_t)size, f) != (size_t)size) { fprintf(stderr, "short read\n"); return 2; }
    fclose(f);
    size_t ws = 0;
    edgeq_status_t st = edgeq_work_size(blob, (size_t)size, &ws);
    if (st != EDGEQ_OK) { fprintf(stderr, "work_size: %s\n", edgeq_strerror(st)); return 1; }
    void *work = aligned_alloc(64, (ws + 63) / 64 * 64);
    edgeq_model_t *m = NULL;
    st = edgeq_load(blob, (size_t)size, work, ws, &m);
    if (st != EDGEQ_OK) { fprintf(stderr, "load: %s\n", edgeq_strerror(st)); return 1; }
    size_t n = 0;
    float *x = edgeq_input(m, 0, &n);
    srand(1);
    for (size_t i = 0; i < n; i++) x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    st = edgeq_run(m);
    if (st != EDGEQ_OK) { fprintf(stderr, "run: %s %s\n", edgeq_strerror(st), edgeq_last_error(m)); return 1; }
    /* label: kernel of each op, as the runtime reports it (e.g. quantize:ref,linear:avx2) */
    static char label[512];
    size_t at = 0;
    const edgeq_layer_time_t *prof = edgeq_profile(m);
    for (int i = 0; prof && i < edgeq_num_ops(m) && at + 64 < sizeof label; i++)
        at += (size_t)snprintf(label + at, sizeof label - at, "%s%s", i ? "," : "", prof[i].kernel ? prof[i].kernel : "?");
    return bench_serve(body, m, label);
}
