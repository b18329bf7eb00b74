/* ops/activation.c: the activations of compiler/activations.def. The table
 * itself, the builders that apply one (op_activation, cg_act, cg_leaky_relu),
 * the gradient op each gets, and the C text every kernel writes them with:
 * the row's forward or derivative with its operands put in. The ops are
 * elementwise (ops/elementwise.c lowers them); relu, sigmoid, tanh and leaky
 * relu keep the ops they had before the table (RELU, ...), every other
 * activation is one ACT node that names its row. */
#include "../cgrad_int.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

const act_info act_table[ACT_COUNT] = {
#define CG_ACT(name, member, from, alpha, forward, derivative, cell_host, doc) \
    {#name, forward, derivative, cell_host, ACT_FROM_##from, alpha},
#include "../activations.def"
#undef CG_ACT
};

/* ---- C text ------------------------------------------------------------------ */

/* Writes template t into out[size] with every whole identifier among the
 * keys of kv (a NULL-terminated key/value list) replaced by its value;
 * numbers (0.5f, 1e-3f) are copied as they are. Returns out, or NULL when
 * the text does not fit. */
static const char *act_expand(const char *t, const char *const *kv, char *out, size_t size)
{
    size_t len = 0;
    while (*t) {
        const char *start = t;
        const char *value = NULL;
        size_t n;
        if (isdigit((unsigned char)*t) || (*t == '.' && isdigit((unsigned char)t[1]))) { /* a number */
            for (t++; isalnum((unsigned char)*t) || *t == '.' || *t == '_' ||
                      ((*t == '-' || *t == '+') && strchr("eEpP", t[-1]));
                 t++)
                ;
        } else if (isalpha((unsigned char)*t) || *t == '_') { /* an identifier */
            for (t++; isalnum((unsigned char)*t) || *t == '_'; t++)
                ;
            for (int k = 0; kv[k]; k += 2)
                if (strlen(kv[k]) == (size_t)(t - start) && !strncmp(kv[k], start, (size_t)(t - start)))
                    value = kv[k + 1];
        } else {
            t++;
        }
        if (!value)
            value = start;
        n = value == start ? (size_t)(t - start) : strlen(value);
        if (len + n >= size)
            return NULL;
        memcpy(out + len, value, n);
        len += n;
    }
    out[len] = 0;
    return out;
}

/* True when C expression e has an operator that binds less tightly than *
 * outside parentheses (+, -, comparisons, ?:, logic), so that "k * e" would
 * not multiply all of it. */
static bool loose(const char *e)
{
    int depth = 0;
    for (const char *p = e; *p; p++) {
        if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) { /* skip 1e-3f */
            while (isalnum((unsigned char)p[1]) || p[1] == '.' || ((p[1] == '-' || p[1] == '+') && strchr("eE", *p)))
                p++;
            continue;
        }
        depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
        if (depth == 0 && strchr("+-<>=!?:&|", *p))
            return true;
    }
    return false;
}

/* Puts e in parentheses in place (buf[size] holds it) when it is loose;
 * returns buf, or NULL when that does not fit. */
static const char *as_factor(char *buf, size_t size)
{
    size_t len = strlen(buf);
    if (!loose(buf))
        return buf;
    if (len + 3 > size)
        return NULL;
    memmove(buf + 1, buf, len);
    buf[0] = '(';
    buf[len + 1] = ')';
    buf[len + 2] = 0;
    return buf;
}

/* The known activation a's row, or NULL. */
static const act_info *row_of(cg_activation a)
{
    return (unsigned)a < ACT_COUNT ? &act_table[a] : NULL;
}

/* The epilogue expression applying activation act to v; returns its name
 * (NULL when the text does not fit out). */
const char *emit_activation(cg_activation act, float alpha, char *out, size_t size)
{
    const act_info *r = row_of(act);
    char al[32];
    emit_float(alpha, al, sizeof al);
    const char *kv[] = {"v", "v", "alpha", al, NULL};
    if (!r || r->from == ACT_FROM_ROW) /* never fused into an epilogue */
        r = &act_table[CG_LINEAR];
    return act_expand(r->forward, kv, out, size) ? r->name : NULL;
}

/* The value of activation act applied to the C expression x; NULL when it does not fit. */
const char *emit_act_forward(cg_activation act, float alpha, const char *x, char *out, size_t size)
{
    const act_info *r = row_of(act);
    char al[32];
    emit_float(alpha, al, sizeof al);
    const char *kv[] = {"v", x, "alpha", al, NULL};
    return r && r->forward ? act_expand(r->forward, kv, out, size) : NULL;
}

