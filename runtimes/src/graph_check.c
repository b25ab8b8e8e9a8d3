/*
 * Graph validation: tensor indices, execution order (nothing used before it is produced, nothing
 * produced twice), and per op the operand count, the formats it accepts, shape consistency,
 * attributes and requantization parameters -- so that the executor can trust every op it runs.
 * No memory: producers are found by scanning earlier ops (graphs are small; this runs once).
 */
#include <math.h>
#include <string.h>

#include "internal.h"

static const char *OP_NAMES[] = {"?", "linear", "conv2d", "dwconv2d", "maxpool2d", "avgpool2d", "relu",
                                 "add", "reshape", "softmax", "quantize", "dequantize", "binarize", "embed",
                                 "layernorm", "rmsnorm", "gelu", "relu2", "attention", "meanpool", "linear_dyn", "rope",
                                 "attention_kv", "swiglu"};

const char *eq_op_name(int op) { return op >= 1 && op <= EDGEQ_OP_SWIGLU ? OP_NAMES[op] : "?"; }

/* How many leading inputs are activations (the rest are constants). */
static int activation_inputs(int op) {
    if (op == EDGEQ_OP_ATTENTION || op == EDGEQ_OP_ATTENTION_KV) return 4;
    return op == EDGEQ_OP_ADD || op == EDGEQ_OP_MEANPOOL || op == EDGEQ_OP_ROPE || op == EDGEQ_OP_SWIGLU ? 2 : 1;
}

typedef struct {
    const eq_blob_t *b;
    uint32_t k;
    const edgeq_op_t *op;
    edgeq_diag_t *diag;
} op_ctx_t;

static int is_const(const eq_blob_t *b, int32_t t) { return (b->tensors[t].flags & EDGEQ_TENSOR_CONST) != 0; }
static int is_state(const eq_blob_t *b, int32_t t) { return (b->tensors[t].flags & EDGEQ_TENSOR_STATE) != 0; }

static int is_graph_input(const eq_blob_t *b, int32_t t) {
    uint32_t i;
    for (i = 0; i < b->graph->n_inputs; i++)
        if (b->graph->inputs[i] == t) return 1;
    return 0;
}

/* Index of the op before `before` that writes t, or -1. */
static int producer(const eq_blob_t *b, int32_t t, uint32_t before) {
    uint32_t j, o;
    for (j = 0; j < before; j++)
        for (o = 0; o < b->ops[j].n_outputs && o < EDGEQ_OP_MAX_OUTPUTS; o++)
            if (b->ops[j].outputs[o] == t) return (int)j;
    return -1;
}

static const edgeq_tensor_t *in(const op_ctx_t *c, int i) { return &c->b->tensors[c->op->inputs[i]]; }
static const edgeq_tensor_t *out(const op_ctx_t *c) { return &c->b->tensors[c->op->outputs[0]]; }

static edgeq_status_t bad_format(const op_ctx_t *c, const char *what, const edgeq_tensor_t *t, const char *expected) {
    return eq_fail(c->diag, EDGEQ_E_OP_FORMAT, "op %u (%s): %s %s has format %u, expected %s", c->k,
                   eq_op_name(c->op->op), what, c->b->strings + t->name, (unsigned)t->format, expected);
}

static edgeq_status_t bad_shape(const op_ctx_t *c, const char *why) {
    return eq_fail(c->diag, EDGEQ_E_OP_SHAPE, "op %u (%s): shape mismatch: %s", c->k, eq_op_name(c->op->op), why);
}

