/* ops/movement.c: reshape (a view), 2-D transpose, broadcast, and slicing
 * and concatenation along one axis. */
#include "../cgrad_int.h"

/* Reshape: same number of elements; the batch dimension stays first. */
int op_reshape(cg_graph *g, cg_src src, int x, shape to)
{
    if (x < 0)
        return -1;
    const shape *from = &g->nodes[x].sh;
    if (shape_equal(from, &to) || g->nodes[x].op == OP_CONST) /* constants broadcast to any shape */
        return x;
    char sa[64], sb[64];
    for (int i = 0; i < to.rank; i++)
        if (to.d[i] < 1 && !(i == 0 && to.d[i] == CG_BATCH))
            return graph_error(g, src, g->cur_layer,
                               "cannot reshape %s into %s: dimension %d is %d; sizes must be "
                               "positive (and only the first may be the batch)",
                               shape_str(from, sa, sizeof sa), shape_str(&to, sb, sizeof sb), i, to.d[i]);
    long nfrom = shape_elems(from, 1), nto = shape_elems(&to, 1);
    if (nfrom < 0 || nto < 0)
        return graph_error(g, src, g->cur_layer,
                           "cannot reshape %s into %s: more than %ld elements%s, past the int "
                           "indices of the emitted code",
                           shape_str(from, sa, sizeof sa), shape_str(&to, sb, sizeof sb), ELEMS_MAX,
                           shape_batched(&to) ? " per sample" : "");
    if (shape_batched(from) != shape_batched(&to) || nfrom != nto)
        return graph_error(g, src, g->cur_layer, "cannot reshape %s into %s", shape_str(from, sa, sizeof sa),
                           shape_str(&to, sb, sizeof sb));
    if (g->nodes[x].op == OP_RESHAPE)
        x = g->nodes[x].in[0];
    node nd = {.op = OP_RESHAPE, .nin = 1, .in = {x}, .sh = to, .src = src};
    return node_add(g, &nd);
}

/* Transpose of a rank-2 tensor without a batch dimension. */
int op_transpose(cg_graph *g, cg_src src, int x)
{
    if (x < 0)
        return -1;
    const shape *s = &g->nodes[x].sh;
    char sb[64];
    if (s->rank != 2 || shape_batched(s))
        return graph_error(g, src, g->cur_layer, "transpose needs a rank-2 tensor without a batch dimension, got %s",
                           shape_str(s, sb, sizeof sb));
    node nd = {.op = OP_TRANSPOSE, .nin = 1, .in = {x}, .sh = {2, {s->d[1], s->d[0]}}, .src = src};
    return node_add(g, &nd);
}

/* Broadcast x to shape `to` (numpy rules). Constants stay constants. */
int op_broadcast(cg_graph *g, cg_src src, int x, shape to)
{
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
    return node_add(g, &nd);
}

/* Slice: size elements of x from begin along axis (not the batch axis). */
int op_slice(cg_graph *g, cg_src src, int x, int axis, int begin, int size)
{
    if (x < 0)
        return -1;
    const shape *s = &g->nodes[x].sh;
    char sb[64];
    if (axis < 0 || axis >= s->rank || s->d[axis] == CG_BATCH)
        return graph_error(g, src, g->cur_layer, "slice: axis %d is not a sliceable axis of %s", axis,
                           shape_str(s, sb, sizeof sb));
    if (begin < 0 || size <= 0 || begin > s->d[axis] ||
        size > s->d[axis] - begin) /* no begin + size: it may overflow */
        return graph_error(g, src, g->cur_layer, "slice: [%d, %ld) lies outside axis %d of %s", begin,
                           (long)begin + size, axis, shape_str(s, sb, sizeof sb));
    if (size == s->d[axis])
        return x;
    node nd = {.op = OP_SLICE, .nin = 1, .in = {x}, .sh = *s, .axis = axis, .begin = begin, .src = src};
    nd.sh.d[axis] = size;
    return node_add(g, &nd);
}

