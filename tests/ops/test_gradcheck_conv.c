/* test_gradcheck_conv.c: the convolution and pooling ops, and the layers
 * built on them, against central finite differences of the emitted code.
 *
 * Two kinds of case, each compiled with a real compiler run
 * (tests/support/harness.c):
 *
 *   op cases     a tape graph built with the internal builders op_conv2d,
 *                op_pool and op_pad (there is no public op-level builder
 *                yet, hence the include of compiler/cgrad_int.h). To keep the
 *                number of compiler runs small, each graph sums several
 *                terms sum(op_i(...) * R_i) (R_i random placeholders) over
 *                several ops and window settings. The op's input is X * U
 *                (X a batched random placeholder, U a variable of one
 *                sample's shape): d_U = sum_b X_b dX_b checks the input
 *                gradient, and the random X_b catches a gradient written to
 *                the wrong sample. Kernels are variables too.
 *   model cases  a small Sequential model (public layers); the loss is what
 *                NAME_train_step reports (it is computed before the update,
 *                in training mode: batch statistics for BatchNormalization),
 *                the gradients are what it leaves in the gradient block. The
 *                whole state is saved before and restored after every call,
 *                so each call sees the same parameters, moving averages and
 *                optimizer state.
 *
 * Tolerance as in test_gradcheck.c: eps = 1e-2, |analytic - numeric| <=
 * 5e-3 max(1, |analytic|, |numeric|). Max pooling gets inputs that are a
 * shuffled ramp (steps of 0.3) plus a small variable offset, so no window
 * has a tie or a near-tie within eps; models avoid max pooling and relu
 * (kinks) and use tanh instead.
 *
 * Environment: CGRAD_TEST_CC picks the compiler; CGRAD_KEEP_TMP keeps the
 * emitted folders; GC_VERBOSE=1 prints every case's worst entry to stderr.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdcheck.h"
#include "harness.h"
#include "../../compiler/cgrad_int.h"

#define TOL 5e-3
#define EPS 1e-2f
#define MAX_BATCH 6
#define MAXT 24

typedef enum dom {
    D_ANY,      /* U(-1, 1) */
    D_SMALL,    /* U(-0.05, 0.05) */
    D_DISTINCT, /* a shuffled ramp with steps of 0.3: no ties for max */
    D_POS,      /* U(0.5, 1.5) */
} dom;

typedef struct gc_tensor {
    char name[64];
    cg_t t;
    float *data;
    long count;
} gc_tensor;

typedef struct gc {
    cg_graph *g;
    uint64_t rng;
    int n;
    gc_tensor var[MAXT], in[MAXT];
    int nvar, nin;
    cg_t loss;    /* running sum of the terms */
    bool batched; /* some placeholder has the batch dimension */
    int nterms;
} gc;

/* ---- random values ------------------------------------------------------ */

static void fill(uint64_t *rng, float *data, long count, dom d)
{
    for (long i = 0; i < count; i++) {
        float u = fd_unif(rng, 0.0f, 1.0f);
        switch (d) {
        case D_ANY: data[i] = 2.0f * u - 1.0f; break;
        case D_SMALL: data[i] = 0.1f * u - 0.05f; break;
        case D_DISTINCT: data[i] = 0.3f * (float)i - 0.15f * (float)count; break;
        case D_POS: data[i] = 0.5f + u; break;
        }
    }
    if (d == D_DISTINCT)
        for (long i = count - 1; i > 0; i--) {
            long j = (long)(fd_next(rng) % (uint64_t)(i + 1));
            float t = data[i];
            data[i] = data[j];
            data[j] = t;
        }
}

static long count_of(cg_shape sh, int n)
{
    long k = 1;
    for (int i = 0; i < sh.rank; i++)
        k *= sh.dims[i] == CG_BATCH ? n : sh.dims[i];
    return k;
}

