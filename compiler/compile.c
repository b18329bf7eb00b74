/* compile.c: cg_compile: the options checked and defaulted, the model's
 * inputs and outputs packed per sample, each output's loss and metric
 * resolved, the label placeholders, the objectives (loss.c), the backward
 * graph and the entry points; and cg_emit_model. */
#include "cgrad_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Checks a name that goes into the history header and into C strings. */
static int check_report_name(cg_model *m, cg_src src, const char *what, const char *nm)
{
    return nm ? graph_check_name(m->g, src, what, nm, 0) : 0;
}

/* Resolves the loss and metric of output k into m->spec[k]: from
 * .outputs when given, else from the top-level options; checks them
 * against the output's shape. */
static int resolve_output(cg_model *m, cg_src src, const cg_compile_opts *o, int k)
{
    cg_graph *g = m->g;
    cg_output_opts sp = {0};
    bool given = false;
    for (int j = 0; j < CG_MAX_OUTPUTS && !given; j++)
        if (o->outputs[j].name && !strcmp(o->outputs[j].name, m->output_names[k])) {
            sp = o->outputs[j];
            given = true;
        }
    if (!given) {
        if (o->outputs[0].name)
            return graph_error(g, src, -1, "%s: output %s has no loss in .outputs", m->name, m->output_names[k]);
        sp = (cg_output_opts){m->output_names[k],
                              o->loss,
                              o->from_logits,
                              1.0f,
                              o->metric,
                              o->custom_loss,
                              o->custom_loss_self,
                              o->custom_loss_name,
                              o->custom_metric,
                              o->custom_metric_self,
                              o->custom_metric_name};
    }
    if (sp.loss_weight == 0.0f)
        sp.loss_weight = 1.0f;
    m->user_metric[k] = sp.metric;
    if (!(sp.loss_weight > 0.0f && isfinite(sp.loss_weight))) /* NaN fails */
        return graph_error(g, src, -1, "%s: output %s: the loss weight must be positive and finite, got %g", m->name,
                           sp.name, (double)sp.loss_weight);
    if ((unsigned)sp.loss > CG_SPARSE_CATEGORICAL_CROSSENTROPY)
        return graph_error(g, src, -1, "%s: output %s: unknown loss %d", m->name, sp.name, (int)sp.loss);
    if ((unsigned)sp.metric > CG_METRIC_MSE)
        return graph_error(g, src, -1, "%s: output %s: unknown metric %d", m->name, sp.name, (int)sp.metric);
    if (sp.custom_loss && sp.loss != CG_LOSS_NONE)
        return graph_error(g, src, -1, "%s: give either .loss or .custom_loss, not both", m->name);
    if (sp.custom_metric && sp.metric != CG_METRIC_NONE)
        return graph_error(g, src, -1, "%s: give either .metric or .custom_metric, not both", m->name);
    if (!sp.custom_loss && sp.loss == CG_LOSS_NONE)
        return graph_error(g, src, -1, "%s: compile needs a loss%s%s", m->name, m->noutputs > 1 ? " for output " : "",
                           m->noutputs > 1 ? sp.name : "");
    if (check_report_name(m, src, "custom loss", sp.custom_loss_name) ||
        check_report_name(m, src, "custom metric", sp.custom_metric_name))
        return -1;
    const shape *os = &g->nodes[m->outputs_infer[k]].sh;
    char sb[64];
    if (!sp.custom_metric) {
        sp.metric = loss_resolve_metric(sp.metric, sp.loss);
        if (sp.metric == CG_ACCURACY) /* accuracy with a regression loss: decide from the output */
            sp.metric = os->rank == 2 && os->d[1] == 1 ? CG_BINARY_ACCURACY : CG_CATEGORICAL_ACCURACY;
    }
    bool classify = sp.loss == CG_CATEGORICAL_CROSSENTROPY || sp.loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (classify && (os->rank != 2 || os->d[1] < 2))
        return graph_error(g, src, -1,
                           "%s: loss %s needs an output of shape (n, classes) with 2 or more classes, "
                           "got %s%s%s",
                           m->name, loss_name(sp.loss), shape_str(os, sb, sizeof sb),
                           m->noutputs > 1 ? " for output " : "", m->noutputs > 1 ? sp.name : "");
    m->spec[k] = sp;
    return 0;
}
/* True when s ends with suffix. */
static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Checks .data.series against the model: a window of the input's size, one
 * output, a regression loss; the other data options do not mix with it. */
