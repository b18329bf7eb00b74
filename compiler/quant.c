/* quant.c: int8 post-training quantization of a multilayer perceptron
 * (--quantize int8), in TFLite's full-integer scheme: weights int8 symmetric
 * per output unit, activations int8 asymmetric per tensor from the min/max
 * a float forward pass sees over calibration rows, biases int32, and each
 * layer's rescaling a Q31 multiplier and a shift. The compiler runs the same
 * integer arithmetic as the emitted code (quant_dense) to report the int8
 * model's accuracy beside the float model's. */
#include "quant.h"

#include <cgrad_rt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fails naming node id's layer: it is not something int8 covers. */
static int unsupported(cg_graph *g, int id, const char *why)
{
    const node *n = &g->nodes[id];
    return graph_error(g, n->src, n->layer,
                       "--quantize int8: %s (%s) %s: int8 covers Dense layers (linear or ReLU) and a final softmax; "
                       "convolutions and other layers are not quantized yet",
                       n->name, op_table[n->op].name, why);
}

/* The parameter values of variable node id in the checkpoint's block. */
static const float *var_values(const cg_graph *g, int id)
{
    return g->dep.weights + g->vars[g->nodes[id].var].offset;
}

/* Adds the Dense node id, reading cur, as q's next layer; 0 or -1. */
static int add_dense(cg_graph *g, quant *q, int id, int cur)
{
    const node *n = &g->nodes[id];
    if (n->in[0] != cur || n->ta || n->tb || g->nodes[n->in[1]].op != OP_VARIABLE)
        return unsupported(g, id, "is not a plain Dense layer on the previous layer's output");
    if (n->act != CG_LINEAR && n->act != CG_RELU)
        return unsupported(g, id, "has an activation other than linear or ReLU");
    if (n->nin > 2 && g->nodes[n->in[2]].op != OP_VARIABLE)
        return unsupported(g, id, "has a bias that is not a parameter");
    const shape *w = &g->nodes[n->in[1]].sh;
    qlayer *l = &q->l[q->n++];
    *l = (qlayer){.name = n->name, .src = n->src, .in = w->d[0], .out = w->d[1], .relu = n->act == CG_RELU};
    l->w = var_values(g, n->in[1]);
    l->b = n->nin > 2 ? var_values(g, n->in[2]) : NULL;
    return 0;
}

/* Reads the predict pass of g into q's layers; 0 or -1 naming what int8 does not cover. */
static int collect(cg_graph *g, quant *q)
{
    const entry *e = NULL;
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].kind == ENTRY_PREDICT)
            e = &g->entries[k];
    if (!e || e->nout != 1 || !g->dep.weights)
        return graph_error(g, (cg_src){0}, -1,
                           "%s: --quantize int8 needs --mode predict, --weights and a model with one output", g->name);
    q->l = arena_alloc(&g->a, sizeof(qlayer) * (size_t)(e->nsched + 1));
    if (!q->l)
        return graph_error(g, (cg_src){0}, -1, "out of memory");
    int cur = -1;
    for (int k = 0; k < e->nsched; k++) {
        int id = e->sched[k];
        const node *n = &g->nodes[id];
        if (n->op == OP_PLACEHOLDER && cur < 0)
            cur = id;
        else if (n->op == OP_VARIABLE || n->op == OP_PLACEHOLDER)
            continue;
        else if (n->op == OP_RESHAPE && n->in[0] == cur && n->sh.rank == 2)
            cur = id;
        else if (n->op == OP_DENSE && !q->softmax) {
            if (add_dense(g, q, id, cur))
                return -1;
            cur = id;
        } else if (n->op == OP_SOFTMAX && n->in[0] == cur && q->n > 0 && !q->softmax) {
            q->softmax = true;
            cur = id;
        } else
            return unsupported(g, id, q->softmax ? "follows the softmax" : "is not a Dense layer");
    }
    if (q->n == 0 || cur != e->out[0])
        return graph_error(g, (cg_src){0}, -1, "%s: --quantize int8: the model's output is not its last Dense layer",
                           g->name);
    return 0;
}

/* The float forward pass of q's layers on one row x: each layer's output
 * (before the softmax) into acts[l] (out floats). */
static void float_forward(const quant *q, const float *x, float **acts)
{
    for (int i = 0; i < q->n; i++) {
        const qlayer *l = &q->l[i];
        const float *in = i ? acts[i - 1] : x;
        for (int o = 0; o < l->out; o++) {
            float s = l->b ? l->b[o] : 0.0f;
            for (int k = 0; k < l->in; k++)
                s += in[k] * l->w[(size_t)k * (size_t)l->out + (size_t)o];
            acts[i][o] = l->relu && s < 0.0f ? 0.0f : s;
        }
    }
}

