/* test_activations.c: every activation of compiler/activations.def, row by
 * row, so that a new row is checked as soon as it has its reference here
 * (ref_act: its value and derivative in double) and its torch form
 * (tests/ops/torch_ref.py, ACTIVATIONS). A row without them fails.
 *
 *   values     act(x) and act'(x) of the emitted op at points away from kinks,
 *              against ref_act, both flavours, with the default alpha and a
 *              given one: sum(act(x) * w) with w = 1 has d_w = act(x) and
 *              d_x = act'(x)
 *   gradcheck  central finite differences of the op on a batch (cg_act), of
 *              Dense and Conv2D layers with the activation, of a max pooling
 *              over it (the fused gradient), of recurrent cells using it,
 *              both flavours
 *   fusion     activations written with their input (gelu, swish) stay an
 *              ACT node after the DENSE in training, and go into the DENSE
 *              and CONV2D_BIAS_ACT epilogues where no gradient reads their
 *              input (values checked)
 *   names      banners and comments name the activation; the alpha defaults
 *   builder    alpha and activation checks, with the user's line
 *   torch      loss, gradients, an Adam step and the outputs of a small Dense
 *              model per activation against PyTorch (skipped without torch)
 *
 * Tolerances: values 1e-5 + 1e-5 |ref| (float code against double); finite
 * differences as tests/ops/test_gradcheck.c (eps 1e-2, 5e-3 relative to
 * max(1, |gradient|)); torch as tests/ops/test_reference.c.
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

#ifndef OPS_SOURCE_DIR
#define OPS_SOURCE_DIR "."
#endif

#define TOL 5e-3
#define EPS 1e-2
#define GIVEN_ALPHA 0.5f
#define PI 3.14159265358979323846

/* ---- the reference ---------------------------------------------------------- */

/* act(x) into *f and act'(x) into *d, in double, for the activation called
 * name; *smooth: its derivative is continuous (finite differences hold across
 * 0). False for a name it does not know. */
static bool ref_act(const char *name, double x, double alpha, double *f, double *d, bool *smooth)
{
    double s = 1.0 / (1.0 + exp(-x)), c = sqrt(2.0 / PI);
    *smooth = true;
    if (!strcmp(name, "linear"))
        *f = x, *d = 1.0;
    else if (!strcmp(name, "relu"))
        *f = x > 0 ? x : 0.0, *d = x > 0, *smooth = false;
    else if (!strcmp(name, "sigmoid"))
        *f = s, *d = s * (1.0 - s);
    else if (!strcmp(name, "tanh"))
        *f = tanh(x), *d = 1.0 - tanh(x) * tanh(x);
    else if (!strcmp(name, "leaky_relu"))
        *f = x > 0 ? x : alpha * x, *d = x > 0 ? 1.0 : alpha, *smooth = false;
    else if (!strcmp(name, "gelu")) /* x Phi(x): Phi + x phi */
        *f = 0.5 * x * erfc(-x / sqrt(2.0)), *d = 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * PI);
    else if (!strcmp(name, "gelu_tanh")) {
        double t = tanh(c * (x + 0.044715 * x * x * x));
        *f = 0.5 * x * (1.0 + t);
        *d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
    } else if (!strcmp(name, "elu")) /* C1 at 0 only for alpha = 1 */
        *f = x > 0 ? x : alpha * expm1(x), *d = x > 0 ? 1.0 : alpha * exp(x), *smooth = alpha == 1.0;
    else if (!strcmp(name, "swish"))
        *f = x * s, *d = s + x * s * (1.0 - s);
    else
        return false;
    return true;
}

/* The rows that apply elementwise (not softmax's), in order. */
static int elementwise_rows(cg_activation out[ACT_COUNT])
{
    int k = 0;
    for (int a = 0; a < ACT_COUNT; a++)
        if (act_table[a].from != ACT_FROM_ROW)
            out[k++] = (cg_activation)a;
    return k;
}

/* True when row a has a reference here, and whether its derivative is smooth. */
static bool known(cg_activation a, bool *smooth)
{
    double f, d;
    return ref_act(act_table[a].name, 0.5, 1.0, &f, &d, smooth);
}

Test(activations, every_row_has_a_reference)
{
    cg_activation rows[ACT_COUNT];
    int n = elementwise_rows(rows);
    cr_assert(n >= 9, "only %d elementwise activations", n);
    for (int i = 0; i < n; i++) {
        bool smooth;
        cr_expect(known(rows[i], &smooth),
                  "activation %s has no reference: add its value and derivative to ref_act "
                  "in test_activations.c (and its torch form to torch_ref.py)",
                  act_table[rows[i]].name);
    }
}

/* ---- values: the emitted op at fixed points --------------------------------------- */

static const float points[12] = {-3.5f, -2.2f, -1.3f, -0.7f, -0.3f, -0.05f, 0.05f, 0.3f, 0.8f, 1.4f, 2.5f, 4.0f};

