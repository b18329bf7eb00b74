/* dot.c: the graph as a picture, in Graphviz's DOT language, for readers of
 * the emitted code. It draws every node an entry point computes (constants,
 * which kernels take as literals, are left out): forward nodes in blue,
 * backward nodes in orange, one cluster per layer, each edge labelled with
 * the shape it carries, the forward buffers that backward nodes read (the
 * saved activations) with a bold border, and a dashed edge from each
 * backward node to the forward node it differentiates. dot_graph
 * returns the text; dot_write puts it in DIR/NAME.dot and, when Graphviz is
 * installed, has it drawn into DIR/NAME.svg. Nothing is printed. */
#include "cgrad_int.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

#define DOT_FORWARD "#d6e6f5"  /* fill of forward nodes */
#define DOT_BACKWARD "#fbd9b4" /* fill of backward nodes */

/* The length of the valid UTF-8 sequence of two to four bytes at p; 0 for
 * anything else (a single byte, an overlong form, a surrogate, a cut one). */
static int utf8_len(const unsigned char *p)
{
    int len = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
              : p[0] >= 0xe0 && p[0] <= 0xef ? 3
              : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                             : 0;
    unsigned lo = p[0] == 0xe0 ? 0xa0 : p[0] == 0xf0 ? 0x90 : 0x80; /* the second byte's range */
    unsigned hi = p[0] == 0xed ? 0x9f : p[0] == 0xf4 ? 0x8f : 0xbf;
    for (int i = 1; i < len; i++)
        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
            return 0;
    return len;
}

/* Appends s for the inside of a DOT string: '"' and '\' escaped, '&' as an
 * entity (Graphviz reads entities in labels), control characters and bytes
 * outside valid UTF-8 as '?', so that any file name stays one label. */
static void dot_escaped(text *t, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int len = utf8_len(p);
        if (len) {
            text_printf(t, "%.*s", len, (const char *)p);
            p += len - 1;
        } else if (*p == '"' || *p == '\\')
            text_printf(t, "\\%c", *p);
        else if (*p == '&')
            text_puts(t, "&amp;");
        else
            text_printf(t, "%c", *p < 0x20 || *p >= 0x7f ? '?' : *p);
    }
}

/* The forward node each backward node differentiates, into owner[]: the
 * node whose gradient rule made it, or for a sum of gradients that arrive by
 * several paths the node they are the gradients of (node.grad_of, which the
 * fuse pass moves to the fused node); -1 when it names no forward op. */
static void gradient_owners(const cg_graph *g, int *owner)
{
    for (int id = 0; id < g->nnodes; id++) {
        const node *b = &g->nodes[id];
        int f = b->grad_of;
        bool op = b->backward && f >= 0 && f < g->nnodes && !g->nodes[f].backward &&
                  op_table[g->nodes[f].op].cat != CAT_LEAF;
        owner[id] = op ? f : -1;
    }
}

/* Per node: drawn (an entry point computes it and it is no constant). */
static bool *drawn_nodes(const cg_graph *g)
{
    bool *drawn = calloc((size_t)g->nnodes + 1, sizeof(bool));
    for (int k = 0; drawn && k < g->nentries; k++)
        for (int j = 0; j < g->entries[k].nsched; j++)
            drawn[g->entries[k].sched[j]] = g->nodes[g->entries[k].sched[j]].op != OP_CONST;
    return drawn;
}

/* Appends node id's statement: its name, op and activation as the label, its colour; bold when saved. */
static void dot_node(const cg_graph *g, int id, bool saved, text *t)
{
    const node *n = &g->nodes[id];
    text_printf(t, "    n%d [label=\"", id);
    dot_escaped(t, n->name);
    text_printf(t, "\\n%s", op_table[n->op].name);
    if (n->act != CG_LINEAR || op_table[n->op].cat == CAT_SEQ)
        text_printf(t, " %s", emit_act_name(n->act));
    if (op_table[n->op].cat == CAT_SEQ && n->op != OP_EMBEDDING && n->op != OP_EMBEDDING_BWD)
        text_printf(t, " %s", emit_act_name(n->ract));
    text_printf(t, "\", fillcolor=\"%s\"", n->backward ? DOT_BACKWARD : DOT_FORWARD);
    if (op_table[n->op].cat == CAT_LEAF)
        text_puts(t, ", shape=ellipse, style=filled");
    if (saved)
        text_puts(t, ", penwidth=3");
    text_puts(t, "];\n");
}

/* Appends the nodes: each layer's in its cluster, then those of no layer. */
static void dot_nodes(const cg_graph *g, const bool *drawn, const bool *saved, text *t)
{
    for (int li = 0; li <= g->nlayers; li++) {
        int lay = li < g->nlayers ? li : -1, count = 0;
        for (int id = 0; id < g->nnodes; id++)
            count += drawn[id] && g->nodes[id].layer == lay;
        if (!count)
            continue;
        if (lay >= 0) {
            const layer *l = &g->layers[lay];
            const char *file = l->src.file ? strrchr(l->src.file, '/') : NULL;
            text_puts(t, "  subgraph \"cluster_");
            dot_escaped(t, l->name);
            text_puts(t, "\" {\n    label=\"");
            dot_escaped(t, l->name);
            text_puts(t, " (");
            dot_escaped(t, l->kind);
            text_puts(t, ")");
            if (l->src.file) {
                text_puts(t, ", ");
                dot_escaped(t, file ? file + 1 : l->src.file);
                text_printf(t, ":%d", l->src.line);
            }
            text_puts(t, "\";\n");
        }
        for (int id = 0; id < g->nnodes; id++)
            if (drawn[id] && g->nodes[id].layer == lay)
                dot_node(g, id, saved[id], t);
        if (lay >= 0)
            text_puts(t, "  }\n");
    }
}