static gc_tensor *add_tensor(gc *c, gc_tensor *arr, int *len, const char *name, cg_shape sh, dom d)
{
    cr_assert(*len < MAXT, "too many tensors");
    gc_tensor *t = &arr[(*len)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->count = count_of(sh, c->n);
    t->data = calloc((size_t)t->count, sizeof(float));
    fill(&c->rng, t->data, t->count, d);
    return t;
}

static cg_t param(gc *c, const char *name, cg_shape sh, dom d)
{
    gc_tensor *t = add_tensor(c, c->var, &c->nvar, name, sh, d);
    return t->t = cg_variable(c->g, name, sh, cg_zeros());
}

static cg_t input(gc *c, const char *name, cg_shape sh, dom d)
{
    gc_tensor *t = add_tensor(c, c->in, &c->nin, name, sh, d);
    c->batched |= sh.rank > 0 && sh.dims[0] == CG_BATCH;
    return t->t = cg_placeholder(c->g, name, sh);
}

/* A batched image X * U: X (n, h, w, ch) a placeholder from domain xd, U (h, w, ch) a variable from ud.
 * With xd = D_DISTINCT the image is X + U instead (max pooling: no ties). */
static cg_t image(gc *c, const char *name, int h, int w, int ch, dom xd, dom ud)
{
    char xn[40], un[40];
    snprintf(xn, sizeof xn, "%s_x", name);
    snprintf(un, sizeof un, "%s_u", name);
    cg_t x = input(c, xn, CG_SHAPE(CG_BATCH, h, w, ch), xd);
    cg_t u = param(c, un, CG_SHAPE(h, w, ch), ud);
    return xd == D_DISTINCT ? cg_add(x, u) : cg_mul(x, u);
}

/* Adds sum(y * R) to the loss, R a fresh random placeholder of y's shape. */
static void term(gc *c, cg_t y)
{
    cr_assert(!cg_failed(c->g), "builder failed: %s", cg_error(c->g));
    char rn[16];
    snprintf(rn, sizeof rn, "r%d", c->nterms++);
    cg_t t = cg_sum(cg_mul(y, input(c, rn, cg_shape_of(y), D_ANY)));
    c->loss = c->nterms == 1 ? t : cg_add(c->loss, t);
}

static cg_t T(cg_graph *g, int id)
{
    return (cg_t){g, id};
}

/* Window attributes: kernel kh x kw, strides, dilations, valid or same padding of input x. */
static spatial window(cg_t x, int kh, int kw, int sh, int sw, int dil, bool same)
{
    spatial sp = {{kh, kw}, {sh, sw}, {dil, dil}, {0, 0, 0, 0}};
    cg_shape s = cg_shape_of(x);
    conv_out_size(s.dims[1], kh, sh, dil, same, &sp.pad[0], &sp.pad[2]);
    conv_out_size(s.dims[2], kw, sw, dil, same, &sp.pad[1], &sp.pad[3]);
    return sp;
}

/* conv2d(x, K) with a kernel variable K (kh, kw, C, f) (depthwise: (kh, kw, C)). */
static cg_t conv(gc *c, const char *kname, cg_t x, int kh, int kw, int f, int stride, int dil, bool same, bool dw)
{
    int ch = cg_shape_of(x).dims[3];
    cg_t k = param(c, kname, dw ? CG_SHAPE(kh, kw, ch) : CG_SHAPE(kh, kw, ch, f), D_ANY);
    spatial sp = window(x, kh, kw, stride, stride, dil, same);
    return T(c->g, op_conv2d(c->g, CG_HERE, x.id, k.id, &sp, dw));
}

static cg_t pool(gc *c, op_kind op, cg_t x, int kh, int kw, int sh, int sw, bool same)
{
    spatial sp = window(x, kh, kw, sh, sw, 1, same);
    return T(c->g, op_pool(c->g, CG_HERE, op, x.id, &sp));
}

/* ---- op cases: tape graphs ---------------------------------------------------- */

typedef void (*op_build)(gc *c);

typedef struct op_case {
    const char *name;
    op_build build;
    cg_flavour flavour;
} op_case;

typedef struct tape_ctx {
    hx_module *mod;
    int n;
    const float **inputs;
} tape_ctx;

static double tape_loss(void *p)
{
    tape_ctx *t = p;
    return t->mod->loss(t->mod->state, t->n, t->inputs);
}

static void run_op_case(const op_case *k)
{
    const char *fl = k->flavour == CG_HOST ? "host" : "portable";
    char what[128];
    snprintf(what, sizeof what, "%s (%s)", k->name, fl);
    gc c = {.g = cg_graph_new(k->name), .rng = fd_seed(k->name)};
    cr_assert(c.g, "out of memory");
    cg_set_max_batch(c.g, MAX_BATCH);
    c.n = 2 + (int)(fd_next(&c.rng) % 2); /* 2 or 3, below the maximum batch */
    k->build(&c);
    cr_assert(!cg_failed(c.g) && c.nterms > 0, "%s: builder failed: %s", what, cg_error(c.g));
    cg_t vars[MAXT];
    for (int i = 0; i < c.nvar; i++)
        vars[i] = c.var[i].t;
    cg_gradients_at(CG_HERE, c.g, c.loss, vars, c.nvar);
    cr_assert(!cg_failed(c.g), "%s: cg_gradients failed: %s", what, cg_error(c.g));

    hx_module mod;
    /* a graph without a batched input emits an unused `n` (pinned by test_gradcheck.c's
     * emit/unbatched_graph_warning_free); tolerate it here, as test_gradcheck.c does */
    hx_extra_cflags = c.batched ? "" : "-Wno-unused-parameter";
    int rc = hx_build_graph(&mod, c.g, c.nin, k->flavour, NULL);
    cr_assert(rc == 0, "%s: %s", what, mod.err);
    const float *inputs[MAXT];
    for (int i = 0; i < c.nin; i++)
        inputs[i] = c.in[i].data;
    fd_target t[MAXT];
    for (int i = 0; i < c.nvar; i++) {
        long count = 0, off = hx_param(&mod, c.var[i].name, &count);
        cr_assert(off >= 0 && count == c.var[i].count, "%s: parameter %s: offset %ld, count %ld, expected %ld", what,
                  c.var[i].name, off, count, c.var[i].count);
        memcpy(mod.params + off, c.var[i].data, sizeof(float) * (size_t)count);
        t[i] = (fd_target){c.var[i].name, mod.params + off, mod.grads + off, count};
    }
    float l0 = mod.loss(mod.state, c.n, inputs), lg = mod.gradients(mod.state, c.n, inputs);
    cr_assert(isfinite(l0) && l0 == lg, "%s: loss() gives %.9g but gradients() %.9g", what, (double)l0, (double)lg);
    /* gradients() filled the gradient block; loss() leaves it alone */
    float *grads = malloc(sizeof(float) * (size_t)mod.trainable_floats);
    memcpy(grads, mod.grads, sizeof(float) * (size_t)mod.trainable_floats);
    for (int i = 0; i < c.nvar; i++)
        t[i].grad = grads + (t[i].grad - mod.grads);
    char what_n[160];
    snprintf(what_n, sizeof what_n, "%s, n=%d", what, c.n);
    tape_ctx ctx = {&mod, c.n, inputs};
    fd_check(what_n, t, c.nvar, tape_loss, &ctx, EPS, TOL, false);
    free(grads);
    hx_close(&mod);
    for (int i = 0; i < c.nvar; i++)
        free(c.var[i].data);
    for (int i = 0; i < c.nin; i++)
        free(c.in[i].data);
    cg_graph_free(c.g);
}

/* conv2d, no bias: valid; same with stride 2 and a 3x2 kernel; valid and same with dilation 2; a 1x3 kernel
 * with stride 2 valid; and a chain conv(tanh(conv(x))) so that the input gradient of an inner node is checked
 * through the outer one. */
static void build_conv(gc *c)
{
    cg_t x = image(c, "x", 6, 5, 2, D_ANY, D_ANY);
    term(c, conv(c, "k_valid", x, 3, 3, 3, 1, 1, false, false));
    term(c, conv(c, "k_same_s2_3x2", x, 3, 2, 2, 2, 1, true, false));
    term(c, conv(c, "k_valid_d2", x, 2, 2, 2, 1, 2, false, false));
    term(c, conv(c, "k_same_d2", x, 3, 3, 2, 1, 2, true, false));
    term(c, conv(c, "k_valid_s2_1x3", x, 1, 3, 2, 2, 1, false, false));
    cg_t inner = cg_tanh(conv(c, "k_inner", x, 3, 3, 2, 1, 1, true, false));
    term(c, conv(c, "k_outer", inner, 2, 2, 2, 2, 1, false, false));
}

/* conv2d with a bias (and an activation): what Conv2D layers make; the fuse pass turns
 * act(conv + b) into CONV2D_BIAS_ACT, and a bare conv + b as well. */
static void build_conv_bias(gc *c)
{
    cg_t x = image(c, "x", 5, 6, 2, D_ANY, D_ANY);
    cg_t b1 = param(c, "b1", CG_SHAPE(3), D_ANY), b2 = param(c, "b2", CG_SHAPE(2), D_ANY);
    term(c, cg_tanh(cg_add(conv(c, "k_tanh", x, 3, 3, 3, 1, 1, true, false), b1)));
    term(c, cg_add(conv(c, "k_linear", x, 2, 3, 2, 2, 1, false, false), b2));
}

/* depthwise conv2d: valid; same with stride 2 and a 3x2 kernel; same with dilation 2. */
static void build_depthwise(gc *c)
{
    cg_t x = image(c, "x", 6, 6, 3, D_ANY, D_ANY);
    term(c, conv(c, "k_valid", x, 3, 3, 0, 1, 1, false, true));
    term(c, conv(c, "k_same_s2_3x2", x, 3, 2, 0, 2, 1, true, true));
    term(c, conv(c, "k_same_d2", x, 2, 3, 0, 1, 2, true, true));
}

/* max pooling (no ties): 2x2 stride 2 valid, 3x3 stride 2 same (the padding never wins),
 * 3x3 stride 1 valid (overlapping windows), 2x3 with strides 1 and 2. */
static void build_max_pool(gc *c)
{
    cg_t x = image(c, "x", 6, 5, 2, D_DISTINCT, D_SMALL);
    term(c, pool(c, OP_MAX_POOL, x, 2, 2, 2, 2, false));
    term(c, pool(c, OP_MAX_POOL, x, 3, 3, 2, 2, true));
    term(c, pool(c, OP_MAX_POOL, x, 3, 3, 1, 1, false));
    term(c, pool(c, OP_MAX_POOL, x, 2, 3, 1, 2, false));
}

/* max pooling over an activation's output: the compiler fuses the
 * activation's gradient into the pooling's (each window's maximum gets
 * dY * act'(X)); monotone activations keep the input's values distinct. */
static void build_max_pool_act(gc *c)
{
    cg_t x = image(c, "x", 6, 5, 2, D_DISTINCT, D_SMALL);
    term(c, pool(c, OP_MAX_POOL, cg_sigmoid(x), 2, 2, 2, 2, false));
    term(c, pool(c, OP_MAX_POOL, cg_tanh(x), 3, 3, 1, 1, false));
    term(c, pool(c, OP_MAX_POOL, cg_leaky_relu(x, 0.2f), 3, 3, 2, 2, true));
}

/* max pooling whose windows tile the input exactly (stride = window, no padding, nothing left over), where one
 * pass writes the whole gradient: 2x2 and 3x2 windows, and 2x2 over tanh with its gradient fused in. */
static void build_max_pool_tiled(gc *c)
{
    cg_t x = image(c, "x", 6, 4, 2, D_DISTINCT, D_SMALL);
    term(c, pool(c, OP_MAX_POOL, x, 2, 2, 2, 2, false));
    term(c, pool(c, OP_MAX_POOL, x, 3, 2, 3, 2, false));
    term(c, pool(c, OP_MAX_POOL, cg_tanh(x), 2, 2, 2, 2, false));
}

/* average pooling: the same windows; "same" padding is not counted in the mean. */
static void build_avg_pool(gc *c)
{
    cg_t x = image(c, "x", 6, 5, 2, D_ANY, D_ANY);
    term(c, pool(c, OP_AVG_POOL, x, 2, 2, 2, 2, false));
    term(c, pool(c, OP_AVG_POOL, x, 3, 3, 2, 2, true));
    term(c, pool(c, OP_AVG_POOL, x, 3, 3, 1, 1, false));
    term(c, pool(c, OP_AVG_POOL, x, 2, 3, 1, 2, true));
}

/* zero padding, alone and under a convolution and a max pooling that read the zeros. */
static void build_pad(gc *c)
{
    cg_t x = image(c, "x", 4, 3, 2, D_ANY, D_ANY);
    cg_t p = T(c->g, op_pad(c->g, CG_HERE, x.id, (const int[4]){1, 0, 2, 1}));
    term(c, p);
    term(c, conv(c, "k", p, 3, 2, 2, 1, 1, false, false));
    cg_t q = T(c->g, op_pad(c->g, CG_HERE, cg_tanh(x).id, (const int[4]){0, 2, 1, 0}));
    term(c, cg_square(q));
}

/* global average pooling (the mean over height and width), flatten and reshape of an image. */
static void build_gap_flatten(gc *c)
{
    cg_t x = image(c, "x", 4, 3, 2, D_ANY, D_ANY);
    term(c, cg_mean_axes(cg_tanh(x), CG_AXIS(1) | CG_AXIS(2), false));
    cg_t flat = cg_reshape(x, CG_SHAPE(CG_BATCH, 24));
    term(c, cg_tanh(cg_matmul(flat, param(c, "w", CG_SHAPE(24, 3), D_ANY))));
    term(c, cg_square(cg_reshape(x, CG_SHAPE(CG_BATCH, 3, 8))));
}

/* A window op on an image without the batch dimension: a variable (2, 5, 4, 2). The window kernels'
 * templates loop over `n` (the run-time batch), which the emitted kernel only has when a shape is
 * batched; here it is not, and the code does not compile ("'n' undeclared"). Not reachable through the
 * public API today (layers always see a batched input), but it will be with a public conv builder. */
static void build_unbatched(gc *c)
{
    cg_t x = param(c, "x", CG_SHAPE(2, 5, 4, 2), D_ANY);
    term(c, conv(c, "k", x, 3, 3, 2, 1, 1, true, false));
    term(c, pool(c, OP_AVG_POOL, x, 2, 2, 2, 2, false));
}

/* The same on the host with a leading dimension (8) above the graph's maximum batch (6): a direct filter
 * gradient's scratch holds one partial gradient per sample of X, 8 of them here. */
static void build_unbatched_wide(gc *c)
{
    cg_t x = param(c, "x", CG_SHAPE(8, 5, 4, 2), D_ANY);
    term(c, conv(c, "k", x, 3, 3, 2, 1, 1, true, false));
}

/* clang-format off */
#define OPC(s, fn) {s, fn, CG_PORTABLE}, {s "_host", fn, CG_HOST}
static const op_case op_cases[] = {
    OPC("conv", build_conv),
    OPC("conv_bias", build_conv_bias),
    OPC("depthwise", build_depthwise),
    {"max_pool", build_max_pool, CG_PORTABLE},
    OPC("max_pool_act", build_max_pool_act),
    OPC("max_pool_tiled", build_max_pool_tiled),
    {"avg_pool", build_avg_pool, CG_PORTABLE},
    {"pad", build_pad, CG_PORTABLE},
    {"gap_flatten", build_gap_flatten, CG_PORTABLE},
};
/* clang-format on */

/* ---- model cases: Sequential models through train_step ---------------------------- */

typedef cg_model *(*model_build)(void);

typedef struct model_case {
    const char *name;
    model_build build;
    cg_flavour flavour;
    int in[3]; /* one sample's shape */
    int out;   /* units of the output */
} model_case;

/* BatchNormalization in training mode after a convolution: the gradient reaches the kernel through the
 * batch mean and variance. */
static cg_model *model_bn_conv(void)
{
    cg_model *m = cg_sequential("gc_bn_conv", CG_SHAPE(4, 4, 2));
    cg_model_add(m, cg_conv2d(3, 3, .padding = CG_SAME, .use_bias = false));
    cg_model_add(m, cg_batch_normalization(.momentum = 0.9f));
    cg_model_add(m, cg_activation_layer(CG_TANH));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(2));
    return m;
}

