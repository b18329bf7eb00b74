/* ops/reduce.c: sum, mean and max over a set of axes. */
#include "../cgrad_int.h"

#include <string.h>


/* Reduction of x over the axes in the bit set (0: all axes). */
int op_reduce(cg_graph *g, cg_src src, op_kind op, int x, unsigned axes, bool keepdims)
{
    if (x < 0)
        return -1;
    const shape *in = &g->nodes[x].sh;
    if (axes == 0)
        axes = (1u << in->rank) - 1;
    if (axes >> in->rank) {
        char sb[64];
        return graph_error(g, src, g->cur_layer, "%s: axes 0x%x out of range for shape %s", op_table[op].name, axes,
                           shape_str(in, sb, sizeof sb));
    }
    node nd = {.op = op, .nin = 1, .in = {x}, .axes = axes, .keepdims = keepdims, .src = src};
    for (int i = 0; i < in->rank; i++) {
        if (!(axes & (1u << i)))
            nd.sh.d[nd.sh.rank++] = in->d[i];
        else if (keepdims)
            nd.sh.d[nd.sh.rank++] = 1;
    }
    if (nd.sh.rank > 0 && shape_batched(in) && (axes & 1u) == 0 && nd.sh.d[0] != CG_BATCH)
        return graph_error(g, src, g->cur_layer, "internal: batch axis moved by a reduction");
    return node_add(g, &nd);
}

cg_t cg_reduce_at(cg_src src, cg_op_code op, cg_t x, unsigned axes, bool keepdims)
{
    cg_graph *g = operands_graph(src, "reduction", &x, 1);
    if (!g)
        return (cg_t){x.g, -1};
    int kind = op_from_public(op, PUBLIC_REDUCE);
    if (kind < 0)
        return (cg_t){g, graph_error(g, src, g->cur_layer,
                                     "cg_reduce_at: op code %d is not a reduction (sum, mean "
                                     "or max)",
                                     (int)op)};
    return (cg_t){g, op_reduce(g, src, (op_kind)kind, x.id, axes, keepdims)};
}

/* Number of elements one output of a reduction averages: a constant, or
 * one that holds n when the batch axis is reduced. */
static int reduce_count(cg_graph *g, const node *n)
{
    const shape *in = &g->nodes[n->in[0]].sh;
    float count = 1;
    bool per_n = false;
    for (int i = 0; i < in->rank; i++)
        if (n->axes & (1u << i)) {
            if (in->d[i] == CG_BATCH)
                per_n = true;
            else
                count *= (float)in->d[i];
        }
    return op_const(g, 1.0f / count, per_n);
}

/* Gradient: the output gradient broadcast back over the reduced axes
 * (divided by the count for mean; routed to the maxima for max). */
static int grad_reduce(cg_graph *g, int id, int dy, int dx[3])
{
    node n = g->nodes[id];
    const shape xs = g->nodes[n.in[0]].sh;
    shape kept = xs;
    for (int i = 0; i < xs.rank; i++)
        if (n.axes & (1u << i))
            kept.d[i] = 1;
    int dyk = op_reshape(g, n.src, dy, kept);
    int b = op_broadcast(g, n.src, dyk, xs);
    if (n.op == OP_SUM)
        dx[0] = b;
    else if (n.op == OP_MEAN)
        dx[0] = op_binary(g, n.src, OP_MUL, b, reduce_count(g, &n));
    else {
        int yk = op_reshape(g, n.src, id, kept);
        dx[0] = op_binary(g, n.src, OP_MUL, b, op_binary(g, n.src, OP_EQUAL, n.in[0], yk));
    }
    return g->failed ? -1 : 0;
}

/* grad_reduce's rule in words: dY repeated over the reduced axes, divided
 * by their count for a mean ("dX = dY / n"), at the maxima for max. */
static bool words_reduce(cg_graph *g, int id, unsigned inputs, char *buf, size_t size)
{
    const node *n = &g->nodes[id];
    const shape *in = &g->nodes[n->in[0]].sh;
    char count[64] = "", dim[16];
    size_t len = 0;
    for (int i = 0; i < in->rank; i++)
        if (n->axes & (1u << i))
            len += (size_t)snprintf(count + len, sizeof count - len, "%s%s", len ? " * " : "",
                                    emit_dim(in, i, dim, sizeof dim));
    if (!(inputs & 1))
        return false;
    if (n->op == OP_SUM)
        snprintf(buf, size, "dX = dY, repeated over the summed axes");
    else if (n->op == OP_MEAN)
        snprintf(buf, size,
                 strchr(count, '*') ? "dX = dY / (%s), repeated over the averaged axes"
                                    : "dX = dY / %s, repeated over the averaged axes",
                 len ? count : "1");
    else
        snprintf(buf, size, "dX = dY where X equals its maximum Y, else 0");
    return true;
}

