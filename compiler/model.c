/* model.c: Sequential models and compile (loss, metric, optimizer). A model
 * is a graph with an input placeholder x, the layers applied in order, and,
 * once compiled, a label placeholder y, a loss, a metric and the backward
 * graph of the loss. */
#include "cgrad_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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
    m->out = m->out_train = m->x;
    return m;
}

cg_graph *cg_model_graph(cg_model *m) { return m ? m->g : NULL; }

/* Public: marks every weight of a layer trainable or frozen. Moving averages
 * (BatchNormalization) stay non-trainable either way. */
int cg_set_trainable_at(cg_src src, cg_model *m, const char *layer_name, bool trainable) {
    if (!m || cg_failed(m->g))
        return -1;
    cg_graph *g = m->g;
    if (m->compiled)
        return graph_error(g, src, -1, "%s: set trainable before compile", m->name);
    int li = -1;
    for (int i = 0; i < g->nlayers && li < 0; i++)
        if (layer_name && !strcmp(g->layers[i].name, layer_name))
            li = i;
    if (li < 0)
        return graph_error(g, src, -1, "%s: no layer named %s", m->name, layer_name ? layer_name : "(null)");
    int found = 0;
    for (int v = 0; v < g->nvars; v++) {
        var *vr = &g->vars[v];
        if (g->nodes[vr->node].layer != li)
            continue;
        const char *role = strrchr(vr->name, '/');
        bool moving = role && !strncmp(role, "/moving_", 8);
        vr->trainable = trainable && !moving;
        found++;
    }
    if (!found)
        return graph_error(g, src, li, "the layer has no weights to freeze");
    return 0;
}
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

/* Records an update of the training step: variable node var <- node value. */
int model_add_update(cg_model *m, cg_src src, int var, int value) {
    if (value < 0)
        return -1;
    if (m->nupd == (int)(sizeof m->upd_var / sizeof m->upd_var[0]))
        return graph_error(m->g, src, m->g->cur_layer, "too many moving averages (at most 32)");
    m->upd_var[m->nupd] = var;
    m->upd_val[m->nupd++] = value;
    return 0;
}

static const struct {
    const char *kind, *prefix;
} layer_kinds[] = {
    [CG_LAYER_DENSE] = {"Dense", "dense"},
    [CG_LAYER_ACTIVATION] = {"Activation", "activation"},
    [CG_LAYER_CONV2D] = {"Conv2D", "conv2d"},
    [CG_LAYER_DEPTHWISE_CONV2D] = {"DepthwiseConv2D", "depthwise_conv2d"},
    [CG_LAYER_MAX_POOL2D] = {"MaxPooling2D", "max_pooling2d"},
    [CG_LAYER_AVG_POOL2D] = {"AveragePooling2D", "average_pooling2d"},
    [CG_LAYER_GLOBAL_AVG_POOL2D] = {"GlobalAveragePooling2D", "global_average_pooling2d"},
    [CG_LAYER_FLATTEN] = {"Flatten", "flatten"},
    [CG_LAYER_RESHAPE] = {"Reshape", "reshape"},
    [CG_LAYER_DROPOUT] = {"Dropout", "dropout"},
    [CG_LAYER_BATCH_NORM] = {"BatchNormalization", "batch_normalization"},
    [CG_LAYER_LAYER_NORM] = {"LayerNormalization", "layer_normalization"},
    [CG_LAYER_CUSTOM] = {"Custom", "custom"},
    [CG_LAYER_SIMPLE_RNN] = {"SimpleRNN", "simple_rnn"},
    [CG_LAYER_LSTM] = {"LSTM", "lstm"},
    [CG_LAYER_GRU] = {"GRU", "gru"},
    [CG_LAYER_EMBEDDING] = {"Embedding", "embedding"},
};

/* What a custom layer's call() sees: its graph and layer. */
struct cg_layer_ctx {
    cg_graph *g;
    int layer;
};

