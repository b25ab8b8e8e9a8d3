/*
 * The public API (edgeq.h): validate, plan, lay the model out at the start of its arena, run.
 * Arena = [model | tensor offsets | op scratch offsets | op ticks | op kernels | op packed weights |
 * weight offsets | thread pool | (64-aligned) activations and scratch | weights repacked at load for
 * lookup-table kernels | weights repacked at load to the layout the tier reads (repack.c)].
 */
#include <string.h>

#include "edgeq/edgeq_pal.h"
#include "internal.h"

#define MAX_THREADS 64
#define MAX_BATCH (1u << 20)

typedef struct {
    size_t offsets, scratch, ticks, kernels, packed, weight_offsets, pool, act, repacked, weights, total;
} state_layout_t;

static state_layout_t state_layout(const eq_blob_t *b, const eq_kernel_tier_t *tier, int threads, size_t act_bytes,
                                   size_t weight_bytes) {
    state_layout_t s = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    uint32_t k;
    s.offsets = eq_align64(sizeof(struct edgeq_model));
    s.scratch = s.offsets + (size_t)b->n_tensors * sizeof(size_t);
    s.ticks = s.scratch + (size_t)b->n_ops * sizeof(size_t);
    s.kernels = s.ticks + (size_t)b->n_ops * sizeof(uint64_t);
    s.packed = s.kernels + (size_t)b->n_ops * sizeof(const char *);
    s.weight_offsets = s.packed + (size_t)b->n_ops * sizeof(const void *);
    s.pool = eq_align64(s.weight_offsets + (size_t)b->n_tensors * sizeof(size_t));
    s.act = eq_align64(s.pool + eq_pool_bytes(threads));
    s.repacked = eq_align64(s.act + act_bytes);
    s.weights = s.repacked;
    for (k = 0; k < b->n_ops; k++) s.weights += eq_align64(eq_matmul_packed_bytes(b, &b->ops[k], tier));
    s.total = s.weights + weight_bytes;
    return s;
}

void edgeq_default_options(edgeq_options_t *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->abi_version = EDGEQ_ABI_VERSION;
#ifdef EDGEQ_DEFAULT_THREADS
    options->threads = EDGEQ_DEFAULT_THREADS;
#else
    options->threads = 1;
#endif
    options->max_batch = 1;
    options->tier = EDGEQ_TIER_AUTO;
}

/* Options, blob, graph, tier and plan: everything both edgeq_arena_size and edgeq_create need. */
static edgeq_status_t prepare(const void *blob, size_t size, const edgeq_options_t *in, edgeq_options_t *opt,
                              eq_blob_t *b, const eq_kernel_tier_t **tier, state_layout_t *layout,
                              edgeq_diag_t *diag) {
    eq_plan_t plan;
    size_t weight_bytes;
    edgeq_status_t st;
    if (in) {
        *opt = *in;
        if (opt->abi_version != EDGEQ_ABI_VERSION)
            return eq_fail(diag, EDGEQ_E_ABI, "options are from ABI version %u, this library is %u",
                           (unsigned)opt->abi_version, (unsigned)EDGEQ_ABI_VERSION);
    } else {
        edgeq_default_options(opt);
    }
    if (opt->threads == 0) opt->threads = 1;
    if (opt->max_batch == 0) opt->max_batch = 1;
    if (opt->threads > MAX_THREADS || opt->max_batch > MAX_BATCH || opt->tier > EDGEQ_TIER_NEON_I8MM)
        return eq_fail(diag, EDGEQ_E_ARG, "options: threads %u (1..%u), max_batch %u (1..%u), tier %u (0..6)",
                       (unsigned)opt->threads, (unsigned)MAX_THREADS, (unsigned)opt->max_batch, (unsigned)MAX_BATCH,
                       (unsigned)opt->tier);
    if (opt->require_signature > 1 || opt->has_public_key > 1)
        return eq_fail(diag, EDGEQ_E_ARG, "options: require_signature and has_public_key are 0 or 1");
    if ((st = eq_check_blob(blob, size, opt->has_public_key ? opt->public_key : NULL, (int)opt->require_signature, b,
                            diag)) != EDGEQ_OK)
        return st;
    if ((st = eq_check_graph(b, diag)) != EDGEQ_OK) return st;
    if ((st = eq_select_tier(opt->tier, tier, diag)) != EDGEQ_OK) return st;
    if ((st = eq_plan(b, opt->max_batch, *tier, NULL, NULL, &plan, diag)) != EDGEQ_OK) return st;
    weight_bytes = eq_repack_plan(b, *tier, NULL);
    if (weight_bytes > EQ_MAX_BYTES)
        return eq_fail(diag, EDGEQ_E_TOO_LARGE, "weights to repack for this CPU: %U bytes is too large",
                       (unsigned long long)weight_bytes);
    *layout = state_layout(b, *tier, (int)opt->threads, plan.bytes, weight_bytes);
    return EDGEQ_OK;
}

