/* test_conv_forward.c: forward values of the convolution layers.
 *
 *   host_matches_portable   a small CNN (Conv2D same + relu, MaxPooling2D,
 *                           DepthwiseConv2D, BatchNormalization, Conv2D
 *                           stride 2, AveragePooling2D same, Flatten, Dense)
 *                           emitted in both flavours with the same parameters:
 *                           predict, eval_step and the gradients of one
 *                           train_step agree within 1e-4 (relative to
 *                           max(1, |value|)); the flavours differ only in the
 *                           summation order (im2col + GEMM against loops).
 *   conv2d_matches_naive    one Conv2D layer with a random configuration
 *                           (size, channels, filters, kernel height and width,
 *                           stride or dilation, valid or same padding, bias,
 *                           relu) against a direct six-loop convolution written
 *                           here, TensorFlow's "same" padding rule included
 *                           (extra padding at the bottom and right); both
 *                           flavours, within 1e-5 (relative, as above).
 *   stack_covers_kernels    the header's stack figures of a model with a
 *                           direct first convolution and max pooling cover
 *                           the largest frame gcc's -fstack-usage gives the
 *                           kernels each entry point calls, both flavours.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdcheck.h"
#include "harness.h"

static int rnd_int(uint64_t *s, int lo, int hi)
{
    return lo + (int)(fd_next(s) % (uint64_t)(hi - lo + 1));
}

static void fill(uint64_t *s, float *v, long count, float lo, float hi)
{
    for (long i = 0; i < count; i++)
        v[i] = fd_unif(s, lo, hi);
}

/* Worst |got - want| / max(1, |want|) over count entries; its index in *at. */
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

/* ---- host and portable agree ------------------------------------------------------- */

#define H 12
#define W 11
#define C 3
#define NB 7
#define CLASSES 5

static cg_model *small_cnn(void)
{
    cg_model *m = cg_sequential("fwd_cnn", CG_SHAPE(H, W, C));
    cg_model_add(m, cg_conv2d(4, 3, .padding = CG_SAME, .activation = CG_RELU));
    cg_model_add(m, cg_max_pooling2d(2));
    cg_model_add(m, cg_depthwise_conv2d(3, .padding = CG_SAME, .activation = CG_RELU));
    cg_model_add(m, cg_batch_normalization());
    cg_model_add(m, cg_conv2d(6, 3, .kernel_w = 2, .strides = 2, .padding = CG_SAME, .use_bias = false));
    cg_model_add(m, cg_average_pooling2d(2, .padding = CG_SAME));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(CLASSES));
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 8);
    return m;
}

