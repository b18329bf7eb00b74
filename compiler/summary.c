/* summary.c: the Keras-style summary, plus what Keras cannot show: per
 * layer, the FLOPs of forward and backward and the bytes of parameters,
 * gradients, optimizer state and planned activations, from the compiled graph. */
#include "cgrad_int.h"

#include <stdlib.h>
#include <string.h>

/* Floating-point operations of node id for one sample (batch 1): its family's count. */
long node_flops(cg_graph *g, int id)
{
    const op_family *f = op_table[g->nodes[id].op].family;
    return f->flops ? f->flops(g, id) : 0;
}

/* "1,234,567" */
static const char *commas(long v, char *buf, size_t size)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%ld", v < 0 ? -v : v);
    size_t len = strlen(tmp), o = 0;
    if (v < 0 && o + 1 < size)
        buf[o++] = '-';
    for (size_t i = 0; i < len && o + 2 < size; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

/* Builds the summary text of a compiled graph (owned by the graph's arena). */
const char *graph_summary(cg_graph *g)
{
    if (!g->compiled)
        return "";
    const entry *train = NULL;
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].want_grads)
            train = &g->entries[k];
    if (!train)
        train = &g->entries[g->nentries - 1];
    bool *in_train = calloc((size_t)g->nnodes, sizeof(bool));
    if (!in_train)
        return "";
    for (int j = 0; j < train->nsched; j++)
        in_train[train->sched[j]] = true;
    size_t opt_per_param = optim_slots(g);
    text t = {0};
    char a[32], b[32], c[32], d[32], e[32], f[32], h[32], sb[64];
    text_printf(&t, "Model: \"%s\" (max batch %d)\n", g->name, g->max_batch);
    text_printf(&t, "%-34s %-16s %10s %12s %12s %11s %11s %11s %11s\n", "Layer (type)", "Output Shape", "Param #",
                "FLOPs fwd", "FLOPs bwd", "Param B", "Grad B", "Opt B", "Act B");
    long tp = 0, tf = 0, tb = 0, tact = 0;
    for (int li = -1; li < g->nlayers; li++) {
        long params = 0, grads = 0, fwd = 0, bwd = 0, act = 0;
        for (int i = 0; i < g->nvars; i++)
            if (g->nodes[g->vars[i].node].layer == li) {
                params += (long)g->vars[i].count;
                grads += g->vars[i].grad >= 0 ? (long)g->vars[i].count : 0;
            }
        for (int id = 0; id < g->nnodes; id++) {
            if (!in_train[id] || g->nodes[id].layer != li)
                continue;
            if (g->nodes[id].backward)
                bwd += node_flops(g, id);
            else
                fwd += node_flops(g, id);
            if (train->offset[id] >= 0 && g->nodes[id].op != OP_RESHAPE)
                act += shape_size(&g->nodes[id].sh, g->max_batch) * 4;
        }
        bool aux = li < 0 || !strcmp(g->layers[li].kind, "Loss") || !strcmp(g->layers[li].kind, "Metric");
        if (aux && !fwd && !bwd && !params && !act)
            continue; /* graph-level nodes, or the inference-mode loss (counted in eval_step, not here) */
        char label[64];
        const char *shp = "";
        if (li >= 0) {
            snprintf(label, sizeof label, "%s (%s)", g->layers[li].name, g->layers[li].kind);
            shp = g->layers[li].out >= 0 ? shape_str(&g->nodes[g->layers[li].out].sh, sb, sizeof sb) : "";
        } else
            snprintf(label, sizeof label, "(graph ops)");
        text_printf(&t, "%-34s %-16s %10s %12s %12s %11s %11s %11s %11s\n", label, shp, commas(params, a, sizeof a),
                    commas(fwd, b, sizeof b), commas(bwd, c, sizeof c), commas(params * 4, d, sizeof d),
                    commas(grads * 4, e, sizeof e), commas(grads * 4 * (long)opt_per_param, f, sizeof f),
                    commas(act, h, sizeof h));
        tp += params, tf += fwd, tb += bwd, tact += act;
    }
    long trainable = 0;
    for (int i = 0; i < g->nvars; i++)
        trainable += g->vars[i].trainable ? (long)g->vars[i].count : 0;
    text_printf(&t, "Total params: %s (%s bytes)\n", commas(tp, a, sizeof a), commas(tp * 4, b, sizeof b));
    text_printf(&t, "Trainable params: %s\nNon-trainable params: %s\n", commas(trainable, a, sizeof a),
                commas(tp - trainable, b, sizeof b));
    text_printf(&t, "FLOPs per sample: forward %s, backward %s\n", commas(tf, a, sizeof a), commas(tb, b, sizeof b));
    size_t arena = 0;
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].arena_floats > arena)
            arena = g->entries[k].arena_floats;
    text_printf(&t,
                "Memory: parameters %s B, gradients %s B, optimizer state %s B, activation arena %s B "
                "(sum of buffers %s B, shared by liveness)\n",
                commas((long)g->param_floats * 4, a, sizeof a), commas(trainable * 4, b, sizeof b),
                commas((long)g->opt_floats * 4, c, sizeof c), commas((long)arena * 4, d, sizeof d),
                commas(tact, e, sizeof e));
    free(in_train);
    const char *s = arena_strdup(&g->a, t.s ? t.s : "");
    text_free(&t);
    return s ? s : "";
}

const char *cg_summary(cg_model *m)
{
    if (!m || cg_failed(m->g))
        return "";
    if (!m->compiled || compile_graph(m->g, m->g->compiled ? m->g->flavour : CG_HOST, NULL, NULL))
        return "";
    return graph_summary(m->g);
}