/* Public: a weight of the custom layer being called, "layer/name". */
cg_t cg_add_weight_at(cg_src src, cg_layer_ctx *l, const char *name, cg_shape s, cg_init init, bool trainable) {
    if (!l || l->g->failed)
        return (cg_t){l ? l->g : NULL, -1};
    cg_graph *g = l->g;
    shape sh = {s.rank, {0}};
    if (s.rank < 0 || s.rank > CG_MAX_RANK)
        return (cg_t){g, graph_error(g, src, l->layer, "weight %s: rank %d is not supported", name, s.rank)};
    for (int i = 0; i < s.rank; i++) {
        if (s.dims[i] <= 0)
            return (cg_t){g, graph_error(g, src, l->layer, "weight %s: dimension %d is %d, must be positive", name, i,
                                         s.dims[i])};
        sh.d[i] = s.dims[i];
    }
    int id = graph_layer_variable(g, src, name, sh, init);
    if (id >= 0 && !trainable)
        g->vars[g->nodes[id].var].trainable = false;
    return (cg_t){g, id};
}

/* Applies a custom layer: its call(), then a check that every weight it
 * used is its own (a weight of another layer must be shared through a layer
 * used twice, not taken from inside it). */
static int apply_custom(cg_model *m, const cg_layer *l, int x) {
    cg_graph *g = m->g;
    if (!l->call)
        return graph_error(g, l->src, g->cur_layer, "custom layer without a call function");
    cg_layer_ctx ctx = {g, g->cur_layer};
    int first = g->nnodes;
    cg_t y = l->call(&ctx, (cg_t){g, x}, l->self);
    if (g->failed)
        return -1;
    if (y.g != g || y.id < 0 || y.id >= g->nnodes)
        return graph_error(g, l->src, g->cur_layer, "call() returned a tensor that is not of this model");
    for (int id = first; id < g->nnodes; id++)
        for (int i = 0; i < g->nodes[id].nin; i++) {
            const node *in = &g->nodes[g->nodes[id].in[i]];
            if (in->op == OP_VARIABLE && in->layer != g->cur_layer)
                return graph_error(g, l->src, g->cur_layer, "call() uses the weight %s of layer %s; a custom layer "
                                   "may only use the weights it declares with cg_add_weight",
                                   g->vars[in->var].name, in->layer >= 0 ? g->layers[in->layer].name : "(none)");
        }
    layer_name_role(g, y.id, "out");
    return y.id;
}

/* The user's name for the layer, if it gave one. */
static const char *user_name(const cg_layer *l) {
    switch (l->kind) {
    case CG_LAYER_DENSE: return l->dense.name;
    case CG_LAYER_CONV2D: case CG_LAYER_DEPTHWISE_CONV2D: return l->conv.name;
    case CG_LAYER_MAX_POOL2D: case CG_LAYER_AVG_POOL2D: return l->pool.name;
    case CG_LAYER_CUSTOM: return NULL;
    case CG_LAYER_SIMPLE_RNN: case CG_LAYER_LSTM: case CG_LAYER_GRU: return l->rnn.name;
    case CG_LAYER_EMBEDDING: return l->embedding.name;
    default: return l->misc.name;
    }
}