static int check_series(cg_model *m, cg_src src, const cg_compile_opts *o)
{
    const cg_series_opts *s = &o->data.series;
    cg_graph *g = m->g;
    char sb[64];
    if (s->window == 0) {
        if (s->column || s->column_index || s->horizon || s->val_steps || s->test_steps || s->season || s->missing)
            return graph_error(g, src, -1, "%s: .data.series needs a .window (the values per input sample)", m->name);
        return 0;
    }
    if (s->window < 0 || s->horizon < 0 || s->val_steps < 0 || s->test_steps < 0 || s->season < 0 ||
        s->column_index < 0)
        return graph_error(g, src, -1,
                           "%s: .data.series: window (%d), horizon (%d), val_steps (%d), test_steps (%d), "
                           "season (%d) and column_index (%d) must not be negative",
                           m->name, s->window, s->horizon, s->val_steps, s->test_steps, s->season, s->column_index);
    if (s->missing != CG_MISSING_ERROR && s->missing != CG_MISSING_INTERPOLATE && s->missing != CG_MISSING_PREVIOUS)
        return graph_error(g, src, -1,
                           "%s: .data.series.missing is %d: use CG_MISSING_ERROR, CG_MISSING_INTERPOLATE "
                           "or CG_MISSING_PREVIOUS",
                           m->name, (int)s->missing);
    const int most = 1 << 24; /* the runtime's CGRT_SERIES_MAX */
    if (s->window > most || s->horizon > most || s->val_steps > most || s->test_steps > most || s->season > most)
        return graph_error(g, src, -1,
                           "%s: .data.series: window, horizon, val_steps, test_steps and season must be "
                           "at most %d",
                           m->name, most);
    if (s->column && s->column_index)
        return graph_error(g, src, -1,
                           "%s: .data.series: give either .column (a header name) or .column_index, "
                           "not both",
                           m->name);
    if (s->column && !s->column[0])
        return graph_error(g, src, -1, "%s: .data.series: the column name is empty", m->name);
    if (o->data.scale != 0.0f || o->data.test_split != 0.0f)
        return graph_error(g, src, -1,
                           "%s: .data.scale and .data.test_split do not apply to a time series (it is "
                           "standardised, and .series.test_steps holds out its last targets)",
                           m->name);
    if (o->data.path && !ends_with(o->data.path, ".csv") && !ends_with(o->data.path, ".csv.gz"))
        return graph_error(g, src, -1, "%s: a time series is read from a .csv or .csv.gz file, not %s", m->name,
                           o->data.path);
    if (shape_size(&m->input, 0) != s->window || m->input.rank > 2 || (m->input.rank == 2 && m->input.d[1] != 1))
        return graph_error(g, src, -1,
                           "%s: the series window is %d values, so the input must have shape (%d) or "
                           "(%d, 1), got %s",
                           m->name, s->window, s->window, s->window, shape_str(&m->input, sb, sizeof sb));
    const shape *os = &g->nodes[m->outputs_infer[0]].sh;
    if (m->noutputs != 1)
        return graph_error(g, src, -1, "%s: a forecaster has one output, the model has %d", m->name, m->noutputs);
    if (os->rank != 2 || os->d[1] != 1)
        return graph_error(g, src, -1,
                           "%s: a forecaster predicts one value per sample: the output must have shape "
                           "(n, 1), got %s",
                           m->name, shape_str(os, sb, sizeof sb));
    if (!o->custom_loss && o->loss != CG_MSE && o->loss != CG_MAE)
        return graph_error(g, src, -1,
                           "%s: loss %s is not a regression loss; a forecaster needs CG_MSE or CG_MAE "
                           "(or a custom loss)",
                           m->name, loss_name(o->loss));
    if (!o->custom_metric && o->metric != CG_METRIC_NONE && o->metric != CG_METRIC_MAE && o->metric != CG_METRIC_MSE)
        return graph_error(g, src, -1, "%s: metric %s does not fit a forecaster; use CG_METRIC_MAE or CG_METRIC_MSE",
                           m->name, metric_name(o->metric));
    return 0;
}

/* Checks the .data options that do not depend on the model: the scale, the
 * test split and the label column. */