/* Same shape after the batch axis. */
static int same_sample_shape(const edgeq_tensor_t *a, const edgeq_tensor_t *b) {
    int d;
    if (a->ndim != b->ndim) return 0;
    for (d = 1; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

static int32_t count(const edgeq_tensor_t *t) {
    int32_t n = 1;
    int d;
    for (d = 0; d < t->ndim; d++) n = t->shape[d] > (1 << 30) / n ? (1 << 30) : n * t->shape[d];
    return n;
}

static int act_range_ok(const edgeq_op_t *op) {
    return op->attrs[EDGEQ_ATTR_ACT_MIN] >= -128 && op->attrs[EDGEQ_ATTR_ACT_MIN] <= op->attrs[EDGEQ_ATTR_ACT_MAX] &&
           op->attrs[EDGEQ_ATTR_ACT_MAX] <= 127;
}

static int shift_ok(int32_t s) { return s >= -31 && s <= 31; }

/* KH, KW, strides, pads sane and the window fits: output spatial size into *oh, *ow. */
static edgeq_status_t check_window(const op_ctx_t *c, const edgeq_tensor_t *x, int32_t *oh, int32_t *ow) {
    const int32_t *a = c->op->attrs;
    int i;
    for (i = EDGEQ_ATTR_KH; i <= EDGEQ_ATTR_PAD_RIGHT; i++) {
        int32_t lo = i < EDGEQ_ATTR_PAD_TOP ? 1 : 0;
        if (a[i] < lo || a[i] > (1 << 16))
            return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (%s): attribute %d is %d (kernel/stride >= 1, pads >= 0)", c->k,
                           eq_op_name(c->op->op), i, (int)a[i]);
    }
    if (x->shape[1] + a[EDGEQ_ATTR_PAD_TOP] + a[EDGEQ_ATTR_PAD_BOTTOM] < a[EDGEQ_ATTR_KH] ||
        x->shape[2] + a[EDGEQ_ATTR_PAD_LEFT] + a[EDGEQ_ATTR_PAD_RIGHT] < a[EDGEQ_ATTR_KW])
        return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (%s): %dx%d window larger than the padded %dx%d input", c->k,
                       eq_op_name(c->op->op), (int)a[EDGEQ_ATTR_KH], (int)a[EDGEQ_ATTR_KW], (int)x->shape[1],
                       (int)x->shape[2]);
    *oh = (x->shape[1] + a[EDGEQ_ATTR_PAD_TOP] + a[EDGEQ_ATTR_PAD_BOTTOM] - a[EDGEQ_ATTR_KH]) / a[EDGEQ_ATTR_STRIDE_H] + 1;
    *ow = (x->shape[2] + a[EDGEQ_ATTR_PAD_LEFT] + a[EDGEQ_ATTR_PAD_RIGHT] - a[EDGEQ_ATTR_KW]) / a[EDGEQ_ATTR_STRIDE_W] + 1;
    return EDGEQ_OK;
}

/* bias / requant multiplier / shift of LINEAR, CONV2D, DWCONV2D against the weight's M rows. */
static edgeq_status_t check_requant(const op_ctx_t *c, const edgeq_tensor_t *w, const edgeq_tensor_t *y) {
    const int row = w->scale_kind == EDGEQ_SCALE_ROW, f32_out = y->format == EDGEQ_FMT_F32;
    const int n_in = (row && !f32_out) ? 5 : 4;
    const int bias_fmt = row ? EDGEQ_FMT_I32 : EDGEQ_FMT_F32, mult_fmt = (row && !f32_out) ? EDGEQ_FMT_I32 : EDGEQ_FMT_F32;
    int i;
    if (c->op->n_inputs < n_in || (c->op->n_inputs > n_in && c->op->inputs[n_in] >= 0))
        return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): takes %d inputs (x, weight, bias, %s) for this weight and output",
                       c->k, eq_op_name(c->op->op), n_in, n_in == 5 ? "multiplier, shift" : "scale");
    for (i = 2; i < n_in; i++) {
        const edgeq_tensor_t *t;
        if (c->op->inputs[i] < 0 || !is_const(c->b, c->op->inputs[i]))
            return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): input %d must be a constant", c->k,
                           eq_op_name(c->op->op), i);
        t = in(c, i);
        if (t->format != (i == 2 ? bias_fmt : i == 3 ? mult_fmt : EDGEQ_FMT_I32))
            return bad_format(c, i == 2 ? "bias" : i == 3 ? "multiplier" : "shift", t,
                              (i == 2 ? bias_fmt : i == 3 ? mult_fmt : EDGEQ_FMT_I32) == EDGEQ_FMT_I32 ? "I32" : "F32");
        if (count(t) != w->shape[0]) return bad_shape(c, "bias/multiplier/shift need one value per weight row");
    }
    if (n_in == 5) {
        const int32_t *shift = (const int32_t *)eq_const_data(c->b, (uint32_t)c->op->inputs[4]);
        for (i = 0; i < w->shape[0]; i++)
            if (!shift_ok(shift[i]))
                return eq_fail(c->diag, EDGEQ_E_PARAM, "op %u (%s): requantization shift %d of row %d outside -31..31", c->k,
                               eq_op_name(c->op->op), (int)shift[i], i);
    }
    if (!f32_out && !act_range_ok(c->op))
        return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (%s): output clamp [%d, %d] outside int8", c->k,
                       eq_op_name(c->op->op), (int)c->op->attrs[0], (int)c->op->attrs[1]);
    return EDGEQ_OK;
}

