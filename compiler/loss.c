/* loss.c: the losses and metrics of a compiled model, built from ops in
 * training mode and in inference mode, and the names they are reported under. */
#include "cgrad_int.h"

#include <string.h>

/* The Keras name of loss l ("sparse_categorical_crossentropy"), "?" if unknown. */
const char *loss_name(cg_loss l)
{
    static const char *names[] = {"none",
                                  "mean_squared_error",
                                  "mean_absolute_error",
                                  "binary_crossentropy",
                                  "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"};
    return (unsigned)l < sizeof names / sizeof names[0] ? names[l] : "?";
}
/* The Keras name of metric m ("accuracy"), "?" if unknown. */
const char *metric_name(cg_metric m)
{
    static const char *names[] = {
        "none", "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "mae", "mse"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "?";
}
/* The metric "accuracy" resolved as Keras does, from the loss. */
cg_metric loss_resolve_metric(cg_metric m, cg_loss l)
{
    if (m != CG_ACCURACY)
        return m;
    switch (l) {
    case CG_BINARY_CROSSENTROPY: return CG_BINARY_ACCURACY;
    case CG_CATEGORICAL_CROSSENTROPY: return CG_CATEGORICAL_ACCURACY;
    case CG_SPARSE_CATEGORICAL_CROSSENTROPY: return CG_SPARSE_CATEGORICAL_ACCURACY;
    default: return CG_ACCURACY;
    }
}

/* Calls a user's loss or metric function and checks that it gave a scalar. */
static int build_custom(cg_model *m, cg_src src, cg_loss_fn fn, void *self, const char *what, int out, int y)
{
    cg_graph *g = m->g;
    cg_t v = fn((cg_t){g, y}, (cg_t){g, out}, self);
    char sb[64];
    if (g->failed)
        return -1;
    if (v.g != g || v.id < 0 || v.id >= g->nnodes)
        return graph_error(g, src, -1, "%s: the custom %s returned a tensor that is not of this model", m->name, what);
    const shape *sh = &g->nodes[v.id].sh;
    if (shape_size(sh, 1) != 1 || shape_batched(sh))
        return graph_error(g, src, -1, "%s: the custom %s must return a scalar (the batch's value), got shape %s",
                           m->name, what, shape_str(sh, sb, sizeof sb));
    return v.id;
}

/* The logits behind a probability output, as tf.keras recovers them: the
 * input of out when out is the activation `act` (a sigmoid for binary
 * cross-entropy, a softmax for the categorical ones: a Dense layer's
 * activation or an activation layer); -1 when out is anything else. */
static int recover_logits(cg_graph *g, int out, op_kind act)
{
    return g->nodes[out].op == act ? g->nodes[out].in[0] : -1;
}

/* The batch's loss from the terms of its samples (n) or of their elements
 * (n, ...): the mean of the terms, each sample's multiplied by its weight
 * when sw (n) is given. That is Keras' reduction "sum_over_batch_size":
 * sum_i w_i l_i / n, divided by the batch size, not by the sum of the
 * weights; its gradient seeds d l_i = w_i / n. */
static int weighted_mean(cg_graph *g, cg_src src, int terms, int sw)
{
    if (terms >= 0 && sw >= 0) {
        const shape *ts = &g->nodes[terms].sh;
        shape ws = {ts->rank, {CG_BATCH}}; /* (n, 1, ...): one weight over each sample's terms */
        for (int i = 1; i < ts->rank; i++)
            ws.d[i] = 1;
        terms = op_binary(g, src, OP_MUL, terms, op_reshape(g, src, sw, ws));
    }
    return op_reduce(g, src, OP_MEAN, terms, 0, false);
}

/* Builds the per-batch mean loss of output out against labels y, each
 * sample's terms weighted by sw (-1: unweighted). A cross-entropy from
 * probabilities made by a sigmoid or softmax is computed from that
 * activation's logits (stable, and its gradient is p - y). */
static int build_loss(cg_model *m, cg_src src, const cg_output_opts *o, int out, int y, int sw)
{
    cg_graph *g = m->g;
    if (o->custom_loss)
        return build_custom(m, src, o->custom_loss, o->custom_loss_self, "loss", out, y);
    bool logits = o->from_logits;
    if (!logits && (o->loss == CG_BINARY_CROSSENTROPY || o->loss == CG_CATEGORICAL_CROSSENTROPY ||
                    o->loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY)) {
        int z = recover_logits(g, out, o->loss == CG_BINARY_CROSSENTROPY ? OP_SIGMOID : OP_SOFTMAX);
        logits = z >= 0;
        out = logits ? z : out;
    }
    int eps = op_const(g, 1e-7f, false), one_minus = op_const(g, 1.0f - 1e-7f, false);
    switch (o->loss) {
    case CG_MSE: return weighted_mean(g, src, op_unary(g, src, OP_SQUARE, op_binary(g, src, OP_SUB, out, y)), sw);
    case CG_MAE: return weighted_mean(g, src, op_unary(g, src, OP_ABS, op_binary(g, src, OP_SUB, out, y)), sw);
    case CG_BINARY_CROSSENTROPY:
        if (logits)
            return weighted_mean(g, src, op_binary(g, src, OP_SIGMOID_BCE, out, y), sw);
        else { /* no logits: -(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps] as Keras does */
            int p = op_binary(g, src, OP_MINIMUM, op_binary(g, src, OP_MAXIMUM, out, eps), one_minus);
            int one = op_const(g, 1.0f, false);
            int t1 = op_binary(g, src, OP_MUL, y, op_unary(g, src, OP_LOG, p));
            int t2 = op_binary(g, src, OP_MUL, op_binary(g, src, OP_SUB, one, y),
                               op_unary(g, src, OP_LOG, op_binary(g, src, OP_SUB, one, p)));
            return op_unary(g, src, OP_NEG, weighted_mean(g, src, op_binary(g, src, OP_ADD, t1, t2), sw));
        }
    case CG_CATEGORICAL_CROSSENTROPY:
    case CG_SPARSE_CATEGORICAL_CROSSENTROPY: {
        bool sparse = o->loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
        if (logits)
            return weighted_mean(g, src, op_softmax_xent(g, src, out, y, sparse), sw);
        /* from probabilities without logits: -sum t log(clip(p)) per sample, then the mean */
        int t = sparse ? op_one_hot(g, src, y, g->nodes[out].sh.d[1]) : y;
        int p = op_binary(g, src, OP_MINIMUM, op_binary(g, src, OP_MAXIMUM, out, eps), one_minus);
        int per = op_reduce(g, src, OP_SUM, op_binary(g, src, OP_MUL, t, op_unary(g, src, OP_LOG, p)), CG_AXIS(1),
                            false);
        return op_unary(g, src, OP_NEG, weighted_mean(g, src, per, sw));
    }
    default: return graph_error(g, src, -1, "%s: compile needs a loss", m->name);
    }
}

/* Builds the batch-mean metric of one output (o->metric already resolved). */
static int build_metric(cg_model *m, cg_src src, const cg_output_opts *o, int out, int y)
{
    cg_graph *g = m->g;
    if (o->custom_metric)
        return build_custom(m, src, o->custom_metric, o->custom_metric_self, "metric", out, y);
    bool sparse_labels = o->loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
    switch (o->metric) {
    case CG_METRIC_NONE: return -1;
    case CG_ACCURACY:
    case CG_BINARY_ACCURACY: {
        int thr = op_const(g, o->from_logits ? 0.0f : 0.5f, false);
        if (sparse_labels)
            return graph_error(g, src, -1,
                               "%s: binary accuracy needs labels shaped like the output, but the loss %s "
                               "takes class indices",
                               m->name, loss_name(o->loss));
        return op_reduce(g, src, OP_MEAN, op_binary(g, src, OP_EQUAL, op_binary(g, src, OP_GREATER, out, thr), y), 0,
                         false);
    }
    case CG_CATEGORICAL_ACCURACY:
    case CG_SPARSE_CATEGORICAL_ACCURACY:
        if ((o->metric == CG_SPARSE_CATEGORICAL_ACCURACY) != sparse_labels)
            return graph_error(g, src, -1, "%s: metric %s does not fit the loss %s (%s labels)", m->name,
                               metric_name(o->metric), loss_name(o->loss), sparse_labels ? "class-index" : "one-hot");
        return op_reduce(g, src, OP_MEAN, op_argmax_eq(g, src, out, y, sparse_labels), 0, false);
    case CG_METRIC_MAE:
        return op_reduce(g, src, OP_MEAN, op_unary(g, src, OP_ABS, op_binary(g, src, OP_SUB, out, y)), 0, false);
    case CG_METRIC_MSE:
        return op_reduce(g, src, OP_MEAN, op_unary(g, src, OP_SQUARE, op_binary(g, src, OP_SUB, out, y)), 0, false);
    }
    return -1;
}
/* The name a metric is reported under: the user's word ("accuracy"), or
 * the custom metric's name. */
static const char *report_name(const cg_output_opts *sp, cg_metric as_given)
{
    if (sp->custom_metric)
        return sp->custom_metric_name ? sp->custom_metric_name : "custom_metric";
    return metric_name(as_given);
}

/* Builds the losses and metrics of every output in one mode: out[0] the
 * total loss, then what is reported beside it (each output's loss when
 * there are several, then the metrics); names[] what each is called. */
int loss_build_objectives(cg_model *m, cg_src src, bool infer, int *out, const char **names)
{
    cg_graph *g = m->g;
    int nm = 0, total = -1;
    int losses[CG_MAX_OUTPUTS], metrics[CG_MAX_OUTPUTS];
    bool multi = m->noutputs > 1;
    g->infer_pass = infer;
    for (int k = 0; k < m->noutputs && !g->failed; k++) {
        const cg_output_opts *sp = &m->spec[k];
        int o = infer ? m->outputs_infer[k] : m->outputs[k];
        const char *ln = multi ? arena_printf(&g->a, "%s_loss", sp->name) : "loss";
        const char *mn = multi ? arena_printf(&g->a, "%s_metric", sp->name) : "metric";
        if (graph_begin_layer(g, "Loss", infer ? arena_printf(&g->a, "%s_infer", ln) : ln, src) < 0)
            return -1;
        losses[k] = build_loss(m, src, sp, o, m->labels[k], m->sample_weight);
        g->cur_layer = -1;
        metrics[k] = -1;
        if (sp->metric != CG_METRIC_NONE || sp->custom_metric) {
            graph_begin_layer(g, "Metric", infer ? arena_printf(&g->a, "%s_infer", mn) : mn, src);
            metrics[k] = build_metric(m, src, sp, o, m->labels[k]);
            g->cur_layer = -1;
        }
        if (losses[k] < 0)
            return -1;
        int weighted = sp->loss_weight == 1.0f
                           ? losses[k]
                           : op_binary(g, src, OP_MUL, losses[k], op_const(g, sp->loss_weight, false));
        total = total < 0 ? weighted : op_binary(g, src, OP_ADD, total, weighted);
    }
    g->infer_pass = false;
    if (g->failed)
        return -1;
    out[0] = total;
    names[0] = "loss";
    for (int k = 0; multi && k < m->noutputs; k++) {
        names[1 + nm] = arena_printf(&g->a, "%s_loss", m->spec[k].name);
        out[1 + nm++] = losses[k];
    }
    for (int k = 0; k < m->noutputs; k++)
        if (metrics[k] >= 0) {
            const char *word = report_name(&m->spec[k], m->user_metric[k]);
            names[1 + nm] = multi ? arena_printf(&g->a, "%s_%s", m->spec[k].name, word) : word;
            out[1 + nm++] = metrics[k];
        }
    return nm;
}
