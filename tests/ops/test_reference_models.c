/* test_reference_models.c: the custom model kinds against PyTorch
 * (tests/ops/torch_models.py): a Sequential model of custom layers, a custom
 * model with a residual connection and a shared block, and a functional
 * model with two inputs, two outputs, merge layers and a shared layer.
 *
 * For each model: build it with the cgrad API, emit and compile it
 * (tests/support/harness.c; the functional model in both flavours), take
 * the weights cgrad's init gives for seed 1 and a seeded batch of N = 5
 * samples, and record
 *   - eval_step's loss and metrics (Keras' order; for the functional model
 *     cls_loss, reg_loss, cls_accuracy, reg_mae),
 *   - predict's packed outputs,
 *   - the gradient of every parameter, as test_functional.c gets it: the
 *     model is compiled with plain SGD and lr = 1, so train_step leaves
 *     p - g in the parameter block and g = p_before - p_after.
 * spec.txt names the model and lists the parameter table (name, offset,
 * count); params.bin, x.bin and y.bin hold the parameter block and the
 * packed batch. torch_models.py rebuilds the same computation in float64
 * (Keras kernels are (in, out): x @ kernel), computes the same numbers with
 * autograd and writes them to out.bin (float64), which the test compares.
 *
 * Tolerance: |cgrad - torch| <= 1e-4 max(1, |torch|) for every loss, metric,
 * output and gradient. torch works in float64, so the difference is cgrad's
 * float32 rounding alone: sums of at most 8 products, tanh, exp and log,
 * a few float32 ulps (1.3e-7 at most was observed); g = p_before - p_after
 * adds the rounding of p - g, about 6e-8 max(|p|, |g|) with |p| < 1. Any
 * real error (a kernel taken from the wrong call, a missing loss weight, a
 * dropped residual or relu) moves the values by 1e-2 or more. Failures print
 * the largest difference and where it is: "maxdiff 3e-3 at d_shared/kernel[5]".
 *
 * Importing torch takes seconds, so one test prepares every model and runs
 * torch_models.py once over all their folders. Skipped when /usr/bin/python3
 * cannot import torch (torch_models.py exits 77).
 */
#include <criterion/criterion.h>

#include <cgrad.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models.h"

#ifndef OPS_SOURCE_DIR
#define OPS_SOURCE_DIR "."
#endif

#define N 5
#define TOL 1e-4

/* ---- the models ----------------------------------------------------------------------------- */

/* The custom_layer example's MyDense: relu(inputs @ kernel), no bias. */
typedef struct my_dense {
    int units;
} my_dense;

static cg_t my_dense_call(cg_layer_ctx *layer, cg_t inputs, void *self)
{
    const my_dense *d = self;
    int in_features = cg_shape_of(inputs).dims[1];
    cg_t kernel = cg_add_weight(layer, "kernel", CG_SHAPE(in_features, d->units), cg_glorot_uniform(), true);
    return cg_relu(cg_matmul(inputs, kernel));
}

/* Sequential: MyDense(8), MyDense(5), Dense(3) on 6 features; sparse cross-entropy from logits. */
static cg_model *seq_my_dense(const char *name)
{
    static my_dense hidden_1 = {8}, hidden_2 = {5};
    cg_model *m = cg_sequential(name, CG_SHAPE(6));
    cg_model_add(m, cg_custom_layer("MyDense", my_dense_call, &hidden_1));
    cg_model_add(m, cg_custom_layer("MyDense", my_dense_call, &hidden_2));
    cg_model_add(m, cg_dense(3));
    cg_compile(m, .optimizer = cg_sgd(1.0f, 0.0f, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
               .from_logits = true, .metric = CG_ACCURACY, .batch_size = 8);
    return m;
}

/* One model as the test runs it; the packed sizes are per sample. */
typedef struct ref_case {
    const char *kind; /* torch_models.py's name of the computation */
    const char *name; /* the emitted model's name */
    cg_model *(*build)(const char *name);
    cg_flavour flavour;
    int x_width, y_width, out_width, nmetrics;
    long trainable; /* the trainable floats (a shared layer counts once) */
} ref_case;

static const ref_case cases[] = {
    /* my_dense_1 6*8, my_dense_2 8*5, dense_1 5*3+3 */
    {"seq_my_dense", "ref_seq_my_dense", seq_my_dense, CG_PORTABLE, 6, 1, 3, 1, 48 + 40 + 18},
    /* stem 4*6+6, block 6*6+6 (once), head 6*3+3 */
    {"resnet", "ref_resnet", tm_residual, CG_PORTABLE, 4, 1, 3, 1, 30 + 42 + 21},
    /* proj_a 5*4+4, proj_b 3*4+4, shared 4*4+4 (once), cls 8*3+3, reg 4*2+2 */
    {"two_in_two_out", "ref_two_in_two_out", tm_two_in_two_out, CG_PORTABLE, 8, 3, 5, 4, 24 + 16 + 20 + 27 + 10},
    {"two_in_two_out", "ref_two_in_two_out_host", tm_two_in_two_out, CG_HOST, 8, 3, 5, 4, 24 + 16 + 20 + 27 + 10},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* ---- running cgrad ---------------------------------------------------------------------------- */

/* What cgrad computed for one case, kept until torch has run. */
typedef struct ref_run {
    const ref_case *c;
    char label[160]; /* "ref_two_in_two_out (host)" */
    hx_module mod;
    cg_model *m;
    float loss, metrics[4];
    float out[N * 5]; /* predict */
    float *grad;      /* p_before - p_after, trainable floats */
} ref_run;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float unif(float lo, float hi)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng_state >> 40) / 16777216.0);
}