static edgeq_status_t check_weighted(const op_ctx_t *c) {
    const edgeq_tensor_t *x = in(c, 0), *w, *y = out(c);
    int32_t oh = 1, ow = 1, rows, cols;
    edgeq_status_t st;
    if (c->op->n_inputs < 4 || c->op->inputs[1] < 0)
        return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): needs x, weight, bias and requantization inputs", c->k,
                       eq_op_name(c->op->op));
    w = in(c, 1);
    if (!is_const(c->b, c->op->inputs[1]) || w->scale_kind == EDGEQ_SCALE_NONE)
        return bad_format(c, "weight", w, "a packed weight (T2, T158, B1, Q4, I8 with scales)");
    rows = w->shape[0];
    cols = w->shape[1];
    if (y->format != EDGEQ_FMT_I8 && y->format != EDGEQ_FMT_F32) return bad_format(c, "output", y, "I8 or F32");
    if (c->op->op == EDGEQ_OP_LINEAR) {
        if (x->format != EDGEQ_FMT_I8 && x->format != EDGEQ_FMT_B1) return bad_format(c, "input", x, "I8 or B1");
        if (x->ndim != 2 || y->ndim != 2) return bad_shape(c, "linear input and output are [N, features]");
        if (x->shape[1] != cols) return bad_shape(c, "input features differ from the weight's columns");
        if (y->shape[1] != rows) return bad_shape(c, "output features differ from the weight's rows");
    } else {
        const int dw = c->op->op == EDGEQ_OP_DWCONV2D;
        if (x->format != EDGEQ_FMT_I8) return bad_format(c, "input", x, "I8");
        if (x->ndim != 4 || y->ndim != 4) return bad_shape(c, "convolution input and output are NHWC");
        if ((st = check_window(c, x, &oh, &ow)) != EDGEQ_OK) return st;
        if ((int64_t)cols != (int64_t)c->op->attrs[EDGEQ_ATTR_KH] * c->op->attrs[EDGEQ_ATTR_KW] * (dw ? 1 : x->shape[3]))
            return bad_shape(c, dw ? "weight columns differ from KH*KW" : "weight columns differ from KH*KW*Cin");
        if (dw && rows != x->shape[3]) return bad_shape(c, "depthwise weight rows differ from the channels");
        if (y->shape[1] != oh || y->shape[2] != ow || y->shape[3] != rows)
            return bad_shape(c, "output differs from [N, OH, OW, Cout] of the window");
    }
    return check_requant(c, w, y);
}

/* Input i is a constant of format fmt with `n` elements (n < 0: any count). */
static edgeq_status_t need_const(const op_ctx_t *c, int i, int fmt, int32_t n) {
    const edgeq_tensor_t *t;
    if (c->op->inputs[i] < 0 || !is_const(c->b, c->op->inputs[i]))
        return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): input %d must be a constant", c->k, eq_op_name(c->op->op), i);
    t = in(c, i);
    if (t->format != fmt) return bad_format(c, "constant", t, fmt == EDGEQ_FMT_F32 ? "F32" : "I32");
    if (n >= 0 && count(t) != n) return bad_shape(c, "a parameter vector differs from the feature count");
    return EDGEQ_OK;
}

static int same_shape_as(const edgeq_tensor_t *a, const edgeq_tensor_t *b) {
    return a->format == b->format && same_sample_shape(a, b);
}

/* LINEAR_DYN: x F32 [N,(T,)K] -> F32 [N,(T,)M]; weight and an F32 bias per weight row. */
static edgeq_status_t check_linear_dyn(const op_ctx_t *c) {
    const edgeq_tensor_t *x = in(c, 0), *y = out(c), *w;
    int d;
    if (c->op->n_inputs != 3 || c->op->inputs[1] < 0)
        return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (linear_dyn): takes 3 inputs (x, weight, bias)", c->k);
    w = in(c, 1);
    if (!is_const(c->b, c->op->inputs[1]) || w->scale_kind == EDGEQ_SCALE_NONE || w->format == EDGEQ_FMT_B1)
        return bad_format(c, "weight", w, "a packed weight (T2, T158, Q4, I8 with scales)");
    if (x->format != EDGEQ_FMT_F32 || y->format != EDGEQ_FMT_F32) return bad_format(c, "input/output", x, "F32");
    if (x->ndim < 2 || x->ndim > 3 || y->ndim != x->ndim) return bad_shape(c, "linear_dyn tensors are [N, (T,) features]");
    for (d = 1; d < x->ndim - 1; d++)
        if (x->shape[d] != y->shape[d]) return bad_shape(c, "input and output token counts differ");
    if (x->shape[x->ndim - 1] != w->shape[1]) return bad_shape(c, "input features differ from the weight's columns");
    if (y->shape[y->ndim - 1] != w->shape[0]) return bad_shape(c, "output features differ from the weight's rows");
    switch (c->op->attrs[EDGEQ_ATTR_ACT_QUANT]) {
    case EDGEQ_ACT_ABSMAX_ROW: break;
    case EDGEQ_ACT_GGML_Q8_K:
    case EDGEQ_ACT_GGML_Q8_0: {
        const int block = c->op->attrs[EDGEQ_ATTR_ACT_QUANT] == EDGEQ_ACT_GGML_Q8_K ? 256 : 32;
        if (w->scale_kind != EDGEQ_SCALE_BLOCK || w->block != block || w->shape[1] % block)
            return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (linear_dyn): GGML activation blocks of %d need a weight with "
                           "block scales of %d and whole blocks per row", c->k, block, block);
        break;
    }
    default:
        return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (linear_dyn): activation quantization %d unknown (0..2)", c->k,
                       (int)c->op->attrs[EDGEQ_ATTR_ACT_QUANT]);
    }
    return need_const(c, 2, EDGEQ_FMT_F32, w->shape[0]);
}

