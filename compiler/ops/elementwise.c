/* ops/elementwise.c: unary and binary elementwise ops with numpy
 * broadcasting: shape rules, gradient rules and the loop lowering. */
#include "../cgrad_int.h"

#include <math.h>
#include <string.h>

/* Makes a constant (a scalar, broadcast wherever it is used). */
int op_const(cg_graph *g, float value, bool per_n)
{
    node nd = {.op = OP_CONST, .alpha = value, .per_n = per_n, .sh = shape_scalar()};
    char buf[64];
    snprintf(buf, sizeof buf, "const_%d", g->nnodes);
    nd.name = arena_strdup(&g->a, buf);
    return graph_add(g, nd);
}

/* True when id is a constant with value v (not per_n). */
static bool is_const(cg_graph *g, int id, float v)
{
    return g->nodes[id].op == OP_CONST && !g->nodes[id].per_n && g->nodes[id].alpha == v;
}

/* Unary elementwise op: the shape of x. */
int op_unary(cg_graph *g, cg_src src, op_kind op, int x)
{
    if (x < 0)
        return -1;
    if (op == OP_SOFTMAX || op == OP_LOG_SOFTMAX) {
        if (g->nodes[x].sh.rank < 1)
            return graph_error(g, src, g->cur_layer, "%s needs a tensor of rank 1 or more, got a scalar",
                               op == OP_SOFTMAX ? "softmax" : "log_softmax");
    }
    node nd = {.op = op, .nin = 1, .in = {x}, .sh = g->nodes[x].sh, .src = src};
    if (g->nodes[x].op == OP_CONST && op == OP_NEG)
        return op_const(g, -g->nodes[x].alpha, g->nodes[x].per_n);
    return node_add(g, &nd);
}

/* Binary elementwise op with broadcasting; folds constants and identities
 * (x * 1, x + 0) so gradient graphs stay small. */
int op_binary(cg_graph *g, cg_src src, op_kind op, int a, int b)
{
    if (a < 0 || b < 0)
        return -1;
    node nd = {.op = op, .nin = 2, .in = {a, b}, .src = src};
    if (!shape_broadcast(&g->nodes[a].sh, &g->nodes[b].sh, &nd.sh)) {
        char sa[64], sb[64];
        return graph_error(g, src, g->cur_layer, "%s: shapes %s and %s do not broadcast", op_table[op].name,
                           shape_str(&g->nodes[a].sh, sa, sizeof sa), shape_str(&g->nodes[b].sh, sb, sizeof sb));
    }
    node *na = &g->nodes[a], *nb = &g->nodes[b];
    if (na->op == OP_CONST && nb->op == OP_CONST && !na->per_n && !nb->per_n) {
        float x = na->alpha, y = nb->alpha;
        switch (op) {
        case OP_ADD: return op_const(g, x + y, false);
        case OP_SUB: return op_const(g, x - y, false);
        case OP_MUL: return op_const(g, x * y, false);
        case OP_DIV: return op_const(g, x / y, false);
        default: break;
        }
    }
    if (op == OP_MUL && na->op == OP_CONST && nb->op == OP_CONST && (!na->per_n || !nb->per_n))
        return op_const(g, na->alpha * nb->alpha, true);
    if ((op == OP_MUL && is_const(g, b, 1.0f)) || ((op == OP_ADD || op == OP_SUB) && is_const(g, b, 0.0f)))
        if (shape_equal(&nd.sh, &g->nodes[a].sh))
            return a;
    if ((op == OP_MUL && is_const(g, a, 1.0f)) || (op == OP_ADD && is_const(g, a, 0.0f)))
        if (shape_equal(&nd.sh, &g->nodes[b].sh))
            return b;
    return node_add(g, &nd);
}

