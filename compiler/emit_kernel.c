/* emit_kernel.c: the kernels of NAME.c, one static function per node under
 * a banner (the layer, the op, the user's line, what it computes in the
 * buffers' names, the shapes); host kernels whose work runs on the pool get
 * a piece function beside them. */
#include "cgrad_int.h"

#include <ctype.h>
#include <string.h>

/* The name that input k of backward node b (k == 3: its output) has in the
 * words of the gradient rule that made it: "dY" for the gradient the rule
 * was given, "Y" for the forward node's output, its inputs' names (ops.def),
 * d and an input's name for the rule's gradient of that input, "dZ" for a
 * fused activation's gradient, G1, G2 for the steps of the rule; the paths summed
 * into one gradient are dY1, dY2. NULL: the rule does not name it. */
static const char *rule_name(cg_graph *g, int b, int k, char *buf, size_t size)
{
    const node *n = &g->nodes[b];
    int c = n->grad_of;
    if (!n->backward || c < 0 || c >= g->nnodes)
        return NULL;
    if (k < 3 && n->grad_role == GRAD_SUM) {
        snprintf(buf, size, "dY%d", k + 1);
        return buf;
    }
    int x = k == 3 ? b : n->in[k];
    const node *xn = &g->nodes[x], *cn = &g->nodes[c];
    if (c < g->ad_nrules && x == g->ad_rules[c].dy)
        return "dY";
    if (xn->op == OP_MAX_POOL_BWD && xn->act != CG_LINEAR && xn->in[0] == c)
        return "dZ"; /* c's activation gradient, which a max pooling's gradient computed */
    if (xn->backward && xn->grad_of == c) {
        if (xn->grad_role >= GRAD_DX && xn->grad_role - GRAD_DX < cn->nin) {
            buf[0] = 'd';
            kernel_arg_name(cn, xn->grad_role - GRAD_DX, buf + 1, size - 1);
            return buf;
        }
        if (xn->grad_role != GRAD_STEP)
            return xn->grad_role == GRAD_DZ ? "dZ" : "dY";
        if (op_table[xn->op].cat == CAT_SEQ)
            return "dG"; /* a recurrence's loop back over time: the gates' gradients per step */
        if (xn->op == OP_SLICE && xn->in[0] == c && op_table[cn->op].cat == CAT_SEQ)
            return "H_prev"; /* every step's h_{t-1}, from the saved sequence */
        int step = 1;        /* the rule's steps: G1, G2, ... */
        for (int j = 0; j < x; j++)
            step += g->nodes[j].backward && g->nodes[j].grad_of == c && g->nodes[j].grad_role == GRAD_STEP &&
                    g->nodes[j].op != OP_CONST;
        snprintf(buf, size, "G%d", step);
        return buf;
    }
    if (x == c)
        return "Y";
    for (int j = 0; j < cn->nin; j++)
        if (cn->in[j] == x) {
            kernel_arg_name(cn, j, buf, size);
            return buf;
        }
    return NULL;
}

/* The names inside node id's kernel: of its inputs (names[0 .. 2]) and of
 * its output (names[3]). A forward kernel has its op's (ops.def) and Y; a
 * backward kernel the names its gradient rule writes ("dZ, W -> dX"), unless
 * two would be the same (then the op's). */
void kernel_names(cg_graph *g, int id, char names[4][16])
{
    const node *n = &g->nodes[id];
    char rule[4][16], buf[16];
    bool ok = n->backward;
    for (int k = 0; k < 3; k++)
        kernel_arg_name(n, k, names[k], sizeof names[k]);
    snprintf(names[3], sizeof names[3], "Y");
    for (int k = 0; ok && k < 4; k++) {
        if (k < 3 && k >= n->nin) {
            rule[k][0] = 0;
            continue;
        }
        const char *r = rule_name(g, id, k, buf, sizeof buf); /* a constant's name too: banners show it */
        snprintf(rule[k], sizeof rule[k], "%s", r ? r : names[k]);
        for (int j = 0; j < k; j++)
            ok = ok && strcmp(rule[j], rule[k]);
    }
    for (int k = 0; ok && k < 4; k++)
        if (rule[k][0])
            memcpy(names[k], rule[k], sizeof rule[k]);
}

