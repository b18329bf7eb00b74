/* emit_main.c: NAME_main.c, the runtime's descriptor of a compiled model
 * (input shape, labels, loss and metric names, outputs, the default data and
 * training options) and the main() of its training binary. */
#include "cgrad_int.h"

#include <string.h>

/* The .series initializer of NAME_main.c's data spec ("" when the data is not a time series). */
static void emit_series(text *t, const cg_series_opts *s)
{
    if (s->window <= 0)
        return;
    text_puts(t, ",\n                  .series = { .column = ");
    emit_c_string(t, s->column);
    text_printf(t,
                ", .column_index = %d, .window = %d, .horizon = %d,\n                              "
                ".val_steps = %d, .test_steps = %d, .season = %d%s }",
                s->column_index, s->window, s->horizon > 0 ? s->horizon : 1, s->val_steps, s->test_steps, s->season,
                s->missing == CG_MISSING_INTERPOLATE ? ", .missing = CGRT_MISSING_INTERPOLATE"
                : s->missing == CG_MISSING_PREVIOUS  ? ", .missing = CGRT_MISSING_PREVIOUS"
                                                     : "");
}

/* The .callbacks initializer of NAME_main.c's descriptor, one line with
 * the fields that are set ("" when none is: the default callbacks). */
static void emit_callbacks(text *t, const cg_callback_opts *c)
{
    static const char *const modes[] = {"CGRT_MODE_AUTO", "CGRT_MODE_MIN", "CGRT_MODE_MAX"};
    const struct {
        const char *name;
        float v;
    } floats[] = {{"min_delta", c->min_delta},
                  {"reduce_lr_factor", c->reduce_lr_factor},
                  {"reduce_lr_min_delta", c->reduce_lr_min_delta},
                  {"min_lr", c->min_lr}};
    const struct {
        const char *name;
        int v;
    } ints[] = {{"patience", c->patience},
                {"restore_best_weights", c->restore_best_weights},
                {"save_best_only", c->save_best_only},
                {"reduce_lr_patience", c->reduce_lr_patience},
                {"reduce_lr_cooldown", c->reduce_lr_cooldown}};
    const char *sep = "        .callbacks = { ";
    char num[48];
    if (c->monitor) {
        text_printf(t, "%s.monitor = ", sep);
        emit_c_string(t, c->monitor);
        sep = ", ";
    }
    if (c->mode != CG_MODE_AUTO)
        text_printf(t, "%s.mode = %s", sep, modes[c->mode]), sep = ", ";
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        if (floats[i].v != 0.0f)
            text_printf(t, "%s.%s = %s", sep, floats[i].name, emit_float(floats[i].v, num, sizeof num)), sep = ", ";
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v != 0)
            text_printf(t, "%s.%s = %d", sep, ints[i].name, ints[i].v), sep = ", ";
    if (strcmp(sep, ", ") == 0)
        text_puts(t, " },\n");
}

/* The table of the Normalization layers whose statistics fit computes
 * (cgrt_adapt: their tensors' offsets, the packed input they read) into
 * table, and the descriptor's fields naming it into fields; nothing when
 * the model has none. */
static void emit_adapt(emit_ctx *ec, text *table, text *fields)
{
    cg_graph *g = ec->g;
    cg_model *m = g->model;
    char up[2][128];
    if (!m->nadapt)
        return;
    text_printf(table,
                "/* Normalization layers whose statistics fit computes (Keras' adapt): layer, mean and variance\n"
                " * offsets, features, and the input they read within a packed sample: first float, floats */\n"
                "static const cgrt_adapt adapt[%d] = {\n",
                m->nadapt);
    for (int i = 0; i < m->nadapt; i++) {
        const node *in = &g->nodes[m->adapt[i][2]];
        long offset = 0;
        for (int k = 0; m->functional && k < m->ninputs && m->inputs[k] != m->adapt[i][2]; k++)
            offset += shape_size(&g->nodes[m->inputs[k]].sh, 1);
        text_printf(table, "    {\"%s\", %s_%s, %s_%s, %d, %ld, %ld},\n",
                    g->layers[g->nodes[m->adapt[i][0]].layer].name, ec->uprefix,
                    emit_upper(g->nodes[m->adapt[i][0]].name, up[0], sizeof up[0]), ec->uprefix,
                    emit_upper(g->nodes[m->adapt[i][1]].name, up[1], sizeof up[1]), in->sh.d[in->sh.rank - 1], offset,
                    shape_size(&in->sh, 1));
    }
    text_puts(table, "};\n");
    text_printf(fields, "        .num_adapt = %d,\n        .adapt = adapt,\n", m->nadapt);
}