/* where(c, a, b): all three broadcast together. */
int op_where(cg_graph *g, cg_src src, int c, int a, int b)
{
    if (c < 0 || a < 0 || b < 0)
        return -1;
    node nd = {.op = OP_WHERE, .nin = 3, .in = {c, a, b}, .src = src};
    shape ab;
    if (!shape_broadcast(&g->nodes[a].sh, &g->nodes[b].sh, &ab) || !shape_broadcast(&g->nodes[c].sh, &ab, &nd.sh)) {
        char s1[64], s2[64], s3[64];
        return graph_error(g, src, g->cur_layer, "where: shapes %s, %s and %s do not broadcast",
                           shape_str(&g->nodes[c].sh, s1, sizeof s1), shape_str(&g->nodes[a].sh, s2, sizeof s2),
                           shape_str(&g->nodes[b].sh, s3, sizeof s3));
    }
    return node_add(g, &nd);
}

/* ---- public builders ------------------------------------------------------- */

/* Public: a scalar constant. */
cg_t cg_scalar_at(cg_src src, cg_graph *g, float value)
{
    (void)src;
    if (!g || g->failed)
        return (cg_t){g, -1};
    return (cg_t){g, op_const(g, value, false)};
}

/* Each public op code's graph op and entry point, from the one list in cgrad.h. */
static const struct {
    op_kind op;
    public_kind kind;
} public_ops[] = {
#define PUBLIC_OP(name, kind) [CG_OP_##name] = {OP_##name, PUBLIC_##kind},
    CG_PUBLIC_OPS(PUBLIC_OP)
#undef PUBLIC_OP
};

/* The op code's name for messages: "ADD", or its number when it is none. */
static const char *code_name(cg_op_code op, char *buf, size_t size)
{
    if ((unsigned)op < sizeof public_ops / sizeof public_ops[0])
        return op_table[public_ops[op].op].name;
    snprintf(buf, size, "op code %d", (int)op);
    return buf;
}

/* The graph op of public op code op when the entry point `kind` takes it, else -1. */
int op_from_public(cg_op_code op, public_kind kind)
{
    if ((unsigned)op >= sizeof public_ops / sizeof public_ops[0] || public_ops[op].kind != kind)
        return -1;
    return (int)public_ops[op].op;
}

cg_t cg_binary_at(cg_src src, cg_op_code op, cg_t a, cg_t b)
{
    char buf[32];
    const char *name = code_name(op, buf, sizeof buf);
    cg_graph *g = operands_graph(src, name, (cg_t[]){a, b}, 2);
    if (!g)
        return (cg_t){a.g, -1};
    int kind = op_from_public(op, PUBLIC_BINARY);
    if (kind < 0)
        return (cg_t){g, graph_error(g, src, g->cur_layer, "cg_binary_at: %s is not a binary op", name)};
    return (cg_t){g, op_binary(g, src, (op_kind)kind, a.id, b.id)};
}

cg_t cg_unary_at(cg_src src, cg_op_code op, cg_t x)
{
    char buf[32];
    const char *name = code_name(op, buf, sizeof buf);
    cg_graph *g = operands_graph(src, name, &x, 1);
    if (!g)
        return (cg_t){x.g, -1};
    int kind = op_from_public(op, PUBLIC_UNARY);
    if (kind < 0)
        return (cg_t){g, graph_error(g, src, g->cur_layer, "cg_unary_at: %s is not a unary op", name)};
    return (cg_t){g, op_unary(g, src, (op_kind)kind, x.id)};
}

cg_t cg_where_at(cg_src src, cg_t c, cg_t a, cg_t b)
{
    cg_graph *g = operands_graph(src, "WHERE", (cg_t[]){c, a, b}, 3);
    if (!g)
        return (cg_t){a.g, -1};
    return (cg_t){g, op_where(g, src, c.id, a.id, b.id)};
}


/* ---- gradient rules --------------------------------------------------------- */

/* Gradient of an elementwise op: one rule per op, each returning the
 * vector-Jacobian product for each input, summed back over broadcasting. */