edgeq_status_t edgeq_arena_size(const void *blob, size_t blob_size, const edgeq_options_t *options, size_t *bytes,
                                edgeq_diag_t *diag) {
    edgeq_options_t opt;
    eq_blob_t b;
    const eq_kernel_tier_t *tier;
    state_layout_t layout = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    edgeq_status_t st;
    if (!bytes) return eq_fail(diag, EDGEQ_E_ARG, "bytes is NULL");
    if ((st = prepare(blob, blob_size, options, &opt, &b, &tier, &layout, diag)) != EDGEQ_OK) return st;
    *bytes = layout.total;
    if (diag) eq_fail(diag, EDGEQ_OK, "");
    return EDGEQ_OK;
}

edgeq_status_t edgeq_create(const void *blob, size_t blob_size, const edgeq_options_t *options, void *arena,
                            size_t arena_bytes, edgeq_model_t **model, edgeq_diag_t *diag) {
    edgeq_options_t opt;
    eq_blob_t b;
    const eq_kernel_tier_t *tier;
    state_layout_t s = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    edgeq_model_t *m;
    eq_plan_t plan;
    void *allocation = NULL;
    uint8_t *base, *repacked;
    uint32_t k;
    edgeq_status_t st;
    if (!model) return eq_fail(diag, EDGEQ_E_ARG, "model is NULL");
    *model = NULL;
    if ((st = prepare(blob, blob_size, options, &opt, &b, &tier, &s, diag)) != EDGEQ_OK) return st;
    if (!arena) {
        arena = allocation = edgeq_pal_alloc(s.total, 64);
        arena_bytes = s.total;
        if (!arena) return eq_fail(diag, EDGEQ_E_NO_MEMORY, "cannot allocate the %U-byte arena", (unsigned long long)s.total);
    }
    if ((uintptr_t)arena % 64) return eq_fail(diag, EDGEQ_E_ARENA_ALIGN, "arena must be 64-byte aligned");
    if (arena_bytes < s.total)
        return eq_fail(diag, EDGEQ_E_ARENA_TOO_SMALL, "arena too small: %U bytes given, the model needs %U",
                       (unsigned long long)arena_bytes, (unsigned long long)s.total);
    base = (uint8_t *)arena;
    memset(base, 0, s.act);
    m = (edgeq_model_t *)arena;
    m->blob = b;
    m->options = opt;
    m->tier = tier;
    m->tensor_offset = (size_t *)(void *)(base + s.offsets);
    m->op_scratch = (size_t *)(void *)(base + s.scratch);
    m->op_ticks = (uint64_t *)(void *)(base + s.ticks);
    m->op_kernel = (const char **)(void *)(base + s.kernels);
    m->op_packed = (const void **)(void *)(base + s.packed);
    m->pool = (eq_pool_t *)(void *)(base + s.pool);
    m->act = base + s.act;
    m->weight_offset = (size_t *)(void *)(base + s.weight_offsets);
    m->weights = base + s.weights;
    m->state_bytes = s.act;
    m->act_bytes = s.repacked - s.act;
    m->arena_bytes = s.total;
    m->allocation = allocation;
    eq_plan(&b, opt.max_batch, tier, m->tensor_offset, m->op_scratch, &plan, NULL);
    eq_repack_plan(&b, tier, m->weight_offset); /* first: the lookup-table packing reads the repacked copy */
    eq_repack(&b, m->weight_offset, m->weights);
    for (k = 0, repacked = base + s.repacked; k < b.n_ops; k++) { /* lookup-table weights: once, at load */
        size_t bytes = eq_matmul_packed_bytes(&b, &b.ops[k], tier);
        if (!bytes) continue;
        m->op_packed[k] = eq_matmul_pack(m, &b.ops[k], repacked) ? repacked : NULL;
        repacked += eq_align64(bytes);
    }
    if ((st = eq_pool_start(m->pool, (int)opt.threads)) != EDGEQ_OK) {
        edgeq_pal_free(allocation);
        return eq_fail(diag, st, "cannot start %u worker threads", (unsigned)opt.threads - 1);
    }
    *model = m;
    if (diag) eq_fail(diag, EDGEQ_OK, "");
    return EDGEQ_OK;
}

void edgeq_destroy(edgeq_model_t *model) {
    if (!model) return;
    eq_pool_stop(model->pool);
    if (model->allocation) edgeq_pal_free(model->allocation);
}

edgeq_status_t edgeq_memory(const edgeq_model_t *m, edgeq_memory_t *memory) {
    if (!m || !memory) return EDGEQ_E_ARG;
    memory->arena_bytes = m->arena_bytes;
    memory->state_bytes = m->state_bytes;
    memory->activation_bytes = m->act_bytes;
    return EDGEQ_OK;
}