/* The wrappers of the steps that take sample weights into fns, and the
 * descriptor's fields naming them and the default class weights (a spec
 * as fit's --class-weight reads it: "balanced", "0:1,1:3.5") into fields;
 * nothing for a model whose custom loss takes no weights. */
static void emit_weighted(emit_ctx *ec, text *fns, text *fields)
{
    const cg_class_weight_opts *c = &ec->g->model->opts.class_weight;
    const char *sep = "";
    if (ec->g->model->sample_weight < 0)
        return;
    for (int k = 0; k < 2; k++)
        text_printf(fns,
                    "static void %s_step_weighted(void *s, int n, const float *x, const float *y, const float *sw,\n"
                    "%*sfloat *loss, float *metrics)\n{\n    %s_%s_step_weighted(s, n, x, y, sw, loss, metrics);\n}\n",
                    k ? "eval" : "train", k ? 31 : 32, "", ec->prefix, k ? "eval" : "train");
    text_puts(fields, "        .train_step_weighted = train_step_weighted,\n"
                      "        .eval_step_weighted = eval_step_weighted,\n");
    if (c->balanced)
        text_puts(fields, "        .class_weight = \"balanced\",\n");
    for (int i = 0; !c->balanced && i < CG_MAX_CLASS_WEIGHTS; i++)
        if (c->weight[i] != 0.0f) {
            text_printf(fields, "%s%d:%.9g", *sep ? sep : "        .class_weight = \"", i, (double)c->weight[i]);
            sep = ",";
        }
    if (*sep)
        text_puts(fields, "\",\n");
}

/* The metrics' names (names) and the outputs' table rows (outs: name,
 * floats per prediction, floats per label, classes) of NAME_main.c. */
static void emit_metric_and_output_tables(cg_graph *g, text *names, text *outs)
{
    cg_model *m = g->model;
    for (int i = 0; i < m->nmetrics; i++) {
        text_puts(names, i ? ", " : "");
        emit_c_string(names, m->metric_names[i]);
    }
    if (!m->nmetrics)
        text_puts(names, "0");
    for (int k = 0; k < m->noutputs; k++) {
        const node *o = &g->nodes[m->outputs_infer[k]];
        bool sp = m->spec[k].loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
        text_puts(outs, "    {");
        emit_c_string(outs, m->output_names[k]);
        text_printf(outs, ", %ld, %ld, %ld},\n", shape_size(&o->sh, 1), shape_size(&g->nodes[m->labels[k]].sh, 1),
                    sp ? shape_size(&o->sh, 1) : 0L);
    }
}

