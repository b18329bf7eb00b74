/* cgrad.h: the public builder API of libcgrad.
 *
 * A model is built in C, either Keras-style:
 *
 *     cg_model *m = cg_sequential("mlp", CG_SHAPE(784));
 *     cg_model_add(m, cg_dense(128, .activation = CG_RELU));
 *     cg_model_add(m, cg_dense(10));
 *     cg_compile(m, .optimizer = cg_adam(1e-3), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
 *                .from_logits = true, .metric = CG_ACCURACY);
 *     return cg_main(m, argc, argv);      // emits mlp.h, mlp.c, mlp_main.c
 *
 * or with raw tensor ops, "gradient tape" style:
 *
 *     cg_graph *g = cg_graph_new("linreg");
 *     cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
 *     cg_t w = cg_variable(g, "w", CG_SHAPE(3, 1), cg_zeros());
 *     cg_t loss = cg_mean(cg_square(cg_sub(cg_matmul(x, w), y)));
 *     cg_gradients(g, loss, w);          // emits linreg_gradients(): loss and d_w
 *
 * Errors are sticky: the first failing builder call records a message naming
 * the user's source line, the layer and the shapes (`model.c:14: dense_2:
 * ...`); every later call is a no-op; cg_failed()/cg_error() report it. The
 * library never prints and never exits; cg_main() is the one front end that
 * writes to the terminal, and only because the program asked it to.
 *
 * Sections: shapes and sources, graphs and tensors, ops, layers and models,
 * compile options, emission.
 */
#ifndef CGRAD_H
#define CGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CG_VERSION "0.1.0"
#define CG_MAX_RANK 4
#define CG_BATCH (-1) /* the batch dimension: sized at run time, at most max_batch */
/* Names (models, layers, weights, inputs, custom losses and metrics) become C
 * identifiers and file names: [A-Za-z_][A-Za-z0-9_]*, at most CG_MAX_NAME
 * characters, no leading "__" or "_" + capital (reserved to C). Anything else
 * is a builder error. */
#define CG_MAX_NAME 64

/* ---- Shapes and source locations ---------------------------------------- */

typedef struct cg_shape {
    int rank;
    int dims[CG_MAX_RANK]; /* dims[0] may be CG_BATCH */
} cg_shape;

/* CG_SHAPE(CG_BATCH, 784): a shape from a list of dimensions. */
#define CG_SHAPE(...) cg_shape_make((const int[]){__VA_ARGS__}, (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))
cg_shape cg_shape_make(const int *dims, int rank);

/* The user's source line, captured by every builder macro. */
typedef struct cg_src {
    const char *file;
    int line;
} cg_src;
#define CG_HERE ((cg_src){__FILE__, __LINE__})

/* Keyword-style options: designated initializers over defaults. The pragmas
 * silence the "initializer overrides a default" warning for the user's
 * overrides, and only inside this expression. */
#if defined(__clang__)
#define CG_IGNORE_OVERRIDE_ _Pragma("clang diagnostic ignored \"-Winitializer-overrides\"")
#else
#define CG_IGNORE_OVERRIDE_ _Pragma("GCC diagnostic ignored \"-Woverride-init\"")
#endif
/* clang-format off */
#define CG_OPTS_(type, ...) \
    (__extension__({ _Pragma("GCC diagnostic push") CG_IGNORE_OVERRIDE_ \
        type cg_opts_ = {__VA_ARGS__}; _Pragma("GCC diagnostic pop") cg_opts_; }))
/* clang-format on */

/* ---- Graphs and tensors -------------------------------------------------- */

typedef struct cg_graph cg_graph;

/* A tensor: one node of a graph. id < 0 after an error. */
typedef struct cg_t {
    cg_graph *g;
    int id;
} cg_t;

/* Weight initializers (Keras names). The seed mixes with the run-time --seed. */
typedef enum cg_init_kind {
    CG_INIT_DEFAULT, /* what the layer chooses: Glorot uniform kernels, zero biases */
    CG_INIT_ZEROS,
    CG_INIT_ONES,
    CG_INIT_CONSTANT,       /* a */
    CG_INIT_NORMAL,         /* mean a, standard deviation b */
    CG_INIT_UNIFORM,        /* in [a, b) */
    CG_INIT_GLOROT_UNIFORM, /* U(-l, l), l = sqrt(6 / (fan_in + fan_out)) */
    CG_INIT_HE_NORMAL,      /* truncated N(0, 2 / fan_in) */
    CG_INIT_ORTHOGONAL,     /* a random orthogonal matrix (rows, or columns, orthonormal), gain 1 */
} cg_init_kind;

typedef struct cg_init {
    cg_init_kind kind;
    float a, b;
} cg_init;

static inline cg_init cg_zeros(void)
{
    return (cg_init){CG_INIT_ZEROS, 0, 0};
}
static inline cg_init cg_ones(void)
{
    return (cg_init){CG_INIT_ONES, 0, 0};
}
static inline cg_init cg_constant_init(float v)
{
    return (cg_init){CG_INIT_CONSTANT, v, 0};
}
static inline cg_init cg_normal(float mean, float stddev)
{
    return (cg_init){CG_INIT_NORMAL, mean, stddev};
}
static inline cg_init cg_uniform(float lo, float hi)
{
    return (cg_init){CG_INIT_UNIFORM, lo, hi};
}
static inline cg_init cg_glorot_uniform(void)
{
    return (cg_init){CG_INIT_GLOROT_UNIFORM, 0, 0};
}
static inline cg_init cg_he_normal(void)
{
    return (cg_init){CG_INIT_HE_NORMAL, 0, 0};
}
static inline cg_init cg_orthogonal(void)
{
    return (cg_init){CG_INIT_ORTHOGONAL, 0, 0};
}

cg_graph *cg_graph_new(const char *name);
void cg_graph_free(cg_graph *g);
bool cg_failed(const cg_graph *g);
const char *cg_error(const cg_graph *g); /* "" when nothing failed */
/* Largest batch the emitted code is planned for (default 64). */
void cg_set_max_batch(cg_graph *g, int max_batch);

#define cg_placeholder(g, name, shape) cg_placeholder_at(CG_HERE, g, name, shape)
#define cg_variable(g, name, shape, init) cg_variable_at(CG_HERE, g, name, shape, init)
#define cg_scalar(g, value) cg_scalar_at(CG_HERE, g, value)
cg_t cg_placeholder_at(cg_src src, cg_graph *g, const char *name, cg_shape shape);
cg_t cg_variable_at(cg_src src, cg_graph *g, const char *name, cg_shape shape, cg_init init);
cg_t cg_scalar_at(cg_src src, cg_graph *g, float value);
/* A constant tensor: count(shape) floats copied from values at the call (finite, row-major), emitted as a
 * `static const float NAME[count]` array (flash on a microcontroller). cg_constant names it constant,
 * constant_2, ...; cg_constant_named gives the name (an identifier, checked like a layer's name).
 *   cg_constant(g, CG_SHAPE(2, 3), w);  cg_constant_vector(g, 0.5f, 1.0f, 2.0f): shape (3) */