/* EMBED .. MEANPOOL (docs/transformers.md). */
static edgeq_status_t check_encoder(const op_ctx_t *c) {
    static const int n_in[] = {4, 3, 2, 1, 1, 4, 2};
    const edgeq_op_t *op = c->op;
    const edgeq_tensor_t *x = in(c, 0), *y = out(c);
    const int expected = n_in[op->op - EDGEQ_OP_EMBED];
    const int32_t H = x->shape[x->ndim - 1];
    edgeq_status_t st;
    int i;
    const int optional = op->op == EDGEQ_OP_EMBED ? 2 : expected; /* EMBED: position and type tables optional */
    if (op->n_inputs < optional || op->n_inputs > expected)
        return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): takes %d input(s), has %u", c->k, eq_op_name(op->op),
                       expected, (unsigned)op->n_inputs);
    for (i = 0; i < optional; i++)
        if (op->inputs[i] < 0) return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): input %d missing", c->k,
                                              eq_op_name(op->op), i);
    switch (op->op) {
    case EDGEQ_OP_EMBED: {
        const edgeq_tensor_t *w = in(c, 1);
        if (x->format != EDGEQ_FMT_I32 || x->ndim != 2) return bad_format(c, "token ids", x, "I32 [N, T]");
        if (!is_const(c->b, op->inputs[1]) || w->ndim != 2 ||
            !(w->format == EDGEQ_FMT_F32 || (w->format == EDGEQ_FMT_I8 && w->scale_kind != EDGEQ_SCALE_NONE)))
            return bad_format(c, "word table", w, "a constant F32 [V, H] or I8 weight");
        for (i = 2; i < op->n_inputs; i++) {
            const edgeq_tensor_t *table;
            if (op->inputs[i] < 0) continue;
            if ((st = need_const(c, i, EDGEQ_FMT_F32, -1)) != EDGEQ_OK) return st;
            table = in(c, i);
            if (table->ndim != 2 || table->shape[1] != w->shape[1])
                return bad_shape(c, "position/type tables are [P, H] / [TV, H] with the word table's H");
            if (i == 2 && table->shape[0] < x->shape[1]) return bad_shape(c, "more tokens than position embeddings");
        }
        if (y->format != EDGEQ_FMT_F32 || !((y->ndim == 3 && y->shape[1] == x->shape[1] && y->shape[2] == w->shape[1]) ||
                                            (y->ndim == 2 && x->shape[1] == 1 && y->shape[1] == w->shape[1])))
            return bad_shape(c, "output is F32 [N, T, H] (or [N, H] for one token per sample)");
        return EDGEQ_OK;
    }
    case EDGEQ_OP_LAYERNORM:
    case EDGEQ_OP_RMSNORM: {
        int32_t bits = op->attrs[EDGEQ_ATTR_EPS];
        float eps;
        memcpy(&eps, &bits, sizeof eps);
        if (x->format != EDGEQ_FMT_F32) return bad_format(c, "input", x, "F32");
        if (x->ndim < 2) return bad_shape(c, "normalization input has no feature axis");
        if (!same_shape_as(x, y)) return bad_shape(c, "output differs from the input");
        for (i = 1; i < expected; i++)
            if ((st = need_const(c, i, EDGEQ_FMT_F32, H)) != EDGEQ_OK) return st;
        if (!(eps >= 0.0f && eps < 1.0f))
            return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (%s): epsilon must be in [0, 1)", c->k, eq_op_name(op->op));
        return EDGEQ_OK;
    }
    case EDGEQ_OP_GELU:
    case EDGEQ_OP_RELU2:
        if (x->format != EDGEQ_FMT_F32) return bad_format(c, "input", x, "F32");
        return same_shape_as(x, y) ? EDGEQ_OK : bad_shape(c, "output differs from the input");
    case EDGEQ_OP_ATTENTION: {
        const edgeq_tensor_t *mask = in(c, 3);
        if (x->format != EDGEQ_FMT_F32 || x->ndim != 3) return bad_format(c, "query", x, "F32 [N, T, H]");
        if (!same_shape_as(x, in(c, 1)) || !same_shape_as(x, in(c, 2)) || !same_shape_as(x, y))
            return bad_shape(c, "q, k, v and the output differ");
        if (mask->format != EDGEQ_FMT_I32 || mask->ndim != 2 || mask->shape[1] != x->shape[1])
            return bad_format(c, "mask", mask, "I32 [N, T]");
        if (op->attrs[EDGEQ_ATTR_HEADS] < 1 || H % op->attrs[EDGEQ_ATTR_HEADS])
            return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (attention): %d heads do not divide %d features", c->k,
                           (int)op->attrs[EDGEQ_ATTR_HEADS], (int)H);
        return EDGEQ_OK;
    }
    default: { /* MEANPOOL */
        const edgeq_tensor_t *mask = in(c, 1);
        if (x->format != EDGEQ_FMT_F32 || x->ndim != 3) return bad_format(c, "input", x, "F32 [N, T, H]");
        if (mask->format != EDGEQ_FMT_I32 || mask->ndim != 2 || mask->shape[1] != x->shape[1])
            return bad_format(c, "mask", mask, "I32 [N, T]");
        if (y->format != EDGEQ_FMT_F32 || y->ndim != 2 || y->shape[1] != H) return bad_shape(c, "output is F32 [N, H]");
        if (op->attrs[EDGEQ_ATTR_L2NORM] != 0 && op->attrs[EDGEQ_ATTR_L2NORM] != 1)
            return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (meanpool): l2norm attribute must be 0 or 1", c->k);
        return EDGEQ_OK;
    }
    }
}