/* The emitted act(x) and act'(x) at the points: d_w and d_x of sum(act(x) * w), w = 1. */
static void emitted_values(cg_activation a, float alpha, cg_flavour fl, float *f, float *d)
{
    char name[64];
    snprintf(name, sizeof name, "values_%s", act_table[a].name);
    cg_graph *g = cg_graph_new(name);
    cg_t x = cg_variable(g, "x", CG_SHAPE(3, 4), cg_zeros()), w = cg_variable(g, "w", CG_SHAPE(3, 4), cg_ones());
    cg_t y = isnan(alpha) ? cg_act(x, a) : cg_act_alpha(x, a, alpha);
    cg_gradients(g, cg_sum(cg_mul(y, w)), x, w);
    cr_assert(!cg_failed(g), "%s: %s", name, cg_error(g));
    hx_module mod;
    hx_extra_cflags = "-Wno-unused-parameter"; /* no batched input: `n` unused (test_gradcheck.c says why) */
    cr_assert(hx_build_graph(&mod, g, 0, fl, NULL) == 0, "%s: %s", name, mod.err);
    hx_extra_cflags = "";
    long ox = hx_param(&mod, "x", NULL), ow = hx_param(&mod, "w", NULL);
    memcpy(mod.params + ox, points, sizeof points);
    mod.gradients(mod.state, 1, NULL);
    memcpy(f, mod.grads + ow, sizeof points);
    memcpy(d, mod.grads + ox, sizeof points);
    hx_close(&mod);
    cg_graph_free(g);
}

/* Compares the emitted values of row a (alpha NaN: its default) with ref_act. */
static void check_values(cg_activation a, float alpha, cg_flavour fl)
{
    const char *name = act_table[a].name, *fls = fl == CG_HOST ? "host" : "portable";
    double al = isnan(alpha) ? act_table[a].alpha : alpha;
    float f[12], d[12];
    emitted_values(a, alpha, fl, f, d);
    for (int i = 0; i < 12; i++) {
        double rf, rd;
        bool smooth;
        cr_assert(ref_act(name, points[i], al, &rf, &rd, &smooth), "%s: no reference", name);
        cr_expect(fabs(f[i] - rf) <= 1e-5 + 1e-5 * fabs(rf), "%s (%s, alpha %g): %s(%g) = %.9g, want %.9g", name, fls,
                  al, name, (double)points[i], (double)f[i], rf);
        cr_expect(fabs(d[i] - rd) <= 1e-5 + 1e-5 * fabs(rd), "%s (%s, alpha %g): %s'(%g) = %.9g, want %.9g", name, fls,
                  al, name, (double)points[i], (double)d[i], rd);
    }
}

ParameterizedTestParameters(activations, values)
{
    return fd_case_indices(ACT_COUNT);
}
ParameterizedTest(int *i, activations, values)
{
    cg_activation a = (cg_activation)*i;
    bool smooth;
    if (act_table[a].from == ACT_FROM_ROW || !known(a, &smooth))
        return; /* softmax: its own suites; unknown rows: every_row_has_a_reference */
    for (int fl = 0; fl < 2; fl++) {
        check_values(a, NAN, fl ? CG_HOST : CG_PORTABLE);
        if (act_table[a].alpha != 0.0f)
            check_values(a, GIVEN_ALPHA, fl ? CG_HOST : CG_PORTABLE);
    }
}

/* ---- finite differences --------------------------------------------------------------- */

/* What the tape graph's loss needs. */
typedef struct tape_ctx {
    hx_module *mod;
    int n;
    const float *const *inputs;
} tape_ctx;

static double tape_loss(void *p)
{
    tape_ctx *c = p;
    return c->mod->loss(c->mod->state, c->n, c->inputs);
}

/* U(lo, hi) away from 0 by at least 0.1 when the row has a kink there. */
static void fill_away(uint64_t *s, float *v, long count, float lo, float hi, bool smooth)
{
    fd_fill(s, v, count, lo, hi);
    for (long i = 0; !smooth && i < count; i++)
        if (fabsf(v[i]) < 0.1f)
            v[i] = v[i] < 0 ? v[i] - 0.1f : v[i] + 0.1f;
}

/* The op on a batch: loss = sum(act(X + u) * R), X (n, 5) and R placeholders, u (5) checked. */
static void gradcheck_op(cg_activation a, cg_flavour fl)
{
    char name[64];
    snprintf(name, sizeof name, "op_%s", act_table[a].name);
    bool smooth;
    known(a, &smooth);
    enum { N = 3, K = 5 };
    cg_graph *g = cg_graph_new(name);
    cg_set_max_batch(g, 4);
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, K)), r = cg_placeholder(g, "r", CG_SHAPE(CG_BATCH, K));
    cg_t u = cg_variable(g, "u", CG_SHAPE(K), cg_zeros());
    cg_gradients(g, cg_sum(cg_mul(cg_act(cg_add(x, u), a), r)), u);
    cr_assert(!cg_failed(g), "%s: %s", name, cg_error(g));
    hx_module mod;
    cr_assert(hx_build_graph(&mod, g, 2, fl, NULL) == 0, "%s: %s", name, mod.err);
    uint64_t s = fd_seed(name);
    float xs[N * K], rs[N * K];
    fill_away(&s, xs, N * K, -2.5f, 2.5f, smooth);
    fd_fill(&s, rs, N * K, -1.0f, 1.0f);
    const float *inputs[] = {xs, rs};
    tape_ctx ctx = {&mod, N, inputs};
    float *up = mod.params + hx_param(&mod, "u", NULL);
    mod.gradients(mod.state, N, inputs);
    float grad[K];
    memcpy(grad, mod.grads + hx_param(&mod, "u", NULL), sizeof grad);
    fd_target t = {"u", up, grad, K};
    char what[96];
    snprintf(what, sizeof what, "%s (%s)", name, fl == CG_HOST ? "host" : "portable");
    fd_check(what, &t, 1, tape_loss, &ctx, EPS, TOL, true);
    hx_close(&mod);
    cg_graph_free(g);
}

