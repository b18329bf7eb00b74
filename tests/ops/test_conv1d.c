/* test_conv1d.c: the Conv1D layer (keras.layers.Conv1D on (n, steps,
 * channels), built as a Conv2D over (n, 1, steps, channels)).
 *
 *   builder     shapes for valid, same and causal padding, strides and
 *               dilation; the weights are Keras': conv1d_1/kernel
 *               (kernel_size, channels, filters) and conv1d_1/bias
 *               (filters); errors (an input that is not (n, steps,
 *               channels), a kernel longer than the sequence with valid
 *               padding, causal padding on Conv2D or pooling, a kernel
 *               width) name the user's line and the layer, print nothing
 *               and are sticky
 *   forward     predict against a direct convolution loop written here from
 *               Keras' definition (causal: kernel_size - 1 dilated steps of
 *               zeros before the sequence), both flavours, within 1e-5
 *               (relative to max(1, |value|))
 *   gradcheck   the gradient train_step leaves, against central finite
 *               differences of its own loss (tests/support/fdcheck.c), for a
 *               stack of Conv1D layers (causal with dilation, same with
 *               stride 2, valid without bias), both flavours; eps 1e-2,
 *               tolerance 5e-3 as in test_gradcheck_conv.c; tanh, not relu,
 *               so no kink lies within eps
 *
 * PyTorch (torch.nn.Conv1d) checks the outputs, gradients and one Adam step
 * of Conv1D models in test_reference.c (reference/torch).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdcheck.h"
#include "harness.h"
#include "../../compiler/cgrad_int.h"

/* ---- builder ------------------------------------------------------------------------------ */

/* Expects the model's graph to have failed at line with an error that names every needle. */
static void expect_failed(cg_model *m, int rc, int line, const char *const *needles, int n)
{
    cg_graph *g = cg_model_graph(m);
    cr_expect(rc != 0 && cg_failed(g), "the layer was accepted");
    char where[64], first[512];
    snprintf(where, sizeof where, "test_conv1d.c:%d:", line);
    snprintf(first, sizeof first, "%s", cg_error(g));
    cr_expect(strstr(first, where) != NULL, "error \"%s\" does not name the line: expected %s", first, where);
    for (int i = 0; i < n; i++)
        cr_expect(strstr(first, needles[i]) != NULL, "error \"%s\" does not mention \"%s\"", first, needles[i]);
    cr_expect(cg_model_add(m, cg_flatten()) != 0, "a layer after the error was accepted");
    cr_expect_str_eq(cg_error(g), first, "the first message was replaced");
    fflush(stdout);
    fflush(stderr);
    cr_expect_stdout_eq_str("", "the library printed to stdout");
    cr_expect_stderr_eq_str("", "the library printed to stderr");
    cg_model_free(m);
}
#define FAILS(m, rc, line, ...)                               \
    expect_failed(m, rc, line, (const char *[]){__VA_ARGS__}, \
                  (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)))

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

TestSuite(conv1d_builder, .init = quiet);

/* The output shape of the model's last layer, (n, steps, filters) expected. */
static void expect_output(cg_model *m, int steps, int filters, const char *what)
{
    cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", what, cg_error(cg_model_graph(m)));
    cg_shape s = cg_shape_of(cg_model_output(m));
    cr_expect(s.rank == 3 && s.dims[0] == CG_BATCH && s.dims[1] == steps && s.dims[2] == filters,
              "%s: output rank %d (n, %d, %d), expected (n, %d, %d)", what, s.rank, s.dims[1], s.dims[2], steps,
              filters);
}

Test(conv1d_builder, output_shapes)
{
    cg_model *m = cg_sequential("shapes", CG_SHAPE(10, 3));
    cg_model_add(m, cg_conv1d(4, 3));
    expect_output(m, 8, 4, "valid, kernel 3 on 10 steps");
    cg_model_add(m, cg_conv1d(5, 4, .padding = CG_SAME));
    expect_output(m, 8, 5, "same");
    cg_model_add(m, cg_conv1d(6, 3, .padding = CG_SAME, .strides = 3));
    expect_output(m, 3, 6, "same, stride 3: ceil(8 / 3)");
    cg_model_add(m, cg_conv1d(2, 3, .padding = CG_CAUSAL, .dilation = 4));
    expect_output(m, 3, 2, "causal, dilation 4 (span 9 on 3 steps)");
    cg_model_add(m, cg_conv1d(7, 2, .strides = 2, .padding = CG_CAUSAL));
    expect_output(m, 2, 7, "causal, stride 2");
    cg_model_free(m);
}