#define cg_constant(g, shape, values) cg_constant_at(CG_HERE, g, NULL, shape, values)
#define cg_constant_named(g, name, shape, values) cg_constant_at(CG_HERE, g, name, shape, values)
#define cg_constant_vector(g, ...)                                                                          \
    cg_constant_at(CG_HERE, g, NULL, CG_SHAPE((int)(sizeof((const float[]){__VA_ARGS__}) / sizeof(float))), \
                   (const float[]){__VA_ARGS__})
#define cg_constant_matrix(g, rows, cols, values) cg_constant_at(CG_HERE, g, NULL, CG_SHAPE(rows, cols), values)
cg_t cg_constant_at(cg_src src, cg_graph *g, const char *name, cg_shape shape, const float *values);
cg_shape cg_shape_of(cg_t t);

/* ---- Ops ----------------------------------------------------------------- */

/* Elementwise, with numpy broadcasting. */
#define cg_add(a, b) cg_binary_at(CG_HERE, CG_OP_ADD, a, b)
#define cg_sub(a, b) cg_binary_at(CG_HERE, CG_OP_SUB, a, b)
#define cg_mul(a, b) cg_binary_at(CG_HERE, CG_OP_MUL, a, b)
#define cg_div(a, b) cg_binary_at(CG_HERE, CG_OP_DIV, a, b)
#define cg_maximum(a, b) cg_binary_at(CG_HERE, CG_OP_MAXIMUM, a, b)
#define cg_minimum(a, b) cg_binary_at(CG_HERE, CG_OP_MINIMUM, a, b)
#define cg_greater(a, b) cg_binary_at(CG_HERE, CG_OP_GREATER, a, b) /* 1 where a > b, else 0 */
#define cg_less(a, b) cg_binary_at(CG_HERE, CG_OP_LESS, a, b)
#define cg_equal(a, b) cg_binary_at(CG_HERE, CG_OP_EQUAL, a, b)
#define cg_neg(x) cg_unary_at(CG_HERE, CG_OP_NEG, x)
#define cg_exp(x) cg_unary_at(CG_HERE, CG_OP_EXP, x)
#define cg_log(x) cg_unary_at(CG_HERE, CG_OP_LOG, x)
#define cg_sqrt(x) cg_unary_at(CG_HERE, CG_OP_SQRT, x)
#define cg_square(x) cg_unary_at(CG_HERE, CG_OP_SQUARE, x)
#define cg_abs(x) cg_unary_at(CG_HERE, CG_OP_ABS, x)
#define cg_tanh(x) cg_unary_at(CG_HERE, CG_OP_TANH, x)
#define cg_sigmoid(x) cg_unary_at(CG_HERE, CG_OP_SIGMOID, x)
#define cg_relu(x) cg_unary_at(CG_HERE, CG_OP_RELU, x)
#define cg_leaky_relu(x, alpha) cg_leaky_relu_at(CG_HERE, x, alpha)
/* Any activation (cg_activation, below): cg_act(x, CG_GELU); cg_act_alpha(x, CG_ELU, 0.5f) sets its parameter. */
#define cg_act(x, act) cg_act_at(CG_HERE, x, act, CG_ALPHA_DEFAULT)
#define cg_act_alpha(x, act, alpha) cg_act_at(CG_HERE, x, act, alpha)
#define cg_where(cond, a, b) cg_where_at(CG_HERE, cond, a, b) /* cond != 0 ? a : b */

/* Reductions over a bit set of axes (CG_AXIS(1) | CG_AXIS(2)); cg_sum(x) etc. reduce everything. */
#define CG_AXIS(k) (1u << (k))
#define cg_sum(x) cg_reduce_at(CG_HERE, CG_OP_SUM, x, 0, false)
#define cg_mean(x) cg_reduce_at(CG_HERE, CG_OP_MEAN, x, 0, false)
#define cg_max(x) cg_reduce_at(CG_HERE, CG_OP_MAX, x, 0, false)
#define cg_sum_axes(x, axes, keepdims) cg_reduce_at(CG_HERE, CG_OP_SUM, x, axes, keepdims)
#define cg_mean_axes(x, axes, keepdims) cg_reduce_at(CG_HERE, CG_OP_MEAN, x, axes, keepdims)
#define cg_max_axes(x, axes, keepdims) cg_reduce_at(CG_HERE, CG_OP_MAX, x, axes, keepdims)

/* Contraction: op(A) op(B), where op transposes when asked (rank-2 tensors). */
#define cg_matmul(a, b) cg_matmul_at(CG_HERE, a, b, false, false)
#define cg_matmul_t(a, b, transpose_a, transpose_b) cg_matmul_at(CG_HERE, a, b, transpose_a, transpose_b)

/* Movement. */
#define cg_reshape(x, shape) cg_reshape_at(CG_HERE, x, shape)
#define cg_transpose(x) cg_transpose_at(CG_HERE, x) /* swaps the last two axes of a rank-2 tensor */
/* size elements from begin along axis (negative axes count from the end; not the batch axis) */
#define cg_slice(x, axis, begin, size) cg_slice_at(CG_HERE, x, axis, begin, size)
/* a then b along axis; every other dimension must agree */
#define cg_concat(a, b, axis) cg_concat_at(CG_HERE, a, b, axis)

/* Fused ops with their own gradient rules (numerically stable forms). */
#define cg_softmax(x) cg_unary_at(CG_HERE, CG_OP_SOFTMAX, x)         /* over the last axis */
#define cg_log_softmax(x) cg_unary_at(CG_HERE, CG_OP_LOG_SOFTMAX, x) /* over the last axis */
/* Per-sample cross-entropy of softmax(logits) against class indices (sparse)
 * or against a distribution of the logits' shape. Result (batch). */
#define cg_softmax_cross_entropy(logits, labels, sparse) cg_softmax_xent_at(CG_HERE, logits, labels, sparse)
/* Elementwise binary cross-entropy of sigmoid(logits) against labels. */
#define cg_sigmoid_cross_entropy(logits, labels) cg_binary_at(CG_HERE, CG_OP_SIGMOID_BCE, logits, labels)

/* The op codes of the generic entry points above, one list: X(NAME, KIND)
 * for each, NAME the graph op it makes (compiler/ops/ops.def), KIND the entry
 * point that takes it (BINARY: cg_binary_at, UNARY: cg_unary_at, REDUCE:
 * cg_reduce_at). New codes go at the end: the values are part of the ABI. */
/* clang-format off */
#define CG_PUBLIC_OPS(X) \
    X(ADD, BINARY) X(SUB, BINARY) X(MUL, BINARY) X(DIV, BINARY) X(MAXIMUM, BINARY) X(MINIMUM, BINARY) \
    X(GREATER, BINARY) X(LESS, BINARY) X(EQUAL, BINARY) X(SIGMOID_BCE, BINARY) \
    X(NEG, UNARY) X(EXP, UNARY) X(LOG, UNARY) X(SQRT, UNARY) X(SQUARE, UNARY) X(ABS, UNARY) \
    X(TANH, UNARY) X(SIGMOID, UNARY) X(RELU, UNARY) X(SOFTMAX, UNARY) X(LOG_SOFTMAX, UNARY) \
    X(SUM, REDUCE) X(MEAN, REDUCE) X(MAX, REDUCE)