Test(conv_forward, host_matches_portable)
{
    hx_module mod[2];
    cg_model *m[2];
    static const cg_flavour fl[2] = {CG_HOST, CG_PORTABLE};
    for (int k = 0; k < 2; k++) {
        m[k] = small_cnn();
        cr_assert(!cg_failed(cg_model_graph(m[k])), "%s", cg_error(cg_model_graph(m[k])));
        cr_assert(hx_build_model(&mod[k], m[k], fl[k], NULL) == 0, "%s: %s", k ? "portable" : "host", mod[k].err);
    }
    cr_assert_eq(mod[0].param_floats, mod[1].param_floats);
    cr_assert_eq(mod[0].trainable_floats, mod[1].trainable_floats);
    /* random parameters (moving variances positive), the same in both */
    uint64_t s = 7;
    fill(&s, mod[0].params, mod[0].param_floats, -0.5f, 0.5f);
    for (int i = 0; i < mod[0].nparams; i++)
        if (strstr(mod[0].param_name(i), "moving_variance") || strstr(mod[0].param_name(i), "gamma"))
            fill(&s, mod[0].params + mod[0].param_offset(i), mod[0].param_count(i), 0.5f, 1.5f);
    memcpy(mod[1].params, mod[0].params, sizeof(float) * (size_t)mod[0].param_floats);
    float x[NB * H * W * C], y[NB], out[2][NB * CLASSES];
    fill(&s, x, NB * H * W * C, -1.0f, 1.0f);
    for (int i = 0; i < NB; i++)
        y[i] = (float)(i % CLASSES);

    long at;
    for (int k = 0; k < 2; k++)
        mod[k].predict(mod[k].state, NB, x, out[k]);
    double d = worst_diff(out[1], out[0], NB * CLASSES, &at);
    cr_expect(d <= 1e-4, "predict: portable %.8g vs host %.8g at [%ld] (maxdiff %.3g)", (double)out[1][at],
              (double)out[0][at], at, d);
    float loss[2], metric[2];
    for (int k = 0; k < 2; k++)
        mod[k].eval_step(mod[k].state, NB, x, y, &loss[k], &metric[k]);
    cr_expect(fabsf(loss[0] - loss[1]) <= 1e-4f * fmaxf(1.0f, fabsf(loss[0])),
              "eval_step loss: host %.8g, portable %.8g", (double)loss[0], (double)loss[1]);
    cr_expect_eq(metric[0], metric[1], "eval_step accuracy: host %g, portable %g", (double)metric[0],
                 (double)metric[1]);
    for (int k = 0; k < 2; k++)
        mod[k].train_step(mod[k].state, NB, x, y, &loss[k], &metric[k]);
    cr_expect(fabsf(loss[0] - loss[1]) <= 1e-4f * fmaxf(1.0f, fabsf(loss[0])),
              "train_step loss: host %.8g, portable %.8g", (double)loss[0], (double)loss[1]);
    d = worst_diff(mod[1].grads, mod[0].grads, mod[0].trainable_floats, &at);
    cr_expect(d <= 1e-4, "gradients: portable %.8g vs host %.8g at [%ld] (maxdiff %.3g)", (double)mod[1].grads[at],
              (double)mod[0].grads[at], at, d);
    /* the moving averages moved alike */
    d = worst_diff(mod[1].params + mod[0].trainable_floats, mod[0].params + mod[0].trainable_floats,
                   mod[0].param_floats - mod[0].trainable_floats, &at);
    cr_expect(d <= 1e-5, "moving averages after a step: maxdiff %.3g", d);
    for (int k = 0; k < 2; k++) {
        hx_close(&mod[k]);
        cg_model_free(m[k]);
    }
}

/* ---- conv2d against a direct loop --------------------------------------------------- */

typedef struct conv_cfg {
    int h, w, c, f, kh, kw, stride, dil, n;
    bool same, bias, relu;
} conv_cfg;

/* Output size and leading padding of one axis, written from TensorFlow's documentation. */
static int out_size(int in, int k, int stride, int dil, bool same, int *pad_lo)
{
    int span = dil * (k - 1) + 1;
    if (!same) {
        *pad_lo = 0;
        return (in - span) / stride + 1;
    }
    int out = (in + stride - 1) / stride, total = (out - 1) * stride + span - in;
    *pad_lo = total > 0 ? total / 2 : 0;
    return out;
}