/* Writes NAME_main.c into mt; returns -1 when the template failed. */
int emit_main(emit_ctx *ec, text *mt)
{
    cg_graph *g = ec->g;
    cg_model *m = g->model;
    text path = {0}, series = {0}, names = {0}, outs = {0}, callbacks = {0}, adapt[2] = {{0}}, weighted[2] = {{0}};
    char dims[64] = "", scale[48], split[48], classes[16], epochs[16], batch[16], rank[8], counts[2][8], range[80],
         lr[48];
    size_t len = 0;
    char grads[160] = "0 /* nothing is trainable */"; /* the gradient block, which gradcheck reads */
    if (g->trainable_floats)
        snprintf(grads, sizeof grads, "((%s_state *)s)->grads", ec->prefix);
    for (int i = 0; i < m->input.rank; i++)
        len += (size_t)snprintf(dims + len, sizeof dims - len, "%s%d", i ? ", " : "", m->input.d[i]);
    emit_c_string(&path, m->opts.data.path);
    if (m->opts.data.label) { /* only when set: other models' files stay byte-identical */
        text_puts(&series, ",\n                  .label_column = ");
        emit_c_string(&series, m->opts.data.label);
    }
    emit_series(&series, &m->opts.data.series);
    emit_callbacks(&callbacks, &m->opts.callbacks);
    emit_schedule_fields(ec, &callbacks);
    emit_adapt(ec, &adapt[0], &adapt[1]);
    emit_weighted(ec, &weighted[0], &weighted[1]);
    emit_float(m->opts.data.scale, scale, sizeof scale);
    emit_float(m->opts.data.test_split, split, sizeof split);
    emit_float(g->has_opt ? optim_initial_lr(&g->opt) : 0.01f, lr, sizeof lr);
    bool sparse = m->noutputs == 1 && m->spec[0].loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
    snprintf(classes, sizeof classes, "%ld", sparse ? shape_size(&g->nodes[m->outputs_infer[0]].sh, 1) : 0L);
    snprintf(epochs, sizeof epochs, "%d", m->opts.epochs);
    snprintf(batch, sizeof batch, "%d", m->opts.batch_size);
    snprintf(rank, sizeof rank, "%d", m->input.rank);
    snprintf(counts[0], sizeof counts[0], "%d", m->nmetrics);
    snprintf(counts[1], sizeof counts[1], "%d", m->noutputs);
    range[0] = 0;
    if (m->opts.data.class_range[1] > 0)
        snprintf(range, sizeof range, ",\n                  .class_range = { %d, %d }", m->opts.data.class_range[0],
                 m->opts.data.class_range[1]);
    emit_metric_and_output_tables(g, &names, &outs);
    const char *loss = m->noutputs > 1 ? "weighted_sum"
                       : m->spec[0].custom_loss
                           ? (m->spec[0].custom_loss_name ? m->spec[0].custom_loss_name : "custom_loss")
                           : loss_name(m->spec[0].loss);
    /* clang-format off */
    const char *kv[] = {
        "NAME", ec->prefix,                     "UNAME", ec->uprefix,
        "VERSION", CG_VERSION,                  "SOURCE", ec->source,
        "GRAD_BLOCK", grads,                    "IN_RANK", rank,
        "IN_DIMS", dims,                        "LABEL_KIND", sparse ? "CGRT_LABEL_SPARSE" : "CGRT_LABEL_DENSE",
        "NUM_CLASSES", classes,                 "LOSS", loss,
        "NUM_METRICS", counts[0],               "METRIC_NAMES", names.s ? names.s : "0",
        "NUM_OUTPUTS", counts[1],               "OUTPUTS", outs.s ? outs.s : "",
        "LR", lr,                               "EPOCHS", epochs,
        "BATCH", batch,                         "DATA_PATH", path.s ? path.s : "0",
        "DATA_SCALE", scale,                    "TEST_SPLIT", split,
        "CLASS_RANGE", range,                   "SERIES", series.s ? series.s : "",
        "CALLBACKS", callbacks.s ? callbacks.s : "",
        "ADAPT", adapt[0].s ? adapt[0].s : "", "ADAPT_FIELDS", adapt[1].s ? adapt[1].s : "",
        "WEIGHTED", weighted[0].s ? weighted[0].s : "", "WEIGHTED_FIELDS", weighted[1].s ? weighted[1].s : "",
        "BLAS_INCLUDE", ec->uses_blas ? "#include <cblas.h>\n#include <cgrad_gemm.h>\n" : "",
        "BLAS_TUNE", ec->uses_blas ? "    if (cgrt_gemm_uses_openblas())   /* else the shim's own kernel runs every product */\n"
                                     "        cgrt_tune_openblas(argv, openblas_get_corename());\n" : "",
        NULL};
    /* clang-format on */
    int rc = text_template(mt, "main", kv);
    text_free(&names), text_free(&outs), text_free(&path), text_free(&series), text_free(&callbacks);
    text_free(&adapt[0]), text_free(&adapt[1]), text_free(&weighted[0]), text_free(&weighted[1]);
    return rc;
}
