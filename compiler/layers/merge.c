/* layers/merge.c: the merge layers of functional models, Add, Multiply and
 * Concatenate, on two or more inputs. */
#include "../cgrad_int.h"

/* A merge layer: Add and Multiply need inputs of one shape; Concatenate
 * joins them along its axis. */
int layer_merge(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_layer *l = lc->l;
    const int *xs = lc->xs;
    int nx = lc->nx;
    char s1[64], s2[64];
    if (nx < 2)
        return graph_error(g, l->src, g->cur_layer, "a merge layer needs two or more inputs, got %d", nx);
    int y = xs[0];
    for (int i = 1; i < nx && y >= 0; i++) {
        const shape *a = &g->nodes[y].sh, *b = &g->nodes[xs[i]].sh;
        if (l->kind == CG_LAYER_CONCATENATE) {
            int axis = l->misc.axis < 0 ? a->rank + l->misc.axis : l->misc.axis;
            if (axis <= 0 || axis >= a->rank)
                return graph_error(g, l->src, g->cur_layer, "axis %d is not an axis of %s other than the batch",
                                   l->misc.axis, shape_str(a, s1, sizeof s1));
            y = op_concat(g, l->src, y, xs[i], axis);
        } else if (!shape_equal(a, b)) {
            return graph_error(g, l->src, g->cur_layer, "input %d has shape %s, input 1 has %s: %s needs one shape",
                               i + 1, shape_str(b, s2, sizeof s2), shape_str(&g->nodes[xs[0]].sh, s1, sizeof s1),
                               g->layers[g->cur_layer].kind);
        } else {
            y = op_binary(g, l->src, l->kind == CG_LAYER_ADD ? OP_ADD : OP_MUL, y, xs[i]);
        }
    }
    layer_name_role(g, y, "out");
    return y;
}
