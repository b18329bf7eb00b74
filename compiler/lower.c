/* lower.c: what the op families use to write their kernels (below ops/):
 * dimensions, float literals, broadcast indices, the textbook names of a
 * kernel's arguments, and the few words every part of the emitter shares
 * (upper-case names, escaped strings, the user's file). */
#include "cgrad_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* "n" for the batch dimension, else the number. */
const char *emit_dim(const shape *s, int axis, char *buf, size_t size)
{
    if (s->d[axis] == CG_BATCH)
        snprintf(buf, size, "n");
    else
        snprintf(buf, size, "%d", s->d[axis]);
    return buf;
}

/* A float literal that reads back to the same float. */
const char *emit_float(float v, char *buf, size_t size)
{
    char tmp[48];
    if (!isfinite(v)) { /* from folding constants, x / 0 */
        snprintf(buf, size, "%s", isnan(v) ? "NAN" : v > 0 ? "INFINITY" : "(-INFINITY)");
        return buf;
    }
    snprintf(tmp, sizeof tmp, "%.9g", (double)v);
    for (int p = 1; p < 9; p++) { /* the shortest form that reads back */
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
void emit_c_string(text *t, const char *s)
{
    if (!s) {
        text_puts(t, "0");
        return;
    }
    text_puts(t, "\"");
    text_escaped(t, s);
    text_puts(t, "\"");
}

/* Index of `in` broadcast against `out` over loop variables i0.. (row-major). */
const char *emit_bcast_index(const shape *in, const shape *out, char *buf, size_t size)
{
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
void kernel_arg_name(const node *n, int k, char *buf, size_t size)
{
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
const char *emit_input(emit_ctx *e, int id, int k, const char *index, char *buf, size_t size)
{
    const node *n = &e->g->nodes[id];
    const node *in = &e->g->nodes[n->in[k]];
    if (in->op == OP_CONST) {
        char lit[48];
        emit_float(in->alpha, lit, sizeof lit);
        if (in->per_n)
            snprintf(buf, size, "(%s / (float)n)", lit);
        else
            snprintf(buf, size, in->alpha < 0 ? "(%s)" : "%s", lit); /* -x of a negative constant stays C */
        return buf;
    }
    char name[16];
    kernel_arg_name(n, k, name, sizeof name);
    snprintf(buf, size, "%s[%s]", name, index);
    return buf;
}

/* True when node id's kernel needs the batch size n. */
bool kernel_needs_n(cg_graph *g, int id)
{
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
bool node_has_kernel(cg_graph *g, int id)
{
    op_kind op = g->nodes[id].op;
    return op_table[op].cat != CAT_LEAF && op != OP_RESHAPE;
}

/* The name of activation a in banners and comments ("gelu"; activations.def). */
const char *emit_act_name(cg_activation a)
{
    return (unsigned)a < ACT_COUNT ? act_table[a].name : "unknown";
}

/* The name of node id's kernel: "<buffer>_fwd" or "<buffer>_bwd". */
const char *kernel_name(cg_graph *g, int id, char *buf, size_t size)
{
    snprintf(buf, size, "%s_%s", g->nodes[id].name, g->nodes[id].backward ? "bwd" : "fwd");
    return buf;
}

/* The user's file name without folders, escaped for a comment. */
const char *emit_source_file(cg_graph *g, const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return arena_escaped(&g->a, s ? s + 1 : (path ? path : "?"), 200);
}

/* Upper-case copy of s into buf. */
const char *emit_upper(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        buf[i] = (char)toupper((unsigned char)s[i]);
    buf[i] = 0;
    return buf;
}

/* Appends "; " (when buf holds text) and the formatted term to buf[size]:
 * the terms of a gradient rule's words. */
void words_term(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len && len + 2 < size)
        len += (size_t)snprintf(buf + len, size - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    if (len < size)
        vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* The positions of node id's inputs that its kernel takes as arrays (its
 * constants are literals in the body) into which[]; returns how many. */
int kernel_inputs(cg_graph *g, int id, int which[3])
{
    const node *n = &g->nodes[id];
    int k = 0;
    for (int i = 0; i < n->nin; i++)
        if (g->nodes[n->in[i]].op != OP_CONST)
            which[k++] = i;
    return k;
}
