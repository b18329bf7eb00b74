/* emit.c: the C emitter. Writes NAME.h (sizes, state, entry points), NAME.c
 * (one static kernel per node under a banner, then the entry points that call
 * them: forward, backward in reverse, optimizer) and, for compiled models,
 * NAME_main.c (the runtime's descriptor). Output depends only on the graph:
 * the same model emits byte-identical files. */
#include "cgrad_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------------ */

/* "n" for the batch dimension, else the number. */
const char *emit_dim(const shape *s, int axis, char *buf, size_t size) {
    if (s->d[axis] == CG_BATCH)
        snprintf(buf, size, "n");
    else
        snprintf(buf, size, "%d", s->d[axis]);
    return buf;
}

/* A float literal that reads back to the same float. */
const char *emit_float(float v, char *buf, size_t size) {
    char tmp[48];
    if (!isfinite(v)) {   /* from folding constants, x / 0 */
        snprintf(buf, size, "%s", isnan(v) ? "NAN" : v > 0 ? "INFINITY" : "(-INFINITY)");
        return buf;
    }
    snprintf(tmp, sizeof tmp, "%.9g", (double)v);
    for (int p = 1; p < 9; p++) {   /* the shortest form that reads back */
        char t2[48];
        snprintf(t2, sizeof t2, "%.*g", p, (double)v);
        if (strtof(t2, NULL) == v) {
            snprintf(tmp, sizeof tmp, "%s", t2);
            break;
        }
    }
    bool has_dot = strpbrk(tmp, ".eEn") != NULL;
    snprintf(buf, size, "%s%sf", tmp, has_dot ? "" : ".0");
    return buf;
}

/* Appends s to t as a C string literal (quotes, backslashes, question marks
 * and unprintable bytes escaped), or 0 for NULL. */
static void emit_c_string(text *t, const char *s) {
    if (!s) {
        text_puts(t, "0");
        return;
    }
    text_puts(t, "\"");
    text_escaped(t, s);
    text_puts(t, "\"");
}

/* The .series initializer of NAME_main.c's data spec ("" when the data is not a time series). */
static void emit_series(text *t, const cg_series_opts *s) {
    if (s->window <= 0)
        return;
    text_puts(t, ",\n                  .series = { .column = ");
    emit_c_string(t, s->column);
    text_printf(t, ", .column_index = %d, .window = %d, .horizon = %d,\n                              "
                ".val_steps = %d, .test_steps = %d, .season = %d }",
                s->column_index, s->window, s->horizon > 0 ? s->horizon : 1, s->val_steps, s->test_steps, s->season);
}

/* Index of `in` broadcast against `out` over loop variables i0.. (row-major). */
const char *emit_bcast_index(const shape *in, const shape *out, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = 0;
    int off = out->rank - in->rank;
    long stride = 1;
    char terms[CG_MAX_RANK][64];
    int nt = 0;
    /* from the last axis to the first; the batch, first, never has a stride
     * after it; an axis of size 1 contributes nothing */
    for (int i = in->rank - 1; i >= 0; i--) {
        int oi = i + off;
        if (in->d[i] != 1 && in->d[i] == out->d[oi]) {
            if (stride == 1)
                snprintf(terms[nt++], 64, "i%d", oi);
            else
                snprintf(terms[nt++], 64, "i%d * %ld", oi, stride);
        }
        if (in->d[i] != CG_BATCH)
            stride *= in->d[i];
    }
    for (int k = nt - 1; k >= 0; k--)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? " + " : "", terms[k]);
    if (!nt)
        snprintf(buf, size, "0");
    return buf;
}

/* The kernel argument name of input k of node n. */
static void arg_name(const node *n, int k, char *buf, size_t size) {
    const char *p = op_table[n->op].args;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, ',');
        if (p)
            p++;
    }
    size_t len = p ? strcspn(p, ",") : 0;
    if (!len)
        snprintf(buf, size, "I%d", k);
    else
        snprintf(buf, size, "%.*s", (int)len, p);
}

/* Input k of node id inside its kernel: "A[index]", or a constant literal. */
const char *emit_input(emit_ctx *e, int id, int k, const char *index, char *buf, size_t size) {
    const node *n = &e->g->nodes[id];
    const node *in = &e->g->nodes[n->in[k]];
    if (in->op == OP_CONST) {
        char lit[48];
        emit_float(in->alpha, lit, sizeof lit);
        if (in->per_n)
            snprintf(buf, size, "(%s / (float)n)", lit);
        else
            snprintf(buf, size, in->alpha < 0 ? "(%s)" : "%s", lit);   /* -x of a negative constant stays C */
        return buf;
    }
    char name[16];
    arg_name(n, k, name, sizeof name);
    snprintf(buf, size, "%s[%s]", name, index);
    return buf;
}

/* True when node id's kernel needs the batch size n. */
static bool needs_n(cg_graph *g, int id) {
    const node *n = &g->nodes[id];
    if (shape_batched(&n->sh))
        return true;
    for (int i = 0; i < n->nin; i++) {
        const node *in = &g->nodes[n->in[i]];
        if (shape_batched(&in->sh) || (in->op == OP_CONST && in->per_n))
            return true;
    }
    return false;
}

/* True when node id is computed by a kernel function. */
static bool has_kernel(cg_graph *g, int id) {
    op_kind op = g->nodes[id].op;
    return op_table[op].cat != CAT_LEAF && op != OP_RESHAPE;
}

static const char *act_name(cg_activation a) {
    static const char *names[] = {"linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu"};
    return names[a];
}

/* The name of node id's kernel: "<buffer>_fwd" or "<buffer>_bwd". */
static const char *kernel_name(cg_graph *g, int id, char *buf, size_t size) {
    snprintf(buf, size, "%s_%s", g->nodes[id].name, g->nodes[id].backward ? "bwd" : "fwd");
    return buf;
}

/* The user's file name without folders, escaped for a comment. */
static const char *base_name(cg_graph *g, const char *path) {
    const char *s = path ? strrchr(path, '/') : NULL;
    return arena_escaped(&g->a, s ? s + 1 : (path ? path : "?"), 200);
}

/* ---- kernels ------------------------------------------------------------------ */