/* Keras' weight names and shapes, so checkpoints match: kernel (kernel_size, channels, filters), bias (filters). */
Test(conv1d_builder, keras_weights)
{
    cg_model *m = cg_sequential("weights", CG_SHAPE(9, 2));
    cg_model_add(m, cg_conv1d(4, 3, .padding = CG_SAME));
    cg_model_add(m, cg_conv1d(5, 2, .use_bias = false, .name = "temporal"));
    cg_graph *g = cg_model_graph(m);
    cr_assert(!cg_failed(g), "%s", cg_error(g));
    static const struct {
        const char *name;
        int rank, dims[3];
    } want[] = {{"conv1d_1/kernel", 3, {3, 2, 4}}, {"conv1d_1/bias", 1, {4}}, {"temporal/kernel", 3, {2, 4, 5}}};
    cr_expect(g->nvars == 3, "%d weights, expected 3 (temporal has no bias)", g->nvars);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int v = 0;
        while (v < g->nvars && strcmp(g->vars[v].name, want[i].name))
            v++;
        cr_assert(v < g->nvars, "no weight %s", want[i].name);
        const shape *s = &g->nodes[g->vars[v].node].sh;
        cr_expect(s->rank == want[i].rank && !memcmp(s->d, want[i].dims, sizeof(int) * (size_t)s->rank),
                  "%s: rank %d (%d, %d, %d)", want[i].name, s->rank, s->d[0], s->d[1], s->d[2]);
    }
    cr_expect_str_eq(g->layers[0].kind, "Conv1D");
    cg_model_free(m);
}

Test(conv1d_builder, input_without_channels)
{
    cg_model *m = cg_sequential("flat", CG_SHAPE(16));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv1d(4, 3));
    FAILS(m, rc, line, "conv1d_1: ", "(n, 16)", "Conv1D needs (n, steps, channels)", "(steps, 1)");
}

