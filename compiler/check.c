/* check.c: the builders' guards above the graph: a node made by a shape
 * rule (node_add) and a weight made by a layer (weight_add) are checked for
 * size first; initializers; the operands of public ops; every node again at
 * the maximum batch (the verify pass). */
#include "cgrad_int.h"

#include <math.h>
#include <string.h>

/* graph_add for the shape rules: the node's elements per sample checked
 * first (the verify pass checks them again at the maximum batch). */
int node_add(cg_graph *g, const node *nd)
{
    if (g->failed)
        return -1;
    if (shape_elems(&nd->sh, 1) < 0) {
        char what[64];
        snprintf(what, sizeof what, "the result of %s", op_table[nd->op].name);
        return check_elems(g, nd->src, g->cur_layer, what, &nd->sh, 1);
    }
    return graph_add(g, *nd);
}

/* Checks an initializer: a known kind with finite parameters in range. */
int check_init(cg_graph *g, cg_src src, int layer, const char *what, cg_init in)
{
    switch (in.kind) {
    case CG_INIT_DEFAULT:
    case CG_INIT_ZEROS:
    case CG_INIT_ONES:
    case CG_INIT_GLOROT_UNIFORM:
    case CG_INIT_HE_NORMAL:
    case CG_INIT_ORTHOGONAL: return 0;
    case CG_INIT_CONSTANT:
        if (isfinite(in.a))
            return 0;
        return graph_error(g, src, layer, "%s: the constant initializer's value %g is not a finite number", what,
                           (double)in.a);
    case CG_INIT_NORMAL:
        if (isfinite(in.a) && isfinite(in.b) && in.b >= 0.0f)
            return 0;
        return graph_error(g, src, layer,
                           "%s: normal initializer of mean %g and standard deviation %g: both must "
                           "be finite, the deviation at least 0",
                           what, (double)in.a, (double)in.b);
    case CG_INIT_UNIFORM:
        if (isfinite(in.a) && isfinite(in.b) && in.a <= in.b)
            return 0;
        return graph_error(g, src, layer,
                           "%s: uniform initializer over [%g, %g): both ends must be finite, the "
                           "low one at most the high one",
                           what, (double)in.a, (double)in.b);
    }
    return graph_error(g, src, layer, "%s: unknown initializer kind %d", what, (int)in.kind);
}

/* A weight of the current layer: its initializer and size checked, then
 * made (or found, when the layer is applied again). */
int weight_add(cg_graph *g, cg_src src, const char *role, const shape *sh, cg_init init)
{
    if (g->failed)
        return -1;
    char what[2 * CG_MAX_NAME + 64];
    snprintf(what, sizeof what, "weight %s/%s", g->cur_layer >= 0 ? g->layers[g->cur_layer].name : g->name, role);
    if (check_init(g, src, g->cur_layer, what, init) || check_elems(g, src, g->cur_layer, what, sh, 1))
        return -1;
    return graph_layer_variable(g, src, role, *sh, init);
}

/* Finds the graph of a public op's operands, recording what is wrong with
 * them in every graph they name. */
cg_graph *operands_graph(cg_src src, const char *what, const cg_t *ts, int n)
{
    cg_graph *g = NULL;
    for (int i = 0; i < n && !g; i++)
        g = ts[i].g;
    if (!g)
        return NULL;
    for (int i = 0; i < n; i++) {
        const cg_t *t = &ts[i];
        if (t->g == g && t->id >= 0 && t->id < g->nnodes)
            continue;
        for (int j = 0; j < n; j++) { /* each graph named once, the first operand's first */
            cg_graph *h = ts[j].g;
            bool seen = !h;
            for (int k = 0; k < j && !seen; k++)
                seen = ts[k].g == h;
            if (seen)
                continue;
            if (!t->g)
                graph_error(h, src, h->cur_layer, "%s: operand %d is not a tensor of any graph", what, i + 1);
            else if (t->g != g)
                graph_error(h, src, h->cur_layer, "%s: the operands belong to different graphs", what);
            else
                graph_error(h, src, h->cur_layer, "%s: operand %d is not a tensor of this graph (id %d)", what, i + 1,
                            t->id);
        }
        return NULL;
    }
    return g->failed ? NULL : g;
}

/* Checks every node's size at `batch` samples and every variable's initializer. */
int check_nodes(cg_graph *g, int batch)
{
    for (int id = 0; id < g->nnodes; id++) {
        const node *n = &g->nodes[id];
        bool big = shape_elems(&n->sh, batch) < 0;
        if (!big && n->op != OP_VARIABLE)
            continue;
        char what[CG_MAX_NAME + 64];
        snprintf(what, sizeof what, "%s %s",
                 n->op == OP_VARIABLE      ? "variable"
                 : n->op == OP_PLACEHOLDER ? "input"
                                           : "tensor",
                 n->name);
        if ((big && check_elems(g, n->src, n->layer, what, &n->sh, batch)) ||
            (n->op == OP_VARIABLE && check_init(g, n->src, n->layer, what, g->vars[n->var].init)))
            return -1;
    }
    return 0;
}
