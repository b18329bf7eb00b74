/* ops/softmax.c: softmax, log-softmax, softmax cross-entropy on logits (its
 * backward is its own op), one-hot and the argmax comparison of accuracy.
 * All work over the last axis: ROWS rows of K classes. */
#include "../cgrad_int.h"

/* Per-sample cross-entropy of softmax(z) against t: class indices (sparse,
 * shape of z without its last axis) or a distribution (z's shape). */
int op_softmax_xent(cg_graph *g, cg_src src, int z, int t, bool sparse)
{
    if (z < 0 || t < 0)
        return -1;
    const shape *sz = &g->nodes[z].sh, *st = &g->nodes[t].sh;
    char s1[64], s2[64], s3[64];
    if (sz->rank < 1)
        return graph_error(g, src, g->cur_layer, "cross-entropy needs logits of rank 1 or more, got a scalar");
    shape rows = *sz;
    rows.rank--;
    if (sparse ? !shape_equal(st, &rows) : !shape_equal(st, sz))
        return graph_error(g, src, g->cur_layer, "%s labels have shape %s; logits %s need labels of shape %s",
                           sparse ? "sparse" : "dense", shape_str(st, s1, sizeof s1), shape_str(sz, s2, sizeof s2),
                           shape_str(sparse ? &rows : sz, s3, sizeof s3));
    node nd = {.op = OP_SOFTMAX_XENT, .nin = 2, .in = {z, t}, .sparse = sparse, .sh = rows, .src = src};
    return node_add(g, &nd);
}

cg_t cg_softmax_xent_at(cg_src src, cg_t logits, cg_t labels, bool sparse)
{
    cg_graph *g = operands_graph(src, "softmax_cross_entropy", (cg_t[]){logits, labels}, 2);
    if (!g)
        return (cg_t){logits.g ? logits.g : labels.g, -1};
    return (cg_t){g, op_softmax_xent(g, src, logits.id, labels.id, sparse)};
}

/* One-hot rows of `classes` from class indices t. */
int op_one_hot(cg_graph *g, cg_src src, int t, int classes)
{
    if (t < 0)
        return -1;
    node nd = {.op = OP_ONE_HOT, .nin = 1, .in = {t}, .sh = g->nodes[t].sh, .src = src};
    if (nd.sh.rank >= CG_MAX_RANK)
        return graph_error(g, src, g->cur_layer, "one_hot: labels have too many dimensions");
    nd.sh.d[nd.sh.rank++] = classes;
    return node_add(g, &nd);
}

/* 1 where argmax of p's last axis equals the label (an index, or argmax of t). */
int op_argmax_eq(cg_graph *g, cg_src src, int p, int t, bool sparse)
{
    if (p < 0 || t < 0)
        return -1;
    node nd = {.op = OP_ARGMAX_EQ, .nin = 2, .in = {p, t}, .sparse = sparse, .sh = g->nodes[p].sh, .src = src};
    nd.sh.rank--;
    return node_add(g, &nd);
}

/* Gradient rules of the softmax family. */
static int grad_softmax(cg_graph *g, int id, int dy, int dx[3])
{
    node n = g->nodes[id];
    cg_src s = n.src;
    unsigned last = 1u << (n.sh.rank - 1);
    switch (n.op) {
    case OP_SOFTMAX: { /* dx = y (dy - sum(dy y)) */
        int dot = op_reduce(g, s, OP_SUM, op_binary(g, s, OP_MUL, dy, id), last, true);
        dx[0] = op_binary(g, s, OP_MUL, id, op_binary(g, s, OP_SUB, dy, dot));
        break;
    }
    case OP_LOG_SOFTMAX: { /* dx = dy - exp(y) sum(dy) */
        int sum = op_reduce(g, s, OP_SUM, dy, last, true);
        dx[0] = op_binary(g, s, OP_SUB, dy, op_binary(g, s, OP_MUL, op_unary(g, s, OP_EXP, id), sum));
        break;
    }
    case OP_SOFTMAX_XENT: { /* dz = dy (softmax(z) - t) */
        node nd = {.op = OP_SOFTMAX_XENT_BWD,
                   .nin = 3,
                   .in = {n.in[0], n.in[1], dy},
                   .sparse = n.sparse,
                   .sh = g->nodes[n.in[0]].sh,
                   .src = s};
        dx[0] = node_add(g, &nd);
        break;
    }
    case OP_ONE_HOT:
    case OP_ARGMAX_EQ: break; /* integer-valued: no gradient */
    default: return graph_error(g, s, n.layer, "no gradient rule for %s", op_table[n.op].name);
    }
    return g->failed ? -1 : 0;
}