static int grad_elementwise(cg_graph *g, int id, int dy, int dx[3])
{
    node n = g->nodes[id];
    cg_src s = n.src;
    int a = n.in[0], b = n.in[1];
    int zero = op_const(g, 0.0f, false);
    switch (n.op) {
    case OP_NEG: dx[0] = op_unary(g, s, OP_NEG, dy); break;
    case OP_EXP: dx[0] = op_binary(g, s, OP_MUL, dy, id); break; /* dy e^x */
    case OP_LOG: dx[0] = op_binary(g, s, OP_DIV, dy, a); break;  /* dy / x */
    case OP_SQRT:                                                /* dy / (2 sqrt x) */
        dx[0] = op_binary(g, s, OP_DIV, op_binary(g, s, OP_MUL, dy, op_const(g, 0.5f, false)), id);
        break;
    case OP_SQUARE: /* 2 x dy */
        dx[0] = op_binary(g, s, OP_MUL, dy, op_binary(g, s, OP_MUL, a, op_const(g, 2.0f, false)));
        break;
    case OP_ABS: dx[0] = op_binary(g, s, OP_MUL, dy, op_unary(g, s, OP_SIGN, a)); break; /* sign(x) dy */
    case OP_SIGN:
    case OP_GREATER:
    case OP_LESS:
    case OP_EQUAL: break; /* piecewise constant */
    case OP_TANH:
    case OP_SIGMOID:
    case OP_RELU:
    case OP_LEAKY_RELU:
    case OP_ACT: /* dy act'(.) */ dx[0] = op_act_grad(g, id, dy); break;
    case OP_ADD:
        dx[0] = dy;
        dx[1] = dy;
        break;
    case OP_SUB:
        dx[0] = dy;
        dx[1] = op_unary(g, s, OP_NEG, dy);
        break;
    case OP_MUL:
        dx[0] = op_binary(g, s, OP_MUL, dy, b);
        dx[1] = op_binary(g, s, OP_MUL, dy, a);
        break;
    case OP_DIV: /* dy / b, -dy a / b^2 */
        dx[0] = op_binary(g, s, OP_DIV, dy, b);
        dx[1] = op_unary(g, s, OP_NEG, op_binary(g, s, OP_DIV, op_binary(g, s, OP_MUL, dy, id), b));
        break;
    case OP_MAXIMUM:
    case OP_MINIMUM: { /* to the winner; ties to a */
        int b_wins = op_binary(g, s, n.op == OP_MAXIMUM ? OP_LESS : OP_GREATER, a, b);
        dx[0] = op_where(g, s, b_wins, zero, dy);
        dx[1] = op_where(g, s, b_wins, dy, zero);
        break;
    }
    case OP_WHERE:
        dx[1] = op_where(g, s, a, dy, zero);
        dx[2] = op_where(g, s, a, zero, dy);
        break;
    case OP_SIGMOID_BCE: /* dy (sigmoid(z) - t) */
        dx[0] = op_binary(g, s, OP_MUL, dy, op_binary(g, s, OP_SUB, op_unary(g, s, OP_SIGMOID, a), b));
        dx[1] = op_binary(g, s, OP_MUL, dy, op_unary(g, s, OP_NEG, a));
        break;
    default: return graph_error(g, s, n.layer, "no gradient rule for %s", op_table[n.op].name);
    }
    for (int i = 0; i < n.nin; i++)
        if (dx[i] >= 0)
            dx[i] = grad_unbroadcast(g, dx[i], &g->nodes[n.in[i]].sh);
    return g->failed ? -1 : 0;
}

/* grad_elementwise's rules in words, one row per case there, in the kernel's
 * names (ops.def): the gradient of each input from dY, the output's. */
static const struct {
    op_kind op;
    const char *d[3]; /* of inputs 0, 1, 2; NULL: none */
} elem_words[] = {
    {OP_NEG, {"-dY"}},
    {OP_EXP, {"dY * Y"}},
    {OP_LOG, {"dY / X"}},
    {OP_SQRT, {"dY * 0.5 / Y"}},
    {OP_SQUARE, {"dY * 2 X"}},
    {OP_ABS, {"dY * sign(X)"}},
    {OP_ADD, {"dY", "dY"}},
    {OP_SUB, {"dY", "-dY"}},
    {OP_MUL, {"dY * B", "dY * A"}},
    {OP_DIV, {"dY / B", "-dY * Y / B"}},
    {OP_MAXIMUM, {"A < B ? 0 : dY", "A < B ? dY : 0"}},
    {OP_MINIMUM, {"A > B ? 0 : dY", "A > B ? dY : 0"}},
    {OP_WHERE, {NULL, "C != 0 ? dY : 0", "C != 0 ? 0 : dY"}},
    {OP_SIGMOID_BCE, {"dY * (sigmoid(Z) - T)", "-dY * Z"}},
};