/* clang-format on */

typedef enum cg_op_code {
#define CG_OP_CODE_(name, kind) CG_OP_##name,
    CG_PUBLIC_OPS(CG_OP_CODE_)
#undef CG_OP_CODE_
} cg_op_code;

cg_t cg_binary_at(cg_src src, cg_op_code op, cg_t a, cg_t b);
cg_t cg_unary_at(cg_src src, cg_op_code op, cg_t x);
cg_t cg_leaky_relu_at(cg_src src, cg_t x, float alpha);
cg_t cg_where_at(cg_src src, cg_t cond, cg_t a, cg_t b);
cg_t cg_reduce_at(cg_src src, cg_op_code op, cg_t x, unsigned axes, bool keepdims);
cg_t cg_matmul_at(cg_src src, cg_t a, cg_t b, bool transpose_a, bool transpose_b);
cg_t cg_reshape_at(cg_src src, cg_t x, cg_shape shape);
cg_t cg_transpose_at(cg_src src, cg_t x);
cg_t cg_slice_at(cg_src src, cg_t x, int axis, int begin, int size);
cg_t cg_concat_at(cg_src src, cg_t a, cg_t b, int axis);
cg_t cg_softmax_xent_at(cg_src src, cg_t logits, cg_t labels, bool sparse);

/* ---- Gradient tape --------------------------------------------------------- */

/* Asks for the gradients of the scalar `loss` with respect to the listed
 * variables. The emitted code then has NAME_loss() (forward only) and
 * NAME_gradients() (loss, and d_<var> for each listed variable, in the
 * gradient block at the variable's offset). */
#define cg_gradients(g, loss, ...)                                 \
    cg_gradients_at(CG_HERE, g, loss, (const cg_t[]){__VA_ARGS__}, \
                    (int)(sizeof((const cg_t[]){__VA_ARGS__}) / sizeof(cg_t)))
int cg_gradients_at(cg_src src, cg_graph *g, cg_t loss, const cg_t *vars, int nvars);

/* Names tensor t an output of the graph: the emitted code then has
 * NAME_predict(s, n, <the placeholders the outputs read>..., float *name...),
 * which computes only what the outputs need (no loss, no labels) and writes
 * each output, in the order of the cg_output calls, into the array of its
 * name (n * NAME_<NAME>_FLOATS floats). At most CG_MAX_OUTPUTS. */
#define cg_output(g, name, t) cg_output_at(CG_HERE, g, name, t)
int cg_output_at(cg_src src, cg_graph *g, const char *name, cg_t t);

/* ---- Layers and models ------------------------------------------------------ */

/* Activations, Keras' own: one member per row of compiler/activations.def,
 * which says what each computes (CG_LINEAR, the identity, CG_RELU, CG_SIGMOID,
 * CG_TANH, CG_SOFTMAX, CG_LEAKY_RELU, CG_GELU, CG_GELU_TANH, CG_ELU,
 * CG_SWISH, ...). Layers take one as .activation; cg_act(x, act) applies one
 * to a tensor. */
typedef enum cg_activation {
#define CG_ACT(name, member, ...) member,
#include "activations.def"
#undef CG_ACT
} cg_activation;

/* The .alpha of Dense and Conv2D when not given, and cg_act's: a NaN that
 * stands for the activation's own default (0.3 for leaky relu, 1.0 for elu,
 * as Keras). A given alpha must be finite and >= 0. */
#define CG_ALPHA_DEFAULT __builtin_nanf("")

/* cg_act and cg_act_alpha (Ops, above). */
cg_t cg_act_at(cg_src src, cg_t x, cg_activation act, float alpha);

typedef struct cg_dense_opts {
    int _;
    int units;
    cg_activation activation;
    float alpha;      /* the activation's parameter (leaky relu, elu); default CG_ALPHA_DEFAULT */
    bool use_bias;    /* default true */
    const char *name; /* default dense_1, dense_2, ... */
    cg_init kernel_initializer;
    cg_init bias_initializer;
} cg_dense_opts;

typedef enum cg_padding {
    CG_VALID,  /* no padding: the window stays inside the input */
    CG_SAME,   /* zero padding so that the output has ceil(input / stride) positions */
    CG_CAUSAL, /* Conv1D only: (kernel_size - 1) dilation zeros before the sequence, none after,
                                  so output step t sees the inputs up to step t */
} cg_padding;

/* Conv2D and DepthwiseConv2D, channels last: input (n, height, width, channels);
 * Conv1D: input (n, steps, channels), output (n, new_steps, filters), kernel (kernel_size, channels, filters). */
typedef struct cg_conv_opts {
    int _;
    int filters;     /* Conv2D and Conv1D */
    int kernel_size; /* square kernel; .kernel_w for another width (Conv2D) */
    int kernel_w;
    int strides; /* default 1 */
    cg_padding padding;
    int dilation; /* default 1 */
    cg_activation activation;
    float alpha;
    bool use_bias; /* default true */
    const char *name;
    cg_init kernel_initializer;
    cg_init bias_initializer;
} cg_conv_opts;

/* MaxPooling2D, AveragePooling2D. */
typedef struct cg_pool_opts {
    int _;
    int pool_size; /* default 2 */
    int strides;   /* default: pool_size */
    cg_padding padding;
    const char *name;
} cg_pool_opts;

/* BatchNormalization (over every axis but the last), LayerNormalization
 * (over the last axis), Dropout, Flatten, Reshape, GlobalAveragePooling2D. */
typedef struct cg_misc_opts {
    int _;
    float rate;            /* Dropout: the fraction of inputs zeroed in training */
    float momentum;        /* BatchNormalization: of the moving averages (default 0.99) */
    float epsilon;         /* BatchNormalization, LayerNormalization (default 0.001) */
    cg_shape target_shape; /* Reshape, without the batch dimension */
    int axis;              /* Concatenate: default -1, the last; negative axes count from the end */
    const char *name;
} cg_misc_opts;

/* SimpleRNN, LSTM and GRU (Keras semantics): input (n, timesteps, features), timesteps fixed at compile
 * time; output the last step's h (n, units), or every step's (n, timesteps, units) with return_sequences.
 * The initial state is zeros, or, in a functional model, Keras' initial_state: the inputs after x, each
 * (n, units): cg_apply(m, cg_lstm(16), x, h0, c0), cg_apply(m, cg_gru(16), x, h0), cg_call(rnn, x, h0);
 * their gradients flow back to whatever made them. Weights in Keras' layout, so Keras-trained weights load as they are:
 *   kernel (features, k units), recurrent_kernel (units, k units), bias (k units); GRU's bias (2, 3 units)
 *   holds the input bias, then the recurrent one (reset_after = True, Keras 2's default);
 *   k and the gate order: SimpleRNN 1; LSTM 4: i, f, c, o; GRU 3: z, r, h.
 * Keras' return_state: cg_rnn_state() below. */
