/* emit_entry.c: the entry points of NAME.c (predict, eval_step, train_step;
 * a tape's loss and gradients): each declares a pointer per buffer with its
 * shape, runs its forward pass and its own kernels in schedule order
 * (emit_forward.c: the loss, backward: the chain rule, with the optimizer's
 * update of each parameter among them, or after them in one flat loop);
 * and their checked forms. */
#include "cgrad_int.h"

#include <stdlib.h>
#include <string.h>

/* The C expression of node id's storage: every buffer, and every view, is a
 * pointer named after its node. */
static const char *storage(emit_ctx *ec, int id, char *buf, size_t size)
{
    snprintf(buf, size, "%s", ec->g->nodes[id].name);
    return buf;
}

/* Copies between a packed array (per sample: tensor 0's floats, then
 * tensor 1's, ...) and the tensors' own buffers. */
void emit_packing(emit_ctx *ec, const entry *e, const int *ids, int count, const char *packed, bool unpack)
{
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
        if (e->offset[ids[k]] < 0 && unpack) { /* not used by this entry (a custom loss without labels) */
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

/* True when the caller passes placeholder ph to entry e: every placeholder
 * for a tape's loss and gradients, those the outputs need for its predict. */
static bool entry_takes(cg_graph *g, const entry *e, int ph)
{
    bool read = e->kind != ENTRY_PREDICT;
    for (int i = 0; !read && i < e->nout; i++)
        read = plan_storage_root(g, e->out[i]) == ph;
    for (int j = 0; !read && j < e->nsched; j++)
        for (int i = 0; i < g->nodes[e->sched[j]].nin; i++)
            read = read || plan_storage_root(g, g->nodes[e->sched[j]].in[i]) == ph;
    return read;
}

/* The caller's arguments of a tape's entry e after n: the placeholders it
 * takes (", const float *x"; ", x" when names_only), then the output arrays
 * of a predict (", float *prob"; ", prob"). */
static void tape_arguments(cg_graph *g, const entry *e, bool names_only, text *t)
{
    for (int i = 0; i < g->ninputs; i++)
        if (entry_takes(g, e, g->inputs[i]))
            text_printf(t, ", %s%s", names_only ? "" : "const float *", g->nodes[g->inputs[i]].name);
    for (int i = 0; e->kind == ENTRY_PREDICT && i < e->nout; i++)
        text_printf(t, ", %s%s", names_only ? "" : "float *", e->out_names[i]);
}

/* True when entry e of a compiled model takes the samples' weights: a
 * model's eval_step and train_step, unless a custom loss gives the batch's
 * value alone. Their body is then NAME_eval_step_weighted(..., sw, ...),
 * and NAME_eval_step calls it with sw NULL (every weight 1). */
static bool entry_weighted(const cg_graph *g, const entry *e)
{
    return g->model && g->model->sample_weight >= 0 && (e->kind == ENTRY_EVAL || e->kind == ENTRY_TRAIN);
}

/* Appends the signature of NAME_train_step (NAME_eval_step) of a model
 * whose step takes weights: the step without them. */
static void unweighted_signature(emit_ctx *ec, const entry *e, text *t)
{
    text_printf(t,
                "void %s_%s(%s_state *s, int n, const float *x, const float *y, float *batch_loss, "
                "float *batch_metrics)",
                ec->prefix, e->fname, ec->prefix);
}

/* Appends the signature of the checked form of a model's weighted step e:
 * "int NAME_train_step_weighted_checked(s, n, x, y, sw, ...)". */
static void weighted_checked_signature(emit_ctx *ec, const entry *e, text *t)
{
    text_printf(t,
                "int %s_%s_weighted_checked(%s_state *s, int n, const float *x, const float *y, const float *sw, "
                "float *batch_loss, float *batch_metrics)",
                ec->prefix, e->fname, ec->prefix);
}

/* Appends the signature of entry e, or of its checked form: "void
 * net_predict(net_state *s, int n, const float *x, float *out)", "int
 * net_predict_checked(...)"; a tape's checked form hands back the loss
 * through a last argument. A model's eval_step and train_step that take
 * weights are NAME_eval_step_weighted(..., const float *sw, ...). */
static void entry_signature(emit_ctx *ec, const entry *e, bool checked, text *t)
{
    cg_graph *g = ec->g;
    if (!checked && entry_weighted(g, e)) {
        text_printf(t,
                    "void %s_%s_weighted(%s_state *s, int n, const float *x, const float *y, const float *sw, "
                    "float *batch_loss, float *batch_metrics)",
                    ec->prefix, e->fname, ec->prefix);
        return;
    }
    bool tape = !g->model; /* a tape's loss and gradients return the loss; a model's through batch_loss */
    const char *p = ec->prefix, *ret = checked                                                         ? "int"
                                       : tape && (e->kind == ENTRY_LOSS || e->kind == ENTRY_GRADIENTS) ? "float"
                                                                                                       : "void";
    text_printf(t, "%s %s_%s%s(%s_state *s, int n", ret, p, e->fname, checked ? "_checked" : "", p);
    switch (tape && e->kind == ENTRY_PREDICT ? ENTRY_LOSS : e->kind) {
    case ENTRY_PREDICT: text_puts(t, ", const float *x, float *out)"); break;
    case ENTRY_EVAL:
    case ENTRY_TRAIN: text_puts(t, ", const float *x, const float *y, float *batch_loss, float *batch_metrics)"); break;
    default:
        if (g->model) { /* a model's gradients: x and y as train_step takes them */
            text_puts(t, ", const float *x, const float *y, float *batch_loss)");
            break;
        }
        tape_arguments(g, e, false, t);
        text_puts(t, checked && e->kind != ENTRY_PREDICT ? ", float *loss)" : ")");
    }
}

/* A model's gradients keep the dropout generator as they found it: saves
 * s->rng before the forward pass (restore false) or puts it back after the
 * backward pass (restore true), so that every call draws the same masks and
 * the loss is one function of the parameters. Nothing without dropout. */
static void emit_keep_rng(emit_ctx *ec, const entry *e, bool restore)
{
    bool dropout = false;
    for (int k = 0; k < e->nsched; k++)
        dropout = dropout || ec->g->nodes[e->sched[k]].op == OP_DROPOUT_MASK;
    if (!dropout || !ec->g->model || e->kind != ENTRY_GRADIENTS)
        return;
    text_puts(ec->t, restore ? "\n    s->rng = rng; /* the next call draws the same dropout masks */\n"
                             : "    const uint64_t rng = s->rng; /* put back at the end */\n");
}

/* The copies of a tape predict's outputs into the caller's arrays. */
static void tape_outputs(emit_ctx *ec, const entry *e)
{
    char sb[64];
    for (int i = 0; i < e->nout; i++) {
        const node *o = &ec->g->nodes[e->out[i]];
        long per = shape_size(&o->sh, 1);
        text_printf(ec->t, "    for (int i = 0; i < %s%ld; i++) /* %s %s */\n        %s[i] = %s[i];\n",
                    shape_batched(&o->sh) ? "n * " : "", per, e->out_names[i], shape_str(&o->sh, sb, sizeof sb),
                    e->out_names[i], o->name);
    }
}

/* The computation of entry e (emit_entry_calls); in a training step that
 * fuses its optimizer, each parameter's update among the backward kernels. */
static void emit_calls_updating(emit_ctx *ec, const entry *e)
{
    if (optim_fused(ec->g, e) && !(ec->update_after = optim_update_points(ec->g, e))) {
        ec->t->oom = true;
        return;
    }
    emit_entry_calls(ec, e);
    free(ec->update_after);
    ec->update_after = NULL;
}

/* Writes the comment above entry point e: what it computes. */
static void entry_comment(emit_ctx *ec, const entry *e)
{
    cg_graph *g = ec->g;
    char up[128];
    emit_upper(ec->prefix, up, sizeof up);
    switch (e->kind) {
    case ENTRY_PREDICT:
        if (g->model)
            text_printf(ec->t, "/* The model's output for n <= %s_MAX_BATCH samples: out[n * %s_OUT_FEATURES]. */\n",
                        up, up);
        else
            text_puts(ec->t,
                      "/* The graph's outputs (cg_output), each into its array, from the inputs they need. */\n");
        break;
    case ENTRY_EVAL:
        text_puts(ec->t, "/* Loss and metric, averaged over the batch, without training. */\n");
        if (entry_weighted(g, e))
            text_puts(
                ec->t,
                "/* The loss is sum_i sw[i] loss_i / n (Keras' sum_over_batch_size); sw NULL: every weight 1. */\n");
        break;
    case ENTRY_TRAIN:
        text_puts(ec->t, "/* One training step: forward, backward, optimizer update. Returns the\n"
                         " * batch's mean loss and metric as they were before the update. */\n");
        if (entry_weighted(g, e))
            text_puts(
                ec->t,
                "/* The loss is sum_i sw[i] loss_i / n (Keras' sum_over_batch_size); sw NULL: every weight 1. */\n");
        break;
    case ENTRY_LOSS:
    case ENTRY_GRADIENTS:
        if (g->model && e->kind == ENTRY_GRADIENTS) {
            text_puts(ec->t, "/* The training-mode loss of a batch (dropout masks, batch statistics) and its\n"
                             " * gradient in s->grads, as train_step computes them, without the optimizer\n"
                             " * update or the moving averages: nothing else in s changes. */\n");
            break;
        }
        text_printf(ec->t, "/* %s */\n",
                    e->kind == ENTRY_LOSS ? "The loss, forward only."
                                          : "The loss, and the gradient of each chosen variable in s->grads.");
        break;
    }
}

/* Writes one entry point. */
void emit_entry(emit_ctx *ec, const entry *e)
{
    cg_graph *g = ec->g;
    char sb[128];
    entry_comment(ec, e);
    entry_signature(ec, e, false, ec->t);
    text_puts(ec->t, "\n{\n");
    emit_entry_pointers(ec, e);
    emit_keep_rng(ec, e, false);
    emit_calls_updating(ec, e);
    emit_keep_rng(ec, e, true);
    if (e->kind == ENTRY_TRAIN && deploy_updates(g) && !optim_fused(g, e))
        emit_update(ec);
    for (int i = 0; i < e->nupd; i++) {
        const node *v = &g->nodes[e->upd_var[i]];
        if (i == 0)
            text_puts(ec->t, "\n    /* moving averages: not trained, but updated from this batch's statistics */\n");
        text_printf(ec->t, "    for (int i = 0; i < %ld; i++)\n        %s[i] = %s[i];\n", shape_size(&v->sh, 1),
                    v->name, storage(ec, e->upd_val[i], sb, sizeof sb));
    }
    text_puts(ec->t, "\n");
    switch (e->kind) {
    case ENTRY_PREDICT:
        if (!g->model)
            tape_outputs(ec, e);
        else if (e->nout == 1) {
            const node *o = &g->nodes[e->out[0]];
            text_printf(ec->t, "    for (int i = 0; i < n * %ld; i++)\n        out[i] = %s[i];\n",
                        shape_size(&o->sh, 1), storage(ec, e->out[0], sb, sizeof sb));
        } else
            emit_packing(ec, e, e->out, e->nout, "out", false);
        break;
    case ENTRY_EVAL:
    case ENTRY_TRAIN:
        text_printf(ec->t, "    *batch_loss = %s[0];\n", storage(ec, e->out[0], sb, sizeof sb));
        for (int i = 1; i < e->nout; i++)
            text_printf(ec->t, "    batch_metrics[%d] = %s[0]; /* %s */\n", i - 1,
                        storage(ec, e->out[i], sb, sizeof sb), g->model->metric_names[i - 1]);
        if (e->nout == 1)
            text_puts(ec->t, "    (void)batch_metrics; /* the model has no metric */\n");
        break;
    default:
        text_printf(ec->t, g->model ? "    *batch_loss = %s[0];\n" : "    return %s[0];\n",
                    storage(ec, e->out[0], sb, sizeof sb));
    }
    text_puts(ec->t, "}\n\n");
    if (entry_weighted(g, e)) { /* the step without weights */
        text_printf(ec->t, "/* %s_%s_weighted with every sample's weight 1. */\n", ec->prefix, e->fname);
        unweighted_signature(ec, e, ec->t);
        text_printf(ec->t, "\n{\n    %s_%s_weighted(s, n, x, y, 0, batch_loss, batch_metrics);\n}\n\n", ec->prefix,
                    e->fname);
    }
}

/* Where the caller passes placeholder ph to entry e: the array's name and
 * the column of a sample where ph's floats start, in *col, of *width per
 * sample. False when the caller does not pass it (a model's label to predict). */
static bool caller_array(cg_graph *g, const entry *e, int ph, const char **array, long *col, long *width)
{
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

/* The check that every value the caller passes for placeholder ph (when
 * it does pass it to entry e) is a whole number in [0, limit): a class label
 * or a token id that a kernel uses as a row index. */
static void emit_index_check(emit_ctx *ec, const entry *e, int ph, long limit, const char *what, const char *var,
                             const char *err)
{
    cg_graph *g = ec->g;
    const char *array;
    long col, width;
    if (g->nodes[ph].op != OP_PLACEHOLDER || !caller_array(g, e, ph, &array, &col, &width))
        return;
    long per = shape_size(&g->nodes[ph].sh, 1);
    text_printf(ec->t, "    for (int i = 0; i < n * %ld; i++) { /* %s: %s in [0, %ld) */\n", per, g->nodes[ph].name,
                what, limit);
    if (per == width)
        text_printf(ec->t, "        float %s = %s[i];\n", var, array);
    else
        text_printf(ec->t, "        float %s = %s[i / %ld * %ld + %ld + i %% %ld];\n", var, array, per, width, col,
                    per);
    text_printf(ec->t,
                "        if (!(%s >= 0.0f && %s < %ld.0f) || %s != (float)(int)%s)\n"
                "            return %s_%s;\n    }\n",
                var, var, limit, var, var, ec->uprefix, err);
}

/* The checks of entry e's arguments: NULL pointers, the batch size, and
 * every class label (of a sparse cross-entropy) the caller passes, which
 * the kernels use as an index. */
static void emit_checks(emit_ctx *ec, const entry *e, const char *up)
{
    cg_graph *g = ec->g;
    text *t = ec->t;
    text_puts(t, "    if (!s");
    if (g->model && e->kind == ENTRY_PREDICT)
        text_puts(t, " || !x || !out");
    else if (g->model && e->kind == ENTRY_GRADIENTS)
        text_puts(t, " || !x || !y || !batch_loss");
    else if (g->model)
        text_printf(t, " || !x || !y || !batch_loss || (!batch_metrics && %s_NUM_METRICS > 0)", up);
    for (int i = 0; !g->model && i < g->ninputs; i++)
        if (entry_takes(g, e, g->inputs[i]))
            text_printf(t, " || !%s", g->nodes[g->inputs[i]].name);
    for (int i = 0; !g->model && e->kind == ENTRY_PREDICT && i < e->nout; i++)
        text_printf(t, " || !%s", e->out_names[i]);
    text_printf(t, ")\n        return %s_ERR_NULL;\n    if (n < 1 || n > %s_MAX_BATCH)\n        return %s_ERR_BATCH;\n",
                up, up, up);
    for (int j = 0; j < e->nsched; j++) {
        const node *n = &g->nodes[e->sched[j]];
        if (n->op == OP_SOFTMAX_XENT && n->sparse) { /* class labels: the rows of the logits */
            const shape *zs = &g->nodes[n->in[0]].sh;
            emit_index_check(ec, e, n->in[1], zs->d[zs->rank - 1], "class indices", "label", "ERR_LABEL");
        } else if (n->op == OP_EMBEDDING) /* token ids: the rows of the table */
            emit_index_check(ec, e, n->in[0], g->nodes[n->in[1]].sh.d[0], "token ids", "id", "ERR_ID");
    }
}

/* Writes the checked form of entry e: the same computation, after checking
 * what the caller passes; it returns UNAME_OK or the first thing found wrong
 * (and then computes nothing). */
void emit_checked(emit_ctx *ec, const entry *e)
{
    cg_graph *g = ec->g;
    const char *p = ec->prefix;
    char up[128];
    emit_upper(p, up, sizeof up);
    text *t = ec->t;
    text_printf(t, "/* %s_%s, after checking its arguments: %s_OK, or what is wrong (and nothing is computed). */\n", p,
                e->fname, up);
    entry_signature(ec, e, true, t);
    text_puts(t, "\n{\n");
    emit_checks(ec, e, up);
    switch (!g->model && e->kind == ENTRY_PREDICT ? ENTRY_LOSS : e->kind) {
    case ENTRY_PREDICT: text_printf(t, "    %s_predict(s, n, x, out);\n", p); break;
    case ENTRY_EVAL:
    case ENTRY_TRAIN: text_printf(t, "    %s_%s(s, n, x, y, batch_loss, batch_metrics);\n", p, e->fname); break;
    default:
        if (g->model) { /* a model's gradients */
            text_printf(t, "    %s_gradients(s, n, x, y, batch_loss);\n", p);
            break;
        }
        text_printf(t, e->kind == ENTRY_PREDICT ? "    %s_%s(s, n" : "    float value = %s_%s(s, n", p, e->fname);
        tape_arguments(g, e, true, t);
        text_puts(t, e->kind == ENTRY_PREDICT ? ");\n" : ");\n    if (loss)\n        *loss = value;\n");
    }
    text_printf(t, "    return %s_OK;\n}\n\n", up);
    if (!entry_weighted(g, e))
        return;
    text_printf(t,
                "/* %s_%s_weighted, after the same checks and that of every weight in sw (NULL: every weight 1):\n"
                " * %s_OK, or what is wrong (and nothing is computed). */\n",
                p, e->fname, up);
    weighted_checked_signature(ec, e, t);
    text_puts(t, "\n{\n");
    emit_checks(ec, e, up);
    text_printf(t,
                "    for (int i = 0; sw && i < n; i++) /* finite and at least 0 (inf - inf and NaN are not 0) */\n"
                "        if (!(sw[i] >= 0.0f && sw[i] - sw[i] == 0.0f))\n            return %s_ERR_WEIGHT;\n"
                "    %s_%s_weighted(s, n, x, y, sw, batch_loss, batch_metrics);\n    return %s_OK;\n}\n\n",
                up, p, e->fname, up);
}

/* Appends the header's declarations of the entry points, then of their
 * checked forms with the status codes, then a tape's apply_gradients. */
void emit_prototypes(emit_ctx *ec, text *t)
{
    cg_graph *g = ec->g;
    const char *p = ec->prefix;
    char pu[128];
    emit_upper(p, pu, sizeof pu);
    for (int k = 0; k < g->nentries; k++) {
        entry_signature(ec, &g->entries[k], false, t);
        text_puts(t, ";\n");
        if (entry_weighted(g, &g->entries[k])) {
            unweighted_signature(ec, &g->entries[k], t);
            text_puts(t, "; /* its _weighted form with every weight 1 */\n");
        }
    }
    text_printf(
        t,
        "\n/* The same entry points with their arguments checked first (NULL pointers, 1 <= n <= %s_MAX_BATCH,\n"
        " * class labels and token ids in range): they return %s_OK, or an error code and compute nothing. */\n"
        "#define %s_OK 0\n#define %s_ERR_NULL 1   /* a NULL pointer */\n"
        "#define %s_ERR_BATCH 2  /* n outside 1..%s_MAX_BATCH */\n"
        "#define %s_ERR_LABEL 3  /* a class label that is not an integer in [0, classes) */\n"
        "#define %s_ERR_ID 4     /* a token id that is not an integer in [0, the embedding's rows) */\n",
        pu, pu, pu, pu, pu, pu, pu, pu);
    if (g->model && g->model->sample_weight >= 0)
        text_printf(t, "#define %s_ERR_WEIGHT 5 /* a sample weight that is negative or not finite */\n", pu);
    for (int k = 0; k < g->nentries; k++) {
        entry_signature(ec, &g->entries[k], true, t);
        text_puts(t, ";\n");
        if (entry_weighted(g, &g->entries[k])) {
            weighted_checked_signature(ec, &g->entries[k], t);
            text_puts(t, ";\n");
        }
    }
    if (!g->model && deploy_updates(g))
        text_printf(t,
                    "/* One optimizer step from the gradients in s->grads. */\nvoid %s_apply_gradients(%s_state *s);\n",
                    p, p);
    if (deploy_updates(g))
        emit_optim_prototypes(ec, t);
}