/* Appends the edges: inputs with their shapes, then the dashed edges from
 * backward nodes to the forward nodes their rules differentiate. */
static void dot_edges(const cg_graph *g, const bool *drawn, const int *owner, text *t)
{
    char sb[64];
    for (int id = 0; id < g->nnodes; id++)
        for (int i = 0; drawn[id] && i < g->nodes[id].nin; i++) {
            int in = g->nodes[id].in[i];
            if (drawn[in])
                text_printf(t, "  n%d -> n%d [label=\"%s\"];\n", in, id, shape_str(&g->nodes[in].sh, sb, sizeof sb));
        }
    for (int id = 0; id < g->nnodes; id++) {
        int f = owner[id];
        if (drawn[id] && f >= 0 && drawn[f])
            text_printf(t, "  n%d -> n%d [style=dashed, color=\"#888888\", arrowhead=empty, constraint=false];\n", id,
                        f);
    }
}

/* Appends compiled graph g in DOT. */
void dot_graph(cg_graph *g, text *t)
{
    bool *drawn = drawn_nodes(g), *saved = calloc((size_t)g->nnodes + 1, sizeof(bool));
    int *owner = malloc(sizeof(int) * ((size_t)g->nnodes + 1));
    if (!drawn || !saved || !owner) {
        free(drawn), free(saved), free(owner);
        t->oom = true;
        return;
    }
    for (int id = 0; id < g->nnodes; id++) /* forward activations that a backward node reads */
        for (int i = 0; drawn[id] && g->nodes[id].backward && i < g->nodes[id].nin; i++) {
            const node *in = &g->nodes[g->nodes[id].in[i]];
            saved[g->nodes[id].in[i]] |= !in->backward && in->op != OP_VARIABLE && in->op != OP_CONST;
        }
    gradient_owners(g, owner);
    const char *src = g->model ? g->model->src.file : g->nnodes ? g->nodes[0].src.file : NULL;
    const char *file = src ? strrchr(src, '/') : NULL;
    text_puts(t, "digraph \"");
    dot_escaped(t, g->name);
    text_puts(t, "\" {\n  graph [fontname=\"Helvetica\", fontsize=12, labelloc=t, newrank=true, label=\"");
    dot_escaped(t, g->name);
    if (src) {
        text_puts(t, " (");
        dot_escaped(t, file ? file + 1 : src);
        text_puts(t, ")");
    }
    text_puts(t, ": forward nodes blue, backward orange; edges carry shapes; a bold border: saved for the "
                 "backward pass; dashed: from a gradient node to the forward node it differentiates\"];\n"
                 "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n"
                 "  edge [fontname=\"Helvetica\", fontsize=8];\n");
    dot_nodes(g, drawn, saved, t);
    dot_edges(g, drawn, owner, t);
    text_puts(t, "}\n");
    free(drawn), free(saved), free(owner);
}

/* Runs Graphviz's dot on DIR/NAME.dot into DIR/NAME.svg. 0 when it did so
 * or is not installed (a stale NAME.svg is removed then); -1 with the
 * graph's error when it could not run or failed. */
static int dot_render(cg_graph *g, const char *dot_path, const char *svg_path)
{
    const char *argv[] = {"dot", "-Tsvg", "-o", svg_path, dot_path, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ), status = 0;
    if (err == ENOENT) {
        remove(svg_path);
        return 0;
    }
    if (err)
        return graph_error(g, (cg_src){0}, -1, "%s: cannot run Graphviz's dot: %s", g->name, strerror(err));
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return graph_error(g, (cg_src){0}, -1, "%s: lost Graphviz's dot: %s", g->name, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    remove(svg_path);
    return graph_error(g, (cg_src){0}, -1, "%s: Graphviz's dot failed on %s (%s %d)", g->name,
                       arena_escaped(&g->a, dot_path, 200), WIFEXITED(status) ? "status" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* Writes DIR/NAME.dot, then DIR/NAME.svg when Graphviz is installed. */
int dot_write(cg_graph *g, const char *dir)
{
    char file[320], dot_path[1100], svg_path[1100];
    text t = {0};
    dot_graph(g, &t);
    snprintf(file, sizeof file, "%s.dot", g->name);
    int rc = emit_write_file(g, dir, file, &t);
    text_free(&t);
    if (rc)
        return -1;
    const char *lead = dir[0] == '-' ? "./" : ""; /* a path dot cannot take for an option */
    snprintf(dot_path, sizeof dot_path, "%s%s/%s.dot", lead, dir, g->name);
    snprintf(svg_path, sizeof svg_path, "%s%s/%s.svg", lead, dir, g->name);
    return dot_render(g, dot_path, svg_path);
}
