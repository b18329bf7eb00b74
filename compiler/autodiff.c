/* autodiff.c: reverse-mode differentiation ahead of time. Walks the forward
 * graph from the loss back to the variables, asks each op's gradient rule
 * for the vector-Jacobian product of each input, and adds contributions that
 * arrive by several paths. The result is more graph: the backward pass. */
#include "cgrad_int.h"

#include <stdlib.h>
#include <string.h>

/* The gradient rule of an op: its family's. */
static int apply_rule(cg_graph *g, int id, int dy, int dx[3])
{
    const op_family *f = op_table[g->nodes[id].op].family;
    if (!f->grad)
        return graph_error(g, g->nodes[id].src, g->nodes[id].layer, "%s: the op %s has no gradient rule",
                           g->nodes[id].name, op_table[g->nodes[id].op].name);
    return f->grad(g, id, dy, dx);
}

/* Gives a constant gradient a buffer of the node's shape when the rule's
 * kernels read it as an array (matmul, transpose, softmax): a fill node. */
static int materialize(cg_graph *g, int id, int dy)
{
    op_kind op = g->nodes[id].op;
    bool array_reader = op_table[op].cat == CAT_CONTRACT || op_table[op].cat == CAT_CONV ||
                        op_table[op].cat == CAT_SEQ || op == OP_TRANSPOSE || op == OP_SLICE || op == OP_CONCAT ||
                        op == OP_SOFTMAX || op == OP_LOG_SOFTMAX;
    /* a broadcasting elementwise op sums its gradient back over the broadcast
     * axes: that sum must see one value per output element */
    if (op_table[op].cat == CAT_ELEMWISE)
        for (int i = 0; i < g->nodes[id].nin; i++)
            array_reader |= !shape_equal(&g->nodes[g->nodes[id].in[i]].sh, &g->nodes[id].sh);
    if (!array_reader || g->nodes[dy].op != OP_CONST)
        return dy;
    node fill = {.op = OP_BROADCAST, .nin = 1, .in = {dy}, .sh = g->nodes[id].sh, .src = g->nodes[id].src};
    return graph_add(g, fill);
}

/* Names the total gradient of forward node id "d_<name>" when the node was
 * made by autodiff and has no such name yet. */
static void name_gradient(cg_graph *g, int id, int grad)
{
    node *gn = &g->nodes[grad];
    if (!gn->backward || !strncmp(gn->name, "d_", 2) || gn->op == OP_CONST)
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "d_%s", g->nodes[id].name);
    gn->name = graph_unique_name(g, buf);
}

/* Makes gid the gradient of variable node v, named "d_<v>". It must own a
 * buffer in the gradient block: it is copied when it is a constant, a view,
 * a leaf or another variable's gradient (the copy is a BROADCAST to the same
 * shape; axes holds the variable index only to keep it apart from other
 * copies). Returns the gradient's node, -1 on error. */
static int own_gradient(cg_graph *g, int v, int gid)
{
    bool shared = false;
    for (int j = 0; j < g->nvars; j++)
        shared = shared || (g->vars[j].grad == gid && j != g->nodes[v].var);
    op_category cat = op_table[g->nodes[gid].op].cat;
    if (shared || cat == CAT_LEAF || g->nodes[gid].op == OP_RESHAPE || !g->nodes[gid].backward) {
        node cp = {.op = OP_BROADCAST,
                   .nin = 1,
                   .in = {gid},
                   .sh = g->nodes[v].sh,
                   .axes = (unsigned)g->nodes[v].var + 1,
                   .src = g->nodes[v].src};
        g->in_backward = true;
        gid = graph_add(g, cp);
        g->in_backward = false;
        if (gid < 0)
            return -1;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "d_%s", g->nodes[v].name);
    if (strcmp(g->nodes[gid].name, buf))
        g->nodes[gid].name = graph_unique_name(g, buf);
    g->vars[g->nodes[v].var].grad = gid;
    return gid;
}

/* Builds the gradients of `loss` for vars[] (node ids of variables); the
 * request (ad_request) checked the loss and the leaves. */
static int ad_gradients(cg_graph *g, int loss, const int *vars, int nvars)
{
    if (g->failed || loss < 0)
        return -1;
    node ln = g->nodes[loss];
    int count = loss + 1;
    bool *needs = calloc((size_t)count, sizeof(bool)); /* depends on a wanted variable */
    int *grad = malloc(sizeof(int) * (size_t)count);
    if (!needs || !grad) {
        free(needs);
        free(grad);
        return graph_error(g, ln.src, -1, "out of memory");
    }
    for (int i = 0; i < count; i++)
        grad[i] = -1;
    for (int k = 0; k < nvars; k++)
        if (vars[k] < count)
            needs[vars[k]] = true;
    for (int id = 0; id < count; id++)
        for (int i = 0; i < g->nodes[id].nin; i++)
            needs[id] = needs[id] || needs[g->nodes[id].in[i]];

    int saved_layer = g->cur_layer;
    g->in_backward = true;
    grad[loss] = op_const(g, 1.0f, false);
    for (int id = loss; id >= 0 && !g->failed; id--) {
        if (grad[id] < 0 || !needs[id] || op_table[g->nodes[id].op].cat == CAT_LEAF)
            continue;
        name_gradient(g, id, grad[id]);
        node n = g->nodes[id];
        g->cur_layer = n.layer;
        int dx[3] = {-1, -1, -1};
        grad[id] = materialize(g, id, grad[id]);
        if (grad[id] < 0 || apply_rule(g, id, grad[id], dx))
            break;
        for (int i = 0; i < n.nin; i++) {
            int in = n.in[i];
            if (dx[i] < 0 || !needs[in])
                continue;
            grad[in] = grad[in] < 0 ? dx[i] : op_binary(g, n.src, OP_ADD, grad[in], dx[i]);
        }
    }
    g->in_backward = false;
    g->cur_layer = saved_layer;

    for (int k = 0; k < nvars && !g->failed; k++) {
        int v = vars[k];
        var *vr = &g->vars[g->nodes[v].var];
        if (v >= count || grad[v] < 0) {
            graph_error(g, g->nodes[v].src, g->nodes[v].layer, "variable %s is not reachable from the loss", vr->name);
            break;
        }
        if (own_gradient(g, v, grad[v]) < 0)
            break;
    }
    free(needs);
    free(grad);
    return g->failed ? -1 : 0;
}

