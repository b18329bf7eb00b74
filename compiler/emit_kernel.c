/* emit_kernel.c: the kernels of NAME.c, one static function per node under
 * a banner (the layer, the op, the user's line, what it computes in the
 * buffers' names, the shapes); host kernels whose work runs on the pool get
 * a piece function beside them. */
#include "cgrad_int.h"

#include <ctype.h>
#include <string.h>

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
    snprintf(buf, size, "%s: %s", n->name, op_table[n->op].formula);
    size_t len = strlen(buf);
    if (n->nin)
        len += (size_t)snprintf(buf + len, size - len, ", with");
    for (int i = 0; i < n->nin && len < size; i++) {
        char an[16];
        kernel_arg_name(n, i, an, sizeof an);
        len += (size_t)snprintf(buf + len, size - len, "%s %s = %s", i ? "," : "", an, in[i]);
    }
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
    char an[16];
    if (mode != KP_POOL_INPUTS && kernel_needs_n(g, id)) {
        text_puts(t, mode == KP_SIGNATURE ? "int n" : "n");
        sep = ", ";
    }
    if (mode != KP_POOL_INPUTS && n->op == OP_DROPOUT_MASK) {
        text_printf(t, "%s%s", sep, mode == KP_SIGNATURE ? "uint64_t *restrict rng" : "&s->rng");
        sep = ", ";
    }
    for (int j = 0; j < count; j++) {
        kernel_arg_name(n, which[j], an, sizeof an);
        if (mode == KP_SIGNATURE)
            text_printf(t, "%sconst float *restrict %s", sep, an);
        else
            text_printf(t, "%s%s", sep, mode == KP_CALL ? g->nodes[n->in[which[j]]].name : an);
        sep = ", ";
    }
    if (mode == KP_SIGNATURE)
        text_printf(t, "%sfloat *restrict Y%s", sep, conv_scratch(g, id) > 0 ? ", float *restrict cols" : "");
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

/* Writes NAME_piece(arg, lo, hi): the kernel over samples [lo, hi), which
 * the kernel itself hands to the pool (host flavour). */
static void emit_kernel_piece(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    char kn[256], an[16];
    text body = {0}, *out = e->t;
    bool tail;
    int split = kernel_split(g, id, &tail);
    e->t = &body;
    e->part = 1;
    if (split == 1)
        lower_conv(e, id);
    else
        lower_elementwise(e, id);
    e->part = 0;
    e->t = out;
    text_printf(out, "/* %s over %s [lo, hi): one piece of the work, on one thread */\n",
                kernel_name(g, id, kn, sizeof kn), split == 1 ? "samples" : "elements");
    text_printf(out, "static void %s_piece(void *arg, long lo, long hi)\n{\n    const cgrt_kernel_args *a = arg;\n",
                kn);
    int which[3], count = kernel_inputs(g, id, which);
    for (int k = 0; k < count; k++) {
        kernel_arg_name(n, which[k], an, sizeof an);
        if (body.s && uses_word(body.s, an))
            text_printf(out, "    const float *restrict %s = a->in[%d];\n", an, k);
    }
    if (body.s && uses_word(body.s, "Y"))
        text_puts(out, "    float *restrict Y = a->out;\n");
    if (body.s && uses_word(body.s, "cols"))
        text_puts(out, "    float *restrict cols = a->cols;\n");
    text_puts(out, body.s ? body.s : "");
    text_puts(out, "}\n\n");
    text_free(&body);
}

/* Writes the static kernel function of node id. */
void emit_kernel(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    char kn[256], sb[64], an[16], what[512];
    bool tail = false;
    int split = kernel_split(g, id, &tail);
    if (split) /* its piece first: the banner stays on the kernel the entry points call */
        emit_kernel_piece(e, id);
    emit_describe(e, id, what, sizeof what);
    const char *lname = n->layer >= 0 ? g->layers[n->layer].name : g->name;
    text_printf(e->t, "/* %s: %s%s (%s:%d)\n *   %s\n *  ", lname, op_table[n->op].name,
                n->backward ? ", backward" : "", emit_source_file(g, n->src.file), n->src.line, what);
    for (int i = 0; i < n->nin; i++) {
        const node *in = &g->nodes[n->in[i]];
        if (in->op == OP_CONST)
            continue;
        kernel_arg_name(n, i, an, sizeof an);
        text_printf(e->t, " %s %s,", an, shape_str(&in->sh, sb, sizeof sb));
    }
    e->t->len--; /* drop the last comma */
    text_printf(e->t, " -> Y %s */\n", shape_str(&n->sh, sb, sizeof sb));
    text_printf(e->t, "static void %s(", kernel_name(g, id, kn, sizeof kn));
    kernel_params(e, id, KP_SIGNATURE, NULL);
    text_puts(e->t, ")\n{\n");
    if (split) { /* the samples, or the elements, run as pieces on the pool */
        text_puts(e->t, "    cgrt_kernel_args a = {.in = {");
        kernel_params(e, id, KP_POOL_INPUTS, NULL);
        text_printf(e->t, "}, .out = Y, .cols = %s};\n", conv_scratch(g, id) > 0 ? "cols" : "0");
        if (split == 1)
            text_printf(e->t, "    cgrt_parallel_for(n, 1, %s_piece, &a); /* samples split across the threads */\n",
                        kn);
        else
            text_printf(e->t,
                        "    cgrt_parallel_for(n * %ld, 4096, %s_piece, &a); /* elements split across the threads */\n",
                        shape_size(&n->sh, 1), kn);
        if (tail) {
            e->part = 2;
            lower_conv(e, id);
            e->part = 0;
        }
        text_puts(e->t, "}\n\n");
        return;
    }
    if (op_table[n->op].family->lower)
        op_table[n->op].family->lower(e, id);
    text_puts(e->t, "}\n\n");
}
