/* layers/dense.c: Dense (Keras): out = activation(x . kernel + bias), and the
 * Activation layer. Built from primitive ops; the fuse pass later makes one
 * DENSE node of matmul + bias + activation. */
#include "../cgrad_int.h"

#include <string.h>

/* Renames node id "<layer>_<role>" when this application of the current
 * layer made it (nodes shared with the other mode keep their name). */
void layer_name_role(cg_graph *g, int id, const char *role)
{
    if (id < 0 || id < g->layer_first_node || g->nodes[id].layer != g->cur_layer || g->nodes[id].op == OP_VARIABLE)
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s_%s%s", g->layers[g->cur_layer].name, role, g->infer_pass ? "_infer" : "");
    if (strcmp(g->nodes[id].name, buf))
        g->nodes[id].name = graph_unique_name(g, buf);
}

/* Applies Dense to x (batch, features), or to every step of a sequence x (batch, timesteps, features);
 * returns the output node. */
int layer_dense(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_dense_opts *o = &lc->l->dense;
    cg_src src = lc->l->src;
    int x = lc->x;
    const shape *xs = &g->nodes[x].sh;
    char sb[64];
    if (o->units <= 0)
        return graph_error(g, src, g->cur_layer, "units must be positive, got %d", o->units);
    if (xs->rank != 2 && xs->rank != 3)
        return graph_error(g, src, g->cur_layer,
                           "input has shape %s; Dense needs (batch, features) or a sequence "
                           "(batch, timesteps, features): flatten it first",
                           shape_str(xs, sb, sizeof sb));
    if ((unsigned)o->activation >= ACT_COUNT)
        return graph_error(g, src, g->cur_layer, "unknown activation %d", (int)o->activation);
    cg_init ki = o->kernel_initializer.kind == CG_INIT_DEFAULT ? cg_glorot_uniform() : o->kernel_initializer;
    cg_init bi = o->bias_initializer.kind == CG_INIT_DEFAULT ? cg_zeros() : o->bias_initializer;
    /* on (n, T, F) the same kernel applies at every step (Keras: TimeDistributed(Dense)) */
    int kernel = weight_add(g, src, "kernel", &(shape){2, {xs->d[xs->rank - 1], o->units}}, ki);
    int y = op_matmul(g, src, x, kernel, false, false);
    return layer_bias_activation(g, src, y, "xw", o->units, o->use_bias, bi, o->activation, o->alpha);
}

/* The end of Dense and Conv2D: y (named role, unless it is already the
 * output) + bias of `units`, then the activation; names z and out. */
int layer_bias_activation(cg_graph *g, cg_src src, int y, const char *role, int units, bool use_bias, cg_init bias_init,
                          cg_activation act, float alpha)
{
    layer_name_role(g, y, use_bias ? role : (act == CG_LINEAR ? "out" : "z"));
    if (use_bias) {
        int bias = weight_add(g, src, "bias", &(shape){1, {units}}, bias_init);
        y = op_binary(g, src, OP_ADD, y, bias);
        layer_name_role(g, y, act == CG_LINEAR ? "out" : "z");
    }
    if (act != CG_LINEAR) {
        y = op_activation(g, src, act, alpha, y);
        layer_name_role(g, y, "out");
    }
    return y;
}

/* Applies an activation layer (its parameter, if any, at its default). */
int layer_activation(cg_graph *g, cg_activation act, cg_src src, int x)
{
    int y = op_activation(g, src, act, CG_ALPHA_DEFAULT, x);
    layer_name_role(g, y, "out");
    return y;
}

/* The Activation layer: its activation applied to the input. */
int layer_activation_layer(const layer_call *lc)
{
    return layer_activation(lc->g, lc->l->activation, lc->l->src, lc->x);
}