/* BatchNormalization of a rank-2 tensor (after Dense), and LayerNormalization of an image and a vector. */
static cg_model *model_norms(void)
{
    cg_model *m = cg_sequential("gc_norms", CG_SHAPE(4, 3, 2));
    cg_model_add(m, cg_conv2d(6, 2, .use_bias = false));
    cg_model_add(m, cg_layer_normalization());
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(4, .activation = CG_TANH));
    cg_model_add(m, cg_batch_normalization());
    cg_model_add(m, cg_dense(6));
    cg_model_add(m, cg_layer_normalization(.epsilon = 0.01f));
    cg_model_add(m, cg_dense(2));
    return m;
}

/* The convolution layers together: Conv2D (bias, tanh, stride 2, same), DepthwiseConv2D, AveragePooling2D
 * (same), Reshape (3, 3, 3) -> (3, 9, 1), Conv2D with dilation 2, GlobalAveragePooling2D, Dense. */
static cg_model *model_conv_layers(void)
{
    cg_model *m = cg_sequential("gc_conv_layers", CG_SHAPE(6, 5, 2));
    cg_model_add(m, cg_conv2d(3, 3, .kernel_w = 2, .strides = 2, .padding = CG_SAME, .activation = CG_TANH));
    cg_model_add(m, cg_depthwise_conv2d(2, .padding = CG_SAME, .activation = CG_TANH));
    cg_model_add(m, cg_average_pooling2d(2, .strides = 1, .padding = CG_SAME));
    cg_model_add(m, cg_reshape_layer(CG_SHAPE(3, 9, 1)));
    cg_model_add(m, cg_conv2d(2, 2, .dilation = 2, .activation = CG_TANH));
    cg_model_add(m, cg_global_average_pooling2d());
    cg_model_add(m, cg_dense(2));
    return m;
}