/* One line saying what node id computes, in its buffers' names. */
static void describe(emit_ctx *e, int id, char *buf, size_t size) {
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
    const char *y = n->name;
    switch (n->op) {
    case OP_MATMUL:
        snprintf(buf, size, "%s = %s%s . %s%s", y, in[0], n->ta ? "^T" : "", in[1], n->tb ? "^T" : "");
        break;
    case OP_DENSE:
        snprintf(buf, size, "%s = %s(%s . %s + %s)", y, act_name(n->act), in[0], in[1], in[2]);
        break;
    case OP_ACT_BWD:
        snprintf(buf, size, "%s = %s * %s'(.), from the output %s", y, in[1], act_name(n->act), in[0]);
        break;
    case OP_CONV2D_BIAS_ACT:
        snprintf(buf, size, "%s = %s(conv2d(%s, %s) + %s), stride %dx%d, dilation %dx%d, padding %d %d %d %d", y,
                 act_name(n->act), in[0], in[1], in[2], n->sp.stride[0], n->sp.stride[1], n->sp.dil[0], n->sp.dil[1],
                 n->sp.pad[0], n->sp.pad[1], n->sp.pad[2], n->sp.pad[3]);
        break;
    case OP_SUM: case OP_MEAN: case OP_MAX: {
        char axes[32] = "";
        size_t len = 0;
        for (int i = 0; i < CG_MAX_RANK; i++)
            if (n->axes & (1u << i))
                len += (size_t)snprintf(axes + len, sizeof axes - len, "%s%d", len ? "," : "", i);
        snprintf(buf, size, "%s = %s of %s over axes {%s}", y, n->op == OP_SUM ? "sum" : n->op == OP_MEAN ? "mean" : "max",
                 in[0], axes);
        break;
    }
    case OP_SOFTMAX_XENT:
        snprintf(buf, size, "%s = cross-entropy of softmax(%s) against %s", y, in[0], in[1]);
        break;
    case OP_SOFTMAX_XENT_BWD:
        snprintf(buf, size, "%s = %s * (softmax(%s) - %s)", y, in[2], in[0], in[1]);
        break;
    case OP_MAX_POOL_BWD:
        if (n->act != CG_LINEAR) {   /* with the activation's gradient fused in */
            snprintf(buf, size, "%s: dX gets dY[b,i,j,c] * %s'(X) at the first maximum of each window (0 elsewhere), "
                     "with X = %s (the %s output), dY = %s", y, act_name(n->act), in[0], act_name(n->act), in[1]);
            break;
        }
        /* fall through */
    default: {
        const char *f = op_table[n->op].formula;
        snprintf(buf, size, "%s: %s", y, f);
        size_t len = strlen(buf);
        if (n->nin)
            len += (size_t)snprintf(buf + len, size - len, ", with");
        for (int i = 0; i < n->nin && len < size; i++) {
            char an[16];
            arg_name(n, i, an, sizeof an);
            len += (size_t)snprintf(buf + len, size - len, "%s %s = %s", i ? "," : "", an, in[i]);
        }
    }
    }
}

/* How a host kernel shares its work with the pool: 0 not at all; 1 by
 * samples (window ops, see conv_batch_parallel); 2 by elements (large flat
 * elementwise loops). *tail: work after the split loop. */
static int kernel_split(cg_graph *g, int id, bool *tail) {
    const node *n = &g->nodes[id];
    *tail = false;
    if (conv_batch_parallel(g, id, tail))
        return 1;
    if (g->flavour != CG_HOST || op_table[n->op].cat != CAT_ELEMWISE || !shape_batched(&n->sh) ||
        !elementwise_flat(g, id) || shape_size(&n->sh, g->max_batch) < (1L << 16))
        return 0;
    for (int i = 0; i < n->nin; i++)
        if (g->nodes[n->in[i]].op == OP_CONST && g->nodes[n->in[i]].per_n)
            return 0;   /* its literal needs n */
    return 2;
}