/* Appends s to t with every whole identifier named from[i] written to[i],
 * i < count (all at once: "A" -> "dY" and "Y" -> "dA" swap cleanly);
 * numbers such as 1e5f are copied as they are. */
static void text_renamed(text *t, const char *s, const char *const *from, const char *const *to, int count)
{
    while (s && *s) {
        const char *start = s;
        if (isalpha((unsigned char)*s) || *s == '_' || isdigit((unsigned char)*s)) {
            bool word = !isdigit((unsigned char)*s);
            while (isalnum((unsigned char)*s) || *s == '_' || (!word && *s == '.'))
                s++;
            int k = 0;
            while (word && k < count && (strlen(from[k]) != (size_t)(s - start) || strncmp(from[k], start, s - start)))
                k++;
            if (word && k < count)
                text_puts(t, to[k]);
            else
                text_printf(t, "%.*s", (int)(s - start), start);
            continue;
        }
        const char *end = s;
        while (*end && !(isalnum((unsigned char)*end) || *end == '_'))
            end++;
        text_printf(t, "%.*s", (int)(end - s), s);
        s = end;
    }
}

/* Appends text s (a formula, a rule's words) about node id to t in the
 * kernel's names, "act" and "ract" written as the activations node id
 * applies (a recurrence's "tanh" and "sigmoid"). */
void kernel_words(cg_graph *g, int id, const char *s, text *t)
{
    const node *n = &g->nodes[id];
    char names[4][16], generic[4][16];
    for (int k = 0; k < 3; k++)
        kernel_arg_name(n, k, generic[k], sizeof generic[k]);
    snprintf(generic[3], sizeof generic[3], "Y");
    kernel_names(g, id, names);
    const char *from[6] = {generic[0], generic[1], generic[2], generic[3], "act", "ract"};
    const char *to[6] = {names[0], names[1], names[2], names[3], emit_act_name(n->act), emit_act_name(n->ract)};
    text_renamed(t, s, from, to, 6);
}

/* One line saying what node id computes, in its buffers' names. */
void emit_describe(emit_ctx *e, int id, char *buf, size_t size)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    const char *in[3] = {"", "", ""};
    char lit[3][48];
    for (int i = 0; i < n->nin; i++) {
        const node *x = &g->nodes[n->in[i]];
        if (x->op == OP_CONST) {
            emit_float(x->alpha, lit[i], sizeof lit[i]);
            if (x->per_n)
                strncat(lit[i], " / n", sizeof lit[i] - strlen(lit[i]) - 1);
            in[i] = lit[i];
        } else
            in[i] = x->name;
    }
    const op_family *f = op_table[n->op].family;
    if (f->describe && f->describe(e, id, in, buf, size))
        return;
    char to[4][16];
    kernel_names(g, id, to);
    text formula = {0}; /* the formula in the kernel's names */
    kernel_words(g, id, op_table[n->op].formula, &formula);
    snprintf(buf, size, "%s: %s", n->name, formula.s ? formula.s : "");
    text_free(&formula);
    size_t len = strlen(buf);
    if (n->nin && len < size)
        len += (size_t)snprintf(buf + len, size - len, ", with");
    for (int i = 0; i < n->nin && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s %s = %s", i ? "," : "", to[i], in[i]);
}

/* Appends node id's kernel parameters, the one list behind its signature
 * (KP_SIGNATURE: "int n, const float *restrict X, float *restrict Y"), the
 * call of entry e (KP_CALL: "n, dense_1_out, dense_2_out"), and the input
 * arrays handed to the pool (KP_POOL_INPUTS: "X, W"). */
