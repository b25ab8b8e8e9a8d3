/*
 * Arena planner: every activation (and each op's scratch) is live from the op that writes it to
 * the last op that reads it; buffers whose lifetimes do not overlap share bytes. Placement is
 * greedy by size (largest first, lowest 64-aligned offset that fits), as TFLite Micro does.
 * The work list lives on the stack (EDGEQ_PLAN_MAX entries): planning allocates nothing.
 */
#include "internal.h"

typedef struct {
    int32_t id;      /* tensor index, or -1 - op index for an op's scratch */
    int32_t first, last;
    size_t bytes, offset;
} item_t;

typedef struct {
    item_t items[EDGEQ_PLAN_MAX];
    int32_t order[EDGEQ_PLAN_MAX];
    int32_t clash[EDGEQ_PLAN_MAX];
    int n;
} work_t;

static int find_or_add(work_t *w, int32_t id, int32_t at) {
    int i;
    for (i = 0; i < w->n; i++)
        if (w->items[i].id == id) {
            if (at < w->items[i].first) w->items[i].first = at;
            if (at > w->items[i].last) w->items[i].last = at;
            return i;
        }
    if (w->n == EDGEQ_PLAN_MAX) return -1;
    w->items[w->n].id = id;
    w->items[w->n].first = w->items[w->n].last = at;
    w->items[w->n].bytes = 0;
    return w->n++;
}

static int before(const item_t *a, const item_t *b) {
    if (a->bytes != b->bytes) return a->bytes > b->bytes;
    if (a->first != b->first) return a->first < b->first;
    return a->id < b->id;
}

/* Lowest offset where item i fits between already placed items that are live at the same time. */
static size_t place(work_t *w, int placed, const item_t *it) {
    int n = 0, k, j;
    size_t offset = 0;
    for (k = 0; k < placed; k++) {
        const item_t *o = &w->items[w->order[k]];
        if (o->first <= it->last && it->first <= o->last) {
            for (j = n; j > 0 && w->items[w->clash[j - 1]].offset > o->offset; j--) w->clash[j] = w->clash[j - 1];
            w->clash[j] = w->order[k];
            n++;
        }
    }
    for (k = 0; k < n; k++) {
        const item_t *o = &w->items[w->clash[k]];
        if (offset + it->bytes <= o->offset) break;
        if (o->offset + o->bytes > offset) offset = o->offset + o->bytes;
    }
    return offset;
}

edgeq_status_t eq_plan(const eq_blob_t *b, uint32_t max_batch, const eq_kernel_tier_t *tier, size_t *tensor_offset,
                       size_t *op_scratch, eq_plan_t *plan, edgeq_diag_t *diag) {
    work_t w;
    uint32_t k, i;
    int j, m;
    w.n = 0;
    for (i = 0; i < b->graph->n_inputs; i++)
        if (find_or_add(&w, b->graph->inputs[i], -1) < 0) goto too_many;
    for (k = 0; k < b->n_ops; k++) {
        const edgeq_op_t *op = &b->ops[k];
        for (i = 0; i < op->n_inputs; i++)
            if (op->inputs[i] >= 0 && !(b->tensors[op->inputs[i]].flags & EDGEQ_TENSOR_CONST) &&
                find_or_add(&w, op->inputs[i], (int32_t)k) < 0)
                goto too_many;
        for (i = 0; i < op->n_inputs; i++) /* state outlives every run: live from before the first op to after the last */
            if (op->inputs[i] >= 0 && (b->tensors[op->inputs[i]].flags & EDGEQ_TENSOR_STATE) &&
                (find_or_add(&w, op->inputs[i], -1) < 0 || find_or_add(&w, op->inputs[i], (int32_t)b->n_ops) < 0))
                goto too_many;
        if (find_or_add(&w, op->outputs[0], (int32_t)k) < 0) goto too_many;
    }
    for (i = 0; i < b->graph->n_outputs; i++)
        if (find_or_add(&w, b->graph->outputs[i], (int32_t)b->n_ops) < 0) goto too_many;
    for (j = 0; j < w.n; j++) {
        const edgeq_tensor_t *t = &b->tensors[w.items[j].id];
        size_t sample = eq_sample_bytes(t);
        uint32_t copies = t->flags & EDGEQ_TENSOR_STATE ? (uint32_t)t->shape[0] : max_batch; /* state: no batch axis */
        if (sample > EQ_MAX_BYTES / copies)
            return eq_fail(diag, EDGEQ_E_TOO_LARGE, "tensor %s: %U bytes x %u is too large",
                           eq_tensor_name(b, (uint32_t)w.items[j].id), (unsigned long long)sample, copies);
        w.items[j].bytes = eq_align64(sample * copies);
    }
    for (k = 0; k < b->n_ops; k++) {
        size_t bytes = eq_op_scratch_bytes(b, &b->ops[k], max_batch, tier);
        if (op_scratch) op_scratch[k] = EQ_NONE;
        if (!bytes) continue;
        if ((m = find_or_add(&w, -1 - (int32_t)k, (int32_t)k)) < 0) goto too_many;
        w.items[m].bytes = eq_align64(bytes);
    }
    for (j = 0; j < w.n; j++) { /* insertion sort, largest first */
        for (m = j; m > 0 && before(&w.items[j], &w.items[w.order[m - 1]]); m--) w.order[m] = w.order[m - 1];
        w.order[m] = j;
    }
    plan->bytes = 0;
    if (tensor_offset)
        for (i = 0; i < b->n_tensors; i++) tensor_offset[i] = EQ_NONE;
    for (j = 0; j < w.n; j++) {
        item_t *it = &w.items[w.order[j]];
        it->offset = place(&w, j, it);
        if (it->offset + it->bytes > plan->bytes) plan->bytes = it->offset + it->bytes;
        if (it->id >= 0 && tensor_offset) tensor_offset[it->id] = it->offset;
        if (it->id < 0 && op_scratch) op_scratch[-1 - it->id] = it->offset;
    }
    return EDGEQ_OK;
too_many:
    return eq_fail(diag, EDGEQ_E_TOO_LARGE, "more than %u activations and scratch buffers: rebuild with a larger "
                   "EDGEQ_PLAN_MAX", (unsigned)EDGEQ_PLAN_MAX);
}