/* The words of node id's rule for the inputs whose bit is set: "dA = dY;
 * dB = dY, summed over the axes where B was broadcast". */
static bool words_elementwise(cg_graph *g, int id, unsigned inputs, char *buf, size_t size)
{
    const node *n = &g->nodes[id];
    char act[ACT_TEXT_MAX], an[16];
    const char *d[3] = {NULL, NULL, NULL};
    cg_activation a = act_of_node(n);
    if (a != CG_LINEAR) { /* dy act'(.), from the activation's row */
        if (!act_grad_words(a, n->alpha, act_table[a].from == ACT_FROM_X ? "X" : "Y", act, sizeof act))
            return false;
        d[0] = act;
    }
    for (size_t r = 0; r < sizeof elem_words / sizeof elem_words[0]; r++)
        if (elem_words[r].op == n->op)
            memcpy(d, elem_words[r].d, sizeof d);
    buf[0] = 0;
    for (int k = 0; k < n->nin; k++) {
        if (!(inputs >> k & 1) || !d[k])
            continue;
        kernel_arg_name(n, k, an, sizeof an);
        if (shape_equal(&g->nodes[n->in[k]].sh, &n->sh))
            words_term(buf, size, "d%s = %s", an, d[k]);
        else /* grad_unbroadcast */
            words_term(buf, size, "d%s = %s, summed over the axes where %s was broadcast", an, d[k], an);
    }
    return buf[0] != 0;
}

/* ---- lowering ------------------------------------------------------------------ */

/* The C expression of node id's value from its input expressions. */
static void elem_expr(emit_ctx *e, const node *n, const char *in[3], char *out, size_t size)
{
    const char *a = in[0], *b = in[1], *c = in[2];
    switch (n->op) {
    case OP_NEG: snprintf(out, size, "-%s", a); break;
    case OP_EXP: snprintf(out, size, "expf(%s)", a); break;
    case OP_LOG: snprintf(out, size, "logf(%s)", a); break;
    case OP_SQRT: snprintf(out, size, "sqrtf(%s)", a); break;
    case OP_SQUARE: snprintf(out, size, "%s * %s", a, a); break;
    case OP_ABS: snprintf(out, size, "fabsf(%s)", a); break;
    case OP_SIGN: snprintf(out, size, "(float)((%s > 0.0f) - (%s < 0.0f))", a, a); break;
    case OP_TANH:
    case OP_SIGMOID:
    case OP_RELU:
    case OP_LEAKY_RELU:
    case OP_ACT: /* activations.def */
        if (!emit_act_forward(act_of_node(n), n->alpha, a, out, size))
            graph_error(e->g, n->src, n->layer, "internal: the %s text does not fit", emit_act_name(act_of_node(n)));
        break;
    case OP_ADD: snprintf(out, size, "%s + %s", a, b); break;
    case OP_SUB: snprintf(out, size, "%s - %s", a, b); break;
    case OP_MUL: snprintf(out, size, "%s * %s", a, b); break;
    case OP_DIV: snprintf(out, size, "%s / %s", a, b); break;
    case OP_MAXIMUM: snprintf(out, size, "fmaxf(%s, %s)", a, b); break;
    case OP_MINIMUM: snprintf(out, size, "fminf(%s, %s)", a, b); break;
    case OP_GREATER: snprintf(out, size, "%s > %s ? 1.0f : 0.0f", a, b); break;
    case OP_LESS: snprintf(out, size, "%s < %s ? 1.0f : 0.0f", a, b); break;
    case OP_EQUAL: snprintf(out, size, "%s == %s ? 1.0f : 0.0f", a, b); break;
    case OP_WHERE: snprintf(out, size, "%s != 0.0f ? %s : %s", a, b, c); break;
    case OP_SIGMOID_BCE: snprintf(out, size, "fmaxf(%s, 0.0f) - %s * %s + log1pf(expf(-fabsf(%s)))", a, a, b, a); break;
    case OP_BROADCAST: snprintf(out, size, "%s", a); break;
    case OP_ACT_BWD:
    case OP_ACT_BWD_X:
        if (!emit_act_grad(n->act, n->alpha, a, b, out, size))
            graph_error(e->g, n->src, n->layer, "internal: the %s' text does not fit", emit_act_name(n->act));
        break;
    default: snprintf(out, size, "0.0f /* no lowering for %s */", op_table[n->op].name); break;
    }
}