/* The same without any bias (nothing to fuse). */
static cg_model *model_conv_layers_nobias(void)
{
    cg_model *m = cg_sequential("gc_conv_nobias", CG_SHAPE(6, 5, 2));
    cg_model_add(m, cg_conv2d(3, 3, .kernel_w = 2, .strides = 2, .padding = CG_SAME, .use_bias = false));
    cg_model_add(m, cg_activation_layer(CG_TANH));
    cg_model_add(m, cg_depthwise_conv2d(2, .padding = CG_SAME, .use_bias = false));
    cg_model_add(m, cg_average_pooling2d(2, .strides = 1, .padding = CG_SAME));
    cg_model_add(m, cg_conv2d(2, 2, .dilation = 2, .use_bias = false));
    cg_model_add(m, cg_global_average_pooling2d());
    cg_model_add(m, cg_dense(2));
    return m;
}

static void run_model_case(const model_case *k)
{
    const char *fl = k->flavour == CG_HOST ? "host" : "portable";
    char what[128];
    snprintf(what, sizeof what, "%s (%s)", k->name, fl);
    cg_model *m = k->build();
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = MAX_BATCH);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", what, cg_error(cg_model_graph(m)));
    hx_module mod;
    hx_extra_cflags = "";
    int rc = hx_build_model(&mod, m, k->flavour, NULL);
    cr_assert(rc == 0, "%s: %s", what, mod.err);

    /* random parameters (gammas away from 0, variances positive), a batch and targets */
    uint64_t rng = fd_seed(k->name);
    int n = 5;
    for (int i = 0; i < mod.nparams; i++) {
        const char *pn = mod.param_name(i);
        float *p = mod.params + mod.param_offset(i);
        bool pos = strstr(pn, "gamma") || strstr(pn, "variance");
        fill(&rng, p, mod.param_count(i), pos ? D_POS : D_ANY);
    }
    long xin = (long)k->in[0] * k->in[1] * (k->in[2] ? k->in[2] : 1);
    float *x = malloc(sizeof(float) * (size_t)(n * xin)), *y = malloc(sizeof(float) * (size_t)(n * k->out));
    fill(&rng, x, n * xin, D_ANY);
    fill(&rng, y, n * k->out, D_ANY);

    /* the analytic gradients: one train_step from the saved state; moving averages have none */
    fd_check_model(what, &mod, n, x, y, EPS, TOL, false);
    free(x);
    free(y);
    hx_close(&mod);
    cg_model_free(m);
}