static void naive_conv(const conv_cfg *q, const float *x, const float *k, const float *b, float *y, int oh, int ow,
                       int pt, int pl)
{
    for (int n = 0; n < q->n; n++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
                for (int f = 0; f < q->f; f++) {
                    double acc = q->bias ? b[f] : 0.0;
                    for (int p = 0; p < q->kh; p++)
                        for (int r = 0; r < q->kw; r++)
                            for (int ch = 0; ch < q->c; ch++) {
                                int row = i * q->stride + p * q->dil - pt, col = j * q->stride + r * q->dil - pl;
                                if (row < 0 || row >= q->h || col < 0 || col >= q->w)
                                    continue;
                                acc += (double)x[((n * q->h + row) * q->w + col) * q->c + ch] *
                                       k[((p * q->kw + r) * q->c + ch) * q->f + f];
                            }
                    if (q->relu && acc < 0)
                        acc = 0;
                    y[((n * oh + i) * ow + j) * q->f + f] = (float)acc;
                }
}

static void check_naive(uint64_t seed)
{
    uint64_t s = seed;
    conv_cfg q = {.h = rnd_int(&s, 5, 9),
                  .w = rnd_int(&s, 5, 9),
                  .c = rnd_int(&s, 1, 4),
                  .f = rnd_int(&s, 1, 5),
                  .kh = rnd_int(&s, 1, 4),
                  .kw = rnd_int(&s, 1, 4),
                  .stride = 1,
                  .dil = 1,
                  .n = rnd_int(&s, 1, 4)};
    if (rnd_int(&s, 0, 1))
        q.stride = rnd_int(&s, 2, 3);
    else
        q.dil = rnd_int(&s, 1, 2);
    q.same = rnd_int(&s, 0, 1);
    if (q.dil * (q.kh - 1) + 1 > q.h || q.dil * (q.kw - 1) + 1 > q.w)
        q.same = true; /* a valid window must fit */
    q.bias = rnd_int(&s, 0, 1);
    q.relu = rnd_int(&s, 0, 1);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "input %dx%dx%d, %d filters %dx%d, stride %d, dilation %d, %s, %s, %s, n=%d", q.h, q.w,
             q.c, q.f, q.kh, q.kw, q.stride, q.dil, q.same ? "same" : "valid", q.bias ? "bias" : "no bias",
             q.relu ? "relu" : "linear", q.n);
    int pt, pl, oh = out_size(q.h, q.kh, q.stride, q.dil, q.same, &pt),
                ow = out_size(q.w, q.kw, q.stride, q.dil, q.same, &pl);
    cr_assert(oh > 0 && ow > 0, "bad random configuration: %s", cfg);
    cr_log_info("conv2d_matches_naive: %s", cfg);
    long xn = (long)q.n * q.h * q.w * q.c, yn = (long)q.n * oh * ow * q.f;
    float *x = malloc(sizeof(float) * (size_t)xn), *want = malloc(sizeof(float) * (size_t)yn);
    float *got = malloc(sizeof(float) * (size_t)yn);
    fill(&s, x, xn, -1.0f, 1.0f);
    for (int k = 0; k < 2; k++) {
        cg_flavour fl = k ? CG_PORTABLE : CG_HOST;
        cg_model *m = cg_sequential("fwd_conv", CG_SHAPE(q.h, q.w, q.c));
        cg_model_add(m, cg_conv2d(q.f, q.kh, .kernel_w = q.kw, .strides = q.stride, .dilation = q.dil,
                                  .padding = q.same ? CG_SAME : CG_VALID, .use_bias = q.bias,
                                  .activation = q.relu ? CG_RELU : CG_LINEAR));
        cg_compile(m, .optimizer = cg_sgd(0.01f, 0, false), .loss = CG_MSE, .batch_size = 4);
        cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", cfg, cg_error(cg_model_graph(m)));
        cg_shape os = cg_shape_of(cg_model_output(m));
        cr_assert(os.rank == 4 && os.dims[1] == oh && os.dims[2] == ow && os.dims[3] == q.f,
                  "%s: output (n, %d, %d, %d), expected (n, %d, %d, %d)", cfg, os.dims[1], os.dims[2], os.dims[3], oh,
                  ow, q.f);
        hx_module mod;
        cr_assert(hx_build_model(&mod, m, fl, NULL) == 0, "%s: %s", cfg, mod.err);
        long kc, bc = 0, ko = hx_param(&mod, "conv2d_1/kernel", &kc), bo = hx_param(&mod, "conv2d_1/bias", &bc);
        cr_assert(ko >= 0 && kc == (long)q.kh * q.kw * q.c * q.f, "%s: kernel %ld floats", cfg, kc);
        cr_assert(q.bias ? bo >= 0 && bc == q.f : bo < 0, "%s: bias at %ld", cfg, bo);
        uint64_t ps = seed * 31 + 1;
        fill(&ps, mod.params, mod.param_floats, -1.0f, 1.0f);
        naive_conv(&q, x, mod.params + ko, q.bias ? mod.params + bo : NULL, want, oh, ow, pt, pl);
        mod.predict(mod.state, q.n, x, got);
        long at;
        double d = worst_diff(got, want, yn, &at);
        cr_expect(d <= 1e-5, "%s (%s): predict %.8g vs direct %.8g at [%ld] (maxdiff %.3g)", cfg,
                  k ? "portable" : "host", (double)got[at], (double)want[at], at, d);
        hx_close(&mod);
        cg_model_free(m);
    }
    free(x);
    free(want);
    free(got);
}

