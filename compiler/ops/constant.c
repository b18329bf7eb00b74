/* ops/constant.c: constant tensors (cg_constant, a Normalization layer's
 * fixed statistics, a scalar reshaped to a shape of one element). A constant
 * is a leaf holding its values, copied at the builder call; the emitted
 * source declares each constant an entry point reads as a static const
 * array named after its node, which kernels take like any input buffer. */
#include "../cgrad_int.h"

#include <math.h>
#include <string.h>

/* The CONSTANT node called name, or -1 when no node has that name; -2 when another node has it. */
static int constant_named(cg_graph *g, const char *name)
{
    for (int id = 0; id < g->nnodes; id++)
        if (g->nodes[id].name && !strcmp(g->nodes[id].name, name))
            return g->nodes[id].op == OP_CONSTANT ? id : -2;
    return -1;
}

/* A constant of shape sh (no batch dimension) holding values, named name
 * (NULL: constant, constant_2, ...). The same name with the same shape and
 * values gives the node made before (a layer applied in both modes); with
 * other values, or naming another tensor, it is an error. Returns the node or -1. */
int op_constant(cg_graph *g, cg_src src, const char *name, shape sh, const float *values)
{
    if (g->failed)
        return -1;
    long count = shape_elems(&sh, 1);
    if (check_elems(g, src, g->cur_layer, "constant", &sh, 1))
        return -1;
    for (long i = 0; i < count; i++)
        if (!isfinite(values[i]))
            return graph_error(g, src, g->cur_layer, "constant %s: value %ld is %g; constants must be finite",
                               name ? name : "", i, (double)values[i]);
    if (name) {
        int old = constant_named(g, name);
        char s1[64], s2[64];
        if (old == -2)
            return graph_error(g, src, g->cur_layer, "constant name \"%s\" is taken by another tensor", name);
        if (old >= 0 && shape_equal(&g->nodes[old].sh, &sh) &&
            !memcmp(g->nodes[old].data, values, sizeof(float) * (size_t)count))
            return old;
        if (old >= 0)
            return graph_error(g, src, g->cur_layer, "constant \"%s\" exists already with shape %s, now given %s%s",
                               name, shape_str(&g->nodes[old].sh, s1, sizeof s1), shape_str(&sh, s2, sizeof s2),
                               shape_equal(&g->nodes[old].sh, &sh) ? " and other values" : "");
    }
    float *data = arena_alloc(&g->a, sizeof(float) * (size_t)count);
    if (!data)
        return graph_error(g, src, g->cur_layer, "out of memory");
    memcpy(data, values, sizeof(float) * (size_t)count);
    node nd = {.op = OP_CONSTANT, .sh = sh, .src = src, .data = data};
    nd.name = name ? arena_strdup(&g->a, name) : graph_unique_name(g, "constant");
    return graph_add(g, nd);
}

/* Public: cg_constant and its convenience forms. */
cg_t cg_constant_at(cg_src src, cg_graph *g, const char *name, cg_shape s, const float *values)
{
    if (!g || g->failed)
        return (cg_t){g, -1};
    if (name && graph_check_name(g, src, "constant", name, NAME_BARE))
        return (cg_t){g, -1};
    if (name && g->model && (!strcmp(name, "x") || !strcmp(name, "y"))) /* a model's entry points take x and y */
        return (cg_t){g, graph_error(g, src, g->cur_layer,
                                     "constant: the name '%s' is the model's %s argument; choose another", name,
                                     name[0] == 'x' ? "input" : "label")};
    if (s.rank < 0 || s.rank > CG_MAX_RANK)
        return (cg_t){g, graph_error(g, src, g->cur_layer, "constant: rank %d, at most %d dimensions are supported",
                                     s.rank, CG_MAX_RANK)};
    shape sh = {s.rank, {0}};
    for (int i = 0; i < s.rank; i++) {
        if (s.dims[i] < 1)
            return (cg_t){g, graph_error(g, src, g->cur_layer,
                                         "constant: dimension %d is %d; a constant's sizes must be positive (no "
                                         "batch dimension)",
                                         i, s.dims[i])};
        sh.d[i] = s.dims[i];
    }
    if (!values)
        return (cg_t){g, graph_error(g, src, g->cur_layer, "constant: values is NULL")};
    return (cg_t){g, op_constant(g, src, name, sh, values)};
}

/* Writes the static const array of every constant that an entry point's
 * kernels read, eight values a line; nothing when there is none. */
void emit_constants(emit_ctx *ec, text *c)
{
    cg_graph *g = ec->g;
    bool any = false;
    char sb[64], f[48];
    for (int id = 0; id < g->nnodes; id++) {
        const node *n = &g->nodes[id];
        bool used = false;
        for (int k = 0; n->op == OP_CONSTANT && k < g->nentries && !used; k++)
            for (int j = 0; j < g->entries[k].nsched && !used; j++) {
                const node *r = &g->nodes[g->entries[k].sched[j]];
                for (int i = 0; i < r->nin; i++)
                    used = used || r->in[i] == id;
            }
        if (!used)
            continue;
        if (!any)
            text_puts(c, "/* ---- constants: the values given at the builder calls ------------------- */\n\n");
        any = true;
        long count = shape_size(&n->sh, 1);
        text_printf(c, "/* %s (%s:%d) */\nstatic const float %s[%ld] = {", shape_str(&n->sh, sb, sizeof sb),
                    emit_source_file(g, n->src.file), n->src.line, n->name, count);
        for (long k = 0; k < count; k++)
            text_printf(c, "%s%s,", k % 8 ? " " : "\n    ", emit_float(n->data[k], f, sizeof f));
        text_puts(c, "\n};\n\n");
    }
}