/* A compiled model: random parameters and batch, then fd_check_model. */
static void gradcheck_model(cg_model *m, const char *what, cg_flavour fl, long in, int out)
{
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = 8);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", what, cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, fl, NULL) == 0, "%s: %s", what, mod.err);
    uint64_t s = fd_seed(what);
    for (int i = 0; i < mod.nparams; i++)
        fd_fill(&s, mod.params + mod.param_offset(i), mod.param_count(i), -0.8f, 0.8f);
    enum { N = 5 };
    float *x = malloc(sizeof(float) * (size_t)(N * in)), y[N * 4];
    fd_fill(&s, x, N * in, -1.5f, 1.5f);
    fd_fill(&s, y, N * out, -1.0f, 1.0f);
    fd_check_model(what, &mod, N, x, y, EPS, TOL, false);
    free(x);
    hx_close(&mod);
    cg_model_free(m);
}

/* Dense (4 -> 5, the activation) then Dense (2); Conv2D (3 filters, 3x3, same, the activation) on (5, 4, 2),
 * Flatten, Dense (2). Rows whose derivative has a kink at 0 are covered by test_gradcheck*.c (inputs kept
 * away from the kink there). */
static void gradcheck_layers(cg_activation a, cg_flavour fl)
{
    char name[64], what[96];
    const char *fls = fl == CG_HOST ? "host" : "portable";
    snprintf(name, sizeof name, "dense_%s", act_table[a].name);
    snprintf(what, sizeof what, "%s (%s)", name, fls);
    cg_model *m = cg_sequential_at(CG_HERE, name, CG_SHAPE(4));
    cg_model_add(m, cg_dense(5, .activation = a));
    cg_model_add(m, cg_dense(2));
    gradcheck_model(m, what, fl, 4, 2);
    snprintf(name, sizeof name, "conv_%s", act_table[a].name);
    snprintf(what, sizeof what, "%s (%s)", name, fls);
    m = cg_sequential_at(CG_HERE, name, CG_SHAPE(5, 4, 2));
    cg_model_add(m, cg_conv2d(3, 3, .padding = CG_SAME, .activation = a));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(2));
    gradcheck_model(m, what, fl, 5 * 4 * 2, 2);
}

ParameterizedTestParameters(activations, gradcheck)
{
    return fd_case_indices(ACT_COUNT);
}
ParameterizedTest(int *i, activations, gradcheck)
{
    cg_activation a = (cg_activation)*i;
    bool smooth;
    if (act_table[a].from == ACT_FROM_ROW || !known(a, &smooth))
        return;
    for (int fl = 0; fl < 2; fl++) {
        gradcheck_op(a, fl ? CG_HOST : CG_PORTABLE);
        if (smooth && a != CG_LINEAR)
            gradcheck_layers(a, fl ? CG_HOST : CG_PORTABLE);
    }
}

/* Max pooling over the activation's output: act(X + u), X distinct values (a shuffled ramp, away from 0), so
 * that a monotone activation keeps every window's maximum where it is under the perturbation of u. Rows
 * written with their output get the fused gradient (MAX_POOL_BWD with the activation). */