/* Scale and zero point of an int8 tensor over [lo, hi] (widened to hold 0,
 * as TFLite does, so that 0 is exact: padding and ReLU's floor). */
static void range_params(float lo, float hi, double *scale, int *zp)
{
    double a = lo < 0.0f ? lo : 0.0, b = hi > 0.0f ? hi : 0.0;
    *scale = b > a ? (b - a) / 255.0 : 1.0;
    long z = lround(-128.0 - a / *scale);
    *zp = (int)(z < -128 ? -128 : z > 127 ? 127 : z);
}

/* Splits real m > 0 into mult 2^(shift - 31), mult a Q31 in [2^30, 2^31);
 * a scale below 2^-31 becomes 0. */
static void split_multiplier(double m, int32_t *mult, int32_t *shift)
{
    int e = 0;
    double f = frexp(m, &e);
    long long v = llround(f * 2147483648.0);
    if (v == 2147483648LL)
        v /= 2, e++;
    if (e < -31 || m <= 0.0)
        v = 0, e = 0;
    *mult = (int32_t)v;
    *shift = e;
}

/* Quantizes layer l's weights and biases, its input's scale s_in; 0 or -1. */
static int quantize_layer(cg_graph *g, qlayer *l, double s_in, int zp_in)
{
    size_t nw = (size_t)l->in * (size_t)l->out;
    l->qw = arena_alloc(&g->a, nw ? nw : 1);
    l->qb = arena_alloc(&g->a, sizeof(int32_t) * (size_t)l->out);
    l->mult = arena_alloc(&g->a, sizeof(int32_t) * (size_t)l->out);
    l->shift = arena_alloc(&g->a, sizeof(int32_t) * (size_t)l->out);
    l->wscale = arena_alloc(&g->a, sizeof(float) * (size_t)l->out);
    if (!l->qw || !l->qb || !l->mult || !l->shift || !l->wscale)
        return graph_error(g, (cg_src){0}, -1, "out of memory");
    range_params(l->lo, l->hi, &l->scale, &l->zp);
    for (int o = 0; o < l->out; o++) {
        double amax = 0.0, sum = 0.0;
        for (int k = 0; k < l->in; k++)
            amax = fmax(amax, fabs(l->w[(size_t)k * (size_t)l->out + (size_t)o]));
        double sw = amax > 0.0 ? amax / 127.0 : 1.0;
        for (int k = 0; k < l->in; k++) {
            long v = lround(l->w[(size_t)k * (size_t)l->out + (size_t)o] / sw);
            l->qw[(size_t)o * (size_t)l->in + (size_t)k] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
            sum += l->qw[(size_t)o * (size_t)l->in + (size_t)k];
        }
        double bias = l->b ? llround(l->b[o] / (s_in * sw)) : 0.0, folded = bias - zp_in * sum;
        if (fabs(folded) > 2147483647.0)
            return graph_error(g, l->src, -1, "--quantize int8: %s: bias %d does not fit an int32 at scale %g", l->name,
                               o, s_in * sw);
        l->qb[o] = (int32_t)folded;
        l->wscale[o] = (float)sw;
        split_multiplier(s_in * sw / l->scale, &l->mult[o], &l->shift[o]);
        if (l->shift[o] > 30)
            return graph_error(g, l->src, -1, "--quantize int8: %s: unit %d's rescaling does not fit", l->name, o);
    }
    return 0;
}

/* round(a b / 2^31), halves away from zero, saturating INT32_MIN squared. */
static int32_t mul_high(int32_t a, int32_t b)
{
    int64_t p = (int64_t)a * (int64_t)b;
    int64_t half = p >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    return (int32_t)((p + half) / ((int64_t)1 << 31));
}

/* round(x / 2^e), halves away from zero, 0 <= e <= 31. */
static int32_t div_pot(int32_t x, int e)
{
    int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    int32_t rest = x & mask, limit = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rest > limit ? 1 : 0);
}

/* acc mult 2^(shift - 31), rounded as the emitted q_requant does. */
static int32_t requant(int32_t acc, int32_t mult, int32_t shift)
{
    int64_t up = (int64_t)acc * ((int64_t)1 << (shift > 0 ? shift : 0));
    int32_t v = up > INT32_MAX ? INT32_MAX : up < INT32_MIN ? INT32_MIN : (int32_t)up;
    return div_pot(mul_high(v, mult), shift > 0 ? 0 : -shift);
}

