/* layers/preprocess.c: Keras' preprocessing layers of numbers, the same in
 * both modes. Normalization: (x - mean) / max(sqrt(variance), 1e-7) per
 * feature of the last axis, with statistics that fit computes from the
 * training rows (non-trainable weights, Keras' adapt) or that the user fixes
 * (constants); Rescaling: x * scale + offset. */
#include "../cgrad_int.h"

#include <math.h>
#include <string.h>

/* Keras' backend.epsilon(): the smallest standard deviation Normalization divides by. */
#define NORM_EPSILON 1e-7f

/* 0, or an error: fixed statistics are both given, finite, variances >= 0. */
static int check_fixed_stats(cg_graph *g, cg_src src, const cg_preprocess_opts *o, int c)
{
    if (!o->mean != !o->variance)
        return graph_error(g, src, g->cur_layer,
                           "give both .mean and .variance (fixed statistics) or neither (fit computes them)");
    for (int i = 0; o->mean && i < c; i++)
        if (!isfinite(o->mean[i]) || !isfinite(o->variance[i]) || !(o->variance[i] >= 0.0f))
            return graph_error(g, src, g->cur_layer,
                               "feature %d: mean %g and variance %g; both must be finite and the variance >= 0", i,
                               (double)o->mean[i], (double)o->variance[i]);
    return 0;
}

/* The statistics that fit computes: the non-trainable weights mean (zeros)
 * and variance (ones) of shape cs, recorded in the model with the input
 * they describe, which must be one of the model's inputs. 0 or -1. */
static int adapted_stats(const layer_call *lc, shape cs, int *mean, int *var)
{
    cg_graph *g = lc->g;
    cg_model *m = lc->m;
    cg_src src = lc->l->src;
    bool input = false;
    char sb[64];
    for (int i = 0; i < m->ninputs; i++)
        input = input || m->inputs[i] == lc->x;
    if (!m->functional)
        input = lc->x == m->x;
    if (!input)
        return graph_error(g, src, g->cur_layer,
                           "input has shape %s and is not a model input: fit computes Normalization's statistics "
                           "from the data, so it must read a model input; give .mean and .variance to use it here",
                           shape_str(&g->nodes[lc->x].sh, sb, sizeof sb));
    *mean = graph_layer_variable(g, src, "mean", cs, cg_zeros());
    *var = graph_layer_variable(g, src, "variance", cs, cg_ones());
    if (*mean < 0 || *var < 0)
        return -1;
    g->vars[g->nodes[*mean].var].trainable = false;
    g->vars[g->nodes[*var].var].trainable = false;
    for (int i = 0; i < m->nadapt; i++) /* the second mode's call */
        if (m->adapt[i][0] == *mean)
            return 0;
    if (m->nadapt == (int)(sizeof m->adapt / sizeof m->adapt[0]))
        return graph_error(g, src, g->cur_layer, "too many Normalization layers with computed statistics (at most 8)");
    m->adapt[m->nadapt][0] = *mean, m->adapt[m->nadapt][1] = *var, m->adapt[m->nadapt][2] = lc->x;
    m->nadapt++;
    return 0;
}

/* Normalization over the last axis: (x - mean) / max(sqrt(variance), 1e-7),
 * Keras' call(). The statistics get no gradient (they are not trainable);
 * the input's is dY / max(sqrt(variance), 1e-7). */
int layer_normalization(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_preprocess_opts *o = &lc->l->pre;
    cg_src src = lc->l->src;
    const shape *xs = &g->nodes[lc->x].sh;
    char sb[64];
    if (xs->rank < 2 || !shape_batched(xs))
        return graph_error(g, src, g->cur_layer, "input has shape %s; Normalization needs (n, ..., features)",
                           shape_str(xs, sb, sizeof sb));
    int c = xs->d[xs->rank - 1], mean = -1, var = -1;
    shape cs = {1, {c}};
    if (check_fixed_stats(g, src, o, c))
        return -1;
    if (o->mean) {
        const char *lname = g->layers[g->cur_layer].name;
        mean = op_constant(g, src, arena_printf(&g->a, "%s_mean", lname), cs, o->mean);
        var = op_constant(g, src, arena_printf(&g->a, "%s_variance", lname), cs, o->variance);
        if (mean < 0 || var < 0)
            return -1;
    } else if (adapted_stats(lc, cs, &mean, &var)) {
        return -1;
    }
    int sd = op_binary(g, src, OP_MAXIMUM, op_unary(g, src, OP_SQRT, var), op_const(g, NORM_EPSILON, false));
    layer_name_role(g, sd, "std");
    int centered = op_binary(g, src, OP_SUB, lc->x, mean);
    layer_name_role(g, centered, "centered");
    int y = op_binary(g, src, OP_DIV, centered, sd);
    layer_name_role(g, y, "out");
    return y;
}

/* Rescaling: x * scale + offset (multiplying by 1 and adding 0 fold away). */
int layer_rescaling(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_preprocess_opts *o = &lc->l->pre;
    cg_src src = lc->l->src;
    if (!isfinite(o->scale) || !isfinite(o->offset) || o->scale == 0.0f)
        return graph_error(g, src, g->cur_layer, "scale %g and offset %g must be finite, and the scale not 0",
                           (double)o->scale, (double)o->offset);
    int y = op_binary(g, src, OP_MUL, lc->x, op_const(g, o->scale, false));
    y = op_binary(g, src, OP_ADD, y, op_const(g, o->offset, false));
    if (y != lc->x)
        layer_name_role(g, y, "out");
    return y;
}