/* clang-format off */
#define MC(s, fn, in0, in1, in2, out) {s, fn, CG_PORTABLE, {in0, in1, in2}, out}, {s "_host", fn, CG_HOST, {in0, in1, in2}, out}
static const model_case model_cases[] = {
    MC("bn_conv", model_bn_conv, 4, 4, 2, 2),
    MC("norms", model_norms, 4, 3, 2, 2),
    MC("conv_layers", model_conv_layers, 6, 5, 2, 2),
    MC("conv_layers_nobias", model_conv_layers_nobias, 6, 5, 2, 2),
};
/* clang-format on */

ParameterizedTestParameters(gradcheck_conv, ops)
{
    return fd_case_indices(COUNT(op_cases));
}
ParameterizedTest(int *i, gradcheck_conv, ops)
{
    run_op_case(&op_cases[*i]);
}

Test(gradcheck_conv, unbatched_image)
{
    static const op_case k = {"unbatched", build_unbatched, CG_PORTABLE};
    run_op_case(&k);
    static const op_case wide = {"unbatched_wide", build_unbatched_wide, CG_HOST};
    run_op_case(&wide);
}

/* A direct filter gradient's scratch holds a partial gradient for every sample of X, also when X has no
 * batch dimension and more leading rows (8) than the graph's maximum batch (6): the kernel writes 8 rows. */