/* The int8 layer l on x into y: the emitted q_dense's arithmetic. */
void quant_dense(const qlayer *l, const int8_t *x, int8_t *y)
{
    int32_t lo = l->relu ? l->zp : -128;
    for (int o = 0; o < l->out; o++) {
        int32_t acc = 0;
        for (int k = 0; k < l->in; k++)
            acc += (int32_t)l->qw[(size_t)o * (size_t)l->in + (size_t)k] * (int32_t)x[k];
        int64_t t = (int64_t)acc + l->qb[o];
        int32_t a = t > INT32_MAX ? INT32_MAX : t < INT32_MIN ? INT32_MIN : (int32_t)t;
        int64_t v = (int64_t)requant(a, l->mult[o], l->shift[o]) + l->zp; /* in int64: requant may saturate */
        y[o] = (int8_t)(v < lo ? lo : v > 127 ? 127 : v);
    }
}

/* Loads the data at path as the model reads it (its scale, class range and
 * test split) into train and test; 0 or -1. */
static int load(cg_graph *g, const quant *q, const char *path, cgrt_dataset *train, cgrt_dataset *test)
{
    const cg_data_opts *d = &g->model->opts.data;
    int out = q->l[q->n - 1].out;
    cgrt_model m = {.name = g->name,
                    .in_rank = 1,
                    .in_dims = {q->l[0].in},
                    .in_features = q->l[0].in,
                    .out_features = out,
                    .label_kind = CGRT_LABEL_SPARSE,
                    .label_width = 1,
                    .num_classes = out,
                    .data = {.path = d->path,
                             .scale = d->scale,
                             .test_split = d->test_split,
                             .class_range = {d->class_range[0], d->class_range[1]},
                             .label_column = d->label}};
    cgrt_error err = {{0}};
    if (cgrt_load_data(&m, path, train, test, &err))
        return graph_error(g, g->model->src, -1, "--calibrate: %s", err.msg);
    if (train->n < 1)
        return graph_error(g, g->model->src, -1, "--calibrate: %s holds no training rows", q->data);
    return 0;
}

/* Scratch for one row: each layer's float output and int8 output. */
typedef struct rows {
    float *act[64];
    int8_t *qact[64];
    int8_t *qx;
} rows;

/* Allocates r for q's layers in g's arena; 0 or -1. */
static int rows_alloc(cg_graph *g, const quant *q, rows *r)
{
    r->qx = arena_alloc(&g->a, (size_t)q->l[0].in);
    for (int i = 0; i < q->n; i++) {
        r->act[i] = arena_alloc(&g->a, sizeof(float) * (size_t)q->l[i].out);
        r->qact[i] = arena_alloc(&g->a, (size_t)q->l[i].out);
        if (!r->act[i] || !r->qact[i])
            return graph_error(g, (cg_src){0}, -1, "out of memory");
    }
    return r->qx ? 0 : graph_error(g, (cg_src){0}, -1, "out of memory");
}

/* Widens [lo, hi] to hold v[0..n). */
static void widen(const float *v, int n, float *lo, float *hi)
{
    for (int k = 0; k < n; k++) {
        *lo = fminf(*lo, v[k]);
        *hi = fmaxf(*hi, v[k]);
    }
}

/* The min/max of the input and of every layer's output over the first
 * q->samples rows of train (the float forward pass). */
static void calibrate(quant *q, const cgrt_dataset *train, rows *r)
{
    q->in_lo = q->in_hi = train->x[0];
    for (int i = 0; i < q->n; i++)
        q->l[i].lo = INFINITY, q->l[i].hi = -INFINITY;
    for (int s = 0; s < q->samples; s++) {
        const float *x = train->x + (size_t)s * (size_t)train->features;
        widen(x, train->features, &q->in_lo, &q->in_hi);
        float_forward(q, x, r->act);
        for (int i = 0; i < q->n; i++)
            widen(r->act[i], q->l[i].out, &q->l[i].lo, &q->l[i].hi);
    }
}

/* Quantizes x with q's input scale and zero point into qx, in float as the
 * emitted NAME_quantize_input does (halves away from zero). */
static void quantize_input(const quant *q, const float *x, int n, int8_t *qx)
{
    float s = (float)q->in_scale;
    for (int k = 0; k < n; k++) {
        float v = x[k] / s;
        v = v > 512.0f ? 512.0f : v < -512.0f ? -512.0f : v == v ? v : 0.0f; /* NaN: the zero point */
        long r = (v >= 0.0f ? (long)(v + 0.5f) : -(long)(0.5f - v)) + q->in_zp;
        qx[k] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
    }
}

/* Softmax cross-entropy of logits z[0..n) for class y, and whether argmax z is y. */
static double xent(const float *z, int n, int y, bool *right)
{
    int best = 0;
    double m = z[0], sum = 0.0;
    for (int k = 1; k < n; k++) {
        best = z[k] > z[best] ? k : best;
        m = fmax(m, z[k]);
    }
    for (int k = 0; k < n; k++)
        sum += exp(z[k] - m);
    *right = best == y;
    return m + log(sum) - z[y];
}