/* The C expression of dy * act'(.), written with `at`: the activation's
 * output y or its input x, as its row says. NULL when it does not fit. */
const char *emit_act_grad(cg_activation act, float alpha, const char *at, const char *dy, char *out, size_t size)
{
    const act_info *r = row_of(act);
    char al[32];
    emit_float(alpha, al, sizeof al);
    const char *kv[] = {"y", at, "x", at, "dy", dy, "alpha", al, NULL};
    if (!r || r->from == ACT_FROM_ROW)
        r = &act_table[CG_LINEAR];
    return act_expand(r->derivative, kv, out, size);
}

/* dY act'(.) in words: the row's derivative written with `at` (Y or X, as
 * the row says) and dY, its float literals without their suffix ("Y > 0 ?
 * dY : 0", "dY * Y * (1 - Y)"). NULL when it does not fit. */
const char *act_grad_words(cg_activation act, float alpha, const char *at, char *buf, size_t size)
{
    char c[ACT_TEXT_MAX];
    if (!emit_act_grad(act, alpha, at, "dY", c, sizeof c))
        return NULL;
    size_t o = 0;
    for (const char *p = c; *p; p++) {
        bool lit_start = isdigit((unsigned char)*p) && (p == c || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'));
        if (!lit_start) {
            if (o + 1 < size)
                buf[o++] = *p;
            continue;
        }
        const char *end = p;
        while (isdigit((unsigned char)*end) || *end == '.' || *end == 'e' ||
               ((*end == '-' || *end == '+') && end[-1] == 'e'))
            end++;
        size_t len = (size_t)(end - p);
        if (len > 2 && !strncmp(end - 2, ".0", 2))
            len -= 2; /* 1.0f: 1 */
        if (o + len < size)
            memcpy(buf + o, p, len), o += len;
        p = *end == 'f' ? end : end - 1;
    }
    buf[o < size ? o : size - 1] = 0;
    return o < size ? buf : NULL;
}

/* act(v) in a recurrent cell, v a variable, as a factor of a product (in
 * parentheses when loose: h_t = o act(c_t)); host code uses the row's
 * vectorised form where it has one. Alpha is the row's default. */
const char *act_cell_text(cg_activation a, const char *v, bool host, char *buf, size_t size)
{
    const act_info *r = row_of(a);
    if (!r || r->from != ACT_FROM_Y)
        r = &act_table[CG_LINEAR];
    char al[32];
    emit_float(r->alpha, al, sizeof al);
    const char *kv[] = {"v", v, "alpha", al, NULL};
    if (!act_expand(host && r->cell_host[0] ? r->cell_host : r->forward, kv, buf, size))
        return NULL;
    return as_factor(buf, size);
}

/* act'(.) alone in a recurrent cell, from the output y, as a factor of a
 * product: the row's derivative after its leading "dy * ", or, without one,
 * at dy = 1.0f; in parentheses when loose. */
const char *act_cell_grad(cg_activation a, const char *y, char *buf, size_t size)
{
    const act_info *r = row_of(a);
    if (!r || r->from != ACT_FROM_Y)
        r = &act_table[CG_LINEAR];
    char al[32];
    emit_float(r->alpha, al, sizeof al);
    const char *kv[] = {"y", y, "dy", "1.0f", "alpha", al, NULL};
    bool product = !strncmp(r->derivative, "dy * ", 5);
    if (!act_expand(product ? r->derivative + 5 : r->derivative, kv, buf, size))
        return NULL;
    return as_factor(buf, size);
}

/* "linear, relu, ... or elu": the activations written with their output. */
const char *act_from_output_list(char *buf, size_t size)
{
    int count = 0, k = 0;
    for (int a = 0; a < ACT_COUNT; a++)
        count += act_table[a].from == ACT_FROM_Y;
    size_t len = 0;
    buf[0] = 0;
    for (int a = 0; a < ACT_COUNT && len < size; a++)
        if (act_table[a].from == ACT_FROM_Y)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", k++ ? (k == count ? " or " : ", ") : "",
                                    act_table[a].name);
    return buf;
}

/* ---- ops ------------------------------------------------------------------------ */

