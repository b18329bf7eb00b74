/* layers/custom.c: custom layers, as Keras' Layer subclasses: the user's
 * call() composes builder ops on the input and declares the layer's weights
 * with cg_add_weight; the gradient is derived like any other. */
#include "../cgrad_int.h"

/* What a custom layer's call() sees: its graph and layer. */
struct cg_layer_ctx {
    cg_graph *g;
    int layer;
};

/* Public: a weight of the custom layer being called, "layer/name". */
cg_t cg_add_weight_at(cg_src src, cg_layer_ctx *l, const char *name, cg_shape s, cg_init init, bool trainable)
{
    if (!l || l->g->failed)
        return (cg_t){l ? l->g : NULL, -1};
    cg_graph *g = l->g;
    shape sh = {s.rank, {0}};
    if (graph_check_name(g, src, "weight", name, 0))
        return (cg_t){g, -1};
    if (s.rank < 0 || s.rank > CG_MAX_RANK)
        return (cg_t){g, graph_error(g, src, l->layer, "weight %s: rank %d is not supported", name, s.rank)};
    for (int i = 0; i < s.rank; i++) {
        if (s.dims[i] <= 0)
            return (cg_t){g, graph_error(g, src, l->layer, "weight %s: dimension %d is %d, must be positive", name, i,
                                         s.dims[i])};
        sh.d[i] = s.dims[i];
    }
    int id = weight_add(g, src, name, &sh, init);
    if (id >= 0 && !trainable)
        g->vars[g->nodes[id].var].trainable = false;
    return (cg_t){g, id};
}
/* Applies a custom layer: its call(), then a check that every weight it
 * used is its own (a weight of another layer must be shared through a layer
 * used twice, not taken from inside it). */
int layer_custom(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_layer *l = lc->l;
    int x = lc->x;
    if (!l->call)
        return graph_error(g, l->src, g->cur_layer, "custom layer without a call function");
    cg_layer_ctx ctx = {g, g->cur_layer};
    int first = g->nnodes;
    cg_t y = l->call(&ctx, (cg_t){g, x}, l->self);
    if (g->failed)
        return -1;
    if (y.g != g || y.id < 0 || y.id >= g->nnodes)
        return graph_error(g, l->src, g->cur_layer, "call() returned a tensor that is not of this model");
    for (int id = first; id < g->nnodes; id++)
        for (int i = 0; i < g->nodes[id].nin; i++) {
            const node *in = &g->nodes[g->nodes[id].in[i]];
            if (in->op == OP_VARIABLE && in->layer != g->cur_layer)
                return graph_error(g, l->src, g->cur_layer,
                                   "call() uses the weight %s of layer %s; a custom layer "
                                   "may only use the weights it declares with cg_add_weight",
                                   g->vars[in->var].name, in->layer >= 0 ? g->layers[in->layer].name : "(none)");
        }
    layer_name_role(g, y.id, "out");
    return y.id;
}
