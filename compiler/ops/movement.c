/* ops/movement.c: reshape (a view), 2-D transpose and broadcast. */
#include "../cgrad_int.h"

/* Reshape: same number of elements; the batch dimension stays first. */
int op_reshape(cg_graph *g, cg_src src, int x, shape to) {
    if (x < 0)
        return -1;
    const shape *from = &g->nodes[x].sh;
    if (shape_equal(from, &to) || g->nodes[x].op == OP_CONST)   /* constants broadcast to any shape */
        return x;
    char sa[64], sb[64];
    if (shape_batched(from) != shape_batched(&to) || shape_size(from, 1) != shape_size(&to, 1))
        return graph_error(g, src, g->cur_layer, "cannot reshape %s into %s", shape_str(from, sa, sizeof sa),
                           shape_str(&to, sb, sizeof sb));
    if (g->nodes[x].op == OP_RESHAPE)
        x = g->nodes[x].in[0];
    node nd = {.op = OP_RESHAPE, .nin = 1, .in = {x}, .sh = to, .src = src};
    return graph_add(g, nd);
}

/* Transpose of a rank-2 tensor without a batch dimension. */
int op_transpose(cg_graph *g, cg_src src, int x) {
    if (x < 0)
        return -1;
    const shape *s = &g->nodes[x].sh;
    char sb[64];
    if (s->rank != 2 || shape_batched(s))
        return graph_error(g, src, g->cur_layer, "transpose needs a rank-2 tensor without a batch dimension, got %s",
                           shape_str(s, sb, sizeof sb));
    node nd = {.op = OP_TRANSPOSE, .nin = 1, .in = {x}, .sh = {2, {s->d[1], s->d[0]}}, .src = src};
    return graph_add(g, nd);
}

/* Broadcast x to shape `to` (numpy rules). Constants stay constants. */
int op_broadcast(cg_graph *g, cg_src src, int x, shape to) {
    if (x < 0)
        return -1;
    if (g->nodes[x].op == OP_CONST)
        return x;
    shape r;
    char sa[64], sb[64];
    if (!shape_broadcast(&g->nodes[x].sh, &to, &r) || !shape_equal(&r, &to))
        return graph_error(g, src, g->cur_layer, "cannot broadcast %s to %s", shape_str(&g->nodes[x].sh, sa, sizeof sa),
                           shape_str(&to, sb, sizeof sb));
    if (shape_equal(&g->nodes[x].sh, &to))
        return x;
    node nd = {.op = OP_BROADCAST, .nin = 1, .in = {x}, .sh = to, .src = src};
    return graph_add(g, nd);
}

cg_t cg_reshape_at(cg_src src, cg_t x, cg_shape s) {
    if (!x.g || x.g->failed || x.id < 0)
        return (cg_t){x.g, -1};
    shape to = {s.rank, {0}};
    if (s.rank < 0 || s.rank > CG_MAX_RANK)
        return (cg_t){x.g, graph_error(x.g, src, x.g->cur_layer, "reshape: rank %d is not supported", s.rank)};
    for (int i = 0; i < s.rank; i++)
        to.d[i] = s.dims[i];
    return (cg_t){x.g, op_reshape(x.g, src, x.id, to)};
}

cg_t cg_transpose_at(cg_src src, cg_t x) {
    if (!x.g || x.g->failed || x.id < 0)
        return (cg_t){x.g, -1};
    return (cg_t){x.g, op_transpose(x.g, src, x.id)};
}

/* Gradients: reshape back, transpose back, sum back. */
int grad_movement(cg_graph *g, int id, int dy, int dx[3]) {
    node n = g->nodes[id];
    const shape xs = g->nodes[n.in[0]].sh;
    switch (n.op) {
    case OP_RESHAPE: dx[0] = op_reshape(g, n.src, dy, xs); break;
    case OP_TRANSPOSE: dx[0] = op_transpose(g, n.src, dy); break;
    case OP_BROADCAST: dx[0] = grad_unbroadcast(g, dy, &xs); break;
    default: return graph_error(g, n.src, n.layer, "no gradient rule for %s", op_table[n.op].name);
    }
    return g->failed ? -1 : 0;
}

/* Lowers transpose (reshape needs no code; broadcast is elementwise). */
void lower_movement(emit_ctx *e, int id) {
    const node *n = &e->g->nodes[id];
    if (n->op == OP_BROADCAST) {
        lower_elementwise(e, id);
        return;
    }
    int rows = n->sh.d[1], cols = n->sh.d[0];
    text_printf(e->t,
                "    for (int i = 0; i < %d; i++)\n"
                "        for (int j = 0; j < %d; j++)\n"
                "            Y[j * %d + i] = X[i * %d + j];\n",
                rows, cols, rows, cols);
}