static void write_floats(const char *dir, const char *file, const float *v, long count)
{
    char path[512];
    cr_assert(snprintf(path, sizeof path, "%s/%s", dir, file) < (int)sizeof path);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(v, sizeof(float), (size_t)count, f) == (size_t)count && fclose(f) == 0, "cannot write %s",
              path);
}

/* Builds case c, writes spec.txt, params.bin, x.bin, y.bin into its folder, and records eval_step,
 * predict and the gradient of one SGD step. */
static void prepare(const ref_case *c, ref_run *run)
{
    run->c = c;
    snprintf(run->label, sizeof run->label, "%s (%s)", c->name, c->flavour == CG_HOST ? "host" : "portable");
    cg_model *m = c->build(c->name);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s: %s", run->label, cg_error(cg_model_graph(m)));
    run->m = m;
    hx_module *mod = &run->mod;
    cr_assert(hx_build_model(mod, m, c->flavour, NULL) == 0, "%s: %s", run->label, mod->err);
    cr_assert(mod->train_step && mod->eval_step && mod->predict, "%s: an entry point is missing", run->label);
    cr_assert_eq(mod->trainable_floats, c->trainable, "%s: %ld trainable floats, expected %ld", run->label,
                 mod->trainable_floats, c->trainable);
    cr_assert_eq(mod->param_floats, mod->trainable_floats, "%s: non-trainable parameters", run->label);

    /* the batch: x ~ U(-1, 1); labels packed per output (a class index as a float, then 2 values for reg) */
    float x[N * 8], y[N * 3];
    for (int i = 0; i < N * c->x_width; i++)
        x[i] = unif(-1, 1);
    for (int i = 0; i < N; i++) {
        y[i * c->y_width] = (float)((i * 7 + 1) % 3);
        for (int j = 1; j < c->y_width; j++)
            y[i * c->y_width + j] = unif(-1, 1);
    }

    char path[512];
    cr_assert(snprintf(path, sizeof path, "%s/spec.txt", mod->dir) < (int)sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fprintf(f, "model %s\nn %d\n", c->kind, N);
    for (int p = 0; p < mod->nparams; p++)
        fprintf(f, "param %s %ld %ld\n", mod->param_name(p), mod->param_offset(p), mod->param_count(p));
    cr_assert(fclose(f) == 0);
    write_floats(mod->dir, "params.bin", mod->params, mod->param_floats);
    write_floats(mod->dir, "x.bin", x, N * c->x_width);
    write_floats(mod->dir, "y.bin", y, N * c->y_width);

    /* cgrad: loss and metrics, outputs, then one SGD step with lr 1 */
    cr_assert_float_eq(*mod->lr, 1.0f, 0.0f, "%s: learning rate %g", run->label, (double)*mod->lr);
    mod->eval_step(mod->state, N, x, y, &run->loss, run->metrics);
    mod->predict(mod->state, N, x, run->out);
    long count = mod->trainable_floats;
    float train_loss, metrics[4];
    float *p0 = malloc(sizeof(float) * (size_t)count);
    run->grad = malloc(sizeof(float) * (size_t)count);
    cr_assert(p0 && run->grad);
    memcpy(p0, mod->params, sizeof(float) * (size_t)count);
    mod->train_step(mod->state, N, x, y, &train_loss, metrics);
    for (long i = 0; i < count; i++)
        run->grad[i] = p0[i] - mod->params[i];
    cr_expect(train_loss == run->loss, "%s: train_step loss %.9g, eval_step %.9g (no dropout: they must agree)",
              run->label, (double)train_loss, (double)run->loss);
    free(p0);
}

/* ---- comparing with torch --------------------------------------------------------------------- */

static double max_abs_diff, max_rel_diff; /* over one run's comparisons, for the log */

/* Names flat parameter index i by its gradient ("d_shared/kernel[5]"). */
static void param_at(const ref_run *run, long i, char *buf, size_t size)
{
    const hx_module *mod = &run->mod;
    for (int p = 0; p < mod->nparams; p++)
        if (i >= mod->param_offset(p) && i < mod->param_offset(p) + mod->param_count(p)) {
            snprintf(buf, size, "d_%s[%ld]", mod->param_name(p), i - mod->param_offset(p));
            return;
        }
    snprintf(buf, size, "[%ld]", i);
}

/* Compares got[count] with want[count] (what: "gradients", "outputs", ...); reports the worst entry,
 * named by name_of (NULL for a single value). */
static void compare(const ref_run *run, const char *what, const float *got, const double *want, long count,
                    void (*name_of)(const ref_run *, long, char *, size_t))
{
    double worst = -1, wg = 0, ww = 0;
    long wi = 0;
    for (long i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]), scale = fmax(1.0, fabs(want[i]));
        double r = d / (TOL * scale);
        if (!isnan(r)) {
            max_abs_diff = fmax(max_abs_diff, d);
            max_rel_diff = fmax(max_rel_diff, d / scale);
        }
        if (!(r <= worst))
            worst = isnan(r) ? INFINITY : r, wg = got[i], ww = want[i], wi = i;
    }
    char at[192] = "";
    if (name_of)
        name_of(run, wi, at, sizeof at);
    cr_expect(worst <= 1.0, "%s: %s: maxdiff %.3g%s%s: cgrad %.9g vs torch %.9g (allowed %g max(1, |torch|))",
              run->label, what, fabs(wg - ww), name_of ? " at " : "", name_of ? at : "", wg, ww, TOL);
}

