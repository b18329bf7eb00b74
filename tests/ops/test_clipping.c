/* test_clipping.c: gradient clipping of every optimizer (Keras' clipnorm,
 * clipvalue and global_clipnorm), which the emitted step applies to
 * s->grads before the update.
 *
 *   by_hand    a tape graph whose gradients are set by the test: after
 *              NAME_apply_gradients (SGD, lr 1) each parameter moved by its
 *              clipped gradient, worked out here: clipnorm scales each
 *              parameter's gradient alone (a small one stays as it is),
 *              global_clipnorm scales all of them by one factor, clipvalue
 *              clips each value; both flavours.
 *   torch      a Dense model trained for several SGD steps with each kind of
 *              clipping against torch.optim.SGD after clip_grad_norm_ (over
 *              all gradients, or over each parameter's alone) or
 *              clip_grad_value_ (tests/ops/torch_optim.py, skipped without
 *              torch); the same steps without clipping end far away.
 *   errors     two kinds of clipping at once, or a negative or NaN bound, are
 *              refused at the user's line.
 */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#ifndef OPS_SOURCE_DIR
#define OPS_SOURCE_DIR "."
#endif

/* ---- by hand ----------------------------------------------------------------------------------- */

/* The kinds of clipping, as the test names them. */
typedef enum clip_kind { CLIP_NORM, CLIP_GLOBAL, CLIP_VALUE } clip_kind;

/* An SGD optimizer (lr 1) that clips as kind says, at bound c. */
static cg_optimizer clipping_sgd(clip_kind kind, float c)
{
    cg_optimizer o = cg_sgd(1.0f, 0.0f, false);
    if (kind == CLIP_NORM)
        o.clipnorm = c;
    else if (kind == CLIP_GLOBAL)
        o.global_clipnorm = c;
    else
        o.clipvalue = c;
    return o;
}

/* w (4) and b (1) with gradients {3, 4, 0, -2} and {0.5}; the parameters' moves after one step of
 * SGD (lr 1) clipping at 1 must be the clipped gradients written out here. */
static void check_by_hand(clip_kind kind, cg_flavour flavour, float moved[5])
{
    static const char *const names[] = {"clipnorm", "global_clipnorm", "clipvalue"};
    cg_graph *g = cg_graph_new("clip_hand");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 4));
    cg_t w = cg_variable(g, "w", CG_SHAPE(4, 1), cg_glorot_uniform());
    cg_t b = cg_variable(g, "b", CG_SHAPE(1), cg_zeros());
    cg_gradients(g, cg_mean(cg_add(cg_matmul(x, w), b)), w, b);
    cr_assert(cg_apply_gradients(g, clipping_sgd(kind, 1.0f)) == 0, "%s", cg_error(g));
    hx_module mod;
    cr_assert(hx_build_graph(&mod, g, 1, flavour, NULL) == 0, "%s", mod.err);
    void (*apply)(void *s);
    void *addr = dlsym(mod.so, "clip_hand_apply_gradients");
    cr_assert_not_null(addr);
    memcpy(&apply, &addr, sizeof apply);
    long ow = hx_param(&mod, "w", NULL), ob = hx_param(&mod, "b", NULL);
    cr_assert(ow >= 0 && ob >= 0);
    const float gw[4] = {3.0f, 4.0f, 0.0f, -2.0f}, gb = 0.5f;
    double want[5];
    double nw = sqrt(9.0 + 16.0 + 4.0), joint = sqrt(nw * nw + 0.25);
    for (int i = 0; i < 5; i++) {
        double v = i < 4 ? gw[i] : gb;
        if (kind == CLIP_NORM)
            want[i] = i < 4 ? v / nw : v; /* b's gradient is under the bound: unchanged */
        else if (kind == CLIP_GLOBAL)
            want[i] = v / joint;
        else
            want[i] = fmax(-1.0, fmin(1.0, v));
    }
    memcpy(mod.grads + ow, gw, sizeof gw);
    mod.grads[ob] = gb;
    float before[5];
    memcpy(before, mod.params + ow, 4 * sizeof(float));
    before[4] = mod.params[ob];
    apply(mod.state);
    for (int i = 0; i < 5; i++) {
        moved[i] = before[i] - (i < 4 ? mod.params[ow + i] : mod.params[ob]);
        cr_expect(fabs(moved[i] - want[i]) <= 1e-6 + 1e-5 * fabs(want[i]),
                  "%s, %s: %s moved by %.9g, the clipped gradient is %.9g", names[kind],
                  flavour == CG_HOST ? "host" : "portable", i < 4 ? "w" : "b", (double)moved[i], want[i]);
    }
    hx_close(&mod);
    cg_graph_free(g);
}