/* The gradient of a slice: dy written into zeros of the sliced input's shape. */
static int op_unslice(cg_graph *g, cg_src src, int dy, int axis, int begin, const shape *full)
{
    node nd = {.op = OP_UNSLICE, .nin = 1, .in = {dy}, .sh = *full, .axis = axis, .begin = begin, .src = src};
    return node_add(g, &nd);
}

/* Concatenation of a and b along axis; every other dimension must agree. */
int op_concat(cg_graph *g, cg_src src, int a, int b, int axis)
{
    if (a < 0 || b < 0)
        return -1;
    const shape *sa = &g->nodes[a].sh, *sb = &g->nodes[b].sh;
    char s1[64], s2[64];
    bool ok = sa->rank == sb->rank && axis >= 0 && axis < sa->rank && sa->d[axis] != CG_BATCH;
    for (int i = 0; ok && i < sa->rank; i++)
        ok = i == axis || sa->d[i] == sb->d[i];
    if (!ok)
        return graph_error(g, src, g->cur_layer, "cannot concatenate %s and %s along axis %d",
                           shape_str(sa, s1, sizeof s1), shape_str(sb, s2, sizeof s2), axis);
    node nd = {.op = OP_CONCAT, .nin = 2, .in = {a, b}, .sh = *sa, .axis = axis, .src = src};
    if (!int_add(sa->d[axis], sb->d[axis], &nd.sh.d[axis]))
        return graph_error(g, src, g->cur_layer,
                           "cannot concatenate %s and %s along axis %d: %ld positions, past "
                           "the int sizes of the emitted code",
                           shape_str(sa, s1, sizeof s1), shape_str(sb, s2, sizeof s2), axis,
                           (long)sa->d[axis] + sb->d[axis]);
    return node_add(g, &nd);
}

/* A negative axis counts from the end, as in numpy. */
static int axis_of(cg_t x, int axis)
{
    return axis < 0 ? x.g->nodes[x.id].sh.rank + axis : axis;
}

cg_t cg_slice_at(cg_src src, cg_t x, int axis, int begin, int size)
{
    cg_graph *g = operands_graph(src, "slice", &x, 1);
    if (!g)
        return (cg_t){x.g, -1};
    return (cg_t){g, op_slice(g, src, x.id, axis_of(x, axis), begin, size)};
}

cg_t cg_concat_at(cg_src src, cg_t a, cg_t b, int axis)
{
    cg_graph *g = operands_graph(src, "concatenate", (cg_t[]){a, b}, 2);
    if (!g)
        return (cg_t){a.g ? a.g : b.g, -1};
    return (cg_t){g, op_concat(g, src, a.id, b.id, axis_of(a, axis))};
}

/* Public reshape of a scalar constant (cg_scalar): into rank 0 it stays
 * itself; into a shape of one element it becomes a constant of that shape.
 * Internally a scalar broadcasts to any shape, but a user asking for (1)
 * gets (1). Any other shape is an error naming both. */
static int reshape_scalar(cg_graph *g, cg_src src, int x, shape to)
{
    const node *c = &g->nodes[x];
    char sa[64], sb[64];
    if (to.rank == 0)
        return x;
    if (c->per_n || shape_batched(&to) || shape_elems(&to, 1) != 1)
        return graph_error(g, src, g->cur_layer, "cannot reshape %s into %s: a scalar has 1 element, the shape %s",
                           shape_str(&c->sh, sa, sizeof sa), shape_str(&to, sb, sizeof sb),
                           shape_batched(&to) ? "has a batch dimension" : "holds another count");
    float v = c->alpha;
    return op_constant(g, src, NULL, to, &v);
}