static int check_data(cg_model *m, cg_src src, const cg_compile_opts *o)
{
    cg_graph *g = m->g;
    if (!(o->data.scale >= 0.0f && isfinite(o->data.scale))) /* NaN fails */
        return graph_error(g, src, -1, "%s: .data.scale must be positive and finite (0 for 1), got %g", m->name,
                           (double)o->data.scale);
    if (!(o->data.test_split >= 0.0f && o->data.test_split < 1.0f))
        return graph_error(g, src, -1, "%s: .data.test_split must lie in [0, 1), got %g", m->name,
                           (double)o->data.test_split);
    if (o->data.label && !o->data.label[0])
        return graph_error(g, src, -1,
                           "%s: .data.label is empty: give the header name of the label column, or "
                           "leave it out for labels in the last column",
                           m->name);
    if (o->data.label && o->data.series.window > 0)
        return graph_error(g, src, -1,
                           "%s: .data.label does not apply to a time series (its values and targets "
                           "are .series.column)",
                           m->name);
    if (o->data.label && o->data.path && !ends_with(o->data.path, ".csv") && !ends_with(o->data.path, ".csv.gz"))
        return graph_error(g, src, -1,
                           "%s: .data.label names a column of a CSV file with a header, and %s is not "
                           "a .csv or .csv.gz file",
                           m->name, o->data.path);
    return 0;
}

/* The model's inputs and outputs as the entry points pass them: a
 * Sequential model's one input x and one output; a functional model's
 * inputs packed per sample (m->input: the one input's shape, or all inputs'
 * floats in a row). Checks that the packed sample and outputs stay within
 * the int indices of the emitted code. */
static int pack_inputs_outputs(cg_model *m, cg_src src)
{
    cg_graph *g = m->g;
    if (m->functional) { /* the packed sample: the one input's shape, or all inputs' floats in a row */
        m->input = g->nodes[m->inputs[0]].sh;
        m->input.rank--;
        memmove(m->input.d, m->input.d + 1, sizeof(int) * (size_t)m->input.rank);
        if (m->ninputs > 1) {
            int total = 0;
            for (int i = 0; i < m->ninputs; i++) {
                long size = shape_elems(&g->nodes[m->inputs[i]].sh, 1);
                if (size < 0 || !int_add(total, (int)size, &total))
                    return graph_error(g, src, -1,
                                       "%s: the packed sample x (every input's floats in a row) holds more "
                                       "than %ld floats, past the int indices of the emitted code",
                                       m->name, ELEMS_MAX);
            }
            m->input = (shape){1, {total}};
        }
    } else { /* a Sequential model: one input x, one output, labels y */
        m->inputs[0] = m->x;
        m->ninputs = 1;
        m->outputs[0] = m->out_train;
        m->outputs_infer[0] = m->out;
        m->output_names[0] = g->layers[g->nlayers - 1].name;
        m->noutputs = 1;
    }
    for (int k = 0, packed = 0; k < m->noutputs; k++) { /* the outputs are packed per sample like x */
        long size = shape_elems(&g->nodes[m->outputs_infer[k]].sh, 1);
        if (size < 0 || !int_add(packed, (int)size, &packed))
            return graph_error(g, src, -1,
                               "%s: the outputs hold more than %ld floats per sample, past the int indices "
                               "of the emitted code",
                               m->name, ELEMS_MAX);
    }
    return 0;
}

/* Checks that every output named in .outputs is one of the model's. */
static int check_output_names(cg_model *m, cg_src src, const cg_compile_opts *o)
{
    cg_graph *g = m->g;
    for (int j = 0; j < CG_MAX_OUTPUTS; j++) { /* every named loss must have its output */
        const char *nm = o->outputs[j].name;
        bool found = !nm;
        for (int k = 0; k < m->noutputs && !found; k++)
            found = !strcmp(nm, m->output_names[k]);
        if (!found) {
            char list[256] = "";
            size_t len = 0;
            for (int k = 0; k < m->noutputs; k++)
                len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, "%s%s", k ? ", " : "",
                                        m->output_names[k]);
            return graph_error(g, src, -1, "%s: a loss is given for output %s, but the model's outputs are: %s",
                               m->name, nm, list);
        }
    }
    return 0;
}

/* Checks .data.class_range against the model: one classifier output with
 * as many classes as the range keeps. */