typedef struct cg_rnn_opts {
    int _;
    int units;
    cg_activation activation;           /* default tanh */
    cg_activation recurrent_activation; /* LSTM and GRU gates: default sigmoid */
    bool use_bias;                      /* default true */
    bool return_sequences;              /* every step's h (n, timesteps, units); default: the last */
    bool unit_forget_bias;              /* LSTM: the forget gate's bias starts at 1 (default true) */
    const char *name;                   /* default simple_rnn_1, lstm_1, gru_1, ... */
    cg_init kernel_initializer;         /* default Glorot uniform */
    cg_init recurrent_initializer;      /* default orthogonal */
    cg_init bias_initializer;           /* default zeros */
} cg_rnn_opts;

/* Embedding: token ids (n, timesteps), integers stored as floats, into rows of a trainable table
 * (input_dim, output_dim): output (n, timesteps, output_dim). An id is truncated toward zero; one outside
 * [0, input_dim) (or NaN) gives a row of zeros and no gradient (no out-of-bounds read). */
typedef struct cg_embedding_opts {
    int _;
    int input_dim; /* vocabulary size */
    int output_dim;
    const char *name;
    cg_init embeddings_initializer; /* default uniform(-0.05, 0.05), as Keras */
} cg_embedding_opts;

/* Keras' preprocessing layers Normalization and Rescaling.
 * Normalization: y = (x - mean) / max(sqrt(variance), 1e-7) per feature of the last axis (Keras' formula,
 * its epsilon backend.epsilon()). Without .mean and .variance the statistics are non-trainable weights
 * "<layer>/mean" and "<layer>/variance" (saved in checkpoints), which `fit` computes from the training
 * rows as Keras' adapt() (mean and population variance over every training row and position), unless the
 * weights come from a checkpoint (fit --weights); the layer must then read a model input. With both (arrays
 * of the last axis' size, copied at the call) they are constants of the emitted code and fit computes nothing.
 * Rescaling: y = x * scale + offset. */
typedef struct cg_preprocess_opts {
    int _;
    float scale;           /* Rescaling */
    float offset;          /* Rescaling (default 0) */
    const float *mean;     /* Normalization: fixed per-feature means (Keras' mean=); NULL: computed by fit */
    const float *variance; /* Normalization: fixed per-feature variances (Keras' variance=), >= 0 */
    const char *name;
} cg_preprocess_opts;

typedef enum cg_layer_kind {
    CG_LAYER_DENSE,
    CG_LAYER_ACTIVATION,
    CG_LAYER_CONV2D,
    CG_LAYER_DEPTHWISE_CONV2D,
    CG_LAYER_MAX_POOL2D,
    CG_LAYER_AVG_POOL2D,
    CG_LAYER_GLOBAL_AVG_POOL2D,
    CG_LAYER_FLATTEN,
    CG_LAYER_RESHAPE,
    CG_LAYER_DROPOUT,
    CG_LAYER_BATCH_NORM,
    CG_LAYER_LAYER_NORM,
    CG_LAYER_CUSTOM,
    CG_LAYER_ADD, /* merge layers: two or more inputs of one shape */
    CG_LAYER_MULTIPLY,
    CG_LAYER_CONCATENATE, /* along .axis (default -1, the last) */
    CG_LAYER_SIMPLE_RNN,
    CG_LAYER_LSTM,
    CG_LAYER_GRU,
    CG_LAYER_EMBEDDING,
    CG_LAYER_CONV1D,
    CG_LAYER_NORMALIZATION,
    CG_LAYER_RESCALING,
    CG_LAYER_KIND_COUNT, /* not a layer: the number of kinds (compiler/layers/layers.def has a row for each) */
} cg_layer_kind;

/* A custom layer, as Keras' Layer subclass: call() composes builder ops on
 * the input and declares its weights with cg_add_weight() (Keras' build and
 * call in one: cgrad calls it once per mode, and cg_add_weight gives back the
 * same weight the second time). Its gradient is derived like any other. */
typedef struct cg_layer_ctx cg_layer_ctx;
typedef cg_t (*cg_call_fn)(cg_layer_ctx *layer, cg_t input, void *self);
#define cg_add_weight(layer, name, shape, init, trainable) \
    cg_add_weight_at(CG_HERE, layer, name, shape, init, trainable)
cg_t cg_add_weight_at(cg_src src, cg_layer_ctx *layer, const char *name, cg_shape shape, cg_init init, bool trainable);

/* A layer description, applied by cg_model_add(). */
typedef struct cg_layer {
    cg_layer_kind kind;
    cg_src src;
    cg_dense_opts dense;
    cg_conv_opts conv;
    cg_pool_opts pool;
    cg_misc_opts misc;
    cg_rnn_opts rnn;
    cg_embedding_opts embedding;
    cg_preprocess_opts pre;   /* Normalization, Rescaling */
    cg_activation activation; /* CG_LAYER_ACTIVATION */
    const char *custom_kind;  /* CG_LAYER_CUSTOM: shown in the summary, and the default name's stem */
    cg_call_fn call;
    void *self;
} cg_layer;

/* clang-format off */
/* cg_custom_layer("MyDense", my_dense_call, &my_dense): self is passed to call. */
#define cg_custom_layer(kind_name, call_fn, self_ptr) \
    ((cg_layer){.kind = CG_LAYER_CUSTOM, .src = CG_HERE, .custom_kind = (kind_name), .call = (call_fn), .self = (self_ptr)})

/* cg_dense(128, .activation = CG_RELU, .use_bias = false, .name = "hidden") */
#define cg_dense(...) \
    ((cg_layer){.kind = CG_LAYER_DENSE, .src = CG_HERE, \
                .dense = CG_OPTS_(cg_dense_opts, ._ = 0, .use_bias = true, .alpha = CG_ALPHA_DEFAULT, .units = __VA_ARGS__)})
#define cg_activation_layer(act) ((cg_layer){.kind = CG_LAYER_ACTIVATION, .src = CG_HERE, .activation = (act)})
/* cg_conv2d(32, 3, .activation = CG_RELU, .padding = CG_SAME, .strides = 2) */
#define cg_conv2d(...) \
    ((cg_layer){.kind = CG_LAYER_CONV2D, .src = CG_HERE, \
                .conv = CG_OPTS_(cg_conv_opts, ._ = 0, .use_bias = true, .alpha = CG_ALPHA_DEFAULT, .filters = __VA_ARGS__)})
/* cg_conv1d(32, 3, .padding = CG_SAME, .activation = CG_RELU): on (n, steps, channels); .padding = CG_CAUSAL too */
#define cg_conv1d(...) \
    ((cg_layer){.kind = CG_LAYER_CONV1D, .src = CG_HERE, \
                .conv = CG_OPTS_(cg_conv_opts, ._ = 0, .use_bias = true, .alpha = CG_ALPHA_DEFAULT, .filters = __VA_ARGS__)})