static void gradcheck_max_pool(cg_activation a, cg_flavour fl)
{
    char name[64], what[96];
    snprintf(name, sizeof name, "pool_%s", act_table[a].name);
    snprintf(what, sizeof what, "%s (%s)", name, fl == CG_HOST ? "host" : "portable");
    enum { N = 2, H = 4, W = 5, C = 2, COUNT = N * H * W * C };
    cg_graph *g = cg_graph_new(name);
    cg_set_max_batch(g, 4);
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, H, W, C)),
         r = cg_placeholder(g, "r", CG_SHAPE(CG_BATCH, 2, 2, C));
    cg_t u = cg_variable(g, "u", CG_SHAPE(C), cg_zeros());
    spatial sp = {{2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}};
    cg_t y = {g, op_pool(g, CG_HERE, OP_MAX_POOL, cg_act(cg_add(x, u), a).id, &sp)};
    cg_gradients(g, cg_sum(cg_mul(y, r)), u);
    cr_assert(!cg_failed(g), "%s: %s", what, cg_error(g));
    hx_module mod;
    cr_assert(hx_build_graph(&mod, g, 2, fl, NULL) == 0, "%s: %s", what, mod.err);
    char path[512], want[96];
    snprintf(path, sizeof path, "%s/%s.c", mod.dir, name);
    char *src = hx_read_file(path, NULL);
    snprintf(want, sizeof want, "dY[b,i,j,c] * %s'(X)", act_table[a].name);
    cr_expect(src && (strstr(src, want) != NULL) == (act_table[a].from == ACT_FROM_Y),
              "%s: the max pooling gradient %s the gradient of %s", what,
              act_table[a].from == ACT_FROM_Y ? "lacks" : "has", act_table[a].name);
    free(src);
    uint64_t s = fd_seed(name);
    float xs[COUNT], rs[N * 2 * 2 * C];
    for (int i = 0; i < COUNT; i++) /* a ramp with steps of 0.04, away from 0 by 0.1, where gelu and swish rise */
        xs[i] = -0.6f + 0.04f * (float)i + (i < 15 ? -0.1f : 0.1f);
    for (int i = COUNT - 1; i > 0; i--) {
        int j = (int)(fd_next(&s) % (uint64_t)(i + 1));
        float t = xs[i];
        xs[i] = xs[j], xs[j] = t;
    }
    fd_fill(&s, rs, N * 2 * 2 * C, -1.0f, 1.0f);
    const float *inputs[] = {xs, rs};
    tape_ctx ctx = {&mod, N, inputs};
    mod.gradients(mod.state, N, inputs);
    long off = hx_param(&mod, "u", NULL);
    float grad[C];
    memcpy(grad, mod.grads + off, sizeof grad);
    fd_target t = {"u", mod.params + off, grad, C};
    fd_check(what, &t, 1, tape_loss, &ctx, EPS, TOL, false);
    hx_close(&mod);
    cg_graph_free(g);
}

ParameterizedTestParameters(activations, max_pool)
{
    return fd_case_indices(ACT_COUNT);
}
ParameterizedTest(int *i, activations, max_pool)
{
    cg_activation a = (cg_activation)*i;
    if (act_table[a].from == ACT_FROM_ROW || a == CG_LINEAR)
        return;
    gradcheck_max_pool(a, CG_PORTABLE);
    gradcheck_max_pool(a, CG_HOST);
}

/* SimpleRNN and LSTM with the activation, GRU with it as the recurrent activation (its gates): every row
 * written with its output, which the cells can use. */
ParameterizedTestParameters(activations, recurrent)
{
    return fd_case_indices(ACT_COUNT);
}
ParameterizedTest(int *i, activations, recurrent)
{
    cg_activation a = (cg_activation)*i;
    bool smooth;
    if (act_table[a].from != ACT_FROM_Y || a == CG_LINEAR || !known(a, &smooth))
        return;
    for (int fl = 0; fl < 2; fl++)
        for (int kind = 0; kind < 3; kind++) {
            static const char *kinds[] = {"simple_rnn", "lstm", "gru"};
            char name[64], what[96];
            snprintf(name, sizeof name, "%s_%s", kinds[kind], act_table[a].name);
            snprintf(what, sizeof what, "%s (%s)", name, fl ? "host" : "portable");
            cg_model *m = cg_sequential_at(CG_HERE, name, CG_SHAPE(3, 2));
            if (kind == 0)
                cg_model_add(m, cg_simple_rnn(4, .activation = a));
            else if (kind == 1)
                cg_model_add(m, cg_lstm(3, .activation = a));
            else
                cg_model_add(m, cg_gru(3, .recurrent_activation = a));
            cg_model_add(m, cg_dense(2));
            gradcheck_model(m, what, fl ? CG_HOST : CG_PORTABLE, 6, 2);
        }
}

/* ---- fusion ------------------------------------------------------------------------------ */

/* The emitted NAME.c of module mod (malloc'd). */
static char *source_of(const hx_module *mod)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.c", mod->dir, mod->name);
    char *src = hx_read_file(path, NULL);
    cr_assert(src, "cannot read %s", path);
    return src;
}

/* sum(act(X W + b) * V) with the gradient of V alone: nothing reads act's input but act, so even a row written
 * with its input goes into the DENSE epilogue; d_V = act(X W + b), against ref_act. */
