/* ops/embedding.c: the embedding lookup, rows of the table E (V, D) picked
 * by token id (an id outside [0, V) gives a row of zeros), and its gradient,
 * a scatter-add of dY into a zeroed table (such ids add nothing). */
#include "../cgrad_int.h"

int op_embedding(cg_graph *g, cg_src src, int ids, int table)
{
    if (ids < 0 || table < 0)
        return -1;
    const shape *is = &g->nodes[ids].sh, *ts = &g->nodes[table].sh;
    char s1[64], s2[64];
    if (is->rank != 2 || !shape_batched(is) || ts->rank != 2 || shape_batched(ts))
        return graph_error(g, src, g->cur_layer,
                           "embedding needs token ids (n, timesteps) and a table (vocabulary, "
                           "dimensions), got %s and %s",
                           shape_str(is, s1, sizeof s1), shape_str(ts, s2, sizeof s2));
    node nd = {.op = OP_EMBEDDING, .nin = 2, .in = {ids, table}, .sh = {3, {is->d[0], is->d[1], ts->d[1]}}, .src = src};
    return node_add(g, &nd);
}

/* grad_embedding's rule in words: a scatter-add into a zeroed table. */
static bool words_embedding(cg_graph *g, int id, unsigned inputs, char *buf, size_t size)
{
    if (g->nodes[id].op != OP_EMBEDDING || !(inputs >> 1 & 1))
        return false;
    snprintf(buf, size, "dE = zeros; dE[ids[b,t], :] += dY[b,t,:] (ids outside [0, V) add nothing)");
    return true;
}

/* The gradient of the table: the scatter-add of dy, named d_<table>. */
static int grad_embedding(cg_graph *g, int id, int dy, int dx[3])
{
    node n = g->nodes[id];
    char base[256];
    if (n.op != OP_EMBEDDING)
        return graph_error(g, n.src, n.layer, "no gradient rule for %s", op_table[n.op].name);
    snprintf(base, sizeof base, "d_%s", g->nodes[n.in[1]].name);
    node nd = {.op = OP_EMBEDDING_BWD, .nin = 2, .in = {n.in[0], dy}, .sh = g->nodes[n.in[1]].sh, .src = n.src};
    nd.name = graph_unique_name(g, base);
    dx[1] = node_add(g, &nd);
    return g->failed ? -1 : 0;
}

/* Floating-point operations for one sample: none for the lookup (a copy of
 * rows), one addition per element of dY for the scatter-add. */
static long embedding_flops(cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    return n->op == OP_EMBEDDING_BWD ? shape_size(&g->nodes[n->in[1]].sh, 1) : 0;
}

/* Lowers EMBEDDING (a lookup of rows) and EMBEDDING_BWD (their scatter-add). */
static void lower_embedding(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    char num[4][24], count[48];
    const shape *ids = &g->nodes[n->in[0]].sh;
    const shape *tab = n->op == OP_EMBEDDING ? &g->nodes[n->in[1]].sh : &n->sh;
    outer_rows(ids, ids->rank, count, sizeof count);
    snprintf(num[0], sizeof num[0], "%d", tab->d[0]);
    emit_float((float)tab->d[0], num[1], sizeof num[1]);
    snprintf(num[2], sizeof num[2], "%d", tab->d[1]);
    snprintf(num[3], sizeof num[3], "%ld", (long)tab->d[0] * tab->d[1]);
    const char *kv[] = {"COUNT", count, "V", num[0], "VF", num[1], "D", num[2], "VD", num[3], NULL};
    const char *tmpl = n->op == OP_EMBEDDING ? "kernels/embedding" : "kernels/embedding_bwd";
    if (text_template(e->t, tmpl, kv))
        graph_error(g, n->src, n->layer, "internal: template %s failed", tmpl);
}

const op_family op_family_embedding = {"embedding",     grad_embedding, lower_embedding,
                                       embedding_flops, NULL,           words_embedding};