void kernel_params(emit_ctx *ec, int id, kernel_params_mode mode, const entry *e)
{
    cg_graph *g = ec->g;
    const node *n = &g->nodes[id];
    text *t = ec->t;
    int which[3], count = kernel_inputs(g, id, which);
    const char *sep = "";
    char names[4][16];
    kernel_names(g, id, names);
    if (mode != KP_POOL_INPUTS && kernel_needs_n(g, id)) {
        text_puts(t, mode == KP_SIGNATURE ? "int n" : "n");
        sep = ", ";
    }
    if (mode != KP_POOL_INPUTS && n->op == OP_DROPOUT_MASK) {
        text_printf(t, "%s%s", sep, mode == KP_SIGNATURE ? "uint64_t *restrict rng" : "&s->rng");
        sep = ", ";
    }
    for (int j = 0; j < count; j++) {
        const char *an = names[which[j]];
        if (mode == KP_SIGNATURE)
            text_printf(t, "%sconst float *restrict %s", sep, an);
        else
            text_printf(t, "%s%s", sep, mode == KP_CALL ? g->nodes[n->in[which[j]]].name : an);
        sep = ", ";
    }
    if (mode == KP_SIGNATURE)
        text_printf(t, "%sfloat *restrict %s%s", sep, names[3],
                    conv_scratch(g, id) > 0 ? ", float *restrict cols" : "");
    else if (mode == KP_CALL) {
        text_printf(t, "%s%s", sep, n->name);
        if (e->scratch[id] >= 0)
            text_printf(t, ", %s_cols", n->name);
    }
}

/* How a host kernel shares its work with the pool: 0 not at all; 1 by
 * samples (window ops, see conv_batch_parallel); 2 by elements (large flat
 * elementwise loops). *tail: work after the split loop. */
static int kernel_split(cg_graph *g, int id, bool *tail)
{
    const node *n = &g->nodes[id];
    *tail = false;
    if (conv_batch_parallel(g, id, tail))
        return 1;
    if (g->flavour != CG_HOST || op_table[n->op].cat != CAT_ELEMWISE || !shape_batched(&n->sh) ||
        !elementwise_flat(g, id) || shape_size(&n->sh, g->max_batch) < (1L << 16))
        return 0;
    for (int i = 0; i < n->nin; i++)
        if (g->nodes[n->in[i]].op == OP_CONST && g->nodes[n->in[i]].per_n)
            return 0; /* its literal needs n */
    return 2;
}

/* True when identifier name appears in s as a whole word. */
static bool uses_word(const char *s, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = strstr(s, name); p; p = strstr(p + 1, name)) {
        bool start = p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool end = !(isalnum((unsigned char)p[len]) || p[len] == '_');
        if (start && end)
            return true;
    }
    return false;
}

/* Appends to e->t the body of node id's kernel, or of its part (a piece
 * run on the pool, or what follows it), in the kernel's names: lowered with
 * the op's (ops.def), then renamed. */
static void lower_part(emit_ctx *e, int id, int part, void (*lower)(emit_ctx *e, int id))
{
    char names[4][16], generic[4][16];
    for (int k = 0; k < 3; k++)
        kernel_arg_name(&e->g->nodes[id], k, generic[k], sizeof generic[k]);
    snprintf(generic[3], sizeof generic[3], "Y");
    kernel_names(e->g, id, names);
    const char *from[4] = {generic[0], generic[1], generic[2], generic[3]},
               *to[4] = {names[0], names[1], names[2], names[3]};
    text body = {0}, *out = e->t;
    e->t = &body;
    e->part = part;
    if (lower)
        lower(e, id);
    e->part = 0;
    e->t = out;
    text_renamed(out, body.s, from, to, 4);
    out->oom = out->oom || body.oom;
    text_free(&body);
}

/* Writes NAME_piece(arg, lo, hi): the kernel over samples [lo, hi), which
 * the kernel itself hands to the pool (host flavour). */