/* cg_depthwise_conv2d(3, .padding = CG_SAME): one kernel per input channel */
#define cg_depthwise_conv2d(...) \
    ((cg_layer){.kind = CG_LAYER_DEPTHWISE_CONV2D, .src = CG_HERE, \
                .conv = CG_OPTS_(cg_conv_opts, ._ = 0, .use_bias = true, .alpha = CG_ALPHA_DEFAULT, .kernel_size = __VA_ARGS__)})
/* cg_max_pooling2d(2), cg_average_pooling2d(3, .strides = 2, .padding = CG_SAME) */
#define cg_max_pooling2d(...) \
    ((cg_layer){.kind = CG_LAYER_MAX_POOL2D, .src = CG_HERE, .pool = CG_OPTS_(cg_pool_opts, ._ = 0, .pool_size = __VA_ARGS__)})
#define cg_average_pooling2d(...) \
    ((cg_layer){.kind = CG_LAYER_AVG_POOL2D, .src = CG_HERE, .pool = CG_OPTS_(cg_pool_opts, ._ = 0, .pool_size = __VA_ARGS__)})
#define cg_global_average_pooling2d() ((cg_layer){.kind = CG_LAYER_GLOBAL_AVG_POOL2D, .src = CG_HERE})
#define cg_flatten() ((cg_layer){.kind = CG_LAYER_FLATTEN, .src = CG_HERE})
/* cg_reshape_layer(CG_SHAPE(7, 7, 16)) */
#define cg_reshape_layer(shape) ((cg_layer){.kind = CG_LAYER_RESHAPE, .src = CG_HERE, .misc = {.target_shape = (shape)}})
/* cg_dropout(0.25): active in training steps only */
#define cg_dropout(...) \
    ((cg_layer){.kind = CG_LAYER_DROPOUT, .src = CG_HERE, .misc = CG_OPTS_(cg_misc_opts, ._ = 0, .rate = __VA_ARGS__)})
/* cg_batch_normalization(), cg_batch_normalization(.momentum = 0.9f) */
#define cg_batch_normalization(...) \
    ((cg_layer){.kind = CG_LAYER_BATCH_NORM, .src = CG_HERE, \
                .misc = CG_OPTS_(cg_misc_opts, ._ = 0, .momentum = 0.99f, .epsilon = 1e-3f, __VA_ARGS__)})
#define cg_layer_normalization(...) \
    ((cg_layer){.kind = CG_LAYER_LAYER_NORM, .src = CG_HERE, .misc = CG_OPTS_(cg_misc_opts, ._ = 0, .epsilon = 1e-3f, __VA_ARGS__)})
/* cg_normalization() (statistics from fit), cg_normalization(.mean = m, .variance = v) (fixed);
 * cg_rescaling(1.0f / 255), cg_rescaling(1.0f / 127.5f, -1.0f) */
#define cg_normalization(...) \
    ((cg_layer){.kind = CG_LAYER_NORMALIZATION, .src = CG_HERE, .pre = CG_OPTS_(cg_preprocess_opts, ._ = 0, __VA_ARGS__)})
#define cg_rescaling(...) \
    ((cg_layer){.kind = CG_LAYER_RESCALING, .src = CG_HERE, .pre = CG_OPTS_(cg_preprocess_opts, ._ = 0, .scale = __VA_ARGS__)})

/* Merge layers of functional models: cg_add_layer(), cg_multiply_layer(), cg_concatenate(), cg_concatenate(.axis = 1). */
#define cg_add_layer(...) ((cg_layer){.kind = CG_LAYER_ADD, .src = CG_HERE, .misc = CG_OPTS_(cg_misc_opts, ._ = 0, __VA_ARGS__)})
#define cg_multiply_layer(...) \
    ((cg_layer){.kind = CG_LAYER_MULTIPLY, .src = CG_HERE, .misc = CG_OPTS_(cg_misc_opts, ._ = 0, __VA_ARGS__)})
#define cg_concatenate(...) \
    ((cg_layer){.kind = CG_LAYER_CONCATENATE, .src = CG_HERE, .misc = CG_OPTS_(cg_misc_opts, ._ = 0, .axis = -1, __VA_ARGS__)})
/* cg_lstm(32, .return_sequences = true), cg_gru(16), cg_simple_rnn(8, .activation = CG_RELU) */
#define CG_RNN_LAYER_(k, ...) \
    ((cg_layer){.kind = (k), .src = CG_HERE, \
                .rnn = CG_OPTS_(cg_rnn_opts, ._ = 0, .activation = CG_TANH, .recurrent_activation = CG_SIGMOID, \
                                .use_bias = true, .unit_forget_bias = true, .units = __VA_ARGS__)})
#define cg_simple_rnn(...) CG_RNN_LAYER_(CG_LAYER_SIMPLE_RNN, __VA_ARGS__)
#define cg_lstm(...) CG_RNN_LAYER_(CG_LAYER_LSTM, __VA_ARGS__)
#define cg_gru(...) CG_RNN_LAYER_(CG_LAYER_GRU, __VA_ARGS__)
/* cg_embedding(1000, 16): ids 0..999 into 16 floats each */
#define cg_embedding(...) \
    ((cg_layer){.kind = CG_LAYER_EMBEDDING, .src = CG_HERE, \
                .embedding = CG_OPTS_(cg_embedding_opts, ._ = 0, .input_dim = __VA_ARGS__)})

typedef struct cg_model cg_model;

/* A Sequential model whose samples have shape `input` (no batch dimension). */
#define cg_sequential(name, input) cg_sequential_at(CG_HERE, name, input)
cg_model *cg_sequential_at(cg_src src, const char *name, cg_shape input);
/* Appends a layer and builds it at once on the current output. */
int cg_model_add(cg_model *m, cg_layer layer);
/* Freezes (false) or unfreezes a layer's weights before compile, as Keras'
 * layer.trainable: frozen weights get no gradient and no optimizer state. */
#define cg_set_trainable(m, layer_name, trainable) cg_set_trainable_at(CG_HERE, m, layer_name, trainable)
int cg_set_trainable_at(cg_src src, cg_model *m, const char *layer_name, bool trainable);
cg_graph *cg_model_graph(cg_model *m);

/* Functional models, as Keras' functional API: inputs, layers called on
 * tensors, any wiring (branches, merges, several outputs):
 *
 *     cg_model *m = cg_functional("two_heads");
 *     cg_t img = cg_input(m, "image", CG_SHAPE(64));
 *     cg_t h = cg_apply(m, cg_dense(32, .activation = CG_RELU), img);
 *     cg_t digit = cg_apply(m, cg_dense(10, .name = "digit"), h);
 *     cg_set_outputs(m, digit, ...);
 *
 * cg_apply makes a layer and calls it once. cg_make_layer makes a layer
 * object that cg_call may call several times: every call shares its
 * weights. Raw ops (cg_add, cg_concat, ...) may join the layers' tensors.
 * A tensor stands for both of the model's modes: training (Dropout active,
 * BatchNormalization on batch statistics) and inference.
 *
 * The emitted entry points take the inputs packed per sample, in the order
 * of the cg_input calls (x = image floats, then the next input's floats),
 * the labels packed per output in the order of cg_set_outputs, and write
 * the outputs packed the same way. Input names x and y are taken by those
 * packed arguments. */