/* An activation input i of format I32 [N, 1]: one position per token. */
static int is_positions(const op_ctx_t *c, int i) {
    const edgeq_tensor_t *p = in(c, i);
    return p->format == EDGEQ_FMT_I32 && p->ndim == 2 && p->shape[1] == 1;
}

/* ROPE, ATTENTION_KV, SWIGLU (docs/llm.md). */
static edgeq_status_t check_decoder(const op_ctx_t *c) {
    static const int n_in[] = {3, 6, 2};
    const edgeq_op_t *op = c->op;
    const edgeq_tensor_t *x = in(c, 0), *y = out(c);
    const int expected = n_in[op->op - EDGEQ_OP_ROPE];
    const int32_t heads = op->attrs[EDGEQ_ATTR_HEADS];
    int i;
    if (op->n_inputs != expected)
        return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): takes %d inputs, has %u", c->k, eq_op_name(op->op),
                       expected, (unsigned)op->n_inputs);
    for (i = 0; i < expected; i++)
        if (op->inputs[i] < 0)
            return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): input %d missing", c->k, eq_op_name(op->op), i);
    if (x->format != EDGEQ_FMT_F32 || x->ndim != 2) return bad_format(c, "input", x, "F32 [N, features]");
    if (op->op == EDGEQ_OP_SWIGLU)
        return same_shape_as(x, in(c, 1)) && same_shape_as(x, y) ? EDGEQ_OK : bad_shape(c, "gate, up and output differ");
    if (!same_shape_as(x, y)) return bad_shape(c, "output differs from the input");
    if (heads < 1 || x->shape[1] % heads)
        return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (%s): %d heads do not divide %d features", c->k, eq_op_name(op->op),
                       (int)heads, (int)x->shape[1]);
    if (op->op == EDGEQ_OP_ROPE) {
        const edgeq_tensor_t *table = in(c, 2);
        const int32_t hd = x->shape[1] / heads;
        if (!is_positions(c, 1)) return bad_format(c, "positions", in(c, 1), "I32 [N, 1]");
        if (hd % 2) return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (rope): head size %d is odd", c->k, (int)hd);
        if (!is_const(c->b, op->inputs[2]) || table->format != EDGEQ_FMT_F32 || table->ndim != 2 || table->shape[1] != hd)
            return bad_format(c, "cos/sin table", table, "a constant F32 [context, head size]");
        return EDGEQ_OK;
    } else {
        const edgeq_tensor_t *k = in(c, 1), *kc = in(c, 4), *vc = in(c, 5);
        const int32_t kv = op->attrs[EDGEQ_ATTR_KV_HEADS];
        if (!same_shape_as(k, in(c, 2)) || k->format != EDGEQ_FMT_F32 || k->ndim != 2)
            return bad_shape(c, "k and v are F32 [N, kv features] of the same shape");
        if (!is_positions(c, 3)) return bad_format(c, "positions", in(c, 3), "I32 [N, 1]");
        if (!is_state(c->b, op->inputs[4]) || !is_state(c->b, op->inputs[5]))
            return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (attention_kv): inputs 4 and 5 must be state tensors (the "
                           "KV cache)", c->k);
        if ((kc->format != EDGEQ_FMT_F32 && kc->format != EDGEQ_FMT_F16) || kc->ndim != 2 || vc->format != kc->format ||
            vc->ndim != 2 || kc->shape[0] != vc->shape[0] || kc->shape[1] != k->shape[1] || vc->shape[1] != k->shape[1])
            return bad_shape(c, "the caches are F32 or F16 [context, kv features] like k and v");
        if (kv < 1 || heads % kv || k->shape[1] % kv || k->shape[1] / kv != x->shape[1] / heads)
            return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (attention_kv): %d kv heads do not divide %d heads or give "
                           "another head size", c->k, (int)kv, (int)heads);
        if (op->attrs[EDGEQ_ATTR_F16_ROUND] != 0 && op->attrs[EDGEQ_ATTR_F16_ROUND] != 1)
            return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (attention_kv): f16_round must be 0 or 1", c->k);
        return EDGEQ_OK;
    }
}