Test(conv_forward, conv2d_matches_naive)
{
    check_naive(2024);  /* 6x7x4, one 3x4 filter, same, bias, relu */
    check_naive(31337); /* 8x8x2, 4x3 kernel, stride 2, same (uneven padding) */
    check_naive(8);     /* 7x7x2, 3x1 kernel, dilation 2, valid, bias */
    check_naive(9);     /* 8x6x3, 2x3 kernel, stride 3, same, relu, n = 1 */
}

/* ---- the header's stack figure against the compiler's frames ------------------------- */

/* The value of the #define ending in `suffix` in the header text h, or -1. */
static long header_define(const char *h, const char *suffix)
{
    const char *p = strstr(h, suffix);
    return p ? strtol(p + strlen(suffix), NULL, 10) : -1;
}

/* Largest frame in an -fstack-usage file of the kernels (functions ending in _fwd, _bwd or _piece), forward
 * kernels alone (no _bwd in the name) when fwd_only. */
static long largest_kernel_frame(const char *su_path, bool fwd_only)
{
    FILE *f = fopen(su_path, "r");
    cr_assert(f, "cannot open %s", su_path);
    char line[512];
    long best = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t'), *name = line;
        if (!tab)
            continue;
        *tab = '\0';
        for (char *c = line; *c; c++)
            if (*c == ':')
                name = c + 1; /* file:line:column:function */
        size_t len = strlen(name);
        bool kernel = (len > 4 && (!strcmp(name + len - 4, "_fwd") || !strcmp(name + len - 4, "_bwd"))) ||
                      (len > 6 && !strcmp(name + len - 6, "_piece"));
        long bytes = strtol(tab + 1, NULL, 10);
        if (kernel && !(fwd_only && strstr(name, "_bwd")) && bytes > best)
            best = bytes;
    }
    fclose(f);
    return best;
}

/* Conv2D(32, 3, relu) on one channel (a direct convolution on the host), MaxPooling2D(2) over an even map
 * (the one-pass gradient), Flatten, Dense: the estimate of predict must cover every forward kernel's frame,
 * train_step's every kernel's (gcc -O2, as the firmware builds; frames of kernels called one at a time). */
static void check_stack(cg_flavour fl)
{
    const char *fname = fl == CG_HOST ? "host" : "portable";
    cg_model *m = cg_sequential("stack_cnn", CG_SHAPE(12, 12, 1));
    cg_model_add(m, cg_conv2d(32, 3, .activation = CG_RELU));
    cg_model_add(m, cg_max_pooling2d(2));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(3));
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
               .from_logits = true, .batch_size = 4);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, fl, NULL) == 0, "%s: %s", fname, mod.err);
    char path[512], cmd[1400], h[16384];
    snprintf(path, sizeof path, "%s/stack_cnn.h", mod.dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    h[fread(h, 1, sizeof h - 1, f)] = '\0';
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cc -std=c99 -O2 -fstack-usage -I'%s/../../runtime/include' -c '%s/stack_cnn.c' -o '%s/su.o'",
             OPS_SOURCE_DIR, mod.dir, mod.dir);
    cr_assert(system(cmd) == 0, "%s: %s failed", fname, cmd);
    snprintf(path, sizeof path, "%s/su.su", mod.dir);
    long predict = header_define(h, "_STACK_PREDICT_BYTES"), train = header_define(h, "_STACK_TRAIN_STEP_BYTES");
    long fwd = largest_kernel_frame(path, true), all = largest_kernel_frame(path, false);
    cr_assert(fwd > 0 && all >= fwd, "%s: no kernel frames in %s", fname, path);
    cr_expect(predict >= fwd, "%s: STACK_PREDICT_BYTES is %ld, but a forward kernel's frame is %ld bytes", fname,
              predict, fwd);
    cr_expect(train >= all, "%s: STACK_TRAIN_STEP_BYTES is %ld, but a kernel's frame is %ld bytes", fname, train, all);
    hx_close(&mod);
    cg_model_free(m);
}

Test(conv_forward, stack_covers_kernels)
{
    check_stack(CG_PORTABLE);
    check_stack(CG_HOST);
}