typedef struct cg_layer_ref {
    cg_model *m;
    int id;                    /* -1 after an error */
} cg_layer_ref;

#define CG_MAX_OUTPUTS 8
#define cg_functional(name) cg_functional_at(CG_HERE, name)
#define cg_input(m, name, shape) cg_input_at(CG_HERE, m, name, shape)
#define cg_make_layer(m, layer) cg_make_layer_at(m, layer)
#define cg_call(ref, ...) \
    cg_call_at(CG_HERE, ref, (const cg_t[]){__VA_ARGS__}, (int)(sizeof((const cg_t[]){__VA_ARGS__}) / sizeof(cg_t)))
#define cg_apply(m, layer, ...) \
    cg_call_at(CG_HERE, cg_make_layer_at(m, layer), (const cg_t[]){__VA_ARGS__}, \
               (int)(sizeof((const cg_t[]){__VA_ARGS__}) / sizeof(cg_t)))
#define cg_set_outputs(m, ...) \
    cg_set_outputs_at(CG_HERE, m, (const cg_t[]){__VA_ARGS__}, (int)(sizeof((const cg_t[]){__VA_ARGS__}) / sizeof(cg_t)))
cg_model *cg_functional_at(cg_src src, const char *name);
cg_t cg_input_at(cg_src src, cg_model *m, const char *name, cg_shape shape);   /* shape without the batch */
cg_layer_ref cg_make_layer_at(cg_model *m, cg_layer layer);
cg_t cg_call_at(cg_src src, cg_layer_ref layer, const cg_t *inputs, int ninputs);
int cg_set_outputs_at(cg_src src, cg_model *m, const cg_t *outputs, int noutputs);

/* A custom model, as a subclass of keras.Model: init() makes the layers
 * (cg_make_layer, keeping the references in self), call() wires them on the
 * model's one input (named "inputs") and returns the output. Both are
 * called once, by cg_custom_model. */
typedef void (*cg_model_init_fn)(cg_model *m, void *self);
typedef cg_t (*cg_model_call_fn)(cg_model *m, cg_t inputs, void *self);
#define cg_custom_model(name, input, init_fn, call_fn, self) cg_custom_model_at(CG_HERE, name, input, init_fn, call_fn, self)
cg_model *cg_custom_model_at(cg_src src, const char *name, cg_shape input, cg_model_init_fn init, cg_model_call_fn call,
                             void *self);
/* Keras' return_state: the final state of a recurrent layer already added to m, h (n, units) or, for
 * LSTM, the cell state c, as a tensor of the model's graph (a custom loss or metric may use it, passed
 * through its self pointer). */
typedef enum cg_rnn_state {
    CG_STATE_H,                /* the last step's hidden state (the output without return_sequences) */
    CG_STATE_C,                /* LSTM: the last step's cell state */
} cg_rnn_state;
#define cg_rnn_state(m, layer_name, which) cg_rnn_state_at(CG_HERE, m, layer_name, which)
cg_t cg_rnn_state_at(cg_src src, cg_model *m, const char *layer_name, cg_rnn_state which);
cg_t cg_model_output(cg_model *m);
void cg_model_free(cg_model *m);

/* ---- Compile options ------------------------------------------------------- */

/* Optimizers: one member per CG_OPTIMIZER_KIND row of compiler/optimizers.def
 * (CG_SGD, CG_ADAM, CG_RMSPROP, ...), which says what each checks, keeps and
 * computes. Build one with its constructor below. */
typedef enum cg_optimizer_kind {
#define CG_OPTIMIZER_KIND(member, name) member,
#include "optimizers.def"
} cg_optimizer_kind;

/* Learning-rate schedules (Keras' keras.optimizers.schedules), evaluated by
 * the emitted training step from its step counter: step k (counted from 0)
 * runs with NAME_learning_rate(k). Set one as the optimizer's .schedule; the
 * optimizer's .lr is then unused. */
typedef enum cg_schedule_kind {
    CG_SCHEDULE_NONE,      /* a constant .lr (ReduceLROnPlateau may lower it) */
    CG_EXPONENTIAL_DECAY,  /* initial_lr * decay_rate^(step / decay_steps), the exponent floored with staircase */
    CG_COSINE_DECAY,       /* linear warm-up to warmup_target, then a cosine down to alpha times it */
    CG_PIECEWISE_CONSTANT, /* values[0] up to boundaries[0] (inclusive), values[1] up to boundaries[1], ... */
} cg_schedule_kind;

#define CG_MAX_BOUNDARIES 15

typedef struct cg_schedule {
    cg_schedule_kind kind;
    float initial_lr;
    int decay_steps;     /* exponential, cosine: > 0 */
    float decay_rate;    /* exponential: > 0 */
    bool staircase;      /* exponential: decay at whole multiples of decay_steps only */
    float alpha;         /* cosine: the final learning rate as a fraction of the decay's first, in [0, 1] */
    float warmup_target; /* cosine: the learning rate the warm-up reaches; 0: no warm-up (Keras' None) */
    int warmup_steps;    /* cosine: steps of the linear warm-up from initial_lr to warmup_target */
    int nboundaries;     /* piecewise: increasing steps, at most CG_MAX_BOUNDARIES */
    int boundaries[CG_MAX_BOUNDARIES];
    int nvalues; /* piecewise: nboundaries + 1 learning rates */
    float values[CG_MAX_BOUNDARIES + 1];
} cg_schedule;

/* Keras' ExponentialDecay(initial_lr, decay_steps, decay_rate, staircase). */
static inline cg_schedule cg_exponential_decay(float initial_lr, int decay_steps, float decay_rate, bool staircase) {
    return (cg_schedule){.kind = CG_EXPONENTIAL_DECAY, .initial_lr = initial_lr, .decay_steps = decay_steps,
                         .decay_rate = decay_rate, .staircase = staircase};
}
/* Keras 3's CosineDecay(initial_lr, decay_steps, alpha, warmup_target, warmup_steps): with warmup_target 0
 * (None), lr = initial_lr ((1 - alpha) (1 + cos(pi min(step, decay_steps) / decay_steps)) / 2 + alpha);
 * otherwise initial_lr + (warmup_target - initial_lr) step / warmup_steps below warmup_steps, then the same
 * cosine from warmup_target over the next decay_steps steps. */