/* Runs float and int8 over the rows of d, adding their losses and hits into
 * fig (float loss, float hits, int8 loss, int8 hits) and the layers' error. */
static void evaluate(quant *q, const cgrt_dataset *d, rows *r, double fig[4])
{
    const qlayer *last = &q->l[q->n - 1];
    float *deq = r->act[q->n - 1]; /* the float logits, once their figures and errors are taken */
    for (int s = 0; s < d->n; s++) {
        const float *x = d->x + (size_t)s * (size_t)d->features;
        int y = (int)d->y[s];
        bool right;
        float_forward(q, x, r->act);
        fig[0] += xent(r->act[q->n - 1], last->out, y, &right);
        fig[1] += right;
        quantize_input(q, x, d->features, r->qx);
        for (int i = 0; i < q->n; i++) {
            quant_dense(&q->l[i], i ? r->qact[i - 1] : r->qx, r->qact[i]);
            for (int o = 0; o < q->l[i].out; o++)
                q->l[i].err = fmax(q->l[i].err, fabs((r->qact[i][o] - q->l[i].zp) * q->l[i].scale - r->act[i][o]));
        }
        for (int o = 0; o < last->out; o++)
            deq[o] = (float)((r->qact[q->n - 1][o] - last->zp) * last->scale);
        fig[2] += xent(deq, last->out, y, &right);
        fig[3] += right;
    }
}

/* Appends the figures on the n test rows to q's report: "float: ...", each
 * layer's error, "int8: ...". */
static void report(quant *q, int n, const double fig[4])
{
    text *t = &q->report;
    text_printf(t, "calibration: min/max of %d training rows of %s\n", q->samples, q->data);
    text_printf(t, "float: loss=%.4f accuracy=%.4f (%d test rows)\n", fig[0] / n, fig[1] / n, n);
    text_printf(t, "  input: scale %.6g zero point %d, range [%.6g, %.6g]\n", q->in_scale, q->in_zp, (double)q->in_lo,
                (double)q->in_hi);
    for (int i = 0; i < q->n; i++)
        text_printf(t, "  %s: scale %.6g zero point %d, range [%.6g, %.6g], max |int8 - float| %.6g\n", q->l[i].name,
                    q->l[i].scale, q->l[i].zp, (double)q->l[i].lo, (double)q->l[i].hi, q->l[i].err);
    text_printf(t, "int8: loss=%.4f accuracy=%.4f (%d test rows)\n", fig[2] / n, fig[3] / n, n);
}

/* Public in cgrad_int.h: quantizes, calibrates and evaluates g's predict pass. */
int quant_build(cg_graph *g, const char *data, int samples)
{
    quant *q = arena_alloc(&g->a, sizeof *q);
    if (!q)
        return graph_error(g, (cg_src){0}, -1, "out of memory");
    q->data = arena_escaped(&g->a, data, 200);
    if (!g->model)
        return graph_error(g, (cg_src){0}, -1, "%s: --quantize int8 needs a model (cg_compile), not a tape graph",
                           g->name);
    if (g->model->noutputs != 1 || g->model->spec[0].loss != CG_SPARSE_CATEGORICAL_CROSSENTROPY)
        return graph_error(g, g->model->src, -1,
                           "%s: --quantize int8 covers classifiers with one output and class-index labels (sparse "
                           "categorical cross-entropy) so far; this model's loss is %s",
                           g->name, g->model->noutputs != 1 ? "a weighted sum" : loss_name(g->model->spec[0].loss));
    cgrt_dataset train = {0}, test = {0};
    rows r;
    memset(&r, 0, sizeof r);
    if (collect(g, q))
        return -1;
    if (q->n > 64)
        return graph_error(g, (cg_src){0}, -1, "%s: --quantize int8: more than 64 Dense layers", g->name);
    if (rows_alloc(g, q, &r) || load(g, q, data, &train, &test))
        return cgrt_dataset_free(&train), cgrt_dataset_free(&test), -1;
    q->samples = samples < train.n ? samples : train.n;
    calibrate(q, &train, &r);
    range_params(q->in_lo, q->in_hi, &q->in_scale, &q->in_zp);
    int rc = 0;
    for (int i = 0; i < q->n && !rc; i++)
        rc = quantize_layer(g, &q->l[i], i ? q->l[i - 1].scale : q->in_scale, i ? q->l[i - 1].zp : q->in_zp);
    const cgrt_dataset *ev = test.n ? &test : &train;
    double fig[4] = {0};
    if (!rc) {
        evaluate(q, ev, &r, fig);
        report(q, ev->n, fig);
        if (!test.n)
            text_puts(&q->report, "(the data has no test split: the figures are on the training rows)\n");
    }
    cgrt_dataset_free(&train), cgrt_dataset_free(&test);
    g->dep.quant = rc ? NULL : q;
    return rc;
}