/* The IR op that applies activation a: the op it had before the table, or ACT. */
static op_kind op_of(cg_activation a)
{
    switch (a) {
    case CG_RELU: return OP_RELU;
    case CG_SIGMOID: return OP_SIGMOID;
    case CG_TANH: return OP_TANH;
    case CG_LEAKY_RELU: return OP_LEAKY_RELU;
    case CG_SOFTMAX: return OP_SOFTMAX;
    default: return OP_ACT;
    }
}

/* The activation node n applies; CG_LINEAR for any other node. */
cg_activation act_of_node(const node *n)
{
    switch (n->op) {
    case OP_RELU: return CG_RELU;
    case OP_SIGMOID: return CG_SIGMOID;
    case OP_TANH: return CG_TANH;
    case OP_LEAKY_RELU: return CG_LEAKY_RELU;
    case OP_ACT: return n->act;
    default: return CG_LINEAR;
    }
}

/* Applies activation act to x. alpha: its parameter, a NaN for the row's
 * default; a given one must be finite and >= 0 (the derivatives written with
 * the output need that: leaky relu and elu are then positive where x is).
 * Returns the node, or -1 with the error set. */
int op_activation(cg_graph *g, cg_src src, cg_activation act, float alpha, int x)
{
    const act_info *r = row_of(act);
    if (!r)
        return graph_error(g, src, g->cur_layer, "unknown activation %d", (int)act);
    if (x < 0)
        return -1;
    if (act == CG_LINEAR)
        return x;
    if (r->alpha == 0.0f)
        alpha = 0.0f;
    else if (isnan(alpha))
        alpha = r->alpha;
    else if (!isfinite(alpha) || alpha < 0.0f)
        return graph_error(g, src, g->cur_layer, "%s: alpha is %g; it must be a finite number >= 0", r->name,
                           (double)alpha);
    op_kind op = op_of(act);
    if (op == OP_SOFTMAX)
        return op_unary(g, src, op, x);
    node nd = {.op = op,
               .nin = 1,
               .in = {x},
               .sh = g->nodes[x].sh,
               .act = op == OP_ACT ? act : CG_LINEAR,
               .alpha = alpha,
               .src = src};
    return node_add(g, &nd);
}

/* The backward of an activation, written with its output y. */
int op_act_bwd(cg_graph *g, cg_activation act, float alpha, int y, int dy)
{
    if (y < 0 || dy < 0)
        return -1;
    if (act == CG_LINEAR)
        return dy;
    node nd = {.op = OP_ACT_BWD,
               .nin = 2,
               .in = {y, dy},
               .sh = g->nodes[y].sh,
               .act = act,
               .alpha = alpha,
               .src = g->nodes[y].src};
    return node_add(g, &nd);
}

/* The gradient of activation node id given dy: ACT_BWD from its output, or
 * ACT_BWD_X from its input, as its row says. */
int op_act_grad(cg_graph *g, int id, int dy)
{
    const node *n = &g->nodes[id];
    cg_activation act = act_of_node(n);
    if (act_table[act].from == ACT_FROM_Y)
        return op_act_bwd(g, act, n->alpha, id, dy);
    if (dy < 0)
        return -1;
    node nd = {
        .op = OP_ACT_BWD_X, .nin = 2, .in = {n->in[0], dy}, .sh = n->sh, .act = act, .alpha = n->alpha, .src = n->src};
    return node_add(g, &nd);
}

/* ---- public builders ----------------------------------------------------------------- */

/* Public: activation act on x (cg_act, cg_act_alpha); alpha NaN: the row's default. */
cg_t cg_act_at(cg_src src, cg_t x, cg_activation act, float alpha)
{
    cg_graph *g = operands_graph(src, "cg_act", &x, 1);
    if (!g)
        return (cg_t){x.g, -1};
    return (cg_t){g, op_activation(g, src, act, alpha, x.id)};
}

/* Public: leaky relu of x with slope alpha (cg_leaky_relu), which must be given. */
cg_t cg_leaky_relu_at(cg_src src, cg_t x, float alpha)
{
    cg_graph *g = operands_graph(src, "LEAKY_RELU", &x, 1);
    if (!g)
        return (cg_t){x.g, -1};
    if (isnan(alpha)) /* here a NaN is no request for the default */
        return (cg_t){g, graph_error(g, src, g->cur_layer, "leaky_relu: alpha is nan; it must be finite and >= 0")};
    return (cg_t){g, op_activation(g, src, CG_LEAKY_RELU, alpha, x.id)};
}