static edgeq_status_t check_formats(const op_ctx_t *c, int x_fmt, int y_fmt) {
    const edgeq_tensor_t *x = in(c, 0), *y = out(c);
    static const char *names[] = {"?", "F32", "F16", "I32", "I8", "U8"};
    if (x_fmt && x->format != x_fmt) return bad_format(c, "input", x, x_fmt == EDGEQ_FMT_B1 ? "B1" : names[x_fmt]);
    if (y_fmt && y->format != y_fmt) return bad_format(c, "output", y, y_fmt == EDGEQ_FMT_B1 ? "B1" : names[y_fmt]);
    return EDGEQ_OK;
}

static edgeq_status_t check_op_semantics(const op_ctx_t *c) {
    const edgeq_op_t *op = c->op;
    const edgeq_tensor_t *x = in(c, 0), *y = out(c);
    const int expected_inputs = op->op == EDGEQ_OP_ADD ? 2 : 1;
    edgeq_status_t st;
    int32_t oh, ow;
    if (op->op <= EDGEQ_OP_DWCONV2D) return check_weighted(c);
    if (op->op == EDGEQ_OP_LINEAR_DYN) return check_linear_dyn(c);
    if (op->op >= EDGEQ_OP_ROPE) return check_decoder(c);
    if (op->op >= EDGEQ_OP_EMBED) return check_encoder(c);
    if (op->n_inputs != expected_inputs)
        return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): takes %d input(s), has %u", c->k, eq_op_name(op->op),
                       expected_inputs, (unsigned)op->n_inputs);
    switch (op->op) {
    case EDGEQ_OP_MAXPOOL2D:
    case EDGEQ_OP_AVGPOOL2D:
        if ((st = check_formats(c, EDGEQ_FMT_I8, EDGEQ_FMT_I8)) != EDGEQ_OK) return st;
        if (x->ndim != 4 || y->ndim != 4) return bad_shape(c, "pooling input and output are NHWC");
        if ((st = check_window(c, x, &oh, &ow)) != EDGEQ_OK) return st;
        if (y->shape[1] != oh || y->shape[2] != ow || y->shape[3] != x->shape[3])
            return bad_shape(c, "output differs from [N, OH, OW, C] of the window");
        return EDGEQ_OK;
    case EDGEQ_OP_ADD:
        if (op->inputs[1] < 0) return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (add): second input missing", c->k);
        if (x->format == EDGEQ_FMT_F32) /* fp32 residual add: no attributes */
            return same_shape_as(x, in(c, 1)) && same_shape_as(x, y) ? EDGEQ_OK : bad_shape(c, "add operands differ");
        if ((st = check_formats(c, EDGEQ_FMT_I8, EDGEQ_FMT_I8)) != EDGEQ_OK) return st;
        if (in(c, 1)->format != EDGEQ_FMT_I8) return bad_format(c, "input", in(c, 1), "I8");
        if (!same_sample_shape(x, in(c, 1)) || !same_sample_shape(x, y)) return bad_shape(c, "add operands differ");
        if (op->attrs[EDGEQ_ATTR_ADD_LEFT_SHIFT] < 0 || op->attrs[EDGEQ_ATTR_ADD_LEFT_SHIFT] > 22 ||
            !shift_ok(op->attrs[EDGEQ_ATTR_ADD_SHIFT_A]) || !shift_ok(op->attrs[EDGEQ_ATTR_ADD_SHIFT_B]) ||
            !shift_ok(op->attrs[EDGEQ_ATTR_ADD_SHIFT_OUT]) || !act_range_ok(op))
            return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (add): left shift outside 0..22, a shift outside -31..31 or "
                           "the clamp outside int8", c->k);
        return EDGEQ_OK;
    case EDGEQ_OP_RELU: st = check_formats(c, EDGEQ_FMT_I8, EDGEQ_FMT_I8); break;
    case EDGEQ_OP_SOFTMAX:
        if (x->format != EDGEQ_FMT_I8 && x->format != EDGEQ_FMT_F32) return bad_format(c, "input", x, "I8 or F32");
        st = check_formats(c, 0, EDGEQ_FMT_F32);
        break;
    case EDGEQ_OP_QUANTIZE:
        st = check_formats(c, EDGEQ_FMT_F32, EDGEQ_FMT_I8);
        if (st == EDGEQ_OK && !(y->qscale > 0.0f && y->qscale < INFINITY))
            return eq_fail(c->diag, EDGEQ_E_PARAM, "op %u (quantize): output scale must be finite and > 0", c->k);
        break;
    case EDGEQ_OP_DEQUANTIZE: st = check_formats(c, EDGEQ_FMT_I8, EDGEQ_FMT_F32); break;
    case EDGEQ_OP_BINARIZE: st = check_formats(c, EDGEQ_FMT_I8, EDGEQ_FMT_B1); break;
    default: /* RESHAPE: same bytes per sample, new shape */
        if (x->format != y->format || x->format == EDGEQ_FMT_B1) return bad_format(c, "output", y, "the input's (not B1)");
        if (eq_features(x) != eq_features(y)) return bad_shape(c, "reshape changes the element count");
        return EDGEQ_OK;
    }
    if (st != EDGEQ_OK) return st;
    return same_sample_shape(x, y) ? EDGEQ_OK : bad_shape(c, "output shape differs from the input's");
}