/* Records the gradients the autodiff pass must build. */
int ad_request(cg_graph *g, int loss, const int *vars, int nvars)
{
    if (check_nodes(g, 1)) /* leaves made by cg_placeholder and cg_variable were not checked */
        return -1;
    const node *ln = &g->nodes[loss];
    char sb[64];
    if (shape_size(&ln->sh, 1) != 1 || (ln->sh.rank > 0 && shape_batched(&ln->sh)))
        return graph_error(g, ln->src, ln->layer, "the loss must be a scalar, got shape %s",
                           shape_str(&ln->sh, sb, sizeof sb));
    bool *feeds = calloc((size_t)loss + 1, sizeof(bool)); /* the loss reads it, directly or not */
    if (!feeds)
        return graph_error(g, ln->src, -1, "out of memory");
    feeds[loss] = true;
    for (int id = loss; id >= 0; id--)
        for (int i = 0; feeds[id] && i < g->nodes[id].nin; i++)
            feeds[g->nodes[id].in[i]] = true;
    for (int k = 0; k < nvars; k++)
        if (vars[k] > loss || !feeds[vars[k]]) {
            const node *v = &g->nodes[vars[k]];
            graph_error(g, v->src, v->layer, "variable %s is not reachable from the loss", g->vars[v->var].name);
            break;
        }
    free(feeds);
    if (g->failed)
        return -1;
    int *copy = arena_alloc(&g->a, sizeof(int) * (size_t)(nvars > 0 ? nvars : 1));
    if (!copy)
        return graph_error(g, (cg_src){0}, -1, "out of memory");
    memcpy(copy, vars, sizeof(int) * (size_t)nvars);
    g->ad_loss = loss;
    g->ad_vars = copy;
    g->ad_nvars = nvars;
    g->ad_pending = true;
    return 0;
}

/* The autodiff pass: builds the backward graph that was asked for, once
 * (a graph compiled again for the other flavour keeps it). */
int pass_autodiff(cg_graph *g)
{
    if (!g->ad_pending)
        return 0;
    g->ad_pending = false;
    return ad_gradients(g, g->ad_loss, g->ad_vars, g->ad_nvars);
}

/* Public: the gradient tape. Records what to emit: NAME_loss and NAME_gradients. */
int cg_gradients_at(cg_src src, cg_graph *g, cg_t loss, const cg_t *vars, int nvars)
{
    if (!g || g->failed)
        return -1;
    if (loss.g != g || loss.id < 0 || loss.id >= g->nnodes)
        return graph_error(g, src, -1, "cg_gradients: the loss is not a tensor of this graph");
    int ids[64];
    if (nvars < 1 || !vars)
        return graph_error(g, src, -1, "cg_gradients: name at least one variable");
    if (nvars > 64)
        return graph_error(g, src, -1, "cg_gradients: at most 64 variables");
    for (int i = 0; i < nvars; i++) {
        if (vars[i].g != g || vars[i].id < 0 || vars[i].id >= g->nnodes || g->nodes[vars[i].id].op != OP_VARIABLE)
            return graph_error(g, src, -1, "cg_gradients: argument %d is not a variable of this graph", i + 2);
        ids[i] = vars[i].id;
    }
    if (g->nentries)
        return graph_error(g, src, -1, "cg_gradients: gradients were already asked for");
    if (ad_request(g, loss.id, ids, nvars))
        return -1;
    g->entries[g->nentries++] = (entry){.kind = ENTRY_LOSS, .fname = "loss", .out = {loss.id}, .nout = 1};
    g->entries[g->nentries++] = (entry){
        .kind = ENTRY_GRADIENTS, .fname = "gradients", .out = {loss.id}, .nout = 1, .want_grads = true};
    return 0;
}

/* Public: the optimizer of NAME_apply_gradients. */
int cg_apply_gradients_at(cg_src src, cg_graph *g, cg_optimizer opt)
{
    if (!g || g->failed)
        return -1;
    if (g->model || !g->nentries)
        return graph_error(g, src, -1, "cg_apply_gradients: ask for gradients with cg_gradients first");
    if (g->has_opt)
        return graph_error(g, src, -1, "cg_apply_gradients: an optimizer was given already");
    if (check_optimizer(g, src, "cg_apply_gradients", &opt))
        return -1;
    g->has_opt = true;
    g->opt = opt;
    return 0;
}