Test(gradcheck_conv, direct_filter_scratch_unbatched)
{
    gc c = {.g = cg_graph_new("scratch"), .rng = 3};
    cr_assert(c.g, "out of memory");
    cg_set_max_batch(c.g, MAX_BATCH);
    c.n = 2;
    build_unbatched_wide(&c);
    cg_gradients_at(CG_HERE, c.g, c.loss, &c.var[1].t, 1); /* var[1]: the kernel k */
    cr_assert(!cg_failed(c.g) && compile_graph(c.g, CG_HOST, NULL, NULL) == 0, "%s", cg_error(c.g));
    int found = 0;
    for (int id = 0; id < c.g->nnodes; id++) {
        const node *n = &c.g->nodes[id];
        if (n->op != OP_CONV2D_BWD_FILTER)
            continue;
        found++;
        long want = 8 * shape_size(&n->sh, 1), got = conv_scratch(c.g, id);
        cr_expect(got >= want, "the filter gradient's scratch is %ld floats, its kernel writes %ld", got, want);
    }
    cr_assert(found == 1, "%d filter gradients, expected 1", found);
    for (int i = 0; i < c.nvar; i++)
        free(c.var[i].data);
    for (int i = 0; i < c.nin; i++)
        free(c.in[i].data);
    cg_graph_free(c.g);
}