static void emit_kernel_piece(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    char kn[256], names[4][16];
    text body = {0}, *out = e->t;
    bool tail;
    int split = kernel_split(g, id, &tail);
    kernel_names(g, id, names);
    e->t = &body;
    lower_part(e, id, 1, split == 1 ? lower_conv : lower_elementwise);
    e->t = out;
    text_printf(out, "/* %s over %s [lo, hi): one piece of the work, on one thread */\n",
                kernel_name(g, id, kn, sizeof kn), split == 1 ? "samples" : "elements");
    text_printf(out, "static void %s_piece(void *arg, long lo, long hi)\n{\n    const cgrt_kernel_args *a = arg;\n",
                kn);
    int which[3], count = kernel_inputs(g, id, which);
    for (int k = 0; k < count; k++)
        if (body.s && uses_word(body.s, names[which[k]]))
            text_printf(out, "    const float *restrict %s = a->in[%d];\n", names[which[k]], k);
    if (body.s && uses_word(body.s, names[3]))
        text_printf(out, "    float *restrict %s = a->out;\n", names[3]);
    if (body.s && uses_word(body.s, "cols"))
        text_puts(out, "    float *restrict cols = a->cols;\n");
    text_puts(out, body.s ? body.s : "");
    text_puts(out, "}\n\n");
    text_free(&body);
}

/* The banner's first line of node id: the layer whose group holds it, the
 * op, whether it is backward (naming the activation a max pooling's gradient
 * has fused in), the user's line. */
static void banner_head(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    int owner = n->backward && n->grad_of >= 0 ? n->grad_of : id;
    int li = g->nodes[owner].layer;
    text_printf(e->t, "/* %s: %s", li >= 0 ? g->layers[li].name : g->name, op_table[n->op].name);
    if (n->op == OP_MAX_POOL_BWD && n->act != CG_LINEAR) {
        int act_layer = g->nodes[n->in[0]].layer; /* X: the activation's output */
        text_printf(e->t, " with %s%s%s' fused in", act_layer >= 0 ? g->layers[act_layer].name : "",
                    act_layer >= 0 ? "'s " : "", emit_act_name(n->act));
    }
    cg_src src = g->nodes[owner].src; /* a backward kernel's: the line of the node whose rule made it */
    text_printf(e->t, "%s (%s:%d)\n", n->backward ? ", backward" : "", emit_source_file(g, src.file), src.line);
}

/* Writes the static kernel function of node id. */
void emit_kernel(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    char kn[256], sb[64], what[512], names[4][16];
    bool tail = false;
    int split = kernel_split(g, id, &tail);
    if (split) /* its piece first: the banner stays on the kernel the entry points call */
        emit_kernel_piece(e, id);
    kernel_names(g, id, names);
    emit_describe(e, id, what, sizeof what);
    banner_head(e, id);
    text_printf(e->t, " *   %s\n *  ", what);
    for (int i = 0; i < n->nin; i++) {
        const node *in = &g->nodes[n->in[i]];
        if (in->op != OP_CONST)
            text_printf(e->t, " %s %s,", names[i], shape_str(&in->sh, sb, sizeof sb));
    }
    e->t->len--; /* drop the last comma */
    text_printf(e->t, " -> %s %s */\n", names[3], shape_str(&n->sh, sb, sizeof sb));
    text_printf(e->t, "static void %s(", kernel_name(g, id, kn, sizeof kn));
    kernel_params(e, id, KP_SIGNATURE, NULL);
    text_puts(e->t, ")\n{\n");
    if (split) { /* the samples, or the elements, run as pieces on the pool */
        text_puts(e->t, "    cgrt_kernel_args a = {.in = {");
        kernel_params(e, id, KP_POOL_INPUTS, NULL);
        text_printf(e->t, "}, .out = %s, .cols = %s};\n", names[3], conv_scratch(g, id) > 0 ? "cols" : "0");
        if (split == 1)
            text_printf(e->t, "    cgrt_parallel_for(n, 1, %s_piece, &a); /* samples split across the threads */\n",
                        kn);
        else
            text_printf(e->t,
                        "    cgrt_parallel_for(n * %ld, 4096, %s_piece, &a); /* elements split across the threads */\n",
                        shape_size(&n->sh, 1), kn);
        if (tail)
            lower_part(e, id, 2, lower_conv);
        text_puts(e->t, "}\n\n");
        return;
    }
    lower_part(e, id, 0, op_table[n->op].family->lower);
    text_puts(e->t, "}\n\n");
}