static void fused_dense(cg_activation a, cg_flavour fl)
{
    char name[64], what[96];
    snprintf(name, sizeof name, "fused_%s", act_table[a].name);
    snprintf(what, sizeof what, "%s (%s)", name, fl == CG_HOST ? "host" : "portable");
    enum { M = 3, K = 4, U = 5 };
    cg_graph *g = cg_graph_new(name);
    cg_t x = cg_variable(g, "x", CG_SHAPE(M, K), cg_zeros()), w = cg_variable(g, "w", CG_SHAPE(K, U), cg_zeros());
    cg_t b = cg_variable(g, "b", CG_SHAPE(U), cg_zeros()), v = cg_variable(g, "v", CG_SHAPE(M, U), cg_ones());
    cg_gradients(g, cg_sum(cg_mul(cg_act(cg_add(cg_matmul(x, w), b), a), v)), v);
    cr_assert(!cg_failed(g), "%s: %s", what, cg_error(g));
    hx_module mod;
    hx_extra_cflags = "-Wno-unused-parameter";
    cr_assert(hx_build_graph(&mod, g, 0, fl, NULL) == 0, "%s: %s", what, mod.err);
    hx_extra_cflags = "";
    char *src = source_of(&mod), want[96];
    snprintf(want, sizeof want, " = %s(x . w + b)", act_table[a].name);
    cr_expect(strstr(src, ": DENSE (") && strstr(src, want), "%s: no DENSE with %s in its epilogue", what,
              act_table[a].name);
    free(src);
    uint64_t s = fd_seed(name);
    float *xp = mod.params + hx_param(&mod, "x", NULL), *wp = mod.params + hx_param(&mod, "w", NULL);
    float *bp = mod.params + hx_param(&mod, "b", NULL);
    fd_fill(&s, xp, M * K, -1.0f, 1.0f);
    fd_fill(&s, wp, K * U, -1.0f, 1.0f);
    fd_fill(&s, bp, U, -0.5f, 0.5f);
    mod.gradients(mod.state, 1, NULL);
    const float *dv = mod.grads + hx_param(&mod, "v", NULL);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < U; j++) {
            double z = bp[j], f, d;
            bool smooth;
            for (int p = 0; p < K; p++)
                z += (double)xp[i * K + p] * wp[p * U + j];
            ref_act(act_table[a].name, z, act_table[a].alpha, &f, &d, &smooth);
            cr_expect(fabs(dv[i * U + j] - f) <= 1e-5 + 1e-5 * fabs(f), "%s: %s(%g) = %.9g, want %.9g", what,
                      act_table[a].name, z, (double)dv[i * U + j], f);
        }
    hx_close(&mod);
    cg_graph_free(g);
}

/* The same through conv2d(X, K) + b (valid, 3x3 on 4x4): one CONV2D_BIAS_ACT; d_V = act(conv + b) at n = 1. */
static void fused_conv(cg_activation a, cg_flavour fl)
{
    char name[64], what[96];
    snprintf(name, sizeof name, "fusedconv_%s", act_table[a].name);
    snprintf(what, sizeof what, "%s (%s)", name, fl == CG_HOST ? "host" : "portable");
    enum { H = 4, C = 2, F = 2, O = 2 };
    cg_graph *g = cg_graph_new(name);
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, H, H, C));
    cg_t k = cg_variable(g, "k", CG_SHAPE(3, 3, C, F), cg_zeros()), b = cg_variable(g, "b", CG_SHAPE(F), cg_zeros());
    cg_t v = cg_variable(g, "v", CG_SHAPE(O, O, F), cg_ones());
    spatial sp = {{0, 0}, {1, 1}, {1, 1}, {0, 0, 0, 0}};
    cg_t conv = {g, op_conv2d(g, CG_HERE, x.id, k.id, &sp, false)};
    cg_gradients(g, cg_sum(cg_mul(cg_act(cg_add(conv, b), a), v)), v);
    cr_assert(!cg_failed(g), "%s: %s", what, cg_error(g));
    hx_module mod;
    cr_assert(hx_build_graph(&mod, g, 1, fl, NULL) == 0, "%s: %s", what, mod.err);
    char *src = source_of(&mod), want[96];
    snprintf(want, sizeof want, " = %s(conv2d(x, k) + b)", act_table[a].name);
    cr_expect(strstr(src, ": CONV2D_BIAS_ACT (") && strstr(src, want), "%s: no CONV2D_BIAS_ACT with %s", what,
              act_table[a].name);
    free(src);
    uint64_t s = fd_seed(name);
    float xs[H * H * C], *kp = mod.params + hx_param(&mod, "k", NULL), *bp = mod.params + hx_param(&mod, "b", NULL);
    fd_fill(&s, xs, H * H * C, -1.0f, 1.0f);
    fd_fill(&s, kp, 9 * C * F, -0.5f, 0.5f);
    fd_fill(&s, bp, F, -0.5f, 0.5f);
    const float *inputs[] = {xs};
    mod.gradients(mod.state, 1, inputs);
    const float *dv = mod.grads + hx_param(&mod, "v", NULL);
    for (int i = 0; i < O; i++)
        for (int j = 0; j < O; j++)
            for (int f = 0; f < F; f++) {
                double z = bp[f], fv, d;
                bool smooth;
                for (int p = 0; p < 3; p++)
                    for (int q = 0; q < 3; q++)
                        for (int c = 0; c < C; c++)
                            z += (double)xs[((i + p) * H + j + q) * C + c] * kp[((p * 3 + q) * C + c) * F + f];
                ref_act(act_table[a].name, z, act_table[a].alpha, &fv, &d, &smooth);
                float got = dv[(i * O + j) * F + f];
                cr_expect(fabs(got - fv) <= 1e-5 + 1e-5 * fabs(fv), "%s: %s(%g) = %.9g, want %.9g", what,
                          act_table[a].name, z, (double)got, fv);
            }
    hx_close(&mod);
    cg_graph_free(g);
}

ParameterizedTestParameters(activations, fused_epilogues)
{
    return fd_case_indices(ACT_COUNT);
}
ParameterizedTest(int *i, activations, fused_epilogues)
{
    cg_activation a = (cg_activation)*i;
    bool smooth;
    if (act_table[a].from == ACT_FROM_ROW || a == CG_LINEAR || !known(a, &smooth))
        return;
    for (int fl = 0; fl < 2; fl++) {
        fused_dense(a, fl ? CG_HOST : CG_PORTABLE);
        fused_conv(a, fl ? CG_HOST : CG_PORTABLE);
    }
}

