/* passes.c: the pipeline, as one recipe. Each pass returns 0 or -1 with the
 * graph's error set; the graph can be dumped after any of them. */
#include "cgrad_int.h"

#include <string.h>

/* Checks every node: inputs made before it, shapes as its rule says, and
 * sizes that the emitted int indices reach at the maximum batch (tensors,
 * and the im2col buffers of host convolutions). */
int pass_verify(cg_graph *g)
{
    if (check_nodes(g, g->max_batch))
        return -1;
    for (int id = 0; id < g->nnodes; id++) {
        const node *n = &g->nodes[id];
        if (op_table[n->op].arity >= 0 && n->nin != op_table[n->op].arity)
            return graph_error(g, n->src, n->layer, "internal: %s has %d inputs", n->name, n->nin);
        for (int i = 0; i < n->nin; i++)
            if (n->in[i] < 0 || n->in[i] >= id)
                return graph_error(g, n->src, n->layer, "internal: %s reads node %d, not made before it", n->name,
                                   n->in[i]);
        for (int i = 1; i < n->sh.rank; i++)
            if (n->sh.d[i] == CG_BATCH)
                return graph_error(g, n->src, n->layer, "internal: %s has the batch dimension at axis %d", n->name, i);
        if (conv_scratch(g, id) > ELEMS_MAX) /* its factors fit: every tensor does */
            return graph_error(g, n->src, n->layer,
                               "%s: its im2col buffer holds %ld floats at the maximum batch %d, "
                               "more than %ld, past the int indices of the emitted code (lower max_batch)",
                               n->name, conv_scratch(g, id), g->max_batch, ELEMS_MAX);
    }
    return 0;
}

/* Number of live uses of each node over all entry points (after planning). */
static int uses_of(cg_graph *g, int target)
{
    int count = 0;
    for (int id = 0; id < g->nnodes; id++)
        for (int i = 0; i < g->nodes[id].nin; i++)
            count += g->nodes[id].in[i] == target;
    for (int k = 0; k < g->nentries; k++)
        for (int j = 0; j < g->entries[k].nout; j++)
            count += g->entries[k].out[j] == target;
    for (int v = 0; v < g->nvars; v++)
        count += g->vars[v].grad == target;
    return count;
}

/* Fuses act(X W + b) into one DENSE node, and act(conv2d(X, K) + b) into one
 * CONV2D_BIAS_ACT node, in place of the activation (or of the addition when
 * there is none), when nothing else reads the product or the sum; and the
 * activation's gradient into the max pooling gradient that feeds it. An
 * activation whose derivative is written with its input (gelu, swish) keeps
 * the sum alive for its gradient, so in training it stays an ACT node after
 * a DENSE (or CONV2D_BIAS_ACT) without activation. */
int pass_fuse(cg_graph *g)
{
    for (int round = 0; round < 2; round++) /* with an activation first, then bare additions */
        for (int id = 0; id < g->nnodes; id++) {
            node *n = &g->nodes[id];
            if ((n->op == OP_ADD) != (round == 1))
                continue;
            cg_activation act = act_of_node(n); /* an activation of activations.def, or a bare addition */
            int add = n->op == OP_ADD ? id : n->in[0];
            if (act == CG_LINEAR && n->op != OP_ADD)
                continue;
            node *a = &g->nodes[add];
            if (a->op != OP_ADD || a->backward || (add == id && uses_of(g, id) == 0))
                continue;
            int mm = a->in[0], bias = a->in[1];
            node *m = &g->nodes[mm];
            int last = m->sh.rank - 1;
            bool conv = m->op == OP_CONV2D;
            if (!(m->op == OP_MATMUL && !m->ta && !m->tb) && !conv)
                continue;
            if (g->nodes[bias].sh.rank != 1 || g->nodes[bias].sh.d[0] != m->sh.d[last] || !shape_equal(&a->sh, &m->sh))
                continue;
            if (uses_of(g, mm) != 1 || (add != id && uses_of(g, add) != 1))
                continue;
            if (conv)
                n->sp = m->sp;
            ad_fused(g, id, add, mm);
            n->op = conv ? OP_CONV2D_BIAS_ACT : OP_DENSE;
            n->nin = 3;
            n->in[0] = m->in[0];
            n->in[1] = m->in[1];
            n->in[2] = bias;
            n->act = act;
        }
    /* act'(.) dY with dY the gradient of a max pooling over the activation's
     * output: one MAX_POOL_BWD that multiplies by act' at each maximum (the
     * other elements get 0 either way), saving a pass over the larger tensor */
    for (int id = 0; id < g->nnodes; id++) {
        node *n = &g->nodes[id];
        if (n->op != OP_ACT_BWD)
            continue;
        int pb = n->in[1];
        const node *p = &g->nodes[pb];
        if (p->op != OP_MAX_POOL_BWD || p->act != CG_LINEAR || p->in[0] != n->in[0] || uses_of(g, pb) != 1)
            continue;
        ad_fused_pool(g, id, pb);
        n->op = OP_MAX_POOL_BWD;
        n->sp = p->sp;
        n->in[1] = p->in[1];
    }
    return 0;
}

