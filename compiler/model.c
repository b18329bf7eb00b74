/* model.c: Sequential models and compile (loss, metric, optimizer). A model
 * is a graph with an input placeholder x, the layers applied in order, and,
 * once compiled, a label placeholder y, a loss, a metric and the backward
 * graph of the loss. */
#include "cgrad_int.h"

#include <stdlib.h>
#include <string.h>

int layer_dense(cg_graph *g, const cg_dense_opts *o, cg_src src, int x);
int layer_activation(cg_graph *g, cg_activation act, cg_src src, int x);

const char *loss_name(cg_loss l) {
    static const char *names[] = {"none", "mean_squared_error", "mean_absolute_error", "binary_crossentropy",
                                  "categorical_crossentropy", "sparse_categorical_crossentropy"};
    return (unsigned)l < sizeof names / sizeof names[0] ? names[l] : "?";
}

const char *metric_name(cg_metric m) {
    static const char *names[] = {"none", "accuracy", "binary_accuracy", "categorical_accuracy",
                                  "sparse_categorical_accuracy", "mae", "mse"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "?";
}

/* Public: a Sequential model over samples of shape `input`. */
cg_model *cg_sequential_at(cg_src src, const char *name, cg_shape input) {
    cg_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->g = cg_graph_new(name);
    if (!m->g) {
        free(m);
        return NULL;
    }
    m->g->model = m;
    m->name = m->g->name;
    m->src = src;
    m->x = m->y = m->out = m->loss = m->metric = -1;
    if (input.rank < 1 || input.rank >= CG_MAX_RANK) {
        graph_error(m->g, src, -1, "%s: the input shape needs 1 to %d dimensions (without the batch), got %d",
                    m->name, CG_MAX_RANK - 1, input.rank);
        return m;
    }
    cg_shape with_batch = {input.rank + 1, {CG_BATCH}};
    for (int i = 0; i < input.rank; i++)
        with_batch.dims[i + 1] = input.dims[i];
    m->x = cg_placeholder_at(src, m->g, "x", with_batch).id;
    if (m->x >= 0) {
        m->input = m->g->nodes[m->x].sh;
        m->input.rank--;
        memmove(m->input.d, m->input.d + 1, sizeof(int) * (size_t)m->input.rank);
    }
    m->out = m->x;
    return m;
}

cg_graph *cg_model_graph(cg_model *m) { return m ? m->g : NULL; }
cg_t cg_model_output(cg_model *m) { return (cg_t){m ? m->g : NULL, m ? m->out : -1}; }

void cg_model_free(cg_model *m) {
    if (!m)
        return;
    cg_graph_free(m->g);
    free(m->summary);
    free(m);
}

/* Counts layers of one kind, for default names: dense_1, dense_2, ... */
static int count_kind(cg_graph *g, const char *kind) {
    int k = 0;
    for (int i = 0; i < g->nlayers; i++)
        k += !strcmp(g->layers[i].kind, kind);
    return k;
}

/* Public: appends a layer and builds it on the current output. */
int cg_model_add(cg_model *m, cg_layer l) {
    if (!m || cg_failed(m->g))
        return -1;
    cg_graph *g = m->g;
    if (m->compiled)
        return graph_error(g, l.src, -1, "%s: cannot add layers after compile", m->name);
    const char *kind = l.kind == CG_LAYER_DENSE ? "Dense" : "Activation";
    char name[128];
    if (l.kind == CG_LAYER_DENSE && l.dense.name)
        snprintf(name, sizeof name, "%s", l.dense.name);
    else
        snprintf(name, sizeof name, "%s_%d", l.kind == CG_LAYER_DENSE ? "dense" : "activation",
                 count_kind(g, kind) + 1);
    for (int i = 0; i < g->nlayers; i++)
        if (!strcmp(g->layers[i].name, name))
            return graph_error(g, l.src, -1, "%s: a layer named %s already exists (line %d)", name, name,
                               g->layers[i].src.line);
    int li = graph_begin_layer(g, kind, name, l.src);
    if (li < 0)
        return -1;
    int y = -1;
    switch (l.kind) {
    case CG_LAYER_DENSE: y = layer_dense(g, &l.dense, l.src, m->out); break;
    case CG_LAYER_ACTIVATION: y = layer_activation(g, l.activation, l.src, m->out); break;
    }
    g->cur_layer = -1;
    if (y < 0)
        return -1;
    g->layers[li].out = y;
    m->out = y;
    return 0;
}

/* The metric "accuracy" resolved as Keras does, from the loss. */
static cg_metric resolve_metric(cg_metric m, cg_loss l) {
    if (m != CG_ACCURACY)
        return m;
    switch (l) {
    case CG_BINARY_CROSSENTROPY: return CG_BINARY_ACCURACY;
    case CG_CATEGORICAL_CROSSENTROPY: return CG_CATEGORICAL_ACCURACY;
    case CG_SPARSE_CATEGORICAL_CROSSENTROPY: return CG_SPARSE_CATEGORICAL_ACCURACY;
    default: return CG_ACCURACY;
    }
}

/* Builds the per-batch mean loss of output out against labels y. */
static int build_loss(cg_model *m, cg_src src, int out, int y) {
    cg_graph *g = m->g;
    bool logits = m->opts.from_logits;
    int eps = op_const(g, 1e-7f, false), one_minus = op_const(g, 1.0f - 1e-7f, false);
    switch (m->opts.loss) {
    case CG_MSE: return op_reduce(g, src, OP_MEAN, op_unary(g, src, OP_SQUARE, op_binary(g, src, OP_SUB, out, y)), 0, false);
    case CG_MAE: return op_reduce(g, src, OP_MEAN, op_unary(g, src, OP_ABS, op_binary(g, src, OP_SUB, out, y)), 0, false);
    case CG_BINARY_CROSSENTROPY:
        if (logits)
            return op_reduce(g, src, OP_MEAN, op_binary(g, src, OP_SIGMOID_BCE, out, y), 0, false);
        else {   /* -(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps] as Keras does */
            int p = op_binary(g, src, OP_MINIMUM, op_binary(g, src, OP_MAXIMUM, out, eps), one_minus);
            int one = op_const(g, 1.0f, false);
            int t1 = op_binary(g, src, OP_MUL, y, op_unary(g, src, OP_LOG, p));
            int t2 = op_binary(g, src, OP_MUL, op_binary(g, src, OP_SUB, one, y),
                               op_unary(g, src, OP_LOG, op_binary(g, src, OP_SUB, one, p)));
            return op_unary(g, src, OP_NEG, op_reduce(g, src, OP_MEAN, op_binary(g, src, OP_ADD, t1, t2), 0, false));
        }
    case CG_CATEGORICAL_CROSSENTROPY:
    case CG_SPARSE_CATEGORICAL_CROSSENTROPY: {
        bool sparse = m->opts.loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
        if (logits)
            return op_reduce(g, src, OP_MEAN, op_softmax_xent(g, src, out, y, sparse), 0, false);
        /* from probabilities: -sum t log(clip(p)) per sample, then the mean */
        int t = sparse ? op_one_hot(g, src, y, g->nodes[out].sh.d[1]) : y;
        int p = op_binary(g, src, OP_MINIMUM, op_binary(g, src, OP_MAXIMUM, out, eps), one_minus);
        int per = op_reduce(g, src, OP_SUM, op_binary(g, src, OP_MUL, t, op_unary(g, src, OP_LOG, p)), CG_AXIS(1), false);
        return op_unary(g, src, OP_NEG, op_reduce(g, src, OP_MEAN, per, 0, false));
    }
    default: return graph_error(g, src, -1, "%s: compile needs a loss", m->name);
    }
}

/* Builds the batch-mean metric. */
static int build_metric(cg_model *m, cg_src src, int out, int y) {
    cg_graph *g = m->g;
    bool sparse_labels = m->opts.loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
    switch (m->metric_kind) {
    case CG_METRIC_NONE: return -1;
    case CG_ACCURACY:
    case CG_BINARY_ACCURACY: {
        int thr = op_const(g, m->opts.from_logits ? 0.0f : 0.5f, false);
        if (sparse_labels)
            return graph_error(g, src, -1, "%s: binary accuracy needs labels shaped like the output, but the loss %s "
                               "takes class indices", m->name, loss_name(m->opts.loss));
        return op_reduce(g, src, OP_MEAN, op_binary(g, src, OP_EQUAL, op_binary(g, src, OP_GREATER, out, thr), y), 0, false);
    }
    case CG_CATEGORICAL_ACCURACY:
    case CG_SPARSE_CATEGORICAL_ACCURACY:
        if ((m->metric_kind == CG_SPARSE_CATEGORICAL_ACCURACY) != sparse_labels)
            return graph_error(g, src, -1, "%s: metric %s does not fit the loss %s (%s labels)", m->name,
                               metric_name(m->metric_kind), loss_name(m->opts.loss),
                               sparse_labels ? "class-index" : "one-hot");
        return op_reduce(g, src, OP_MEAN, op_argmax_eq(g, src, out, y, sparse_labels), 0, false);
    case CG_METRIC_MAE: return op_reduce(g, src, OP_MEAN, op_unary(g, src, OP_ABS, op_binary(g, src, OP_SUB, out, y)), 0, false);
    case CG_METRIC_MSE: return op_reduce(g, src, OP_MEAN, op_unary(g, src, OP_SQUARE, op_binary(g, src, OP_SUB, out, y)), 0, false);
    }
    return -1;
}

/* Public: loss, metric and optimizer; builds labels, loss and the backward graph. */
int cg_compile_at(cg_src src, cg_model *m, cg_compile_opts o) {
    if (!m || cg_failed(m->g))
        return -1;
    cg_graph *g = m->g;
    if (m->compiled)
        return graph_error(g, src, -1, "%s: compiled twice", m->name);
    if (!g->nlayers)
        return graph_error(g, src, -1, "%s: the model has no layers", m->name);
    if (o.optimizer.lr == 0.0f && o.optimizer.kind == CG_SGD && o.optimizer.momentum == 0.0f)
        o.optimizer = cg_sgd(0.01f, 0.0f, false);    /* Keras' default SGD */
    if (o.optimizer.lr <= 0.0f)
        return graph_error(g, src, -1, "%s: the learning rate must be positive, got %g", m->name, (double)o.optimizer.lr);
    if (o.optimizer.momentum < 0.0f || o.optimizer.momentum >= 1.0f)
        return graph_error(g, src, -1, "%s: momentum must lie in [0, 1), got %g", m->name, (double)o.optimizer.momentum);
    if (o.optimizer.kind == CG_ADAM && (o.optimizer.beta_1 < 0.0f || o.optimizer.beta_1 >= 1.0f ||
                                         o.optimizer.beta_2 < 0.0f || o.optimizer.beta_2 >= 1.0f))
        return graph_error(g, src, -1, "%s: Adam's beta_1 and beta_2 must lie in [0, 1)", m->name);
    if (o.batch_size <= 0)
        o.batch_size = 32;
    if (o.max_batch <= 0)
        o.max_batch = o.batch_size;
    if (o.max_batch < o.batch_size)
        return graph_error(g, src, -1, "%s: batch_size %d is larger than max_batch %d", m->name, o.batch_size, o.max_batch);
    if (o.epochs <= 0)
        o.epochs = 1;
    m->opts = o;
    g->max_batch = o.max_batch;
    m->metric_kind = resolve_metric(o.metric, o.loss);
    const shape *os = &g->nodes[m->out].sh;
    char sb[64];
    bool classify = o.loss == CG_CATEGORICAL_CROSSENTROPY || o.loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (m->metric_kind == CG_ACCURACY) {   /* accuracy with a regression loss: decide from the output */
        m->metric_kind = os->rank == 2 && os->d[1] == 1 ? CG_BINARY_ACCURACY : CG_CATEGORICAL_ACCURACY;
    }
    if (classify && (os->rank != 2 || os->d[1] < 2))
        return graph_error(g, src, -1, "%s: loss %s needs an output of shape (n, classes) with 2 or more classes, "
                           "got %s", m->name, loss_name(o.loss), shape_str(os, sb, sizeof sb));
    if (o.loss == CG_SPARSE_CATEGORICAL_CROSSENTROPY)
        m->y = cg_placeholder_at(src, g, "y", (cg_shape){1, {CG_BATCH}}).id;
    else {
        cg_shape ys = {os->rank, {0}};
        for (int i = 0; i < os->rank; i++)
            ys.dims[i] = os->d[i];
        m->y = cg_placeholder_at(src, g, "y", ys).id;
    }
    if (m->y < 0)
        return -1;
    int li = graph_begin_layer(g, "Loss", "loss", src);
    if (li < 0)
        return -1;
    m->loss = build_loss(m, src, m->out, m->y);
    if (m->loss >= 0)
        g->nodes[m->loss].name = graph_unique_name(g, "loss");
    g->cur_layer = -1;
    if (m->metric_kind != CG_METRIC_NONE) {
        graph_begin_layer(g, "Metric", "metric", src);
        m->metric = build_metric(m, src, m->out, m->y);
        if (m->metric >= 0)
            g->nodes[m->metric].name = graph_unique_name(g, "metric");
        g->cur_layer = -1;
    }
    if (g->failed)
        return -1;
    int vars[256], nv = 0;
    for (int i = 0; i < g->nvars && nv < 256; i++)
        if (g->vars[i].trainable)
            vars[nv++] = g->vars[i].node;
    if (ad_gradients(g, m->loss, vars, nv))
        return -1;
    int nout = m->metric >= 0 ? 2 : 1;
    g->entries[g->nentries++] = (entry){.kind = ENTRY_PREDICT, .fname = "predict", .out = {m->out}, .nout = 1};
    g->entries[g->nentries++] =
        (entry){.kind = ENTRY_EVAL, .fname = "eval_step", .out = {m->loss, m->metric}, .nout = nout};
    g->entries[g->nentries++] = (entry){.kind = ENTRY_TRAIN, .fname = "train_step", .out = {m->loss, m->metric},
                                        .nout = nout, .want_grads = true};
    m->compiled = true;
    return 0;
}

int cg_emit_model(cg_model *m, const char *dir, cg_flavour flavour) {
    if (!m || cg_failed(m->g))
        return -1;
    if (!m->compiled)
        return graph_error(m->g, m->src, -1, "%s: call cg_compile before emitting", m->name);
    return emit_files(m->g, dir, flavour);
}