Test(clipping, by_hand)
{
    for (int f = 0; f < 2; f++) {
        float moved[3][5];
        for (int k = 0; k < 3; k++)
            check_by_hand((clip_kind)k, f ? CG_HOST : CG_PORTABLE, moved[k]);
        /* per parameter is not global: b keeps its 0.5 under clipnorm, shrinks with the rest under global */
        cr_expect(fabsf(moved[CLIP_NORM][4] - moved[CLIP_GLOBAL][4]) > 0.3f,
                  "clipnorm and global_clipnorm moved b alike (%g, %g)", (double)moved[CLIP_NORM][4],
                  (double)moved[CLIP_GLOBAL][4]);
    }
}

/* ---- against torch --------------------------------------------------------------------------- */

#define REF_N 8
#define REF_STEPS 5
#define REF_IN 5
#define REF_OUT 3

/* cgrad's side of one case, kept until torch has run. */
typedef struct clip_run {
    hx_module mod;
    cg_model *m;
    float loss[REF_STEPS];
} clip_run;

/* Writes count floats to dir/file. */
static void write_floats(const char *dir, const char *file, const float *v, long count)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(v, sizeof(float), (size_t)count, f) == (size_t)count && fclose(f) == 0, "cannot write %s",
              path);
}

/* 5 -> Dense(8, tanh) -> Dense(3), MSE, SGD (lr 0.5) clipping as kind says at c: writes spec.txt,
 * the parameters before training and the batches, and takes the REF_STEPS steps. */
static void clip_prepare(clip_run *run, clip_kind kind, float c, cg_flavour flavour)
{
    static const char *const words[] = {"norm", "global", "value"};
    char name[64];
    snprintf(name, sizeof name, "clip_%s_%s", words[kind], flavour == CG_HOST ? "host" : "portable");
    cg_model *m = cg_sequential(name, CG_SHAPE(REF_IN));
    cg_model_add(m, cg_dense(8, .activation = CG_TANH));
    cg_model_add(m, cg_dense(REF_OUT));
    cg_optimizer opt = clipping_sgd(kind, c);
    opt.lr = 0.5f;
    cg_compile(m, .optimizer = opt, .loss = CG_MSE, .batch_size = REF_N);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    run->m = m;
    hx_module *mod = &run->mod;
    cr_assert(hx_build_model(mod, m, flavour, NULL) == 0, "%s", mod->err);
    char path[512];
    cr_assert(snprintf(path, sizeof path, "%s/spec.txt", mod->dir) < (int)sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "steps %d\nn %d\nin %d\nloss mse\noptimizer sgd 0.5\nclip %s %.9g\n", REF_STEPS, REF_N, REF_IN,
            words[kind], (double)c);
    fprintf(f, "layer dense dense_1 8 tanh\nlayer dense dense_2 %d linear\n", REF_OUT);
    const int dims[2][2] = {{REF_IN, 8}, {8, REF_OUT}};
    for (int l = 0; l < 2; l++) {
        char pname[64];
        long count, off;
        snprintf(pname, sizeof pname, "dense_%d/kernel", l + 1);
        cr_assert((off = hx_param(mod, pname, &count)) >= 0, "no %s", pname);
        fprintf(f, "param %s %ld %ld %d %d\n", pname, off, count, dims[l][0], dims[l][1]);
        snprintf(pname, sizeof pname, "dense_%d/bias", l + 1);
        cr_assert((off = hx_param(mod, pname, &count)) >= 0, "no %s", pname);
        fprintf(f, "param %s %ld %ld %d\n", pname, off, count, dims[l][1]);
    }
    cr_assert(fclose(f) == 0);
    write_floats(mod->dir, "params.bin", mod->params, mod->param_floats);
    static float x[REF_STEPS * REF_N * REF_IN], y[REF_STEPS * REF_N * REF_OUT];
    uint64_t s = 4242;
    for (int i = 0; i < REF_STEPS * REF_N * (REF_IN + REF_OUT); i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 4.0f - 2.0f;
        if (i < REF_STEPS * REF_N * REF_IN)
            x[i] = u;
        else
            y[i - REF_STEPS * REF_N * REF_IN] = u;
    }
    write_floats(mod->dir, "x.bin", x, REF_STEPS * REF_N * REF_IN);
    write_floats(mod->dir, "y.bin", y, REF_STEPS * REF_N * REF_OUT);
    for (int k = 0; k < REF_STEPS; k++) {
        float metric;
        mod->train_step(mod->state, REF_N, x + k * REF_N * REF_IN, y + k * REF_N * REF_OUT, &run->loss[k], &metric);
    }
}

/* Compares run with torch's out.bin: the losses of every step, then every parameter after the last
 * (|c - torch| <= 1e-5 + 1e-4 |torch|); torch's SGD without clipping must end outside that. */