/* Plans every entry point: schedule (dead code dropped), arena offsets. */
int pass_plan(cg_graph *g)
{
    return plan_entries(g);
}

/* Lays out the parameter block (trainable first) and the optimizer state. */
static int pass_layout(cg_graph *g)
{
    size_t off = 0, trainable = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < g->nvars; i++)
            if (g->vars[i].trainable == (pass == 0)) {
                g->vars[i].offset = off;
                off += g->vars[i].count;
            }
    g->param_floats = off;
    for (int i = 0; i < g->nvars; i++)
        trainable += g->vars[i].trainable ? g->vars[i].count : 0;
    g->trainable_floats = trainable;
    g->opt_floats = optim_slots(g) * trainable;
    return 0;
}

typedef struct pass {
    const char *name;
    int (*run)(cg_graph *g);
} pass;

/* The recipe. */
static const pass pipeline[] = {
    {"autodiff", pass_autodiff}, {"verify", pass_verify}, {"fuse", pass_fuse},
    {"verify", pass_verify},     {"layout", pass_layout}, {"plan", pass_plan},
};

/* True when the pipeline has a pass called name; the passes' names,
 * comma-separated, into list. */
bool pass_exists(const char *name, char *list, size_t size)
{
    bool found = false;
    size_t len = 0;
    list[0] = 0;
    for (size_t i = 0; i < sizeof pipeline / sizeof pipeline[0]; i++) {
        found = found || !strcmp(name, pipeline[i].name);
        if (!strstr(list, pipeline[i].name) && len < size)
            len += (size_t)snprintf(list + len, size - len, "%s%s", len ? ", " : "", pipeline[i].name);
    }
    return found;
}

/* Runs the pipeline; after the pass named dump_after, dumps the graph into dump. */
int compile_graph(cg_graph *g, cg_flavour flavour, const char *dump_after, text *dump)
{
    if (g->failed)
        return -1;
    if ((unsigned)flavour > CG_PORTABLE)
        return graph_error(g, (cg_src){0}, -1, "%s: unknown flavour %d (CG_HOST or CG_PORTABLE)", g->name,
                           (int)flavour);
    if (g->compiled && g->flavour != flavour)
        g->compiled = false; /* planned for the other flavour (scratch differs): plan again */
    g->flavour = flavour;
    if (g->compiled)
        return 0;
    char names[128];
    if (dump_after && !pass_exists(dump_after, names, sizeof names))
        return graph_error(g, (cg_src){0}, -1, "--dump-after: no pass is called \"%s\" (the passes: %s)",
                           arena_escaped(&g->a, dump_after, 40), names);
    if (!g->nentries)
        return graph_error(g, (cg_src){0}, -1, "%s: nothing to emit: compile the model or ask for gradients", g->name);
    for (size_t i = 0; i < sizeof pipeline / sizeof pipeline[0]; i++) {
        if (pipeline[i].run(g))
            return -1;
        if (dump_after && dump && !strcmp(dump_after, pipeline[i].name))
            graph_dump(g, dump);
    }
    g->compiled = true;
    return 0;
}