/* Indices, constness, order: the structural part every op shares. */
static edgeq_status_t check_op_structure(const op_ctx_t *c) {
    const eq_blob_t *b = c->b;
    const edgeq_op_t *op = c->op;
    int i;
    if (op->op < EDGEQ_OP_LINEAR || op->op > EDGEQ_OP_SWIGLU)
        return eq_fail(c->diag, EDGEQ_E_OP, "op %u: unknown op id %u", c->k, (unsigned)op->op);
    if (op->flags & ~EDGEQ_OPF_ALL)
        return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (%s): unknown flags 0x%x (defined: 0x%x)", c->k,
                       eq_op_name(op->op), (unsigned)(op->flags & ~EDGEQ_OPF_ALL), (unsigned)EDGEQ_OPF_ALL);
    if ((op->flags & EDGEQ_OPF_LUT) && !eq_is_matmul(op->op))
        return eq_fail(c->diag, EDGEQ_E_ATTR, "op %u (%s): the lookup-table kernel hint applies to weighted ops only",
                       c->k, eq_op_name(op->op));
    if (op->n_inputs < 1 || op->n_inputs > EDGEQ_OP_MAX_INPUTS || op->n_outputs != 1)
        return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): %u inputs / %u outputs (1..6 / 1 expected)", c->k,
                       eq_op_name(op->op), (unsigned)op->n_inputs, (unsigned)op->n_outputs);
    for (i = 0; i < op->n_inputs; i++)
        if (op->inputs[i] < -1 || op->inputs[i] >= (int32_t)b->n_tensors)
            return eq_fail(c->diag, EDGEQ_E_TENSOR_INDEX, "op %u input %d: tensor index %d out of range (0..%u)", c->k, i,
                           (int)op->inputs[i], b->n_tensors - 1);
    if (op->outputs[0] < 0 || op->outputs[0] >= (int32_t)b->n_tensors)
        return eq_fail(c->diag, EDGEQ_E_TENSOR_INDEX, "op %u output 0: tensor index %d out of range (0..%u)", c->k,
                       (int)op->outputs[0], b->n_tensors - 1);
    if (op->inputs[0] < 0) return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): input 0 missing", c->k, eq_op_name(op->op));
    for (i = 0; i < op->n_inputs; i++) /* state (a KV cache) is read and written by ATTENTION_KV only */
        if (op->inputs[i] >= 0 && is_state(b, op->inputs[i]) && !(op->op == EDGEQ_OP_ATTENTION_KV && i >= 4))
            return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): input %d (%s) is a state tensor", c->k,
                           eq_op_name(op->op), i, eq_tensor_name(b, (uint32_t)op->inputs[i]));
    for (i = 0; i < activation_inputs(op->op) && i < op->n_inputs; i++) {
        int32_t t = op->inputs[i];
        if (t < 0) continue;
        if (is_const(b, t))
            return eq_fail(c->diag, EDGEQ_E_OPERANDS, "op %u (%s): input %d (%s) is a constant, expected an activation",
                           c->k, eq_op_name(op->op), i, eq_tensor_name(b, (uint32_t)t));
        if (!is_graph_input(b, t) && producer(b, t, c->k) < 0)
            return eq_fail(c->diag, EDGEQ_E_USED_BEFORE_PRODUCED, "op %u (%s): tensor %s used before it is produced", c->k,
                           eq_op_name(op->op), eq_tensor_name(b, (uint32_t)t));
        if (b->tensors[t].ndim < 1)
            return eq_fail(c->diag, EDGEQ_E_OP_SHAPE, "op %u (%s): activation %s has no batch axis", c->k,
                           eq_op_name(op->op), eq_tensor_name(b, (uint32_t)t));
    }
    {
        int32_t t = op->outputs[0];
        if (is_const(b, t) || is_state(b, t) || is_graph_input(b, t) || producer(b, t, c->k) >= 0)
            return eq_fail(c->diag, EDGEQ_E_PRODUCED_TWICE, "op %u (%s): output %s is a constant, a graph input or "
                           "already produced", c->k, eq_op_name(op->op), eq_tensor_name(b, (uint32_t)t));
        if (b->tensors[t].ndim < 1)
            return eq_fail(c->diag, EDGEQ_E_OP_SHAPE, "op %u (%s): activation %s has no batch axis", c->k,
                           eq_op_name(op->op), eq_tensor_name(b, (uint32_t)t));
        if (b->tensors[t].format == EDGEQ_FMT_I8 && (b->tensors[t].qzero < -128 || b->tensors[t].qzero > 127))
            return eq_fail(c->diag, EDGEQ_E_PARAM, "op %u (%s): output %s zero point %d outside int8", c->k,
                           eq_op_name(op->op), eq_tensor_name(b, (uint32_t)t), (int)b->tensors[t].qzero);
    }
    return EDGEQ_OK;
}