/* Names the metric at index i, in Keras' order. */
static void metric_at(const ref_run *run, long i, char *buf, size_t size)
{
    static const char *one[] = {"accuracy"}, *two[] = {"cls_loss", "reg_loss", "cls_accuracy", "reg_mae"};
    snprintf(buf, size, "%s", run->c->nmetrics == 1 ? one[0] : two[i]);
}

/* Names the packed output at index i ("sample 3 reg[1]"). */
static void output_at(const ref_run *run, long i, char *buf, size_t size)
{
    int w = run->c->out_width, j = (int)(i % w);
    if (w == 5)
        snprintf(buf, size, "sample %ld %s[%d]", i / w, j < 3 ? "cls" : "reg", j < 3 ? j : j - 3);
    else
        snprintf(buf, size, "sample %ld logit[%d]", i / w, j);
}

/* Compares run with torch's DIR/out.bin: float64 [loss, metrics, gradients (param floats), outputs]. */
static void verify(ref_run *run)
{
    const ref_case *c = run->c;
    char path[512];
    cr_assert(snprintf(path, sizeof path, "%s/out.bin", run->mod.dir) < (int)sizeof path);
    size_t bytes;
    double *ref = (double *)hx_read_file(path, &bytes);
    long want = 1 + c->nmetrics + run->mod.param_floats + (long)N * c->out_width;
    cr_assert(ref && bytes == sizeof(double) * (size_t)want, "%s: out.bin has %zu bytes, expected %ld", run->label,
              bytes, want * (long)sizeof(double));
    max_abs_diff = max_rel_diff = 0;
    compare(run, "loss", &run->loss, ref, 1, NULL);
    compare(run, "metrics", run->metrics, ref + 1, c->nmetrics, metric_at);
    compare(run, "gradients", run->grad, ref + 1 + c->nmetrics, run->mod.trainable_floats, param_at);
    compare(run, "predict's outputs", run->out, ref + 1 + c->nmetrics + run->mod.param_floats, (long)N * c->out_width,
            output_at);
    cr_log_info("%s: largest difference from torch %.3g, %.3g relative to max(1, |torch|)", run->label, max_abs_diff,
                max_rel_diff);
    free(ref);
    free(run->grad);
    hx_close(&run->mod);
    cg_model_free(run->m);
}

Test(reference_models, torch, .timeout = 240)
{
    static ref_run runs[NCASES];
    const char *dirs[NCASES];
    for (int i = 0; i < NCASES; i++) {
        prepare(&cases[i], &runs[i]);
        dirs[i] = runs[i].mod.dir;
    }
    char log[4096];
    int status = hx_run_python(OPS_SOURCE_DIR "/torch_models.py", dirs, NCASES, log, sizeof log);
    if (status == 77)
        cr_skip_test("torch not installed");
    cr_assert(status == 0, "torch_models.py failed:\n%s", log);
    for (int i = 0; i < NCASES; i++)
        verify(&runs[i]);
}