/* ---- names and alpha defaults ------------------------------------------------------------- */

/* The portable NAME.c of a compiled model (malloc'd); frees the model. */
static char *model_source(cg_model *m)
{
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, CG_PORTABLE, NULL) == 0, "%s", mod.err);
    char *src = source_of(&mod);
    hx_close(&mod);
    cg_model_free(m);
    return src;
}

/* Banners and comments say which activation: gelu (written with its input) is an ACT node after the DENSE, and
 * its gradient reads that input; elu (with its output) is in the DENSE epilogue, its gradient reads the output. */
Test(activations, names_in_emitted_code)
{
    cg_model *m = cg_sequential("named", CG_SHAPE(4));
    cg_model_add(m, cg_dense(5, .activation = CG_GELU));
    cg_model_add(m, cg_dense(3, .activation = CG_ELU));
    cg_model_add(m, cg_activation_layer(CG_SWISH));
    cg_model_add(m, cg_dense(2));
    char *src = model_source(m);
    static const char *want[] = {
        "dense_1: ACT (",
        " *   dense_1_out = gelu(dense_1_z)\n",
        " *   d_dense_1_z = d_dense_1_out * gelu'(.), from the input dense_1_z\n",
        "dense_1: ACT_BWD_X, backward (",
        "dense_2: DENSE (",
        " *   dense_2_out = elu(dense_1_out . dense_2_kernel + dense_2_bias)\n",
        "/* elu */",
        " *   d_dense_2_z = d_dense_2_out * elu'(.), from the output dense_2_out\n",
        " *   activation_1_out = swish(dense_2_out)\n",
        " *   d_dense_2_out = d_activation_1_out * swish'(.), from the input dense_2_out\n",
    };
    for (size_t i = 0; i < COUNT(want); i++)
        cr_expect(strstr(src, want[i]), "the emitted code lacks \"%s\"", want[i]);
    free(src);
}

/* Keras' defaults: elu's alpha 1.0 and leaky relu's 0.3 in Dense, Conv2D and the Activation layer unless
 * .alpha is given; the C text shows the value used. */
Test(activations, alpha_defaults)
{
    static const struct {
        cg_activation act;
        float alpha; /* NaN: not given */
        bool conv;
        const char *want;
    } cases[] = {
        {CG_ELU, NAN, false, "Y[i * 3 + j] = v > 0.0f ? v : 1.0f * expm1f(v); /* elu */"},
        {CG_ELU, 0.5f, false, "Y[i * 3 + j] = v > 0.0f ? v : 0.5f * expm1f(v); /* elu */"},
        {CG_LEAKY_RELU, NAN, false, "Y[i * 3 + j] = v > 0.0f ? v : 0.3f * v; /* leaky_relu */"},
        {CG_LEAKY_RELU, 0.1f, false, "Y[i * 3 + j] = v > 0.0f ? v : 0.1f * v; /* leaky_relu */"},
        {CG_ELU, NAN, true, "y[f] = v > 0.0f ? v : 1.0f * expm1f(v); /* elu */"},
        {CG_ELU, 2.0f, true, "y[f] = v > 0.0f ? v : 2.0f * expm1f(v); /* elu */"},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        cg_model *m = cg_sequential("alpha", cases[i].conv ? CG_SHAPE(3, 3, 1) : CG_SHAPE(4));
        if (cases[i].conv && isnan(cases[i].alpha))
            cg_model_add(m, cg_conv2d(1, 2, .activation = cases[i].act));
        else if (cases[i].conv)
            cg_model_add(m, cg_conv2d(1, 2, .activation = cases[i].act, .alpha = cases[i].alpha));
        else if (isnan(cases[i].alpha))
            cg_model_add(m, cg_dense(3, .activation = cases[i].act));
        else
            cg_model_add(m, cg_dense(3, .activation = cases[i].act, .alpha = cases[i].alpha));
        cg_model_add(m, cg_flatten());
        cg_model_add(m, cg_dense(1));
        char *src = model_source(m);
        cr_expect(strstr(src, cases[i].want), "case %zu: the emitted code lacks \"%s\"", i, cases[i].want);
        free(src);
    }
    cg_model *m = cg_sequential("alpha_layer", CG_SHAPE(4));
    cg_model_add(m, cg_activation_layer(CG_ELU));
    cg_model_add(m, cg_dense(1));
    char *src = model_source(m);
    cr_expect(strstr(src, "Y[i] = X[i] > 0.0f ? X[i] : 1.0f * expm1f(X[i]);"),
              "cg_activation_layer(CG_ELU): alpha is not 1");
    free(src);
}

/* ---- builder checks ------------------------------------------------------------------------- */