static int check_class_range(cg_model *m, cg_src src, const cg_compile_opts *o)
{
    cg_graph *g = m->g;
    const int *cr = o->data.class_range;
    if (cr[0] || cr[1]) { /* a range of classes, relabelled from 0: a classifier with that many classes */
        const shape *os = &g->nodes[m->outputs_infer[0]].sh;
        bool classify = m->spec[0].loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY ||
                        m->spec[0].loss == CG_CATEGORICAL_CROSSENTROPY;
        if (cr[0] < 0 || cr[1] <= cr[0])
            return graph_error(g, src, -1, "%s: .data.class_range {%d, %d} is not a range lo..hi with 0 <= lo < hi",
                               m->name, cr[0], cr[1]);
        long kept = (long)cr[1] - cr[0] + 1; /* {0, INT_MAX} keeps INT_MAX + 1 */
        if (m->noutputs != 1 || !classify || os->rank != 2 || os->d[1] != kept)
            return graph_error(g, src, -1,
                               "%s: .data.class_range {%d, %d} keeps %ld classes, so the model needs one "
                               "output of %ld classes with a categorical cross-entropy",
                               m->name, cr[0], cr[1], kept, kept);
    }
    return 0;
}

/* Makes the label placeholder of each output: y for a Sequential model,
 * <output>_label for a functional one (class indices for a sparse loss). */
static int make_labels(cg_model *m, cg_src src)
{
    cg_graph *g = m->g;
    for (int k = 0; k < m->noutputs; k++) { /* label placeholders: y, or <output>_label */
        const shape *os = &g->nodes[m->outputs_infer[k]].sh;
        cg_shape ys = {os->rank, {0}};
        for (int i = 0; i < os->rank; i++)
            ys.dims[i] = os->d[i];
        if (m->spec[k].loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY)
            ys = (cg_shape){1, {CG_BATCH}};
        char name[160];
        snprintf(name, sizeof name, "%s%s", m->functional ? m->output_names[k] : "y", m->functional ? "_label" : "");
        m->labels[k] = cg_placeholder_at(src, g, name, ys).id;
        if (m->labels[k] < 0)
            return -1;
    }
    m->y = m->functional ? -1 : m->labels[0];
    m->sample_weight = -1; /* a custom loss returns the batch's value: nothing per sample to weight */
    for (int k = 0; k < m->noutputs; k++)
        if (m->spec[k].custom_loss)
            return 0;
    m->sample_weight = cg_placeholder_at(src, g, "sample_weight", (cg_shape){1, {CG_BATCH}}).id;
    return m->sample_weight < 0 ? -1 : 0;
}

/* Builds the loss and metrics in both modes, asks for the gradients of the
 * loss and records the entry points predict, eval_step, gradients and
 * train_step. */
static int build_entries(cg_model *m, cg_src src)
{
    cg_graph *g = m->g;
    /* loss and metrics in training mode (train_step) and in inference mode
     * (eval_step); one node each when the model has no mode-dependent layer */
    int train_out[MODEL_MAX_METRICS + 1], eval_out[MODEL_MAX_METRICS + 1];
    const char *names[MODEL_MAX_METRICS + 1];
    int nm = loss_build_objectives(m, src, false, train_out, names);
    if (nm < 0 || loss_build_objectives(m, src, true, eval_out, names) < 0)
        return -1;
    m->loss = train_out[0];
    m->nmetrics = nm;
    for (int i = 0; i <= nm; i++) { /* buffers named after what they report; a single metric is "metric" */
        const char *nn = i > 0 && m->noutputs == 1 ? "metric" : names[i];
        g->nodes[train_out[i]].name = graph_unique_name(g, nn);
        if (eval_out[i] != train_out[i])
            g->nodes[eval_out[i]].name = graph_unique_name(g, arena_printf(&g->a, "%s_infer", nn));
        if (i > 0) {
            m->metrics[i - 1] = train_out[i];
            m->metric_names[i - 1] = names[i];
        }
    }
    int vars[256], nv = 0;
    for (int i = 0; i < g->nvars; i++)
        if (g->vars[i].trainable) {
            if (nv == 256)
                return graph_error(g, src, -1, "%s: more than 256 trainable variables", m->name);
            vars[nv++] = g->vars[i].node;
        }
    if (ad_request(g, m->loss, vars, nv))
        return -1;
    entry predict = {.kind = ENTRY_PREDICT, .fname = "predict", .nout = m->noutputs};
    entry eval = {.kind = ENTRY_EVAL, .fname = "eval_step", .nout = 1 + nm};
    entry train = {.kind = ENTRY_TRAIN, .fname = "train_step", .nout = 1 + nm, .want_grads = true, .nupd = m->nupd};
    /* train_step without the optimizer and the moving averages, for checking gradients */
    entry grads = {.kind = ENTRY_GRADIENTS, .fname = "gradients", .out = {m->loss}, .nout = 1, .want_grads = true};
    for (int k = 0; k < m->noutputs; k++)
        predict.out[k] = m->outputs_infer[k];
    for (int i = 0; i <= nm; i++)
        eval.out[i] = eval_out[i], train.out[i] = train_out[i];
    for (int i = 0; i < m->nupd; i++)
        train.upd_var[i] = m->upd_var[i], train.upd_val[i] = m->upd_val[i];
    g->entries[g->nentries++] = predict;
    g->entries[g->nentries++] = eval;
    g->entries[g->nentries++] = grads;
    g->entries[g->nentries++] = train;
    return 0;
}

