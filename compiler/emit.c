/* emit.c: the emitter's driver. From a compiled graph it writes NAME.h
 * (emit_header.c), NAME.c (emit_source.c: kernels from emit_kernel.c, entry
 * points from emit_entry.c) and, for a compiled model, NAME_main.c
 * (emit_main.c; not for firmware), and with const weights NAME_weights.c
 * (deploy.c). Output depends only on the graph: the same model emits
 * byte-identical files. */
#include "cgrad_int.h"

#include <errno.h>
#include <string.h>

/* Writes text t to DIR/FILE, replacing it only when complete. */
int emit_write_file(cg_graph *g, const char *dir, const char *file, text *t)
{
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

/* True when host code calls the GEMM shim for some product (the main
 * program then tunes OpenBLAS). */
static bool uses_blas(const cg_graph *g)
{
    for (int k = 0; k < g->nentries; k++)
        for (int j = 0; j < g->entries[k].nsched; j++) {
            op_kind op = g->nodes[g->entries[k].sched[j]].op;
            if (g->flavour == CG_HOST &&
                (op == OP_MATMUL || op == OP_DENSE || op_table[op].cat == CAT_CONV || op_table[op].cat == CAT_SEQ))
                return true;
        }
    return false;
}

/* Writes the files of the compiled graph g into dir. */
int emit_files(cg_graph *g, const char *dir)
{
    if (!g->compiled)
        return graph_error(g, (cg_src){0}, -1, "internal: %s is emitted before it is compiled", g->name);
    char pu[128], file[512];
    const char *src = g->model ? g->model->src.file : g->nnodes ? g->nodes[0].src.file : NULL;
    emit_ctx ec = {
        g,   NULL, g->flavour, g->name, 0, emit_upper(g->name, pu, sizeof pu), emit_source_file(g, src), uses_blas(g),
        NULL};
    text h = {0}, c = {0}, mt = {0}, w = {0};
    bool main_file = g->model && !g->dep.firmware, weights = g->dep.weights != NULL;
    if (emit_header(&ec, &h) | emit_source(&ec, &c) | (main_file ? emit_main(&ec, &mt) : 0) |
        (weights ? emit_weights(&ec, &w) : 0))
        graph_error(g, (cg_src){0}, -1, "internal: a template failed to expand");
    const char *suffix[4] = {".h", ".c", "_main.c", "_weights.c"};
    text *files[4] = {&h, &c, &mt, &w};
    bool wanted[4] = {true, true, main_file, weights};
    for (int i = 0; i < 4 && !g->failed; i++) {
        snprintf(file, sizeof file, "%s%s", g->name, suffix[i]);
        if (wanted[i])
            emit_write_file(g, dir, file, files[i]);
        else if (i >= 2) { /* a file of an earlier build into dir would no longer match */
            char path[1100];
            snprintf(path, sizeof path, "%s/%s", dir, file);
            remove(path);
        }
    }
    text_free(&h), text_free(&c), text_free(&mt), text_free(&w);
    return g->failed ? -1 : 0;
}

/* Public: compiles the tape graph g for flavour and emits it into dir. */
int cg_emit_graph(cg_graph *g, const char *dir, cg_flavour flavour)
{
    if (!g || g->failed)
        return -1;
    if (!dir)
        return graph_error(g, (cg_src){0}, -1, "%s: cg_emit_graph: the folder is NULL", g->name);
    return compile_graph(g, flavour, NULL, NULL) ? -1 : emit_files(g, dir);
}