/* The graph failed, and its message holds "test_activations.c:LINE: " and each needle. */
static void failed_with(const cg_graph *g, int line, const char *a, const char *b)
{
    char at[64];
    snprintf(at, sizeof at, "test_activations.c:%d: ", line);
    cr_expect(cg_failed(g), "line %d: no error", line);
    cr_expect(strstr(cg_error(g), at) && strstr(cg_error(g), a) && (!b || strstr(cg_error(g), b)),
              "message \"%s\" lacks \"%s\", \"%s\" or \"%s\"", cg_error(g), at, a, b ? b : "");
}

Test(activations, builder_checks)
{
    cg_graph *g = cg_graph_new("checks");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    cr_expect(cg_act(x, CG_LINEAR).id == x.id, "linear made a node");
    cg_t sm = cg_act(x, CG_SOFTMAX);
    cr_expect(!cg_failed(g) && sm.id >= 0, "cg_act(x, CG_SOFTMAX): %s", cg_error(g));
    cr_expect(cg_act_alpha(x, CG_GELU, 7.0f).id >= 0 && !cg_failed(g), "gelu refused an alpha it does not use");
    cg_graph_free(g);

    static const struct {
        cg_activation act;
        float alpha;
        const char *a, *b;
    } bad[] = {
        {CG_ELU, -1.0f, "elu: alpha is -1", ">= 0"},
        {CG_ELU, INFINITY, "elu: alpha is inf", "finite"},
        {CG_LEAKY_RELU, -0.2f, "leaky_relu: alpha is -0.2", ">= 0"},
        {(cg_activation)77, 1.0f, "unknown activation 77", NULL},
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        g = cg_graph_new("checks");
        x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
        int line = __LINE__ + 1;
        cg_t y = cg_act_alpha(x, bad[i].act, bad[i].alpha);
        cr_expect(y.id < 0, "case %zu: accepted", i);
        failed_with(g, line, bad[i].a, bad[i].b);
        cg_graph_free(g);
    }
    g = cg_graph_new("checks");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    int line = __LINE__ + 1;
    cg_t y = cg_leaky_relu(x, -0.5f);
    cr_expect(y.id < 0, "a negative leaky relu slope was accepted");
    failed_with(g, line, "alpha", ">= 0");
    cg_graph_free(g);

    cg_model *m = cg_sequential("checks", CG_SHAPE(4));
    line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_dense(3, .activation = CG_ELU, .alpha = -2.0f));
    cr_expect(rc != 0, "Dense accepted elu with alpha -2");
    failed_with(cg_model_graph(m), line, "dense_1: ", "elu: alpha is -2");
    cg_model_free(m);
}

/* The cells keep each gate after its activation, so an activation written with its input is refused there,
 * naming it and the ones that work. */
Test(activations, recurrent_refuses_input_based)
{
    cg_model *m = cg_sequential("rnn_checks", CG_SHAPE(5, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_lstm(4, .activation = CG_GELU));
    cr_expect(rc != 0);
    failed_with(cg_model_graph(m), line, "lstm_1: LSTM: activation gelu is not supported", "tanh, leaky_relu or elu)");
    cg_model_free(m);
    m = cg_sequential("rnn_checks", CG_SHAPE(5, 2));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_gru(4, .recurrent_activation = CG_SWISH));
    cr_expect(rc != 0);
    failed_with(cg_model_graph(m), line, "recurrent_activation swish is not supported", NULL);
    cg_model_free(m);
}

/* ---- against PyTorch ---------------------------------------------------------------------------- */

enum { TN = 6, TIN = 4, THID = 6, TOUT = 2 };
#define TLR 0.01f

/* One model of the torch check, kept until torch has run. */
typedef struct torch_run {
    char what[64];
    hx_module mod;
    float loss, pred[TN * TOUT];
} torch_run;

/* Dense (4 -> 6, activation a; alpha NaN: its default) then Dense (2), MSE, Adam from cgrad's initial
 * weights: runs predict and one train_step, and writes spec.txt, params.bin, x.bin and y.bin for
 * torch_ref.py into the module's folder. */