/* Checks .callbacks against the model: the monitor must be a column of its
 * history (loss, val_loss, a metric, val_ and a metric), the mode one of
 * CG_MODE_*, the numbers in Keras' ranges (factor below 1, nothing negative). */
static int check_callbacks(cg_model *m, cg_src src, const cg_compile_opts *o)
{
    const cg_callback_opts *c = &o->callbacks;
    cg_graph *g = m->g;
    if (c->monitor) {
        const char *base = strncmp(c->monitor, "val_", 4) == 0 ? c->monitor + 4 : c->monitor;
        bool found = !strcmp(base, "loss");
        char list[512];
        size_t len = (size_t)snprintf(list, sizeof list, "loss");
        for (int k = 0; k < m->nmetrics && !found; k++)
            found = !strcmp(base, m->metric_names[k]);
        for (int k = 0; k < m->nmetrics; k++)
            len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, ", %s", m->metric_names[k]);
        if (!found)
            return graph_error(g, src, -1,
                               "%s: .callbacks.monitor \"%s\" is not a column of the history: give one of %s, "
                               "or val_ and one of them",
                               m->name, arena_escaped(&g->a, c->monitor, 40), list);
    }
    if ((unsigned)c->mode > CG_MODE_MAX)
        return graph_error(g, src, -1, "%s: .callbacks.mode is %d: use CG_MODE_AUTO, CG_MODE_MIN or CG_MODE_MAX",
                           m->name, (int)c->mode);
    if (!(c->min_delta >= 0.0f && c->reduce_lr_min_delta >= 0.0f && c->min_lr >= 0.0f) || !isfinite(c->min_delta) ||
        !isfinite(c->reduce_lr_min_delta) || !isfinite(c->min_lr))
        return graph_error(g, src, -1,
                           "%s: .callbacks: min_delta (%g), reduce_lr_min_delta (%g) and min_lr (%g) must be finite "
                           "and not negative",
                           m->name, (double)c->min_delta, (double)c->reduce_lr_min_delta, (double)c->min_lr);
    if (!(c->reduce_lr_factor >= 0.0f && c->reduce_lr_factor < 1.0f))
        return graph_error(g, src, -1,
                           "%s: .callbacks.reduce_lr_factor must lie in [0, 1) (0: a constant learning rate), got %g",
                           m->name, (double)c->reduce_lr_factor);
    if (c->patience < 0 || c->reduce_lr_patience < 0 || c->reduce_lr_cooldown < 0)
        return graph_error(g, src, -1,
                           "%s: .callbacks: patience (%d), reduce_lr_patience (%d) and reduce_lr_cooldown (%d) must "
                           "not be negative",
                           m->name, c->patience, c->reduce_lr_patience, c->reduce_lr_cooldown);
    return 0;
}
/* The classes a class weight of m can name: the output's features under a
 * sparse or categorical cross-entropy, 2 under binary cross-entropy of one
 * output feature; 0 when m is not such a classifier. */
static long weight_classes(const cg_model *m)
{
    const cg_loss loss = m->spec[0].loss;
    long f = shape_size(&m->g->nodes[m->outputs_infer[0]].sh, 1);
    if (m->noutputs != 1 || m->spec[0].custom_loss)
        return 0;
    if (loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY || (loss == CG_CATEGORICAL_CROSSENTROPY && f > 1))
        return f;
    return loss == CG_BINARY_CROSSENTROPY && f == 1 ? 2 : 0;
}

/* Checks .class_weight against the model: a classifier with one output and
 * a built-in loss, weights finite and at least 0, only for its classes. */