ParameterizedTestParameters(gradcheck_conv, layers)
{
    return fd_case_indices(COUNT(model_cases));
}
ParameterizedTest(int *i, gradcheck_conv, layers)
{
    run_model_case(&model_cases[*i]);
}

/* Ties in max pooling (where finite differences cannot judge): the gradient of each window goes to its first
 * maximum in row-major order, as Keras's does. 2x2 windows tiling a 4x4x2 image, channel 0 with two equal
 * maxima at window elements 1 and 3, channel 1 all equal; loss sum(pool(X + U) * R) + sum(pool(relu(X + U)) *
 * R2) with U = 0, so dU is, per window element, the sum over the batch of R + R2 at the first maximum, else 0.
 * Both flavours. */
static void check_pool_ties(cg_flavour fl)
{
    const char *fname = fl == CG_HOST ? "host" : "portable";
    gc c = {.g = cg_graph_new("pool_ties"), .rng = 11};
    cr_assert(c.g, "out of memory");
    cg_set_max_batch(c.g, MAX_BATCH);
    c.n = 2;
    cg_t x = image(&c, "x", 4, 4, 2, D_DISTINCT, D_SMALL);
    term(&c, pool(&c, OP_MAX_POOL, x, 2, 2, 2, 2, false));
    term(&c, pool(&c, OP_MAX_POOL, cg_relu(x), 2, 2, 2, 2, false));
    cg_gradients_at(CG_HERE, c.g, c.loss, &c.var[0].t, 1);
    cr_assert(!cg_failed(c.g), "%s: %s", fname, cg_error(c.g));
    for (long e = 0; e < c.in[0].count; e++) /* X: channel 0 is 2 at window elements 1 and 3, else 1 */
        c.in[0].data[e] = e % 2 == 0 && e / 2 % 2 == 1 ? 2.0f : 1.0f;
    memset(c.var[0].data, 0, sizeof(float) * (size_t)c.var[0].count);
    hx_module mod;
    hx_extra_cflags = "";
    cr_assert(hx_build_graph(&mod, c.g, c.nin, fl, NULL) == 0, "%s: %s", fname, mod.err);
    long count = 0, off = hx_param(&mod, c.var[0].name, &count);
    cr_assert(off >= 0 && count == 32, "%s: U has %ld floats", fname, count);
    memset(mod.params + off, 0, sizeof(float) * 32);
    const float *inputs[MAXT];
    for (int i = 0; i < c.nin; i++)
        inputs[i] = c.in[i].data;
    mod.gradients(mod.state, c.n, inputs);
    const float *r = c.in[1].data, *r2 = c.in[2].data; /* (n, 2, 2, 2) each */
    for (int h = 0; h < 4; h++)
        for (int w = 0; w < 4; w++)
            for (int ch = 0; ch < 2; ch++) {
                bool first = ch == 0 ? h % 2 == 0 && w % 2 == 1 : h % 2 == 0 && w % 2 == 0;
                float want = 0.0f;
                for (int b = 0; first && b < c.n; b++) {
                    long o = ((b * 2 + h / 2) * 2 + w / 2) * 2 + ch;
                    want += r[o] + r2[o];
                }
                float got = mod.grads[off + (h * 4 + w) * 2 + ch];
                cr_expect(fabsf(got - want) <= 1e-5f, "%s: dU[%d][%d][%d] = %g, expected %g (%s)", fname, h, w, ch,
                          (double)got, (double)want, first ? "the first maximum" : "not the first maximum");
            }
    hx_close(&mod);
    for (int i = 0; i < c.nvar; i++)
        free(c.var[i].data);
    for (int i = 0; i < c.nin; i++)
        free(c.in[i].data);
    cg_graph_free(c.g);
}

Test(gradcheck_conv, max_pool_ties_first_maximum)
{
    check_pool_ties(CG_PORTABLE);
    check_pool_ties(CG_HOST);
}