static void torch_prepare(cg_activation a, float alpha, torch_run *run)
{
    snprintf(run->what, sizeof run->what, "torch_%s%s", act_table[a].name, isnan(alpha) ? "" : "_alpha");
    cg_model *m = cg_sequential_at(CG_HERE, run->what, CG_SHAPE(TIN));
    cg_model_add(m, cg_dense(THID, .activation = a, .alpha = alpha));
    cg_model_add(m, cg_dense(TOUT));
    cg_compile(m, .optimizer = cg_adam(TLR), .loss = CG_MSE, .batch_size = 8);
    cr_assert(hx_build_model(&run->mod, m, CG_PORTABLE, NULL) == 0, "%s: %s", run->what, run->mod.err);
    cg_model_free(m);
    uint64_t s = fd_seed(run->what);
    float x[TN * TIN], y[TN * TOUT], metric;
    fd_fill(&s, x, TN * TIN, -2.0f, 2.0f);
    fd_fill(&s, y, TN * TOUT, -1.0f, 1.0f);
    char path[512];
    snprintf(path, sizeof path, "%s/spec.txt", run->mod.dir);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fprintf(f, "n %d\nin %d\nout %d\nlr %.9g\nloss mse\n", TN, TIN, TOUT, (double)TLR);
    fprintf(f, "dense %d %s", THID, act_table[a].name);
    fprintf(f, isnan(alpha) ? "\n" : " %.9g\n", (double)alpha);
    fprintf(f, "dense %d linear\n", TOUT);
    static const char *params[] = {"dense_1/kernel", "dense_1/bias", "dense_2/kernel", "dense_2/bias"};
    static const int dims[4][2] = {{TIN, THID}, {THID, 0}, {THID, TOUT}, {TOUT, 0}};
    for (int i = 0; i < 4; i++) {
        long count, off = hx_param(&run->mod, params[i], &count);
        cr_assert(off >= 0, "%s: no parameter %s", run->what, params[i]);
        fprintf(f, "param %s %ld %ld %d", params[i], off, count, dims[i][0]);
        fprintf(f, dims[i][1] ? " %d\n" : "\n", dims[i][1]);
    }
    cr_assert(fclose(f) == 0);
    static const char *files[] = {"params.bin", "x.bin", "y.bin"};
    const float *data[] = {run->mod.params, x, y};
    long counts[] = {run->mod.param_floats, TN * TIN, TN * TOUT};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", run->mod.dir, files[i]);
        f = fopen(path, "wb");
        cr_assert(f && fwrite(data[i], sizeof(float), (size_t)counts[i], f) == (size_t)counts[i] && fclose(f) == 0,
                  "cannot write %s", path);
    }
    run->mod.predict(run->mod.state, TN, x, run->pred);
    *run->mod.lr = TLR;
    run->mod.train_step(run->mod.state, TN, x, y, &run->loss, &metric);
}

/* got[count] against torch's want[count]: |got - want| <= 1e-5 + 1e-4 |want|, reporting the worst entry. */
static void torch_compare(const char *what, const char *part, const float *got, const float *want, long count)
{
    double worst = -1;
    long wi = 0;
    for (long i = 0; i < count; i++) {
        double r = fabs((double)got[i] - want[i]) / (1e-5 + 1e-4 * fabs((double)want[i]));
        if (!(r <= worst))
            worst = isnan(r) ? INFINITY : r, wi = i;
    }
    cr_expect(worst <= 1.0, "%s: %s: maxdiff %.3g at [%ld]: cgrad %.8g vs torch %.8g (allowed 1e-5 + 1e-4 |torch|)",
              what, part, fabs((double)got[wi] - want[wi]), wi, (double)got[wi], (double)want[wi]);
}

/* Compares run with torch_ref.py's out.bin (loss, gradients, parameters after the Adam step) and pred.bin. */
static void torch_verify(torch_run *run)
{
    char path[512];
    size_t bytes;
    snprintf(path, sizeof path, "%s/out.bin", run->mod.dir);
    float *out = (float *)hx_read_file(path, &bytes);
    long floats = 1 + 2 * run->mod.param_floats;
    cr_assert(out && bytes == sizeof(float) * (size_t)floats, "%s: out.bin has %zu bytes, expected %ld", run->what,
              bytes, floats * 4);
    torch_compare(run->what, "loss", &run->loss, out, 1);
    torch_compare(run->what, "gradients", run->mod.grads, out + 1, run->mod.trainable_floats);
    torch_compare(run->what, "parameters after one Adam step", run->mod.params, out + 1 + run->mod.param_floats,
                  run->mod.param_floats);
    free(out);
    snprintf(path, sizeof path, "%s/pred.bin", run->mod.dir);
    float *pred = (float *)hx_read_file(path, &bytes);
    cr_assert(pred && bytes == sizeof run->pred, "%s: pred.bin has %zu bytes, expected %zu", run->what, bytes,
              sizeof run->pred);
    torch_compare(run->what, "predict", run->pred, pred, TN * TOUT);
    free(pred);
}

/* Every elementwise activation (and those with a parameter once more with a given alpha) in a small Dense model:
 * the outputs, the loss, the gradients and one Adam step against torch.nn.functional (torch_ref.py). */
Test(activations, against_torch)
{
    static torch_run runs[2 * ACT_COUNT];
    const char *dirs[2 * ACT_COUNT];
    int n = 0;
    for (int a = 0; a < ACT_COUNT; a++) {
        if (act_table[a].from == ACT_FROM_ROW)
            continue;
        torch_prepare((cg_activation)a, NAN, &runs[n]);
        dirs[n] = runs[n].mod.dir, n++;
        if (act_table[a].alpha != 0.0f) {
            torch_prepare((cg_activation)a, GIVEN_ALPHA, &runs[n]);
            dirs[n] = runs[n].mod.dir, n++;
        }
    }
    static char log[16384];
    int rc = hx_run_python(OPS_SOURCE_DIR "/torch_ref.py", dirs, n, log, sizeof log);
    if (rc == 77) {
        for (int i = 0; i < n; i++)
            hx_close(&runs[i].mod);
        cr_skip_test("/usr/bin/python3 cannot import torch");
    }
    cr_assert(rc == 0, "torch_ref.py failed (%d):\n%.1000s", rc, log);
    for (int i = 0; i < n; i++) {
        torch_verify(&runs[i]);
        hx_close(&runs[i].mod);
    }
}