/* Builds layer l on x in one mode; returns its output. */
static int apply_layer(cg_model *m, const cg_layer *l, int x, bool training) {
    cg_graph *g = m->g;
    switch (l->kind) {
    case CG_LAYER_DENSE: return layer_dense(g, &l->dense, l->src, x);
    case CG_LAYER_ACTIVATION: return layer_activation(g, l->activation, l->src, x);
    case CG_LAYER_CONV2D: return layer_conv2d(g, &l->conv, false, l->src, x);
    case CG_LAYER_DEPTHWISE_CONV2D: return layer_conv2d(g, &l->conv, true, l->src, x);
    case CG_LAYER_MAX_POOL2D: return layer_pool2d(g, &l->pool, OP_MAX_POOL, l->src, x);
    case CG_LAYER_AVG_POOL2D: return layer_pool2d(g, &l->pool, OP_AVG_POOL, l->src, x);
    case CG_LAYER_GLOBAL_AVG_POOL2D: return layer_global_avg_pool(g, l->src, x);
    case CG_LAYER_FLATTEN: return layer_reshape(g, l->src, x, NULL);
    case CG_LAYER_RESHAPE: return layer_reshape(g, l->src, x, &l->misc.target_shape);
    case CG_LAYER_DROPOUT: return layer_dropout(g, &l->misc, training, l->src, x);
    case CG_LAYER_BATCH_NORM: return layer_batch_norm(g, &l->misc, training, l->src, x, m);
    case CG_LAYER_LAYER_NORM: return layer_layer_norm(g, &l->misc, l->src, x);
    case CG_LAYER_CUSTOM: return apply_custom(m, l, x);
    case CG_LAYER_SIMPLE_RNN: case CG_LAYER_LSTM: case CG_LAYER_GRU: return layer_recurrent(g, &l->rnn, l->kind, l->src, x);
    case CG_LAYER_EMBEDDING: return layer_embedding(g, &l->embedding, l->src, x);
    }
    return graph_error(g, l->src, g->cur_layer, "unknown layer kind %d", (int)l->kind);
}

/* Public: appends a layer and builds it at once, in training mode and in
 * inference mode; where the two agree, hash-consing makes them one graph. */