/* True when identifier name appears in s as a whole word. */
static bool uses_word(const char *s, const char *name) {
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
static void emit_kernel_piece(emit_ctx *e, int id) {
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
    text_printf(out, "static void %s_piece(void *arg, long lo, long hi)\n{\n    const cgrt_kernel_args *a = arg;\n", kn);
    for (int i = 0, k = 0; i < n->nin; i++) {
        if (g->nodes[n->in[i]].op == OP_CONST)
            continue;
        arg_name(n, i, an, sizeof an);
        if (body.s && uses_word(body.s, an))
            text_printf(out, "    const float *restrict %s = a->in[%d];\n", an, k);
        k++;
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
static void emit_kernel(emit_ctx *e, int id) {
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    char kn[256], sb[64], an[16], what[512];
    bool tail = false;
    int split = kernel_split(g, id, &tail);
    if (split)   /* its piece first: the banner stays on the kernel the entry points call */
        emit_kernel_piece(e, id);
    describe(e, id, what, sizeof what);
    const char *lname = n->layer >= 0 ? g->layers[n->layer].name : g->name;
    text_printf(e->t, "/* %s: %s%s (%s:%d)\n *   %s\n *  ", lname, op_table[n->op].name,
                n->backward ? ", backward" : "", base_name(g, n->src.file), n->src.line, what);
    for (int i = 0; i < n->nin; i++) {
        const node *in = &g->nodes[n->in[i]];
        if (in->op == OP_CONST)
            continue;
        arg_name(n, i, an, sizeof an);
        text_printf(e->t, " %s %s,", an, shape_str(&in->sh, sb, sizeof sb));
    }
    e->t->len--;   /* drop the last comma */
    text_printf(e->t, " -> Y %s */\n", shape_str(&n->sh, sb, sizeof sb));
    text_printf(e->t, "static void %s(", kernel_name(g, id, kn, sizeof kn));
    bool first = true;
    if (needs_n(g, id)) {
        text_puts(e->t, "int n");
        first = false;
    }
    if (n->op == OP_DROPOUT_MASK) {
        text_printf(e->t, "%suint64_t *restrict rng", first ? "" : ", ");
        first = false;
    }
    for (int i = 0; i < n->nin; i++) {
        if (g->nodes[n->in[i]].op == OP_CONST)
            continue;
        arg_name(n, i, an, sizeof an);
        text_printf(e->t, "%sconst float *restrict %s", first ? "" : ", ", an);
        first = false;
    }
    text_printf(e->t, "%sfloat *restrict Y%s)\n{\n", first ? "" : ", ", conv_scratch(g, id) > 0 ? ", float *restrict cols" : "");
    if (split) {   /* the samples, or the elements, run as pieces on the pool */
        text_puts(e->t, "    cgrt_kernel_args a = {{");
        for (int i = 0, k = 0; i < n->nin; i++) {
            if (g->nodes[n->in[i]].op == OP_CONST)
                continue;
            arg_name(n, i, an, sizeof an);
            text_printf(e->t, "%s%s", k++ ? ", " : "", an);
        }
        text_printf(e->t, "}, Y, %s};\n", conv_scratch(g, id) > 0 ? "cols" : "0");
        if (split == 1)
            text_printf(e->t, "    cgrt_parallel_for(n, 1, %s_piece, &a); /* samples split across the threads */\n", kn);
        else
            text_printf(e->t, "    cgrt_parallel_for(n * %ld, 4096, %s_piece, &a); /* elements split across the threads */\n",
                        shape_size(&n->sh, 1), kn);
        if (tail) {
            e->part = 2;
            lower_conv(e, id);
            e->part = 0;
        }
        text_puts(e->t, "}\n\n");
        return;
    }
    switch (op_table[n->op].cat) {
    case CAT_ELEMWISE: lower_elementwise(e, id); break;
    case CAT_REDUCE: lower_reduce(e, id); break;
    case CAT_MOVE: lower_movement(e, id); break;
    case CAT_CONTRACT: lower_matmul(e, id); break;
    case CAT_FUSED:
        if (n->op == OP_DENSE)
            lower_matmul(e, id);
        else if (n->op == OP_DROPOUT_MASK)
            lower_random(e, id);
        else
            lower_softmax(e, id);
        break;
    case CAT_CONV: lower_conv(e, id); break;
    case CAT_SEQ: lower_seq(e, id); break;
    case CAT_LEAF: break;
    }
    text_puts(e->t, "}\n\n");
}

/* ---- entry points --------------------------------------------------------------- */

/* Upper-case copy of s into buf. */
static const char *upper(const char *s, char *buf, size_t size) {
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        buf[i] = (char)toupper((unsigned char)s[i]);
    buf[i] = 0;
    return buf;
}

/* The C expression of node id's storage: every buffer, and every view, is a
 * pointer named after its node. */
static const char *storage(emit_ctx *ec, int id, char *buf, size_t size) {
    snprintf(buf, size, "%s", ec->g->nodes[id].name);
    return buf;
}

/* Declares the pointer of every buffer entry e touches, named after the node. */
static void emit_buffers(emit_ctx *ec, const entry *e) {
    cg_graph *g = ec->g;
    char sb[64], up[128], pu[128];
    upper(ec->prefix, pu, sizeof pu);
    text_puts(ec->t, "    /* parameters */\n");
    for (int k = 0; k < e->nsched; k++) {
        const node *n = &g->nodes[e->sched[k]];
        if (n->op == OP_VARIABLE)
            text_printf(ec->t, "    float *%s = s->params + %s_%s; /* %s */\n", n->name, pu,
                        upper(n->name, up, sizeof up), shape_str(&n->sh, sb, sizeof sb));
    }
    if (e->want_grads) {
        text_puts(ec->t, "    /* gradients, in the gradient block at their parameter's offset */\n");
        for (int i = 0; i < g->nvars; i++)
            if (g->vars[i].grad >= 0) {
                const node *v = &g->nodes[g->vars[i].node];
                text_printf(ec->t, "    float *%s = s->grads + %s_%s; /* %s */\n", g->nodes[g->vars[i].grad].name, pu,
                            upper(v->name, up, sizeof up), shape_str(&v->sh, sb, sizeof sb));
            }
    }
    text_printf(ec->t, "    /* activations: one arena, offsets planned by liveness (%zu floats at batch %d) */\n",
                e->arena_floats, g->max_batch);
    for (int k = 0; k < e->nsched; k++) {
        int id = e->sched[k];
        const node *n = &g->nodes[id];
        if (e->offset[id] >= 0 && n->op != OP_RESHAPE)
            text_printf(ec->t, "    float *%s = s->arena + %ld; /* %s */\n", n->name, e->offset[id],
                        shape_str(&n->sh, sb, sizeof sb));
        if (e->scratch[id] >= 0)
            text_printf(ec->t, "    float *%s_cols = s->arena + %ld; /* im2col scratch of %s, %ld floats */\n", n->name,
                        e->scratch[id], n->name, conv_scratch(g, id));
    }
    for (int k = 0; k < e->nsched; k++) {   /* views: another shape over the same floats */
        const node *n = &g->nodes[e->sched[k]];
        if (n->op == OP_RESHAPE)
            text_printf(ec->t, "    const float *%s = %s; /* %s, a view of %s: no copy */\n", n->name,
                        g->nodes[n->in[0]].name, shape_str(&n->sh, sb, sizeof sb), g->nodes[n->in[0]].name);
    }
}

/* Calls the kernels of entry e in schedule order, forward then backward. */
static void emit_calls(emit_ctx *ec, const entry *e) {
    cg_graph *g = ec->g;
    bool in_bwd = false;
    text_puts(ec->t, "\n    /* forward */\n");
    for (int k = 0; k < e->nsched; k++) {
        int id = e->sched[k];
        const node *n = &g->nodes[id];
        if (!has_kernel(g, id))
            continue;
        if (n->backward && !in_bwd) {
            text_puts(ec->t, "\n    /* backward: the chain rule, from the loss back to the parameters */\n");
            in_bwd = true;
        }
        char kn[256], what[512], sb[128];
        describe(ec, id, what, sizeof what);
        text_printf(ec->t, "    %s(", kernel_name(g, id, kn, sizeof kn));
        bool first = true;
        if (needs_n(g, id)) {
            text_puts(ec->t, "n");
            first = false;
        }
        if (n->op == OP_DROPOUT_MASK) {
            text_printf(ec->t, "%s&s->rng", first ? "" : ", ");
            first = false;
        }
        for (int i = 0; i < n->nin; i++) {
            if (g->nodes[n->in[i]].op == OP_CONST)
                continue;
            text_printf(ec->t, "%s%s", first ? "" : ", ", storage(ec, n->in[i], sb, sizeof sb));
            first = false;
        }
        text_printf(ec->t, "%s%s", first ? "" : ", ", storage(ec, id, sb, sizeof sb));
        if (e->scratch[id] >= 0)
            text_printf(ec->t, ", %s_cols", n->name);
        text_printf(ec->t, "); /* %s */\n", what);
    }
}

/* The optimizer call after the backward pass of a training step. */
static void emit_update(emit_ctx *ec) {
    char pu[128];
    upper(ec->prefix, pu, sizeof pu);
    const cg_optimizer *o = &ec->g->opt;
    text_puts(ec->t, "\n    /* optimizer: one flat loop over the parameter block */\n    s->step += 1;\n");
    switch (o->kind) {
    case CG_SGD:
        if (o->momentum != 0.0f)
            text_printf(ec->t, "    sgd_momentum_update(s->params, s->grads, s->opt, %s_TRAINABLE_FLOATS, s->lr);\n", pu);
        else
            text_printf(ec->t, "    sgd_update(s->params, s->grads, %s_TRAINABLE_FLOATS, s->lr);\n", pu);
        break;
    case CG_ADAM:
        text_printf(ec->t, "    adam_update(s->params, s->grads, s->opt, s->opt + %s_TRAINABLE_FLOATS, %s_TRAINABLE_FLOATS, "
                    "s->lr, s->step);\n", pu, pu);
        break;
    case CG_RMSPROP:
        text_printf(ec->t, "    rmsprop_update(s->params, s->grads, s->opt, s->opt + %s_TRAINABLE_FLOATS, "
                    "%s_TRAINABLE_FLOATS, s->lr);\n", pu, pu);
        break;
    }
}

/* Copies between a packed array (per sample: tensor 0's floats, then
 * tensor 1's, ...) and the tensors' own buffers. */
static void emit_packing(emit_ctx *ec, const entry *e, const int *ids, int count, const char *packed, bool unpack) {
    cg_graph *g = ec->g;
    long width = 0, off = 0;
    char sb[64];
    for (int k = 0; k < count; k++)
        width += shape_size(&g->nodes[ids[k]].sh, 1);
    text_printf(ec->t, "    /* %s: per sample", packed);
    for (int k = 0; k < count; k++)
        text_printf(ec->t, "%s%s (%ld floats)", k ? ", then " : " ", g->nodes[ids[k]].name,
                    shape_size(&g->nodes[ids[k]].sh, 1));
    text_puts(ec->t, " */\n    for (int i = 0; i < n; i++) {\n");
    for (int k = 0; k < count; k++) {
        const node *t = &g->nodes[ids[k]];
        long w = shape_size(&t->sh, 1);
        char dst[160], src[160];
        if (e->offset[ids[k]] < 0 && unpack) {   /* not used by this entry (a custom loss without labels) */
            off += w;
            continue;
        }
        snprintf(dst, sizeof dst, "%s[i * %ld + j]", t->name, w);
        snprintf(src, sizeof src, "%s[i * %ld + %ld + j]", packed, width, off);
        text_printf(ec->t, "        for (int j = 0; j < %ld; j++) /* %s %s */\n            %s = %s;\n", w, t->name,
                    shape_str(&t->sh, sb, sizeof sb), unpack ? dst : src, unpack ? src : dst);
        off += w;
    }
    text_puts(ec->t, "    }\n");
}

/* A functional model's entry points unpack x (and y) into the buffers of
 * the input (and label) placeholders. */
static void emit_unpack(emit_ctx *ec, const entry *e) {
    cg_model *m = ec->g->model;
    emit_packing(ec, e, m->inputs, m->ninputs, "x", true);
    if (e->kind != ENTRY_PREDICT)
        emit_packing(ec, e, m->labels, m->noutputs, "y", true);
}

/* Writes one entry point. */
static void emit_entry(emit_ctx *ec, const entry *e) {
    cg_graph *g = ec->g;
    const char *p = ec->prefix;
    char sb[128], up[128];
    upper(p, up, sizeof up);
    switch (e->kind) {
    case ENTRY_PREDICT:
        text_printf(ec->t, "/* The model's output for n <= %s_MAX_BATCH samples: out[n * %s_OUT_FEATURES]. */\n"
                    "void %s_predict(%s_state *s, int n, const float *x, float *out)\n{\n", up, up, p, p);
        break;
    case ENTRY_EVAL:
        text_printf(ec->t, "/* Loss and metric, averaged over the batch, without training. */\n"
                    "void %s_eval_step(%s_state *s, int n, const float *x, const float *y, float *batch_loss, float *batch_metrics)\n{\n",
                    p, p);
        break;
    case ENTRY_TRAIN:
        text_printf(ec->t, "/* One training step: forward, backward, optimizer update. Returns the\n"
                    " * batch's mean loss and metric as they were before the update. */\n"
                    "void %s_train_step(%s_state *s, int n, const float *x, const float *y, float *batch_loss, float *batch_metrics)\n{\n",
                    p, p);
        break;
    case ENTRY_LOSS:
    case ENTRY_GRADIENTS:
        text_printf(ec->t, "/* %s */\nfloat %s_%s(%s_state *s, int n",
                    e->kind == ENTRY_LOSS ? "The loss, forward only."
                                          : "The loss, and the gradient of each chosen variable in s->grads.",
                    p, e->fname, p);
        for (int i = 0; i < g->ninputs; i++)
            text_printf(ec->t, ", const float *%s", g->nodes[g->inputs[i]].name);
        text_puts(ec->t, ")\n{\n");
        break;
    }
    bool uses_n = e->kind == ENTRY_PREDICT;
    for (int k = 0; k < e->nsched; k++)
        uses_n = uses_n || (has_kernel(g, e->sched[k]) && needs_n(g, e->sched[k]));
    if (!uses_n)
        text_puts(ec->t, "    (void)n; /* no tensor here has a batch dimension */\n");
    emit_buffers(ec, e);
    if (g->model && g->model->functional)
        emit_unpack(ec, e);
    emit_calls(ec, e);
    if (e->kind == ENTRY_TRAIN)
        emit_update(ec);
    for (int i = 0; i < e->nupd; i++) {
        const node *v = &g->nodes[e->upd_var[i]];
        if (i == 0)
            text_puts(ec->t, "\n    /* moving averages: not trained, but updated from this batch's statistics */\n");
        text_printf(ec->t, "    for (int i = 0; i < %ld; i++)\n        %s[i] = %s[i];\n", shape_size(&v->sh, 1), v->name,
                    storage(ec, e->upd_val[i], sb, sizeof sb));
    }
    text_puts(ec->t, "\n");
    switch (e->kind) {
    case ENTRY_PREDICT:
        if (e->nout == 1) {
            const node *o = &g->nodes[e->out[0]];
            text_printf(ec->t, "    for (int i = 0; i < n * %ld; i++)\n        out[i] = %s[i];\n", shape_size(&o->sh, 1),
                        storage(ec, e->out[0], sb, sizeof sb));
        } else
            emit_packing(ec, e, e->out, e->nout, "out", false);
        break;
    case ENTRY_EVAL:
    case ENTRY_TRAIN:
        text_printf(ec->t, "    *batch_loss = %s[0];\n", storage(ec, e->out[0], sb, sizeof sb));
        for (int i = 1; i < e->nout; i++)
            text_printf(ec->t, "    batch_metrics[%d] = %s[0]; /* %s */\n", i - 1, storage(ec, e->out[i], sb, sizeof sb),
                        g->model->metric_names[i - 1]);
        if (e->nout == 1)
            text_puts(ec->t, "    (void)batch_metrics; /* the model has no metric */\n");
        break;
    default:
        text_printf(ec->t, "    return %s[0];\n", storage(ec, e->out[0], sb, sizeof sb));
    }
    text_puts(ec->t, "}\n\n");
}
/* ---- checked entry points ------------------------------------------------------------- */

/* Where the caller passes placeholder ph to entry e: the array's name and
 * the column of a sample where ph's floats start, in *col, of *width per
 * sample. False when the caller does not pass it (a model's label to predict). */
static bool caller_array(cg_graph *g, const entry *e, int ph, const char **array, long *col, long *width) {
    cg_model *m = g->model;
    if (!m) {
        *array = g->nodes[ph].name;
        *col = 0;
        *width = shape_size(&g->nodes[ph].sh, 1);
        return true;
    }
    const int *ids[2] = {m->inputs, m->labels};
    int counts[2] = {m->ninputs, e->kind == ENTRY_PREDICT ? 0 : m->noutputs};
    for (int a = 0; a < 2; a++) {
        long off = 0, w = 0;
        for (int k = 0; k < counts[a]; k++)
            w += shape_size(&g->nodes[ids[a][k]].sh, 1);
        for (int k = 0; k < counts[a]; k++) {
            if (ids[a][k] == ph) {
                *array = a ? "y" : "x";
                *col = off;
                *width = w;
                return true;
            }
            off += shape_size(&g->nodes[ids[a][k]].sh, 1);
        }
    }
    return false;
}

/* The checks of entry e's arguments: NULL pointers, the batch size, and
 * every class label (of a sparse cross-entropy) the caller passes, which
 * the kernels use as an index. */
static void emit_checks(emit_ctx *ec, const entry *e, const char *up) {
    cg_graph *g = ec->g;
    text *t = ec->t;
    text_puts(t, "    if (!s");
    if (g->model && e->kind == ENTRY_PREDICT)
        text_puts(t, " || !x || !out");
    else if (g->model)
        text_printf(t, " || !x || !y || !batch_loss || (!batch_metrics && %s_NUM_METRICS > 0)", up);
    for (int i = 0; !g->model && i < g->ninputs; i++)
        text_printf(t, " || !%s", g->nodes[g->inputs[i]].name);
    text_printf(t, ")\n        return %s_ERR_NULL;\n    if (n < 1 || n > %s_MAX_BATCH)\n        return %s_ERR_BATCH;\n", up,
                up, up);
    for (int j = 0; j < e->nsched; j++) {
        const node *n = &g->nodes[e->sched[j]];
        const char *array;
        long col, width;
        if (n->op != OP_SOFTMAX_XENT || !n->sparse || g->nodes[n->in[1]].op != OP_PLACEHOLDER ||
            !caller_array(g, e, n->in[1], &array, &col, &width))
            continue;
        const shape *zs = &g->nodes[n->in[0]].sh;
        long classes = zs->d[zs->rank - 1], per = shape_size(&g->nodes[n->in[1]].sh, 1);
        text_printf(t, "    for (int i = 0; i < n * %ld; i++) { /* %s: class indices in [0, %ld) */\n", per,
                    g->nodes[n->in[1]].name, classes);
        if (per == width)
            text_printf(t, "        float label = %s[i];\n", array);
        else
            text_printf(t, "        float label = %s[i / %ld * %ld + %ld + i %% %ld];\n", array, per, width, col, per);
        text_printf(t, "        if (!(label >= 0.0f && label < %ld.0f) || label != (float)(int)label)\n"
                    "            return %s_ERR_LABEL;\n    }\n", classes, up);
    }
}

/* The checked form of entry e: the same computation, after checking what
 * the caller passes; returns UNAME_OK or the first thing found wrong (and
 * then computes nothing). Tape entries hand the loss back through *loss. */
static void emit_checked(emit_ctx *ec, const entry *e, text *protos) {
    cg_graph *g = ec->g;
    const char *p = ec->prefix;
    char up[128], sig[2048];
    upper(p, up, sizeof up);
    size_t len = 0;
    switch (e->kind) {
    case ENTRY_PREDICT:
        len = (size_t)snprintf(sig, sizeof sig, "int %s_predict_checked(%s_state *s, int n, const float *x, float *out)", p, p);
        break;
    case ENTRY_EVAL:
    case ENTRY_TRAIN:
        len = (size_t)snprintf(sig, sizeof sig, "int %s_%s_checked(%s_state *s, int n, const float *x, const float *y, "
                               "float *batch_loss, float *batch_metrics)", p, e->fname, p);
        break;
    default:
        len = (size_t)snprintf(sig, sizeof sig, "int %s_%s_checked(%s_state *s, int n", p, e->fname, p);
        for (int i = 0; i < g->ninputs && len < sizeof sig; i++)
            len += (size_t)snprintf(sig + len, sizeof sig - len, ", const float *%s", g->nodes[g->inputs[i]].name);
        if (len < sizeof sig)
            snprintf(sig + len, sizeof sig - len, ", float *loss)");
    }
    text_printf(protos, "%s;\n", sig);
    text_printf(ec->t, "/* %s_%s, after checking its arguments: %s_OK, or what is wrong (and nothing is computed). */\n"
                "%s\n{\n", p, e->fname, up, sig);
    text *body = ec->t;
    emit_checks(ec, e, up);
    switch (e->kind) {
    case ENTRY_PREDICT: text_printf(body, "    %s_predict(s, n, x, out);\n", p); break;
    case ENTRY_EVAL:
    case ENTRY_TRAIN: text_printf(body, "    %s_%s(s, n, x, y, batch_loss, batch_metrics);\n", p, e->fname); break;
    default:
        text_printf(body, "    float value = %s_%s(s, n", p, e->fname);
        for (int i = 0; i < g->ninputs; i++)
            text_printf(body, ", %s", g->nodes[g->inputs[i]].name);
        text_puts(body, ");\n    if (loss)\n        *loss = value;\n");
    }
    text_printf(body, "    return %s_OK;\n}\n\n", up);
}

/* ---- files ---------------------------------------------------------------------------- */

/* Appends "#define UNAME_VAR offset" lines for every parameter. */
static void emit_offsets(emit_ctx *ec, text *t, const char *pu) {
    cg_graph *g = ec->g;
    char up[128], sb[64];
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        const node *n = &g->nodes[v->node];
        text_printf(t, "#define %s_%s %zu /* %s %s%s */\n", pu, upper(n->name, up, sizeof up), v->offset, v->name,
                    shape_str(&n->sh, sb, sizeof sb), v->trainable ? "" : ", not trainable");
    }
}

/* One initialisation call per parameter, each from its own seeded stream. */
static void emit_init_calls(emit_ctx *ec, text *t, const char *pu, bool *used_uniform, bool *used_normal,
                            bool *used_orthogonal) {
    cg_graph *g = ec->g;
    char up[128], a[48], b[48], sb[64];
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        const node *n = &g->nodes[v->node];
        char dst[384];
        snprintf(dst, sizeof dst, "s->params + %s_%s, %zu", pu, upper(n->name, up, sizeof up), v->count);
        text_printf(t, "    rng = seed * 0x9E3779B97F4A7C15ull + %d; /* %s %s */\n", i + 1, v->name,
                    shape_str(&n->sh, sb, sizeof sb));
        switch (v->init.kind) {
        case CG_INIT_ZEROS:
        case CG_INIT_DEFAULT:
            text_printf(t, "    init_constant(%s, 0.0f);\n", dst);
            break;
        case CG_INIT_ONES: text_printf(t, "    init_constant(%s, 1.0f);\n", dst); break;
        case CG_INIT_CONSTANT:
            text_printf(t, "    init_constant(%s, %s);\n", dst, emit_float(v->init.a, a, sizeof a));
            break;
        case CG_INIT_UNIFORM:
            text_printf(t, "    init_uniform(%s, %s, %s, &rng);\n", dst, emit_float(v->init.a, a, sizeof a),
                        emit_float(v->init.b, b, sizeof b));
            *used_uniform = true;
            break;
        case CG_INIT_NORMAL:
            text_printf(t, "    init_normal(%s, %s, %s, 0, &rng);\n", dst, emit_float(v->init.a, a, sizeof a),
                        emit_float(v->init.b, b, sizeof b));
            *used_normal = true;
            break;
        case CG_INIT_GLOROT_UNIFORM: {
            float limit = sqrtf(6.0f / (float)(v->fan_in + v->fan_out));
            text_printf(t, "    /* Glorot uniform: limit sqrt(6 / (fan_in %d + fan_out %d)) */\n", v->fan_in, v->fan_out);
            text_printf(t, "    init_uniform(%s, -%s, %s, &rng);\n", dst, emit_float(limit, a, sizeof a), a);
            *used_uniform = true;
            break;
        }
        case CG_INIT_HE_NORMAL: {
            float std = sqrtf(2.0f / (float)v->fan_in) / 0.87962566f;
            text_printf(t, "    /* He normal: truncated N(0, 2 / fan_in %d), rescaled for the truncation */\n", v->fan_in);
            text_printf(t, "    init_normal(%s, 0.0f, %s, 1, &rng);\n", dst, emit_float(std, a, sizeof a));
            *used_normal = true;
            break;
        }
        case CG_INIT_ORTHOGONAL: {
            long rows = n->sh.rank >= 2 ? (long)v->count / n->sh.d[n->sh.rank - 1] : 1;
            text_printf(t, "    init_orthogonal(s->params + %s_%s, %ld, %ld, &rng);\n", pu, upper(n->name, up, sizeof up),
                        rows, (long)v->count / rows);
            *used_orthogonal = true;
            break;
        }
        }
        if (v->ones_count > 0)
            text_printf(t, "    init_constant(s->params + %s_%s + %d, %d, 1.0f); /* unit_forget_bias: the forget gate's "
                        "bias starts at 1 */\n", pu, upper(n->name, up, sizeof up), v->ones_begin, v->ones_count);
    }
}

/* Writes text t to DIR/FILE, replacing it only when complete. */
static int write_file(cg_graph *g, const char *dir, const char *file, text *t) {
    char path[1024], tmp[1100];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (t->oom)
        return graph_error(g, (cg_src){0}, -1, "%s: out of memory while emitting", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return graph_error(g, (cg_src){0}, -1, "%s: cannot write: %s", tmp, strerror(errno));
    bool ok = fwrite(t->s, 1, t->len, f) == t->len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        return graph_error(g, (cg_src){0}, -1, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

/* The header comment: the summary with " * " before each line. */
static void comment_lines(text *t, const char *s) {
    while (s && *s) {
        size_t len = strcspn(s, "\n");
        text_printf(t, " * %.*s\n", (int)len, s);
        s += len + (s[len] == '\n');
    }
}

int emit_files(cg_graph *g, const char *dir, cg_flavour flavour) {
    if (g->compiled && g->flavour != flavour)
        g->compiled = false;   /* planned for the other flavour (scratch differs): plan again */
    g->flavour = flavour;
    if (compile_graph(g, NULL, NULL))
        return -1;
    const char *p = g->name;
    char pu[128], num[16][48];
    if (strlen(p) > 100)
        return graph_error(g, (cg_src){0}, -1, "%s: the model name is too long", p);
    upper(p, pu, sizeof pu);
    emit_ctx ec = {g, NULL, flavour, p, 0};
    cg_model *m = g->model;
    size_t trainable = 0, arena_floats = 1;
    for (int i = 0; i < g->nvars; i++)
        if (g->vars[i].trainable)
            trainable += g->vars[i].count;
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].arena_floats > arena_floats)
            arena_floats = g->entries[k].arena_floats;
    const char *source = "?";
    if (m)
        source = base_name(g, m->src.file);
    else if (g->nnodes)
        source = base_name(g, g->nodes[0].src.file);
    const cg_optimizer *o = g->has_opt ? &g->opt : NULL;
    const char *opt_name = !o ? "none: the caller updates the parameters"
                           : o->kind == CG_ADAM ? "Adam: m and v" : o->kind == CG_RMSPROP ? "RMSprop: mean square and momentum"
                           : o->momentum != 0.0f ? "SGD: velocity" : "SGD: none";

    /* NAME.h */
    text summary = {0}, offsets = {0}, protos = {0}, h = {0};
    comment_lines(&summary, graph_summary(g));
    emit_offsets(&ec, &offsets, pu);
    int in_features = 1, out_features = 1, label_features = 1;
    if (m) {
        in_features = (int)shape_size(&m->input, 1);
        out_features = label_features = 0;
        for (int k = 0; k < m->noutputs; k++) {
            out_features += (int)shape_size(&g->nodes[m->outputs_infer[k]].sh, 1);
            label_features += (int)shape_size(&g->nodes[m->labels[k]].sh, 1);
        }
    }
    for (int k = 0; k < g->nentries; k++) {
        const entry *e = &g->entries[k];
        switch (e->kind) {
        case ENTRY_PREDICT: text_printf(&protos, "void %s_predict(%s_state *s, int n, const float *x, float *out);\n", p, p); break;
        case ENTRY_EVAL:
        case ENTRY_TRAIN:
            text_printf(&protos, "void %s_%s(%s_state *s, int n, const float *x, const float *y, float *batch_loss, float *batch_metrics);\n",
                        p, e->fname, p);
            break;
        default:
            text_printf(&protos, "float %s_%s(%s_state *s, int n", p, e->fname, p);
            for (int i = 0; i < g->ninputs; i++)
                text_printf(&protos, ", const float *%s", g->nodes[g->inputs[i]].name);
            text_puts(&protos, ");\n");
        }
    }
    /* the checked forms, written now so that the header can declare them */
    text checked = {0};
    text_printf(&protos, "\n/* The same entry points with their arguments checked first (NULL pointers, 1 <= n <= %s_MAX_BATCH,\n"
                " * class labels in range): they return %s_OK, or an error code and compute nothing. */\n"
                "#define %s_OK 0\n#define %s_ERR_NULL 1   /* a NULL pointer */\n"
                "#define %s_ERR_BATCH 2  /* n outside 1..%s_MAX_BATCH */\n"
                "#define %s_ERR_LABEL 3  /* a class label that is not an integer in [0, classes) */\n",
                pu, pu, pu, pu, pu, pu, pu);
    ec.t = &checked;
    for (int k = 0; k < g->nentries; k++)
        emit_checked(&ec, &g->entries[k], &protos);
    ec.t = NULL;
    if (!m && g->has_opt)
        text_printf(&protos, "/* One optimizer step from the gradients in s->grads. */\nvoid %s_apply_gradients(%s_state *s);\n",
                    p, p);
    bool has_dropout = false;
    for (int id = 0; id < g->nnodes; id++)
        has_dropout = has_dropout || g->nodes[id].op == OP_DROPOUT_MASK;
    const char *rng_field = has_dropout ? "    uint64_t rng;  /* generator of the dropout masks */\n" : "";
    const char *rng_init = has_dropout ? "    s->rng = seed ^ 0x2545F4914F6CDD1Dull;\n" : "";
    char guard[256], opt_field[256] = "";
    snprintf(guard, sizeof guard, "%s_H", pu);
    if (g->opt_floats)
        snprintf(opt_field, sizeof opt_field, "    float opt[%s_OPT_FLOATS];\n", pu);
    /* what a sample is: the model's input, output and label, or each placeholder of a tape graph */
    text io = {0};
    if (m)
        text_printf(&io, "#define %s_IN_FEATURES %d          /* floats per input sample */\n"
                    "#define %s_OUT_FEATURES %d        /* floats per output sample */\n"
                    "#define %s_LABEL_FEATURES %d    /* floats per label */\n"
                    "#define %s_NUM_METRICS %d       /* values beside the loss that train_step and eval_step report */\n",
                    pu, in_features, pu, out_features, pu, label_features, pu, m->nmetrics);
    for (int i = 0; !m && i < g->ninputs; i++) {
        const node *ph = &g->nodes[g->inputs[i]];
        char up[128], sb[64];
        bool batched = shape_batched(&ph->sh);
        text_printf(&io, "#define %s_%s_FLOATS %ld /* %s %s: floats %s */\n", pu, upper(ph->name, up, sizeof up),
                    shape_size(&ph->sh, 1), ph->name, shape_str(&ph->sh, sb, sizeof sb),
                    batched ? "per sample" : "in all");
    }
    snprintf(num[0], 48, "%d", g->max_batch);
    snprintf(num[4], 48, "%zu", g->param_floats);
    snprintf(num[5], 48, "%zu", trainable);
    snprintf(num[6], 48, "%zu", g->opt_floats);
    snprintf(num[7], 48, "%zu", arena_floats);
    snprintf(num[8], 48, "%d", g->nvars);
    const char *hkv[] = {"NAME", p, "UNAME", pu, "VERSION", CG_VERSION, "SOURCE", source, "SUMMARY", summary.s ? summary.s : "",
                         "GUARD", guard, "MAX_BATCH", num[0], "IO_DEFINES", io.s ? io.s : "", "PARAM_FLOATS", num[4], "TRAINABLE_FLOATS", num[5],
                         "OPT_FLOATS", num[6], "ARENA_FLOATS", num[7], "NUM_PARAMS", num[8], "OPTIMIZER", opt_name,
                         "OFFSETS", offsets.s ? offsets.s : "", "OPT_FIELD", opt_field,
                         "PROTOTYPES", protos.s ? protos.s : "", "RNG_FIELD", rng_field, NULL};
    int rc = text_template(&h, "header", hkv);

    /* NAME.c */
    text c = {0};
    ec.t = &c;
    bool uses_blas = false;   /* a GEMM kind of op: the main program tunes OpenBLAS */
    for (int k = 0; k < g->nentries; k++)
        for (int j = 0; j < g->entries[k].nsched; j++) {
            op_kind op = g->nodes[g->entries[k].sched[j]].op;
            uses_blas = uses_blas || (flavour == CG_HOST && (op == OP_MATMUL || op == OP_DENSE ||
                                                             op_table[op].cat == CAT_CONV || op_table[op].cat == CAT_SEQ));
        }
    /* host code may call the shim from any kernel (GEMMs, split loops, sums of rows) and the optimizer */
    const char *ckv[] = {"NAME", p, "VERSION", CG_VERSION, "SOURCE", source,
                         "FLAVOUR", flavour == CG_HOST ? "host (GEMM shim over OpenBLAS, fused epilogues)"
                                                       : "portable (plain loops: no heap, no stdio, no BLAS)",
                         "INCLUDES", flavour == CG_HOST ? "#include <cgrad_gemm.h>\n" : "",
                         NULL};
    rc |= text_template(&c, "source_head", ckv);
    /* parameter table */
    text_printf(&c, "\nconst %s_param_info %s_params_info[%s_NUM_PARAMS] = {\n", p, p, pu);
    for (int i = 0; i < g->nvars; i++) {
        const var *v = &g->vars[i];
        const shape *s = &g->nodes[v->node].sh;
        text_printf(&c, "    {\"%s\", %d, {%d, %d, %d, %d}, %zu, %zu, %d},\n", v->name, s->rank, s->rank > 0 ? s->d[0] : 1,
                    s->rank > 1 ? s->d[1] : 1, s->rank > 2 ? s->d[2] : 1, s->rank > 3 ? s->d[3] : 1, v->offset,
                    v->count, v->trainable);
    }
    text_puts(&c, "};\n\n");
    /* initialisation */
    text calls = {0}, opt_zero = {0};
    bool used_uniform = false, used_normal = false, used_orthogonal = false;
    emit_init_calls(&ec, &calls, pu, &used_uniform, &used_normal, &used_orthogonal);
    text init_calls = {0};
    if (used_uniform || used_normal || used_orthogonal)
        text_puts(&init_calls, "    uint64_t rng;\n");
    else
        text_puts(&init_calls, "    (void)seed;\n");
    if (calls.s) {
        if (!used_uniform && !used_normal && !used_orthogonal) {   /* no stream needed: drop the rng lines */
            for (char *line = calls.s; line && *line;) {
                char *end = strchr(line, '\n');
                size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
                if (strncmp(line, "    rng = ", 10))
                    text_printf(&init_calls, "%.*s", (int)len, line);
                line += len;
            }
        } else
            text_puts(&init_calls, calls.s);
    }
    if (g->opt_floats)
        text_printf(&opt_zero, "    init_constant(s->opt, %s_OPT_FLOATS, 0.0f);\n", pu);
    char lr[48];
    emit_float(o ? o->lr : 0.01f, lr, sizeof lr);
    const char *ikv[] = {"NAME", p, "UNAME", pu, "INIT_CALLS", init_calls.s ? init_calls.s : "",
                         "OPT_ZERO", opt_zero.s ? opt_zero.s : "", "LR", lr, "RNG_INIT", rng_init, NULL};
    if (used_uniform || used_normal || used_orthogonal)
        rc |= text_template(&c, "init/rng", ikv);
    if (used_uniform)
        rc |= text_template(&c, "init/uniform", ikv);
    if (used_normal)
        rc |= text_template(&c, "init/normal", ikv);
    if (used_orthogonal)
        rc |= text_template(&c, "init/orthogonal", ikv);
    rc |= text_template(&c, "init/constant", ikv);
    rc |= text_template(&c, "init/body", ikv);
    /* optimizer */
    if (o) {
        char b1[48], b2[48], eps[48], mom[48], rho[48];
        emit_float(o->beta_1, b1, sizeof b1);
        emit_float(o->beta_2, b2, sizeof b2);
        emit_float(o->epsilon, eps, sizeof eps);
        emit_float(o->momentum, mom, sizeof mom);
        emit_float(o->rho, rho, sizeof rho);
        const char *okv[] = {"BETA_1", b1, "BETA_2", b2, "EPSILON", eps, "MOMENTUM", mom, "RHO", rho,
                             "NESTEROV_NOTE", o->nesterov ? ", Nesterov" : "",
                             "STEP_NOTE", o->nesterov ? "p += momentum v - lr g" : "p += v",
                             "STEP", o->nesterov ? "momentum * v[i] - lr * g[i]" : "v[i]", NULL};
        text_puts(&c, "/* ---- optimizer ------------------------------------------------------------ */\n\n");
        const char *ot = o->kind == CG_ADAM ? (flavour == CG_HOST ? "optim/adam_host" : "optim/adam") : o->kind == CG_RMSPROP ? "optim/rmsprop"
                         : o->momentum != 0.0f ? "optim/sgd_momentum" : "optim/sgd";
        rc |= text_template(&c, ot, okv);
    }
    if (flavour == CG_HOST && seq_needs_math(g))
        rc |= text_template(&c, "kernels/rnn_math_host", ikv);
    /* kernels: every node some entry computes, in graph order */
    text_puts(&c, "/* ---- kernels: one per node ------------------------------------------------ */\n\n");
    for (int id = 0; id < g->nnodes; id++) {
        bool used = false;
        for (int k = 0; k < g->nentries && !used; k++)
            for (int j = 0; j < g->entries[k].nsched && !used; j++)
                used = g->entries[k].sched[j] == id;
        if (used && has_kernel(g, id))
            emit_kernel(&ec, id);
    }
    text_puts(&c, "/* ---- entry points --------------------------------------------------------- */\n\n");
    for (int k = 0; k < g->nentries; k++)
        emit_entry(&ec, &g->entries[k]);
    text_puts(&c, checked.s ? checked.s : "");
    text_free(&checked);
    if (!m && g->has_opt) {   /* the tape's optimizer, for the caller's own loop */
        text_printf(&c, "/* Applies the optimizer to the parameters, from the gradients in s->grads:\n"
                    " * call it after %s_gradients (and after any change made to s->grads). */\n"
                    "void %s_apply_gradients(%s_state *s)\n{", p, p, p);
        emit_update(&ec);
        text_puts(&c, "}\n\n");
    }
    if (!c.oom && c.s) {
        c.len -= c.len > 1 && c.s[c.len - 2] == '\n';   /* one newline at the end */
        c.s[c.len] = 0;
    }

    if (rc)
        graph_error(g, (cg_src){0}, -1, "internal: a template failed to expand");
    char file[512];
    snprintf(file, sizeof file, "%s.h", p);
    if (!g->failed)
        write_file(g, dir, file, &h);
    snprintf(file, sizeof file, "%s.c", p);
    if (!g->failed)
        write_file(g, dir, file, &c);

    /* NAME_main.c */
    if (m && !g->failed) {
        text mt = {0}, path = {0}, series = {0};
        char dims[64] = "", scale[48], split[48], classes[16], epochs[16], batch[16], rank[8], counts[2][8], range[80];
        size_t len = 0;
        for (int i = 0; i < m->input.rank; i++)
            len += (size_t)snprintf(dims + len, sizeof dims - len, "%s%d", i ? ", " : "", m->input.d[i]);
        emit_c_string(&path, m->opts.data.path);
        emit_series(&series, &m->opts.data.series);
        emit_float(m->opts.data.scale, scale, sizeof scale);
        emit_float(m->opts.data.test_split, split, sizeof split);
        bool sparse = m->noutputs == 1 && m->spec[0].loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
        snprintf(classes, sizeof classes, "%d", sparse ? out_features : 0);
        snprintf(epochs, sizeof epochs, "%d", m->opts.epochs);
        snprintf(batch, sizeof batch, "%d", m->opts.batch_size);
        snprintf(rank, sizeof rank, "%d", m->input.rank);
        snprintf(counts[0], sizeof counts[0], "%d", m->nmetrics);
        snprintf(counts[1], sizeof counts[1], "%d", m->noutputs);
        range[0] = 0;
        if (m->opts.data.class_range[1] > 0)
            snprintf(range, sizeof range, ",\n                  .class_range = { %d, %d }", m->opts.data.class_range[0],
                     m->opts.data.class_range[1]);
        text names = {0}, outs = {0};
        for (int i = 0; i < m->nmetrics; i++) {
            text_puts(&names, i ? ", " : "");
            emit_c_string(&names, m->metric_names[i]);
        }
        if (!m->nmetrics)
            text_puts(&names, "0");
        for (int k = 0; k < m->noutputs; k++) {
            const node *o = &g->nodes[m->outputs_infer[k]];
            bool sp = m->spec[k].loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
            text_puts(&outs, "    {");
            emit_c_string(&outs, m->output_names[k]);
            text_printf(&outs, ", %ld, %ld, %ld},\n", shape_size(&o->sh, 1),
                        shape_size(&g->nodes[m->labels[k]].sh, 1), sp ? shape_size(&o->sh, 1) : 0L);
        }
        const char *loss = m->noutputs > 1 ? "weighted_sum"
                           : m->spec[0].custom_loss ? (m->spec[0].custom_loss_name ? m->spec[0].custom_loss_name : "custom_loss")
                           : loss_name(m->spec[0].loss);
        const char *mkv[] = {"NAME", p, "UNAME", pu, "VERSION", CG_VERSION, "SOURCE", source, "IN_RANK", rank,
                             "IN_DIMS", dims, "LABEL_KIND", sparse ? "CGRT_LABEL_SPARSE" : "CGRT_LABEL_DENSE",
                             "NUM_CLASSES", classes, "LOSS", loss, "NUM_METRICS", counts[0],
                             "METRIC_NAMES", names.s ? names.s : "0", "NUM_OUTPUTS", counts[1],
                             "OUTPUTS", outs.s ? outs.s : "", "LR", lr,
                             "EPOCHS", epochs, "BATCH", batch, "DATA_PATH", path.s ? path.s : "0", "DATA_SCALE", scale,
                             "TEST_SPLIT", split, "CLASS_RANGE", range, "SERIES", series.s ? series.s : "",
                             "BLAS_INCLUDE", uses_blas ? "#include <cblas.h>\n#include <cgrad_gemm.h>\n" : "",
                             "BLAS_TUNE", uses_blas ? "    if (cgrt_gemm_uses_openblas())   /* else the shim's own kernel runs every product */\n"
                                                      "        cgrt_tune_openblas(argv, openblas_get_corename());\n" : "",
                             NULL};
        if (text_template(&mt, "main", mkv))
            graph_error(g, (cg_src){0}, -1, "internal: the main template failed to expand");
        snprintf(file, sizeof file, "%s_main.c", p);
        if (!g->failed)
            write_file(g, dir, file, &mt);
        text_free(&mt), text_free(&names), text_free(&outs), text_free(&path), text_free(&series);
    }
    text_free(&summary), text_free(&offsets), text_free(&protos), text_free(&h), text_free(&c), text_free(&io);
    text_free(&calls), text_free(&opt_zero), text_free(&init_calls);
    return g->failed ? -1 : 0;
}

int cg_emit_graph(cg_graph *g, const char *dir, cg_flavour flavour) {
    if (!g || g->failed)
        return -1;
    return emit_files(g, dir, flavour);
}