static edgeq_status_t check_io(const eq_blob_t *b, edgeq_diag_t *diag) {
    const edgeq_graph_t *g = b->graph;
    uint32_t i;
    if (g->n_inputs > 8 || g->n_outputs < 1 || g->n_outputs > 8)
        return eq_fail(diag, EDGEQ_E_GRAPH_IO, "graph: %u inputs / %u outputs (0..8 / 1..8 allowed)", (unsigned)g->n_inputs,
                       (unsigned)g->n_outputs);
    for (i = 0; i < g->n_inputs + g->n_outputs; i++) {
        int is_in = i < g->n_inputs;
        int32_t t = is_in ? g->inputs[i] : g->outputs[i - g->n_inputs];
        if (t < 0 || t >= (int32_t)b->n_tensors)
            return eq_fail(diag, EDGEQ_E_GRAPH_IO, "graph %s %u: tensor index %d out of range", is_in ? "input" : "output",
                           is_in ? i : i - g->n_inputs, (int)t);
        if (is_const(b, t) || is_state(b, t) || b->tensors[t].ndim < 1 || !eq_sample_bytes(&b->tensors[t]))
            return eq_fail(diag, EDGEQ_E_GRAPH_IO, "graph %s %s must be an activation with a batch axis",
                           is_in ? "input" : "output", eq_tensor_name(b, (uint32_t)t));
        if (is_in && b->tensors[t].format == EDGEQ_FMT_I8 && (b->tensors[t].qzero < -128 || b->tensors[t].qzero > 127))
            return eq_fail(diag, EDGEQ_E_PARAM, "graph input %s zero point outside int8", eq_tensor_name(b, (uint32_t)t));
    }
    return EDGEQ_OK;
}

edgeq_status_t eq_check_graph(const eq_blob_t *b, edgeq_diag_t *diag) {
    edgeq_status_t st;
    op_ctx_t c;
    if ((st = check_io(b, diag)) != EDGEQ_OK) return st;
    c.b = b;
    c.diag = diag;
    for (c.k = 0; c.k < b->n_ops; c.k++) {
        c.op = &b->ops[c.k];
        if ((st = check_op_structure(&c)) != EDGEQ_OK) return st;
        if ((st = check_op_semantics(&c)) != EDGEQ_OK) return st;
    }
    for (c.k = 0; c.k < b->graph->n_outputs; c.k++) {
        int32_t t = b->graph->outputs[c.k];
        if (!is_graph_input(b, t) && producer(b, t, b->n_ops) < 0)
            return eq_fail(diag, EDGEQ_E_GRAPH_IO, "graph output %s is never produced", eq_tensor_name(b, (uint32_t)t));
    }
    return EDGEQ_OK;
}