static inline cg_schedule cg_cosine_decay(float initial_lr, int decay_steps, float alpha, float warmup_target,
                                          int warmup_steps) {
    return (cg_schedule){.kind = CG_COSINE_DECAY, .initial_lr = initial_lr, .decay_steps = decay_steps,
                         .alpha = alpha, .warmup_target = warmup_target, .warmup_steps = warmup_steps};
}
/* Keras' PiecewiseConstantDecay(boundaries, values), from two arrays (not pointers):
 *     static const int steps[] = {100, 200};
 *     static const float rates[] = {1e-2f, 1e-3f, 1e-4f};
 *     opt.schedule = cg_piecewise_constant(steps, rates);
 * values must have one element more than boundaries (checked by cg_compile). */
#define cg_piecewise_constant(boundaries, values)                                                       \
    cg_piecewise_constant_n((int)(sizeof(boundaries) / sizeof((boundaries)[0])), boundaries,             \
                            (int)(sizeof(values) / sizeof((values)[0])), values)
static inline cg_schedule cg_piecewise_constant_n(int nboundaries, const int *boundaries, int nvalues,
                                                  const float *values) {
    cg_schedule s = {.kind = CG_PIECEWISE_CONSTANT, .nboundaries = nboundaries, .nvalues = nvalues};
    for (int i = 0; i < nboundaries && i < CG_MAX_BOUNDARIES; i++)
        s.boundaries[i] = boundaries[i];
    for (int i = 0; i < nvalues && i < CG_MAX_BOUNDARIES + 1; i++)
        s.values[i] = values[i];
    s.initial_lr = nvalues > 0 ? values[0] : 0.0f;
    return s;
}

typedef struct cg_optimizer {
    cg_optimizer_kind kind;
    float lr;
    float momentum;            /* SGD and RMSprop */
    bool nesterov;             /* SGD */
    float beta_1, beta_2;      /* Adam and AdamW */
    float rho;                 /* RMSprop */
    float epsilon;             /* Adam, RMSprop and AdamW */
    float weight_decay;        /* AdamW */
    /* Gradient clipping, as Keras' optimizers (at most one of the three; 0: off). The step clips s->grads
     * in place before the update. Set on a constructed optimizer: opt.clipnorm = 1.0f. */
    float clipnorm;            /* each parameter's gradient scaled to an L2 norm of clipnorm at most */
    float clipvalue;           /* each gradient value clipped to [-clipvalue, clipvalue] */
    float global_clipnorm;     /* all gradients scaled by min(1, global_clipnorm / their joint L2 norm) */
    cg_schedule schedule;      /* the learning rate per step; kind CG_SCHEDULE_NONE: the constant lr */
} cg_optimizer;

/* Keras defaults. Set fields by name (.beta_2 = 0.99f): the struct grows
 * with the optimizers. */
static inline cg_optimizer cg_sgd(float lr, float momentum, bool nesterov) {
    return (cg_optimizer){.kind = CG_SGD, .lr = lr, .momentum = momentum, .nesterov = nesterov};
}
static inline cg_optimizer cg_adam(float lr) {
    return (cg_optimizer){.kind = CG_ADAM, .lr = lr, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f};
}
static inline cg_optimizer cg_rmsprop(float lr) {
    return (cg_optimizer){.kind = CG_RMSPROP, .lr = lr, .rho = 0.9f, .epsilon = 1e-7f};
}
/* AdamW: Adam with decoupled weight decay (Keras' and PyTorch's AdamW): each
 * step first shrinks every trainable parameter, biases too, by
 * p -= lr weight_decay p, then takes Adam's step. cg_adamw(lr) decays by
 * Keras' default 0.004; cg_adamw(lr, weight_decay) says by how much. */
#define cg_adamw(...) cg_adamw_pick_(__VA_ARGS__, 0.004f, 0)
#define cg_adamw_pick_(lr, weight_decay, ...) cg_adamw_make_(lr, weight_decay)
static inline cg_optimizer cg_adamw_make_(float lr, float weight_decay) {
    return (cg_optimizer){.kind = CG_ADAMW, .lr = lr, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f,
                          .weight_decay = weight_decay};
}

/* Gradient tape: also emits NAME_apply_gradients(s), one step of `optimizer`
 * on the parameters from the gradients in s->grads, for a hand-written loop
 * that may change the gradients first (clipping, say). After cg_gradients. */
#define cg_apply_gradients(g, optimizer) cg_apply_gradients_at(CG_HERE, g, optimizer)
int cg_apply_gradients_at(cg_src src, cg_graph *g, cg_optimizer optimizer);
/* clang-format on */

typedef enum cg_loss {
    CG_LOSS_NONE,
    CG_MSE,
    CG_MAE,
    CG_BINARY_CROSSENTROPY,
    CG_CATEGORICAL_CROSSENTROPY,
    CG_SPARSE_CATEGORICAL_CROSSENTROPY,
} cg_loss;

typedef enum cg_metric {
    CG_METRIC_NONE,
    CG_ACCURACY, /* binary, categorical or sparse, chosen from the loss as Keras does */
    CG_BINARY_ACCURACY,
    CG_CATEGORICAL_ACCURACY,
    CG_SPARSE_CATEGORICAL_ACCURACY,
    CG_METRIC_MAE,
    CG_METRIC_MSE,
} cg_metric;

/* A time series for forecasting (Keras' timeseries_dataset_from_array): one
 * numeric column of a CSV file; sample i is the window of values i .. i+window-1
 * and its label the value `horizon` steps after the window's last one. In time
 * order, the last test_steps targets are the test set, the val_steps before
 * them the validation set, the rest the training set. Inputs and labels are
 * standardised with the mean and standard deviation of the training part;
 * evaluate also reports RMSE and MAE in original units, beside those of the
 * seasonal-naive forecast (the value `season` steps before the target). The
 * model takes inputs of shape (window) or (window, 1) and has one output.
 *
 *   .data = {.path = "elec_equip.csv",
 *            .series = {.column = "VALUE", .window = 12, .val_steps = 24, .test_steps = 24, .season = 12}}
 *
 * A missing value (an empty cell, NA or nan; in a file of one column, an
 * empty line between two values) is an error naming the line unless
 * .missing says how to fill it. */
typedef enum cg_missing {
    CG_MISSING_ERROR,       /* refuse the file, naming the line (the default) */
    CG_MISSING_INTERPOLATE, /* linear between the known values on either side; missing at either end: error */
    CG_MISSING_PREVIOUS,    /* the last known value carried forward; missing before the first value: error */
} cg_missing;

typedef struct cg_series_opts {
    const char *column; /* header name of the value column; NULL: .column_index */
    int column_index;   /* 0-based column, when .column is NULL (default 0) */
    int window;         /* values per input sample; > 0 makes the data a time series */
    int horizon;        /* steps from the window's last value to the target (default 1: the next value) */
    int val_steps;      /* validation targets, just before the test part */
    int test_steps;     /* test targets, the last of the series */
    int season;         /* period of the seasonal-naive baseline (12 for monthly data); 0: no baseline */
    cg_missing missing; /* what to do with missing values (default CG_MISSING_ERROR) */
} cg_series_opts;