static int check_class_weight(cg_model *m, cg_src src, const cg_compile_opts *o)
{
    const cg_class_weight_opts *c = &o->class_weight;
    long k = weight_classes(m);
    bool weights = false;
    for (int i = 0; i < CG_MAX_CLASS_WEIGHTS; i++) {
        weights = weights || c->weight[i] != 0.0f;
        if (!(isfinite(c->weight[i]) && c->weight[i] >= 0.0f))
            return graph_error(m->g, src, -1, "%s: .class_weight.weight[%d] is %g: a weight is finite and at least 0",
                               m->name, i, (double)c->weight[i]);
        if (c->weight[i] != 0.0f && i >= k && k > 0)
            return graph_error(m->g, src, -1,
                               "%s: .class_weight.weight[%d] names a class the model does not have (0..%ld)", m->name,
                               i, k - 1);
    }
    if ((c->balanced || weights) && k == 0)
        return graph_error(m->g, src, -1,
                           "%s: .class_weight needs a classifier with one output and a built-in cross-entropy "
                           "(sparse, categorical, or binary on one sigmoid output)",
                           m->name);
    if (c->balanced && weights)
        return graph_error(m->g, src, -1, "%s: .class_weight: give either .balanced or .weight, not both", m->name);
    return 0;
}

/* Public: loss, metric and optimizer; builds labels, loss and the backward graph. */
int cg_compile_at(cg_src src, cg_model *m, cg_compile_opts o)
{
    if (!m || cg_failed(m->g))
        return -1;
    cg_graph *g = m->g;
    if (m->compiled)
        return graph_error(g, src, -1, "%s: compiled twice", m->name);
    if (!m->functional && !m->nml)
        return graph_error(g, src, -1, "%s: the model has no layers", m->name);
    if (m->functional && !m->noutputs)
        return graph_error(g, src, -1, "%s: set the outputs (cg_set_outputs) before compile", m->name);
    if (o.optimizer.lr == 0.0f && o.optimizer.kind == CG_SGD && o.optimizer.momentum == 0.0f &&
        !o.optimizer.schedule.kind)
        o.optimizer.lr = 0.01f, o.optimizer.nesterov = false; /* Keras' default SGD (clipping kept) */
    if (check_optimizer(g, src, m->name, &o.optimizer))
        return -1;
    if (o.optimizer.schedule.kind && o.callbacks.reduce_lr_factor > 0.0f) /* as Keras refuses it */
        return graph_error(g, src, -1,
                           "%s: ReduceLROnPlateau (.reduce_lr_factor) cannot change a learning rate "
                           "that follows a schedule (%s)",
                           m->name, optim_schedule_name(o.optimizer.schedule.kind));
    if (check_data(m, src, &o))
        return -1;
    if (o.batch_size <= 0)
        o.batch_size = 32;
    if (o.max_batch <= 0)
        o.max_batch = o.batch_size;
    if (o.max_batch < o.batch_size)
        return graph_error(g, src, -1, "%s: batch_size %d is larger than max_batch %d", m->name, o.batch_size,
                           o.max_batch);
    if (o.epochs <= 0)
        o.epochs = 1;
    m->opts = o;
    g->has_opt = true;
    g->opt = o.optimizer;
    g->max_batch = o.max_batch;
    if (pack_inputs_outputs(m, src) || check_series(m, src, &o) || check_output_names(m, src, &o))
        return -1;
    for (int k = 0; k < m->noutputs; k++)
        if (resolve_output(m, src, &o, k))
            return -1;
    if (check_class_range(m, src, &o) || make_labels(m, src) || build_entries(m, src) || check_callbacks(m, src, &o) ||
        check_class_weight(m, src, &o))
        return -1;
    m->compiled = true;
    return 0;
}

/* Public: writes the emitted files of a compiled model into dir. */
int cg_emit_model(cg_model *m, const char *dir, cg_flavour flavour)
{
    if (!m || cg_failed(m->g))
        return -1;
    if (!dir)
        return graph_error(m->g, m->src, -1, "%s: cg_emit_model: the directory is NULL", m->name);
    if ((unsigned)flavour > CG_PORTABLE)
        return graph_error(m->g, m->src, -1, "%s: cg_emit_model: unknown flavour %d (CG_HOST or CG_PORTABLE)", m->name,
                           (int)flavour);
    if (!m->compiled)
        return graph_error(m->g, m->src, -1, "%s: call cg_compile before emitting", m->name);
    return compile_graph(m->g, flavour, NULL, NULL) ? -1 : emit_files(m->g, dir);
}