/* grad_softmax's rules in words (over the last axis, k). */
static bool words_softmax(cg_graph *g, int id, unsigned inputs, char *buf, size_t size)
{
    const node *n = &g->nodes[id];
    if (!(inputs & 1))
        return false;
    switch (n->op) {
    case OP_SOFTMAX: snprintf(buf, size, "dX = Y * (dY - sum_k dY * Y)"); break;
    case OP_LOG_SOFTMAX: snprintf(buf, size, "dX = dY - exp(Y) * sum_k dY"); break;
    case OP_SOFTMAX_XENT: snprintf(buf, size, "dZ = dY * (softmax(Z) - %s)", n->sparse ? "onehot(T)" : "T"); break;
    default: return false;
    }
    return true;
}

/* Lowers the family from templates with ROWS and K filled in. */
static void lower_softmax(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    const shape *z = &g->nodes[n->in[0]].sh;
    const shape *rows_of = n->op == OP_ONE_HOT ? &n->sh : z;
    char rows[64] = "1", k[16], dim[16], dy[96] = "";
    size_t len = 0;
    for (int i = 0; i + 1 < rows_of->rank; i++)
        len += (size_t)snprintf(rows + len, sizeof rows - len, "%s%s", len ? " * " : "",
                                emit_dim(rows_of, i, dim, sizeof dim));
    emit_dim(rows_of, rows_of->rank - 1, k, sizeof k);
    const char *tmpl = NULL;
    switch (n->op) {
    case OP_SOFTMAX: tmpl = "kernels/softmax"; break;
    case OP_LOG_SOFTMAX: tmpl = "kernels/log_softmax"; break;
    case OP_SOFTMAX_XENT: tmpl = n->sparse ? "kernels/xent_sparse" : "kernels/xent_dense"; break;
    case OP_SOFTMAX_XENT_BWD:
        tmpl = n->sparse ? "kernels/xent_sparse_bwd" : "kernels/xent_dense_bwd";
        emit_input(e, id, 2, "i", dy, sizeof dy);
        break;
    case OP_ONE_HOT: tmpl = "kernels/one_hot"; break;
    case OP_ARGMAX_EQ: tmpl = n->sparse ? "kernels/argmax_eq_sparse" : "kernels/argmax_eq_dense"; break;
    default: break;
    }
    const char *kv[] = {"ROWS", rows, "K", k, "DY", dy, NULL};
    if (!tmpl || text_template(e->t, tmpl, kv))
        graph_error(g, n->src, n->layer, "internal: no kernel template for %s", op_table[n->op].name);
}

/* The cross-entropy and its gradient in buffer names; false for the others (their formula). */
static bool describe_softmax(emit_ctx *e, int id, const char *const in[3], char *buf, size_t size)
{
    const node *n = &e->g->nodes[id];
    if (n->op == OP_SOFTMAX_XENT)
        snprintf(buf, size, "%s = cross-entropy of softmax(%s) against %s", n->name, in[0], in[1]);
    else if (n->op == OP_SOFTMAX_XENT_BWD)
        snprintf(buf, size, "%s = %s * (softmax(%s) - %s)", n->name, in[2], in[0], in[1]);
    return n->op == OP_SOFTMAX_XENT || n->op == OP_SOFTMAX_XENT_BWD;
}

/* About five operations per input element (max, exp, sum, log or divide). */
static long flops_softmax(cg_graph *g, int id)
{
    return 5 * shape_size(&g->nodes[g->nodes[id].in[0]].sh, 1);
}

const op_family op_family_softmax = {"softmax",     grad_softmax,     lower_softmax,
                                     flops_softmax, describe_softmax, words_softmax};