static void clip_verify(clip_run *run)
{
    hx_module *mod = &run->mod;
    char path[512];
    size_t bytes;
    cr_assert(snprintf(path, sizeof path, "%s/out.bin", mod->dir) < (int)sizeof path);
    float *ref = (float *)hx_read_file(path, &bytes);
    long want = REF_STEPS + 2 * mod->param_floats;
    cr_assert(ref && bytes == sizeof(float) * (size_t)want, "%s: out.bin has %zu bytes, expected %ld", mod->name, bytes,
              want * 4);
    for (int k = 0; k < REF_STEPS; k++)
        cr_expect(fabsf(run->loss[k] - ref[k]) <= 1e-6f + 1e-4f * fabsf(ref[k]), "%s: step %d: loss %.8g, torch %.8g",
                  mod->name, k + 1, (double)run->loss[k], (double)ref[k]);
    double worst = -1, gap = 0;
    long wi = 0;
    const float *after = ref + REF_STEPS, *plain = after + mod->param_floats;
    for (long i = 0; i < mod->param_floats; i++) {
        double tol = 1e-5 + 1e-4 * fabs((double)after[i]), r = fabs((double)mod->params[i] - after[i]) / tol;
        if (!(r <= worst))
            worst = isnan(r) ? INFINITY : r, wi = i;
        gap = fmax(gap, fabs((double)plain[i] - after[i]) / tol);
    }
    cr_expect(worst <= 1.0, "%s: after %d steps parameter %ld is %.8g in cgrad, %.8g in torch", mod->name, REF_STEPS,
              wi, (double)mod->params[wi], (double)after[wi]);
    cr_expect(gap > 10.0, "%s: SGD without clipping ends within %.3g tolerances: the clipping is not visible",
              mod->name, gap);
    free(ref);
    hx_close(mod);
    cg_model_free(run->m);
}

/* Each kind of clipping, both flavours, against torch from the same parameters and batches. */
Test(clipping, torch, .timeout = 180)
{
    static clip_run runs[6];
    const char *dirs[6];
    const float bounds[3] = {0.1f, 0.2f, 0.02f}; /* clipnorm, global_clipnorm, clipvalue: all bite */
    for (int k = 0; k < 6; k++) {
        clip_prepare(&runs[k], (clip_kind)(k / 2), bounds[k / 2], k % 2 ? CG_HOST : CG_PORTABLE);
        dirs[k] = runs[k].mod.dir;
    }
    char log[4096];
    int status = hx_run_python(OPS_SOURCE_DIR "/torch_optim.py", dirs, 6, log, sizeof log);
    if (status == 77) {
        for (int k = 0; k < 6; k++) {
            hx_close(&runs[k].mod);
            cg_model_free(runs[k].m);
        }
        cr_skip_test("torch not installed");
    }
    cr_assert(status == 0, "torch_optim.py failed:\n%s", log);
    for (int k = 0; k < 6; k++)
        clip_verify(&runs[k]);
}

/* ---- errors ------------------------------------------------------------------------------------ */

/* cg_apply_gradients with opt on a small tape graph must fail at its line with a message holding what. */
static void expect_refused(cg_optimizer opt, const char *what)
{
    cg_graph *g = cg_graph_new("clip_bad");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 2));
    cg_t w = cg_variable(g, "w", CG_SHAPE(2, 1), cg_zeros());
    cg_gradients(g, cg_mean(cg_matmul(x, w)), w);
    int line = __LINE__ + 1;
    cr_expect(cg_apply_gradients(g, opt) != 0, "accepted: %s", what);
    char at[64];
    snprintf(at, sizeof at, "test_clipping.c:%d: ", line);
    cr_expect(strstr(cg_error(g), at) && strstr(cg_error(g), what), "error '%s' lacks '%s%s'", cg_error(g), at, what);
    cg_graph_free(g);
}

Test(clipping, errors)
{
    cg_optimizer o = cg_adam(1e-3f);
    o.clipnorm = 1.0f, o.clipvalue = 0.5f;
    expect_refused(o, "set only one of clipnorm, clipvalue and global_clipnorm");
    o = cg_sgd(0.1f, 0.9f, true);
    o.global_clipnorm = 1.0f, o.clipnorm = 2.0f;
    expect_refused(o, "set only one of clipnorm, clipvalue and global_clipnorm");
    o = cg_rmsprop(1e-3f);
    o.clipvalue = -1.0f;
    expect_refused(o, "clipvalue must be finite and at least 0, got -1");
    o = cg_adamw(1e-3f);
    o.global_clipnorm = NAN;
    expect_refused(o, "global_clipnorm must be finite and at least 0, got nan");
}