/* Sums grad over the axes where `to` was broadcast, then gives it `to`'s shape. */
int grad_unbroadcast(cg_graph *g, int grad, const shape *to)
{
    if (grad < 0)
        return -1;
    const shape *from = &g->nodes[grad].sh;
    if (shape_equal(from, to))
        return grad;
    unsigned axes = 0;
    int off = from->rank - to->rank;
    for (int i = 0; i < from->rank; i++) {
        int j = i - off;
        int dt = j >= 0 ? to->d[j] : 1;
        if (dt == 1 && from->d[i] != 1)
            axes |= 1u << i;
    }
    if (!axes)
        return op_reshape(g, g->nodes[grad].src, grad, *to);
    /* Without keepdims when that already gives `to`: bias gradients (n, 256) -> (256). */
    int r = op_reduce(g, g->nodes[grad].src, OP_SUM, grad, axes, false);
    if (r >= 0 && shape_equal(&g->nodes[r].sh, to))
        return r;
    r = op_reduce(g, g->nodes[grad].src, OP_SUM, grad, axes, true);
    return op_reshape(g, g->nodes[grad].src, r, *to);
}

/* Lowers a reduction: initialise each output, accumulate over a loop nest of
 * the input, then scale for mean. */
static void lower_reduce(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    const shape *in = &g->nodes[n->in[0]].sh;
    char dim[16], count[64] = "", out_count[64] = "", yidx[160], xidx[160];
    size_t len = 0, olen = 0;
    shape kept = *in;
    for (int i = 0; i < in->rank; i++)
        if (n->axes & (1u << i)) {
            kept.d[i] = 1;
            len += (size_t)snprintf(count + len, sizeof count - len, "%s%s", len ? " * " : "",
                                    emit_dim(in, i, dim, sizeof dim));
        }
    for (int i = 0; i < n->sh.rank; i++)
        olen += (size_t)snprintf(out_count + olen, sizeof out_count - olen, "%s%s", olen ? " * " : "",
                                 emit_dim(&n->sh, i, dim, sizeof dim));
    if (!olen)
        snprintf(out_count, sizeof out_count, "1");
    if (!len) /* no axis reduced (a rank-0 input): a count of one */
        snprintf(count, sizeof count, "1");
    /* a large sum over every axis but the last (a bias gradient) splits its rows across the pool */
    bool rows = g->flavour == CG_HOST && n->op != OP_MAX && in->rank >= 2 && n->axes == (1u << (in->rank - 1)) - 1 &&
                shape_batched(in) && shape_size(in, g->max_batch) >= (1L << 16);
    if (rows) {
        text_printf(e->t, "    /* Y[c] = sum of X[r][c] over its %s rows, split across the threads */\n", count);
        text_printf(e->t, "    cgrt_sum_rows(%s, %s, X, Y);\n", count, out_count);
    } else {
        emit_bcast_index(&kept, in, yidx, sizeof yidx);
        emit_bcast_index(in, in, xidx, sizeof xidx);
        const char *init = n->op == OP_MAX ? "-INFINITY" : "0.0f";
        if (!strcmp(out_count, "1"))
            text_printf(e->t, "    Y[0] = %s;\n", init);
        else
            text_printf(e->t, "    for (int i = 0; i < %s; i++)\n        Y[i] = %s;\n", out_count, init);
        for (int i = 0; i < in->rank; i++)
            text_printf(e->t, "%*sfor (int i%d = 0; i%d < %s; i%d++)\n", 4 * (i + 1), "", i, i,
                        emit_dim(in, i, dim, sizeof dim), i);
        if (n->op == OP_MAX)
            text_printf(e->t, "%*sY[%s] = X[%s] > Y[%s] ? X[%s] : Y[%s];\n", 4 * (in->rank + 1), "", yidx, xidx, yidx,
                        xidx, yidx);
        else
            text_printf(e->t, "%*sY[%s] += X[%s];\n", 4 * (in->rank + 1), "", yidx, xidx);
    }
    if (n->op == OP_MEAN && !strcmp(out_count, "1"))
        text_printf(e->t, "    Y[0] /= (float)(%s);\n", count);
    else if (n->op == OP_MEAN)
        text_printf(e->t, "    for (int i = 0; i < %s; i++)\n        Y[i] /= (float)(%s);\n", out_count, count);
}

/* "y = sum of x over axes {0,1}" */
static bool describe_reduce(emit_ctx *e, int id, const char *const in[3], char *buf, size_t size)
{
    const node *n = &e->g->nodes[id];
    char axes[32] = "";
    size_t len = 0;
    for (int i = 0; i < CG_MAX_RANK; i++)
        if (n->axes & (1u << i))
            len += (size_t)snprintf(axes + len, sizeof axes - len, "%s%d", len ? "," : "", i);
    snprintf(buf, size, "%s = %s of %s over axes {%s}", n->name,
             n->op == OP_SUM    ? "sum"
             : n->op == OP_MEAN ? "mean"
                                : "max",
             in[0], axes);
    return true;
}

/* One operation per input element. */
static long flops_reduce(cg_graph *g, int id)
{
    return shape_size(&g->nodes[g->nodes[id].in[0]].sh, 1);
}

const op_family op_family_reduce = {"reduce", grad_reduce, lower_reduce, flops_reduce, describe_reduce, words_reduce};