cg_t cg_reshape_at(cg_src src, cg_t x, cg_shape s)
{
    cg_graph *g = operands_graph(src, "reshape", &x, 1);
    if (!g)
        return (cg_t){x.g, -1};
    shape to = {s.rank, {0}};
    if (s.rank < 0 || s.rank > CG_MAX_RANK)
        return (cg_t){g, graph_error(g, src, g->cur_layer, "reshape: rank %d is not supported", s.rank)};
    for (int i = 0; i < s.rank; i++)
        to.d[i] = s.dims[i];
    if (g->nodes[x.id].op == OP_CONST)
        return (cg_t){g, reshape_scalar(g, src, x.id, to)};
    return (cg_t){g, op_reshape(g, src, x.id, to)};
}

cg_t cg_transpose_at(cg_src src, cg_t x)
{
    cg_graph *g = operands_graph(src, "transpose", &x, 1);
    if (!g)
        return (cg_t){x.g, -1};
    return (cg_t){g, op_transpose(g, src, x.id)};
}

/* Gradients: reshape back, transpose back, sum back; a slice's gradient is
 * put back in place among zeros; a concatenation's is sliced apart. */
static int grad_movement(cg_graph *g, int id, int dy, int dx[3])
{
    node n = g->nodes[id];
    const shape xs = g->nodes[n.in[0]].sh;
    switch (n.op) {
    case OP_RESHAPE: dx[0] = op_reshape(g, n.src, dy, xs); break;
    case OP_TRANSPOSE: dx[0] = op_transpose(g, n.src, dy); break;
    case OP_BROADCAST: dx[0] = grad_unbroadcast(g, dy, &xs); break;
    case OP_SLICE: dx[0] = op_unslice(g, n.src, dy, n.axis, n.begin, &xs); break;
    case OP_CONCAT:
        dx[0] = op_slice(g, n.src, dy, n.axis, 0, xs.d[n.axis]);
        dx[1] = op_slice(g, n.src, dy, n.axis, xs.d[n.axis], g->nodes[n.in[1]].sh.d[n.axis]);
        break;
    default: return graph_error(g, n.src, n.layer, "no gradient rule for %s", op_table[n.op].name);
    }
    return g->failed ? -1 : 0;
}

/* grad_movement's rules in words. */
static bool words_movement(cg_graph *g, int id, unsigned inputs, char *buf, size_t size)
{
    const node *n = &g->nodes[id];
    char sb[64];
    int a = n->axis, begin = n->begin, split = g->nodes[n->in[0]].sh.d[a];
    buf[0] = 0;
    switch (n->op) {
    case OP_RESHAPE:
        snprintf(buf, size, "dX = dY viewed as %s (no copy)", shape_str(&g->nodes[n->in[0]].sh, sb, sizeof sb));
        break;
    case OP_TRANSPOSE: snprintf(buf, size, "dX = dY^T"); break;
    case OP_BROADCAST: snprintf(buf, size, "dX = dY, summed over the axes where X was broadcast"); break;
    case OP_SLICE:
        snprintf(buf, size, "dX = zeros, with dY written at [%d, %d) along axis %d", begin, begin + n->sh.d[a], a);
        break;
    case OP_CONCAT:
        if (inputs & 1)
            words_term(buf, size, "dA = dY[0, %d) along axis %d", split, a);
        if (inputs >> 1 & 1)
            words_term(buf, size, "dB = dY[%d, %d) along axis %d", split, n->sh.d[a], a);
        break;
    default: return false;
    }
    return (inputs & 1 || n->op == OP_CONCAT) && buf[0];
}

/* The rows of an axis: the product of the dimensions before it, as C text
 * ("n * 12", "n", "4"). */
const char *outer_rows(const shape *s, int axis, char *buf, size_t size)
{
    long fixed = 1;
    bool batched = false;
    for (int i = 0; i < axis; i++) {
        if (s->d[i] == CG_BATCH)
            batched = true;
        else
            fixed *= s->d[i];
    }
    if (batched && fixed > 1)
        snprintf(buf, size, "n * %ld", fixed);
    else if (batched)
        snprintf(buf, size, "n");
    else
        snprintf(buf, size, "%ld", fixed);
    return buf;
}