Test(conv1d_builder, input_an_image)
{
    cg_model *m = cg_sequential("image", CG_SHAPE(6, 6, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv1d(4, 3, .name = "temporal"));
    FAILS(m, rc, line, "temporal: ", "(n, 6, 6, 2)", "(n, steps, channels)");
}

Test(conv1d_builder, kernel_longer_than_sequence)
{
    cg_model *m = cg_sequential("short", CG_SHAPE(4, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv1d(3, 5));
    FAILS(m, rc, line, "conv1d_1: ", "kernel_size 5", "(n, 4, 2)", "valid", "no output");
}

Test(conv1d_builder, dilated_kernel_longer_than_sequence)
{
    cg_model *m = cg_sequential("dilated", CG_SHAPE(6, 1));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv1d(2, 3, .dilation = 3));
    FAILS(m, rc, line, "conv1d_1: ", "kernel_size 3", "dilation 3", "7 steps", "(n, 6, 1)");
}

Test(conv1d_builder, causal_padding_on_conv2d)
{
    cg_model *m = cg_sequential("causal2d", CG_SHAPE(6, 6, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv2d(4, 3, .padding = CG_CAUSAL));
    FAILS(m, rc, line, "conv2d_1: ", "causal", "Conv1D");
}

Test(conv1d_builder, causal_padding_on_pooling)
{
    cg_model *m = cg_sequential("causal_pool", CG_SHAPE(6, 6, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_max_pooling2d(2, .padding = CG_CAUSAL));
    FAILS(m, rc, line, "max_pooling2d_1: ", "causal", "Conv1D");
}

Test(conv1d_builder, kernel_width)
{
    cg_model *m = cg_sequential("width", CG_SHAPE(8, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv1d(4, 3, .kernel_w = 2));
    FAILS(m, rc, line, "conv1d_1: ", "kernel_w");
}

Test(conv1d_builder, no_filters)
{
    cg_model *m = cg_sequential("nofilters", CG_SHAPE(8, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv1d(0, 3));
    FAILS(m, rc, line, "conv1d_1: ", "filters", "0");
}

Test(conv1d_builder, unknown_padding)
{
    cg_model *m = cg_sequential("pad", CG_SHAPE(8, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv1d(4, 3, .padding = (cg_padding)7));
    FAILS(m, rc, line, "conv1d_1: ", "padding 7", "CG_CAUSAL");
}

/* ---- forward: against a direct loop --------------------------------------------------------- */

typedef struct c1_cfg {
    int steps, c, f, k, stride, dil, n;
    cg_padding padding;
    bool bias;
} c1_cfg;

/* Output steps and the zeros before the sequence, from Keras' definition of each padding. */
static int c1_out(const c1_cfg *q, int *pad_lo)
{
    int span = q->dil * (q->k - 1) + 1;
    *pad_lo = 0;
    if (q->padding == CG_VALID)
        return (q->steps - span) / q->stride + 1;
    if (q->padding == CG_CAUSAL) {
        *pad_lo = span - 1;
        return (q->steps - 1) / q->stride + 1;
    }
    int out = (q->steps + q->stride - 1) / q->stride, total = (out - 1) * q->stride + span - q->steps;
    *pad_lo = total > 0 ? total / 2 : 0;
    return out;
}

/* y[b, t, f] = bias[f] + sum over taps j and channels ch of x[b, t stride + j dil - pad, ch] kernel[j, ch, f]. */
static void c1_naive(const c1_cfg *q, const float *x, const float *kernel, const float *bias, float *y, int out,
                     int pad)
{
    for (int b = 0; b < q->n; b++)
        for (int t = 0; t < out; t++)
            for (int f = 0; f < q->f; f++) {
                double acc = bias ? bias[f] : 0.0;
                for (int j = 0; j < q->k; j++) {
                    int s = t * q->stride + j * q->dil - pad;
                    for (int ch = 0; s >= 0 && s < q->steps && ch < q->c; ch++)
                        acc += (double)x[(b * q->steps + s) * q->c + ch] * kernel[(j * q->c + ch) * q->f + f];
                }
                y[(b * out + t) * q->f + f] = (float)acc;
            }
}

/* Worst |got - want| / max(1, |want|); its index in *at. */
static double worst_diff(const float *got, const float *want, long count, long *at)
{
    double worst = 0;
    *at = 0;
    for (long i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d, *at = i;
    }
    return worst;
}

/* One configuration in one flavour: random parameters and input, predict against c1_naive. */
static void check_forward(const c1_cfg *q, cg_flavour fl)
{
    static const char *pads[] = {"valid", "same", "causal"};
    char cfg[160];
    snprintf(cfg, sizeof cfg, "%d steps x %d, %d filters of %d, stride %d, dilation %d, %s, %s (%s)", q->steps, q->c,
             q->f, q->k, q->stride, q->dil, pads[q->padding], q->bias ? "bias" : "no bias",
             fl == CG_HOST ? "host" : "portable");
    int pad, out = c1_out(q, &pad);
    cg_model *m = cg_sequential("fwd_conv1d", CG_SHAPE(q->steps, q->c));
    cg_model_add(
        m, cg_conv1d(q->f, q->k, .strides = q->stride, .dilation = q->dil, .padding = q->padding, .use_bias = q->bias));
    cg_compile(m, .optimizer = cg_sgd(0.01f, 0, false), .loss = CG_MSE, .batch_size = 4);
    expect_output(m, out, q->f, cfg);
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, fl, NULL) == 0, "%s: %s", cfg, mod.err);
    long kc, bc = 0, ko = hx_param(&mod, "conv1d_1/kernel", &kc), bo = hx_param(&mod, "conv1d_1/bias", &bc);
    cr_assert(ko >= 0 && kc == (long)q->k * q->c * q->f, "%s: kernel of %ld floats", cfg, kc);
    cr_assert(q->bias ? bo >= 0 && bc == q->f : bo < 0, "%s: bias at %ld", cfg, bo);
    uint64_t s = fd_seed(cfg);
    long xn = (long)q->n * q->steps * q->c, yn = (long)q->n * out * q->f;
    float *x = malloc(sizeof(float) * (size_t)xn), *want = malloc(sizeof(float) * (size_t)yn);
    float *got = malloc(sizeof(float) * (size_t)yn);
    fd_fill(&s, x, xn, -1.0f, 1.0f);
    fd_fill(&s, mod.params, mod.param_floats, -1.0f, 1.0f);
    c1_naive(q, x, mod.params + ko, q->bias ? mod.params + bo : NULL, want, out, pad);
    mod.predict(mod.state, q->n, x, got);
    long at;
    double d = worst_diff(got, want, yn, &at);
    cr_expect(d <= 1e-5, "%s: predict %.8g vs direct %.8g at [%ld] (maxdiff %.3g)", cfg, (double)got[at],
              (double)want[at], at, d);
    free(x), free(want), free(got);
    hx_close(&mod);
    cg_model_free(m);
}

Test(conv1d, matches_direct_loop)
{
    static const c1_cfg cases[] = {
        {9, 2, 3, 3, 1, 1, 3, CG_VALID, true},
        {8, 3, 2, 4, 1, 1, 2, CG_SAME, true},    /* even kernel: the odd zero goes after the sequence */
        {10, 2, 4, 3, 3, 1, 3, CG_SAME, false},  /* stride 3 */
        {7, 3, 2, 3, 1, 2, 2, CG_CAUSAL, true},  /* 4 zeros before, none after */
        {9, 1, 3, 2, 2, 1, 4, CG_CAUSAL, false}, /* causal with a stride */
        {11, 2, 2, 3, 1, 3, 1, CG_VALID, true},  /* dilation 3 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int fl = 0; fl < 2; fl++)
            check_forward(&cases[i], fl ? CG_PORTABLE : CG_HOST);
}

/* ---- gradients: finite differences ----------------------------------------------------------- */

#define STEPS 9
#define CHANNELS 2
#define OUTS 2

/* Causal with dilation 2 and a bias, same with stride 2, valid without bias, then Dense. */
static cg_model *grad_model(const char *name)
{
    cg_model *m = cg_sequential(name, CG_SHAPE(STEPS, CHANNELS));
    cg_model_add(m, cg_conv1d(3, 3, .padding = CG_CAUSAL, .dilation = 2, .activation = CG_TANH));
    cg_model_add(m, cg_conv1d(4, 2, .padding = CG_SAME, .strides = 2, .activation = CG_TANH));
    cg_model_add(m, cg_conv1d(2, 2, .use_bias = false));
    cg_model_add(m, cg_activation_layer(CG_TANH));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(OUTS));
    return m;
}

static void check_gradients(cg_flavour fl)
{
    const char *what = fl == CG_HOST ? "conv1d stack (host)" : "conv1d stack (portable)";
    cg_model *m = grad_model(fl == CG_HOST ? "gc_conv1d_host" : "gc_conv1d");
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = 6);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", what, cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, fl, NULL) == 0, "%s: %s", what, mod.err);
    uint64_t s = fd_seed(what);
    int n = 5;
    float x[5 * STEPS * CHANNELS], y[5 * OUTS];
    fd_fill(&s, mod.params, mod.param_floats, -1.0f, 1.0f);
    fd_fill(&s, x, n * STEPS * CHANNELS, -1.0f, 1.0f);
    fd_fill(&s, y, n * OUTS, -1.0f, 1.0f);
    fd_check_model(what, &mod, n, x, y, 1e-2, 5e-3, true);
    hx_close(&mod);
    cg_model_free(m);
}

Test(conv1d, gradients_portable)
{
    check_gradients(CG_PORTABLE);
}
Test(conv1d, gradients_host)
{
    check_gradients(CG_HOST);
}