const char *edgeq_kernel_tier(const edgeq_model_t *m) { return m ? m->tier->name : ""; }
uint32_t edgeq_num_inputs(const edgeq_model_t *m) { return m ? m->blob.graph->n_inputs : 0; }
uint32_t edgeq_num_outputs(const edgeq_model_t *m) { return m ? m->blob.graph->n_outputs : 0; }
uint32_t edgeq_num_layers(const edgeq_model_t *m) { return m ? m->blob.n_ops : 0; }
const char *edgeq_last_error(const edgeq_model_t *m) { return m ? m->error.message : ""; }

static void fill_info(const edgeq_model_t *m, int32_t t, void *data, size_t bytes, edgeq_tensor_info_t *info) {
    const edgeq_tensor_t *r = &m->blob.tensors[t];
    int d;
    memset(info, 0, sizeof *info);
    info->name = eq_tensor_name(&m->blob, (uint32_t)t);
    info->index = t;
    info->format = r->format;
    info->ndim = r->ndim;
    for (d = 0; d < r->ndim; d++) info->shape[d] = r->shape[d];
    info->qscale = r->qscale;
    info->qzero = r->qzero;
    info->sample_bytes = bytes;
    info->data = data;
}

static edgeq_status_t io_info(const edgeq_model_t *m, uint32_t i, int output, edgeq_tensor_info_t *info) {
    const edgeq_graph_t *g;
    int32_t t;
    if (!m || !info) return EDGEQ_E_ARG;
    g = m->blob.graph;
    if (i >= (output ? g->n_outputs : g->n_inputs))
        return eq_fail((edgeq_diag_t *)&m->error, EDGEQ_E_ARG, "graph has no %s %u", output ? "output" : "input", i);
    t = output ? g->outputs[i] : g->inputs[i];
    fill_info(m, t, m->act + m->tensor_offset[t], eq_sample_bytes(&m->blob.tensors[t]), info);
    return EDGEQ_OK;
}

edgeq_status_t edgeq_input(const edgeq_model_t *m, uint32_t i, edgeq_tensor_info_t *info) { return io_info(m, i, 0, info); }
edgeq_status_t edgeq_output(const edgeq_model_t *m, uint32_t i, edgeq_tensor_info_t *info) { return io_info(m, i, 1, info); }

edgeq_status_t edgeq_run(edgeq_model_t *m, uint32_t batch) {
    uint32_t k;
    edgeq_status_t st;
    if (!m) return EDGEQ_E_ARG;
    m->error.status = EDGEQ_OK;
    m->error.message[0] = 0;
    if (batch < 1 || batch > m->options.max_batch)
        return eq_fail(&m->error, EDGEQ_E_BATCH, "batch %u outside 1..%u (options.max_batch)", batch,
                       (unsigned)m->options.max_batch);
    m->batch = batch;
    for (k = 0; k < m->blob.n_ops; k++) {
        uint64_t t0 = edgeq_pal_ticks();
        if ((st = eq_run_op(m, k)) != EDGEQ_OK) return st;
        m->op_ticks[k] = edgeq_pal_ticks() - t0;
    }
    return EDGEQ_OK;
}

edgeq_status_t edgeq_layer_profile(const edgeq_model_t *m, uint32_t layer, edgeq_layer_profile_t *p) {
    uint64_t tps = edgeq_pal_ticks_per_second(), t;
    if (!m || !p || layer >= m->blob.n_ops) return EDGEQ_E_ARG;
    t = m->op_ticks[layer];
    p->op_index = layer;
    p->op = m->blob.ops[layer].op;
    p->reserved = 0;
    p->op_name = eq_op_name(p->op);
    p->kernel = m->op_kernel[layer] ? m->op_kernel[layer] : "";
    p->ticks = t;
    p->ns = tps ? t / tps * 1000000000ull + t % tps * 1000000000ull / tps : 0;
    return EDGEQ_OK;
}

edgeq_status_t edgeq_test_tensor(const edgeq_model_t *m, uint32_t flag, int32_t test_index, edgeq_tensor_info_t *info) {
    uint32_t t;
    if (!m || !info) return EDGEQ_E_ARG;
    for (t = 0; t < m->blob.n_tensors; t++) {
        const edgeq_tensor_t *r = &m->blob.tensors[t];
        if ((r->flags & flag) && (r->flags & EDGEQ_TENSOR_CONST) && r->test_index == test_index) {
            fill_info(m, (int32_t)t, (void *)(uintptr_t)eq_const_data(&m->blob, t), (size_t)r->data_size, info);
            return EDGEQ_OK;
        }
    }
    return EDGEQ_E_NOT_FOUND;
}

const char *edgeq_metadata(const edgeq_model_t *m, size_t *bytes) {
    if (bytes) *bytes = m ? m->blob.metadata_size : 0;
    return m ? m->blob.metadata : "";
}