/* "r * width + j" with an offset added when it is not 0. */
static const char *idx(char *buf, size_t size, long width, long offset)
{
    if (offset)
        snprintf(buf, size, "r * %ld + j %c %ld", width, offset < 0 ? '-' : '+', offset < 0 ? -offset : offset);
    else
        snprintf(buf, size, "r * %ld + j", width);
    return buf;
}

/* Slicing and concatenation, seen as rows (the axes before `axis`) of
 * blocks (that axis and the ones after it, contiguous). */
static void lower_slice_concat(emit_ctx *e, int id)
{
    const node *n = &e->g->nodes[id];
    const shape *xs = &e->g->nodes[n->in[0]].sh;
    long inner = 1;
    for (int i = n->axis + 1; i < n->sh.rank; i++)
        inner *= n->sh.d[i];
    char rows[48], a[96], b[96], ia[64], ib[64];
    outer_rows(&n->sh, n->axis, rows, sizeof rows);
    long out_w = n->sh.d[n->axis] * inner, in_w = xs->d[n->axis] * inner;
    switch (n->op) {
    case OP_SLICE:
        text_printf(e->t,
                    "    for (int r = 0; r < %s; r++)\n"
                    "        for (int j = 0; j < %ld; j++)\n"
                    "            Y[r * %ld + j] = %s;\n",
                    rows, out_w, out_w,
                    emit_input(e, id, 0, idx(ia, sizeof ia, in_w, (long)n->begin * inner), a, sizeof a));
        break;
    case OP_UNSLICE:
        text_printf(e->t,
                    "    for (int r = 0; r < %s; r++)\n"
                    "        for (int j = 0; j < %ld; j++) /* zeros outside [%ld, %ld) */\n"
                    "            Y[r * %ld + j] = j >= %ld && j < %ld ? %s : 0.0f;\n",
                    rows, out_w, (long)n->begin * inner, (long)n->begin * inner + in_w, out_w, (long)n->begin * inner,
                    (long)n->begin * inner + in_w,
                    emit_input(e, id, 0, idx(ia, sizeof ia, in_w, -(long)n->begin * inner), a, sizeof a));
        break;
    default: { /* CONCAT */
        long bw = e->g->nodes[n->in[1]].sh.d[n->axis] * inner;
        text_printf(e->t,
                    "    for (int r = 0; r < %s; r++) {\n"
                    "        for (int j = 0; j < %ld; j++)\n"
                    "            Y[r * %ld + j] = %s;\n"
                    "        for (int j = 0; j < %ld; j++)\n"
                    "            Y[r * %ld + %ld + j] = %s;\n"
                    "    }\n",
                    rows, in_w, out_w, emit_input(e, id, 0, idx(ia, sizeof ia, in_w, 0), a, sizeof a), bw, out_w, in_w,
                    emit_input(e, id, 1, idx(ib, sizeof ib, bw, 0), b, sizeof b));
    }
    }
}

/* Lowers transpose, slice and concatenation (reshape needs no code;
 * broadcast is elementwise). */
static void lower_movement(emit_ctx *e, int id)
{
    const node *n = &e->g->nodes[id];
    if (n->op == OP_BROADCAST) {
        lower_elementwise(e, id);
        return;
    }
    if (n->op != OP_TRANSPOSE) {
        lower_slice_concat(e, id);
        return;
    }
    int rows = n->sh.d[1], cols = n->sh.d[0];
    text_printf(e->t,
                "    for (int i = 0; i < %d; i++)\n"
                "        for (int j = 0; j < %d; j++)\n"
                "            Y[j * %d + i] = X[i * %d + j];\n",
                rows, cols, rows, cols);
}

/* Movement only moves data: no operations to count, the formula for a banner. */
const op_family op_family_movement = {"movement", grad_movement, lower_movement, NULL, NULL, words_movement};