/* Where the training binary finds its data by default, and how to scale it. */
typedef struct cg_data_opts {
    const char *path;      /* IDX directory, CSV file or NPY directory */
    float scale;           /* multiply inputs by this (1/255.0 for images); 0 means 1 */
    float test_split;      /* hold out this last fraction as the test set when the data has none */
    int class_range[2];    /* {lo, hi}: train on classes lo..hi only, relabelled 0..hi-lo ({0, 0}: all) */
    cg_series_opts series; /* .series.window > 0: path is a CSV file holding a time series */
    const char *label;     /* CSV with a header: the name of the label column, anywhere in the row; text
                                  labels are class names, numbered in order of first appearance. NULL: the
                                  labels are the last column(s) */
} cg_data_opts;

/* Which way a monitored quantity improves (Keras' mode). */
typedef enum cg_monitor_mode {
    CG_MODE_AUTO, /* max for names ending in "accuracy", "acc" or "auc", min otherwise */
    CG_MODE_MIN,  /* lower is better (losses, errors) */
    CG_MODE_MAX,  /* higher is better */
} cg_monitor_mode;

/* The training binary's default callbacks, Keras' EarlyStopping,
 * ModelCheckpoint(save_best_only) and ReduceLROnPlateau; each field is a
 * flag of fit, which overrides it (docs/man/cgrad-model.7). All zero: no
 * early stopping, a checkpoint after every epoch, a constant learning rate.
 *   .callbacks = {.monitor = "val_accuracy", .patience = 5, .restore_best_weights = true,
 *                 .reduce_lr_factor = 0.5f, .reduce_lr_patience = 2} */
typedef struct cg_callback_opts {
    const char *monitor;       /* a column of the history: "loss", "val_loss", a metric, "val_" + a metric;
                                  NULL: "val_loss" ("loss" when fit has no validation) */
    cg_monitor_mode mode;      /* default CG_MODE_AUTO */
    float min_delta;           /* early stopping: an improvement beats the best by more than this (default 0) */
    int patience;              /* early stopping: epochs without improvement before stopping; 0: never stop */
    bool restore_best_weights; /* when training ends, put back the weights of the best epoch */
    bool save_best_only;       /* --save only after an epoch whose monitored value beats every earlier one */
    float reduce_lr_factor;    /* on a plateau the learning rate is multiplied by this (0 < f < 1); 0: constant */
    int reduce_lr_patience;    /* epochs without improvement before a reduction; 0 means Keras' 10 */
    float reduce_lr_min_delta; /* the schedule's threshold of improvement; 0 means Keras' 1e-4 */
    int reduce_lr_cooldown;    /* epochs after a reduction in which no plateau is counted (default 0) */
    float min_lr;              /* the learning rate is never reduced below this (default 0) */
} cg_callback_opts;

/* Keras' class_weight: the training binary's default for fit's
 * --class-weight (which overrides it). Each training sample's loss is
 * multiplied by the weight of its class (its class index; the argmax of a
 * one-hot label; 0 or 1 for one binary label), and by its sample weight
 * when it has one. Training only: the validation and test losses are not
 * class-weighted. A classifier with one output and a built-in loss only.
 *   .class_weight = {.balanced = true}             n / (classes * count_c) over the training rows
 *   .class_weight = {.weight = {1.0f, 3.5f}}       class 0 weighs 1, class 1 weighs 3.5 */
#define CG_MAX_CLASS_WEIGHTS 64
typedef struct cg_class_weight_opts {
    bool balanced;                      /* weights from the class counts of the training rows (after the splits) */
    float weight[CG_MAX_CLASS_WEIGHTS]; /* weight[c] of class c; 0 (not given) means 1 */
} cg_class_weight_opts;

/* A custom loss or metric, composed from ops: the batch's scalar value from
 * the labels (shaped like the output) and the model's output. */
typedef cg_t (*cg_loss_fn)(cg_t y_true, cg_t y_pred, void *self);

/* The loss and metric of one output of a functional model. */
typedef struct cg_output_opts {
    const char *name; /* the output: the name of the layer that makes it */
    cg_loss loss;
    bool from_logits;
    float loss_weight; /* its weight in the total loss; 0 means 1 */
    cg_metric metric;
    cg_loss_fn custom_loss; /* instead of .loss */
    void *custom_loss_self;
    const char *custom_loss_name;
    cg_loss_fn custom_metric; /* instead of .metric */
    void *custom_metric_self;
    const char *custom_metric_name;
} cg_output_opts;

typedef struct cg_compile_opts {
    int _;
    cg_optimizer optimizer;
    /* Functional models with several outputs: one entry per output; the
     * total loss is the weighted sum. Reported as Keras does: loss, then
     * <output>_loss for each output, then <output>_<metric>. Without
     * .outputs, .loss and .metric below apply to every output. */
    cg_output_opts outputs[CG_MAX_OUTPUTS];
    cg_loss loss;
    bool from_logits;
    cg_metric metric;
    cg_loss_fn custom_loss; /* instead of .loss; .custom_loss_self is passed to it */
    void *custom_loss_self;
    const char *custom_loss_name; /* default "custom_loss" */
    cg_loss_fn custom_metric;     /* instead of .metric */
    void *custom_metric_self;
    const char *custom_metric_name; /* default "custom_metric" */
    int batch_size;                 /* default batch for fit (default 32, as Keras) */
    int max_batch;                  /* largest batch planned for (default: batch_size) */
    int epochs;                     /* default epochs for fit (default 1) */
    cg_data_opts data;
    cg_callback_opts callbacks;        /* default callbacks of fit (default: none) */
    cg_class_weight_opts class_weight; /* default class weights of fit (default: none) */
} cg_compile_opts;

#define cg_compile(m, ...) cg_compile_at(CG_HERE, m, CG_OPTS_(cg_compile_opts, ._ = 0, __VA_ARGS__))
int cg_compile_at(cg_src src, cg_model *m, cg_compile_opts o);

/* ---- Emission ---------------------------------------------------------------- */

typedef enum cg_flavour {
    CG_HOST,     /* cblas_sgemm, fused epilogues */
    CG_PORTABLE, /* plain loops: no heap, no stdio, no BLAS */
} cg_flavour;

/* Writes DIR/NAME.h and DIR/NAME.c (and DIR/NAME_main.c for compiled models). */
int cg_emit_model(cg_model *m, const char *dir, cg_flavour flavour);
int cg_emit_graph(cg_graph *g, const char *dir, cg_flavour flavour);
/* The Keras-style summary with FLOPs and memory, as text (owned by the graph). */
const char *cg_summary(cg_model *m);

/* Command-line front end for a model-definition program:
 *   PROG [-o DIR] [--flavour host|portable] [--summary] [--plan] [--graph] [--dump-after PASS]
 * Emits the code, prints the summary, the memory plans, a pass's dump or the
 * error, draws the graph into DIR/NAME.dot (and .svg), returns the exit status.
 * Frees the model. */
int cg_main(cg_model *m, int argc, char **argv);
int cg_main_graph(cg_graph *g, int argc, char **argv);

#endif