int cg_model_add(cg_model *m, cg_layer l) {
    if (!m || cg_failed(m->g))
        return -1;
    cg_graph *g = m->g;
    if ((unsigned)l.kind >= sizeof layer_kinds / sizeof layer_kinds[0])
        return graph_error(g, l.src, -1, "unknown layer kind %d", (int)l.kind);
    if (m->compiled)
        return graph_error(g, l.src, -1, "%s: cannot add layers after compile", m->name);
    const char *kind = layer_kinds[l.kind].kind;
    char name[128], prefix[64];
    snprintf(prefix, sizeof prefix, "%s", layer_kinds[l.kind].prefix);
    if (l.kind == CG_LAYER_CUSTOM && l.custom_kind) {   /* "MyDense" -> kind MyDense, names my_dense_1 */
        kind = arena_strdup(&g->a, l.custom_kind);
        size_t k = 0;
        for (const char *c = l.custom_kind; *c && k + 2 < sizeof prefix; c++) {
            if (isupper((unsigned char)*c) && c != l.custom_kind && k)
                prefix[k++] = '_';
            prefix[k++] = isalnum((unsigned char)*c) ? (char)tolower((unsigned char)*c) : '_';
        }
        prefix[k] = 0;
    }
    if (user_name(&l))
        snprintf(name, sizeof name, "%s", user_name(&l));
    else
        snprintf(name, sizeof name, "%s_%d", prefix, count_kind(g, kind) + 1);
    for (int i = 0; i < g->nlayers; i++)
        if (!strcmp(g->layers[i].name, name))
            return graph_error(g, l.src, -1, "%s: a layer named %s already exists (line %d)", name, name,
                               g->layers[i].src.line);
    int li = graph_begin_layer(g, kind, name, l.src);
    if (li < 0)
        return -1;
    g->infer_pass = false;
    g->layer_first_node = g->nnodes;
    int y_train = apply_layer(m, &l, m->out_train, true);
    g->infer_pass = true;
    g->layer_first_node = g->nnodes;
    int y = y_train < 0 ? -1 : apply_layer(m, &l, m->out, false);
    g->infer_pass = false;
    g->cur_layer = -1;
    if (y < 0)
        return -1;
    g->layers[li].out = y;
    m->out = y;
    m->out_train = y_train;
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

/* Calls a user's loss or metric function and checks that it gave a scalar. */
static int build_custom(cg_model *m, cg_src src, cg_loss_fn fn, void *self, const char *what, int out, int y) {
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

/* Builds the per-batch mean loss of output out against labels y. */
static int build_loss(cg_model *m, cg_src src, int out, int y) {
    cg_graph *g = m->g;
    if (m->opts.custom_loss)
        return build_custom(m, src, m->opts.custom_loss, m->opts.custom_loss_self, "loss", out, y);
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
    if (m->opts.custom_metric)
        return build_custom(m, src, m->opts.custom_metric, m->opts.custom_metric_self, "metric", out, y);
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
    g->has_opt = true;
    g->opt = o.optimizer;
    g->max_batch = o.max_batch;
    for (int k = 0; k < 2; k++) {   /* custom names go into the history header and into C strings */
        const char *nm = k ? o.custom_metric_name : o.custom_loss_name;
        for (const char *c = nm; c && *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_')
                return graph_error(g, src, -1, "%s: the custom %s name \"%s\" may hold only letters, digits and _",
                                   m->name, k ? "metric" : "loss", nm);
    }
    if (o.custom_loss && o.loss != CG_LOSS_NONE)
        return graph_error(g, src, -1, "%s: give either .loss or .custom_loss, not both", m->name);
    if (o.custom_metric && o.metric != CG_METRIC_NONE)
        return graph_error(g, src, -1, "%s: give either .metric or .custom_metric, not both", m->name);
    m->metric_kind = o.custom_metric ? CG_METRIC_MAE /* any: the custom function builds it */
                                     : resolve_metric(o.metric, o.loss);
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
    /* loss and metric in training mode (train_step) and in inference mode
     * (eval_step); one node each when the model has no mode-dependent layer */
    int loss_eval = -1, metric_eval = -1;
    for (int pass = 0; pass < 2 && !g->failed; pass++) {
        int out = pass == 0 ? m->out_train : m->out;
        g->infer_pass = pass == 1;
        if (graph_begin_layer(g, "Loss", pass == 0 ? "loss" : "loss_infer", src) < 0)
            return -1;
        int loss = build_loss(m, src, out, m->y);
        if (loss >= 0 && (pass == 0 || loss != m->loss))
            g->nodes[loss].name = graph_unique_name(g, pass == 0 ? "loss" : "loss_infer");
        g->cur_layer = -1;
        int metric = -1;
        if (m->metric_kind != CG_METRIC_NONE) {
            graph_begin_layer(g, "Metric", pass == 0 ? "metric" : "metric_infer", src);
            metric = build_metric(m, src, out, m->y);
            if (metric >= 0 && (pass == 0 || metric != m->metric))
                g->nodes[metric].name = graph_unique_name(g, pass == 0 ? "metric" : "metric_infer");
            g->cur_layer = -1;
        }
        if (pass == 0)
            m->loss = loss, m->metric = metric;
        else
            loss_eval = loss, metric_eval = metric;
    }
    g->infer_pass = false;
    if (g->failed)
        return -1;
    int vars[256], nv = 0;
    for (int i = 0; i < g->nvars; i++)
        if (g->vars[i].trainable) {
            if (nv == 256)
                return graph_error(g, src, -1, "%s: more than 256 trainable variables", m->name);
            vars[nv++] = g->vars[i].node;
        }
    if (ad_gradients(g, m->loss, vars, nv))
        return -1;
    int nout = m->metric >= 0 ? 2 : 1;
    g->entries[g->nentries++] = (entry){.kind = ENTRY_PREDICT, .fname = "predict", .out = {m->out}, .nout = 1};
    g->entries[g->nentries++] =
        (entry){.kind = ENTRY_EVAL, .fname = "eval_step", .out = {loss_eval, metric_eval}, .nout = nout};
    entry train = {.kind = ENTRY_TRAIN, .fname = "train_step", .out = {m->loss, m->metric}, .nout = nout,
                   .want_grads = true, .nupd = m->nupd};
    for (int i = 0; i < m->nupd; i++)
        train.upd_var[i] = m->upd_var[i], train.upd_val[i] = m->upd_val[i];
    g->entries[g->nentries++] = train;
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
