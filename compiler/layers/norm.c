/* layers/norm.c: the layers that behave differently in training and in
 * inference: BatchNormalization (batch statistics and moving averages) and
 * Dropout; and LayerNormalization, which does not. Models apply every layer
 * twice, once per mode; hash-consing makes the two one graph wherever they
 * agree. */
#include "../cgrad_int.h"

#include <math.h>

/* Axes of everything but the last (BatchNormalization's statistics). */
static unsigned all_but_last(const shape *s)
{
    return (1u << (s->rank - 1)) - 1;
}

/* gamma * (x - mean) / sqrt(var + eps) + beta, the statistics kept-dims. */
static int normalize(cg_graph *g, cg_src src, int x, int mean, int var, float eps, int gamma, int beta)
{
    int centered = op_binary(g, src, OP_SUB, x, mean);
    int inv_std = op_binary(g, src, OP_DIV, op_const(g, 1.0f, false),
                            op_unary(g, src, OP_SQRT, op_binary(g, src, OP_ADD, var, op_const(g, eps, false))));
    int xhat = op_binary(g, src, OP_MUL, centered, inv_std);
    return op_binary(g, src, OP_ADD, op_binary(g, src, OP_MUL, xhat, gamma), beta);
}

/* BatchNormalization over all axes but the last. In training: batch
 * statistics, and the moving averages' new values recorded as updates. */
int layer_batch_norm(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_misc_opts *o = &lc->l->misc;
    cg_src src = lc->l->src;
    int x = lc->x;
    const shape *xs = &g->nodes[x].sh;
    char sb[64];
    if (xs->rank < 2 || !shape_batched(xs))
        return graph_error(g, src, g->cur_layer, "input has shape %s; BatchNormalization needs (n, ..., channels)",
                           shape_str(xs, sb, sizeof sb));
    if (!(o->momentum >= 0.0f && o->momentum < 1.0f) || !(o->epsilon > 0.0f && isfinite(o->epsilon))) /* NaN fails */
        return graph_error(g, src, g->cur_layer,
                           "momentum must lie in [0, 1) and epsilon be positive and finite, got "
                           "%g and %g",
                           (double)o->momentum, (double)o->epsilon);
    int c = xs->d[xs->rank - 1];
    shape cs = {1, {c}};
    int gamma = graph_layer_variable(g, src, "gamma", cs, cg_ones());
    int beta = graph_layer_variable(g, src, "beta", cs, cg_zeros());
    int mm = graph_layer_variable(g, src, "moving_mean", cs, cg_zeros());
    int mv = graph_layer_variable(g, src, "moving_variance", cs, cg_ones());
    if (mm < 0 || mv < 0)
        return -1;
    g->vars[g->nodes[mm].var].trainable = false;
    g->vars[g->nodes[mv].var].trainable = false;
    if (!lc->training) {
        int y = normalize(g, src, x, mm, mv, o->epsilon, gamma, beta);
        layer_name_role(g, y, "out");
        return y;
    }
    unsigned axes = all_but_last(xs);
    int mean = op_reduce(g, src, OP_MEAN, x, axes, true);
    layer_name_role(g, mean, "batch_mean");
    int var = op_reduce(g, src, OP_MEAN, op_unary(g, src, OP_SQUARE, op_binary(g, src, OP_SUB, x, mean)), axes, true);
    layer_name_role(g, var, "batch_variance");
    int y = normalize(g, src, x, mean, var, o->epsilon, gamma, beta);
    layer_name_role(g, y, "out");
    /* moving = momentum moving + (1 - momentum) batch, written after the step */
    int keep = op_const(g, o->momentum, false), take = op_const(g, 1.0f - o->momentum, false);
    int new_mm = op_binary(g, src, OP_ADD, op_binary(g, src, OP_MUL, mm, keep),
                           op_binary(g, src, OP_MUL, op_reshape(g, src, mean, cs), take));
    layer_name_role(g, new_mm, "new_moving_mean");
    int new_mv = op_binary(g, src, OP_ADD, op_binary(g, src, OP_MUL, mv, keep),
                           op_binary(g, src, OP_MUL, op_reshape(g, src, var, cs), take));
    layer_name_role(g, new_mv, "new_moving_variance");
    if (model_add_update(lc->m, src, mm, new_mm) || model_add_update(lc->m, src, mv, new_mv))
        return -1;
    return y;
}

/* LayerNormalization over the last axis, the same in both modes. */
int layer_layer_norm(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_misc_opts *o = &lc->l->misc;
    cg_src src = lc->l->src;
    int x = lc->x;
    const shape *xs = &g->nodes[x].sh;
    char sb[64];
    if (xs->rank < 2)
        return graph_error(g, src, g->cur_layer, "input has shape %s; LayerNormalization needs (n, ..., features)",
                           shape_str(xs, sb, sizeof sb));
    if (!(o->epsilon > 0.0f && isfinite(o->epsilon)))
        return graph_error(g, src, g->cur_layer, "epsilon must be positive and finite, got %g", (double)o->epsilon);
    int c = xs->d[xs->rank - 1];
    shape cs = {1, {c}};
    int gamma = graph_layer_variable(g, src, "gamma", cs, cg_ones());
    int beta = graph_layer_variable(g, src, "beta", cs, cg_zeros());
    unsigned last = 1u << (xs->rank - 1);
    int mean = op_reduce(g, src, OP_MEAN, x, last, true);
    int var = op_reduce(g, src, OP_MEAN, op_unary(g, src, OP_SQUARE, op_binary(g, src, OP_SUB, x, mean)), last, true);
    int y = normalize(g, src, x, mean, var, o->epsilon, gamma, beta);
    layer_name_role(g, y, "out");
    return y;
}

/* Dropout: x times a fresh random mask in training, x itself in inference. */
int layer_dropout(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_misc_opts *o = &lc->l->misc;
    cg_src src = lc->l->src;
    int x = lc->x;
    if (!(o->rate >= 0.0f && o->rate < 1.0f)) /* written so that NaN fails */
        return graph_error(g, src, g->cur_layer, "rate must lie in [0, 1), got %g", (double)o->rate);
    if (!lc->training || o->rate == 0.0f)
        return x;
    int mask = op_dropout_mask(g, src, g->nodes[x].sh, o->rate);
    layer_name_role(g, mask, "mask");
    int y = op_binary(g, src, OP_MUL, x, mask);
    layer_name_role(g, y, "out");
    return y;
}