/* True when node id's kernel is one flat loop: no input is broadcast. */
bool elementwise_flat(cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    for (int k = 0; k < n->nin; k++) {
        const node *in = &g->nodes[n->in[k]];
        if (in->op != OP_CONST && shape_size(&in->sh, 2) != shape_size(&n->sh, 2))
            return false;
    }
    return true;
}

/* Lowers an elementwise op (and BROADCAST) to one flat loop when no input is
 * broadcast, else to a loop nest with one index expression per input. In a
 * host kernel split across the pool (part 1) the flat loop covers [lo, hi). */
void lower_elementwise(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    bool flat = elementwise_flat(g, id);
    char idx[3][128], ebuf[3][160], expr[ACT_TEXT_MAX], dim[16];
    const char *ins[3] = {NULL, NULL, NULL};
    if (flat) {
        char count[64] = "";
        size_t len = 0;
        for (int i = 0; i < n->sh.rank; i++)
            len += (size_t)snprintf(count + len, sizeof count - len, "%s%s", i ? " * " : "",
                                    emit_dim(&n->sh, i, dim, sizeof dim));
        if (n->sh.rank == 0)
            snprintf(count, sizeof count, "1");
        for (int k = 0; k < n->nin; k++)
            ins[k] = emit_input(e, id, k, "i", ebuf[k], sizeof ebuf[k]);
        elem_expr(e, n, ins, expr, sizeof expr);
        if (e->part == 1)
            text_printf(e->t, "    for (long i = lo; i < hi; i++)\n        Y[i] = %s;\n", expr);
        else
            text_printf(e->t, "    for (int i = 0; i < %s; i++)\n        Y[i] = %s;\n", count, expr);
        return;
    }
    for (int k = 0; k < n->nin; k++) {
        emit_bcast_index(&g->nodes[n->in[k]].sh, &n->sh, idx[k], sizeof idx[k]);
        ins[k] = emit_input(e, id, k, idx[k], ebuf[k], sizeof ebuf[k]);
    }
    char yidx[128];
    emit_bcast_index(&n->sh, &n->sh, yidx, sizeof yidx);
    elem_expr(e, n, ins, expr, sizeof expr);
    for (int i = 0; i < n->sh.rank; i++)
        text_printf(e->t, "%*sfor (int i%d = 0; i%d < %s; i%d++)\n", 4 * (i + 1), "", i, i,
                    emit_dim(&n->sh, i, dim, sizeof dim), i);
    text_printf(e->t, "%*sY[%s] = %s;\n", 4 * (n->sh.rank + 1), "", yidx, expr);
}

/* One line for the banner of ACT, ACT_BWD and ACT_BWD_X, in buffer names, naming the activation; false for
 * the other ops (their formula). */
static bool describe_elementwise(emit_ctx *e, int id, const char *const in[3], char *buf, size_t size)
{
    const node *n = &e->g->nodes[id];
    if (n->op == OP_ACT)
        snprintf(buf, size, "%s = %s(%s)", n->name, emit_act_name(n->act), in[0]);
    else if (n->op == OP_ACT_BWD || n->op == OP_ACT_BWD_X)
        snprintf(buf, size, "%s = %s * %s'(.), from the %s %s", n->name, in[1], emit_act_name(n->act),
                 n->op == OP_ACT_BWD ? "output" : "input", in[0]);
    else
        return false;
    return true;
}

/* One operation per output element. */
static long flops_elementwise(cg_graph *g, int id)
{
    return shape_size(&g->nodes[id].sh, 1);
}

const op_family op_family_elementwise = {"elementwise",     grad_elementwise,     lower_elementwise,
                                         flops_elementwise, describe_elementwise, words_elementwise};
