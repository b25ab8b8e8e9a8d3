/* Times ggml_mul_mat (mat-vec or N activation rows, graph compute, 1 thread by default) for one weight type.
 * usage: ggml_driver TYPE K M [threads] [N]   TYPE = tq2_0 | tq1_0 | q4_0 | q8_0
 * The f32 activation vector is quantized to the vec_dot type inside ggml_mul_mat (timed). */
#include "bench_common.h"
#include <string.h>
#include "ggml.h"
#include "ggml-cpu.h"

typedef struct {
    struct ggml_cgraph *gf;
    struct ggml_cplan plan;
    struct ggml_threadpool *tp;
} ctx_t;

static void wake(void *p) { ggml_threadpool_resume(((ctx_t *)p)->tp); }
static void park(void *p) { ggml_threadpool_pause(((ctx_t *)p)->tp); }

static int body(void *p) {
    ctx_t *c = (ctx_t *)p;
    return ggml_graph_compute(c->gf, &c->plan) == GGML_STATUS_SUCCESS ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s TYPE K M [threads] [N]\n", argv[0]); return 2; }
    enum ggml_type type;
    if (!strcmp(argv[1], "tq2_0")) type = GGML_TYPE_TQ2_0;
    else if (!strcmp(argv[1], "tq1_0")) type = GGML_TYPE_TQ1_0;
    else if (!strcmp(argv[1], "q4_0")) type = GGML_TYPE_Q4_0;
    else if (!strcmp(argv[1], "q8_0")) type = GGML_TYPE_Q8_0;
    else { fprintf(stderr, "unknown type %s\n", argv[1]); return 2; }
    int64_t K = atoll(argv[2]), M = atoll(argv[3]);
    int threads = argc > 4 ? atoi(argv[4]) : 1;
    int64_t N = argc > 5 ? atoll(argv[5]) : 1;
    ggml_cpu_init();
    size_t wbytes = ggml_row_size(type, K) * (size_t)M;
    struct ggml_init_params ip = {wbytes + (size_t)(K + M) * 4 * (size_t)N + 64u * 1024 * 1024, NULL, false};
    struct ggml_context *gctx = ggml_init(ip);
    struct ggml_tensor *W = ggml_new_tensor_2d(gctx, type, K, M);
    struct ggml_tensor *x = ggml_new_tensor_2d(gctx, GGML_TYPE_F32, K, N);
    /* random weights; ternary-valued for the TQ types, quantized in row chunks */
    srand(1);
    const int64_t chunk = 256;
    float *src = malloc(sizeof(float) * (size_t)(K * chunk));
    for (int64_t r = 0; r < M; r += chunk) {
        int64_t nr = M - r < chunk ? M - r : chunk;
        for (int64_t i = 0; i < nr * K; i++) {
            float u = (float)rand() / (float)RAND_MAX;
            src[i] = type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q8_0 ? u * 2.0f - 1.0f : (u < 0.33f ? -1.0f : (u < 0.66f ? 0.0f : 1.0f));
        }
        /* ggml_quantize_chunk reads src + start (start in elements): pass the chunk base minus start */
        ggml_quantize_chunk(type, src - r * K, W->data, r * K, nr, K, NULL);
    }
    free(src);
    float *xd = (float *)x->data;
    for (int64_t i = 0; i < K * N; i++) xd[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    struct ggml_tensor *y = ggml_mul_mat(gctx, W, x);
    ctx_t c;
    c.gf = ggml_new_graph(gctx);
    ggml_build_forward_expand(c.gf, y);
    struct ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
    tpp.poll = 0; /* workers sleep when idle, as edgeq's do: other contenders share these cores */
    struct ggml_threadpool *tp = ggml_threadpool_new(&tpp);
    c.tp = tp;
    c.plan = ggml_graph_plan(c.gf, threads, tp);
    c.plan.work_data = c.plan.work_size ? malloc(c.plan.work_size) : NULL;
    if (body(&c) != 0) { fprintf(stderr, "compute failed\n"); return 1; }
    park(&c);
    int rc = bench_serve_hooks(body, &c, NULL, wake, park);
    ggml_threadpool_free(tp);
    ggml_free(gctx);
    return rc;
}
