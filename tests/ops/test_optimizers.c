/* test_optimizers.c: the optimizers of compiler/optimizers.def.
 *
 *   golden     what each optimizer puts into the emitted code (the header's
 *              optimizer lines, the update function, the update call, the
 *              tape's NAME_apply_gradients), both flavours, against
 *              tests/ops/golden/optimizers/; CGRAD_UPDATE_GOLDEN=1 rewrites
 *              them. Other changes to the emitted code (kernels, entry
 *              points) do not show here: tests/ops/golden/ has those. The
 *              files of SGD, momentum, Nesterov, Adam and RMSprop were
 *              written before the optimizers became one table. The
 *              clip_schedule, tape_clip_schedule and clipvalue_exponential
 *              cases show clipping and schedules: their functions and their
 *              lines in the step.
 *   fused_matches_flat  a model trained with its updates inside the
 *              backward pass ends with the same floats as with one flat
 *              loop after it (Adam, momentum, AdamW; both flavours).
 *   adamw_*    AdamW: its constructor's defaults (Keras'); weight decay, betas
 *              and epsilon refused when NaN, infinite or out of range, at the
 *              user's line, by cg_compile and cg_apply_gradients;
 *              NAME_apply_gradients of a tape graph against the update
 *              written out here in double precision (decay first, then
 *              Adam's step); and a Dense model trained for several steps
 *              against torch.optim.AdamW (tests/ops/torch_optim.py, skipped
 *              without torch), both flavours.
 */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "optim_ref.h"

#ifndef OPS_SOURCE_DIR
#define OPS_SOURCE_DIR "."
#endif

/* ---- golden: the optimizer's part of the emitted code ------------------------------------- */

/* One model per optimizer: 3 -> Dense(2), MSE; or a tape graph with cg_apply_gradients. */
typedef struct golden_case {
    const char *name;
    cg_optimizer opt;
    bool tape;
} golden_case;

static const golden_case golden_cases[] = {
    {"sgd", {.kind = CG_SGD, .lr = 0.1f}, false},
    {"momentum", {.kind = CG_SGD, .lr = 0.1f, .momentum = 0.9f}, false},
    {"nesterov", {.kind = CG_SGD, .lr = 0.1f, .momentum = 0.8f, .nesterov = true}, false},
    {"adam", {.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f}, false},
    {"rmsprop", {.kind = CG_RMSPROP, .lr = 1e-3f, .momentum = 0.5f, .rho = 0.9f, .epsilon = 1e-7f}, false},
    {"tape_adam", {.kind = CG_ADAM, .lr = 0.01f, .beta_1 = 0.8f, .beta_2 = 0.99f, .epsilon = 1e-6f}, true},
    {"adamw",
     {.kind = CG_ADAMW, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f, .weight_decay = 0.004f},
     false},
    {"tape_adamw",
     {.kind = CG_ADAMW, .lr = 0.01f, .beta_1 = 0.8f, .beta_2 = 0.99f, .epsilon = 1e-6f, .weight_decay = 0.05f},
     true},
    {"clip_schedule", /* Adam clipping each parameter's gradient, a cosine decay after a warm-up */
     {.kind = CG_ADAM,
      .lr = 1e-3f,
      .beta_1 = 0.9f,
      .beta_2 = 0.999f,
      .epsilon = 1e-7f,
      .clipnorm = 1.0f,
      .schedule = {.kind = CG_COSINE_DECAY,
                   .initial_lr = 0.0f,
                   .decay_steps = 1000,
                   .warmup_target = 1e-3f,
                   .warmup_steps = 100}},
     false},
    {"global_clipnorm", /* Adam clipping the gradients' joint norm: every gradient before any update */
     {.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f, .global_clipnorm = 2.0f},
     false},
    {"tape_clip_schedule", /* SGD with momentum clipping the gradients' joint norm, a piecewise rate */
     {.kind = CG_SGD,
      .lr = 0.1f,
      .momentum = 0.9f,
      .global_clipnorm = 5.0f,
      .schedule = {.kind = CG_PIECEWISE_CONSTANT,
                   .nboundaries = 2,
                   .boundaries = {100, 200},
                   .nvalues = 3,
                   .values = {0.1f, 0.01f, 0.001f}}},
     true},
    {"clipvalue_exponential", /* RMSprop clipping values, an exponential decay in steps */
     {.kind = CG_RMSPROP,
      .lr = 1e-3f,
      .rho = 0.9f,
      .epsilon = 1e-7f,
      .clipvalue = 0.5f,
      .schedule = {.kind = CG_EXPONENTIAL_DECAY,
                   .initial_lr = 0.01f,
                   .decay_steps = 500,
                   .decay_rate = 0.9f,
                   .staircase = true}},
     false},
};

/* Emits golden case c into dir; returns cgrad's status. */
static int emit_case(const golden_case *c, const char *dir, cg_flavour flavour)
{
    int rc;
    if (c->tape) {
        cg_graph *g = cg_graph_new(c->name);
        cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
        cg_t w = cg_variable(g, "w", CG_SHAPE(3, 2), cg_glorot_uniform());
        cg_gradients(g, cg_mean(cg_square(cg_matmul(x, w))), w);
        cg_apply_gradients(g, c->opt);
        rc = cg_emit_graph(g, dir, flavour);
        cr_expect(rc == 0, "%s: %s", c->name, cg_error(g));
        cg_graph_free(g);
    } else {
        cg_model *m = cg_sequential(c->name, CG_SHAPE(3));
        cg_model_add(m, cg_dense(2));
        cg_compile(m, .optimizer = c->opt, .loss = CG_MSE, .batch_size = 4);
        rc = cg_emit_model(m, dir, flavour);
        cr_expect(rc == 0, "%s: %s", c->name, cg_error(cg_model_graph(m)));
        cg_model_free(m);
    }
    return rc;
}

/* True when the n bytes at p hold s. */
static bool line_has(const char *p, size_t n, const char *s)
{
    for (size_t k = strlen(s), i = 0; i + k <= n; i++)
        if (!memcmp(p + i, s, k))
            return true;
    return false;
}

/* Writes to f the lines of text from the first that starts with `from` up to the first (after it)
 * that starts with `to` (excluded), or, when `to` is NULL, that contains `last` (included). */
static void take_lines(FILE *f, const char *text, const char *from, const char *to, const char *last)
{
    bool in = false;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');
        if (!in && !strncmp(p, from, strlen(from)))
            in = true;
        else if (in && to && !strncmp(p, to, strlen(to)))
            in = false;
        if (in)
            fwrite(p, 1, n, f);
        if (in && !to && line_has(p, n, last))
            in = false;
        p += n;
    }
}

/* The optimizer's part of the emitted files of case c: the header's lines naming optimizer
 * state, the update function, the update calls (a model's with the backward kernels among
 * them, from the first update on), and the tape's NAME_apply_gradients. */
static char *optimizer_text(const golden_case *c, const char *dir)
{
    char path[512], *h, *src, *out = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s.h", dir, c->name);
    cr_assert((h = hx_read_file(path, NULL)) != NULL, "no %s", path);
    snprintf(path, sizeof path, "%s/%s.c", dir, c->name);
    cr_assert((src = hx_read_file(path, NULL)) != NULL, "no %s", path);
    FILE *f = open_memstream(&out, &len);
    cr_assert(f);
    fprintf(f, "== %s.h\n", c->name);
    for (const char *p = h; *p;) {
        size_t n = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');
        if (line_has(p, n, "_OPT_") || line_has(p, n, "opt[") || line_has(p, n, "Memory:") ||
            line_has(p, n, "apply_gradients"))
            fwrite(p, 1, n, f);
        p += n;
    }
    fprintf(f, "== %s.c\n", c->name);
    take_lines(f, src, "/* ---- optimizer", "/* ---- ", NULL);
    if (c->tape)
        take_lines(f, src, "    /* optimizer: one flat loop", NULL, "_update(");
    else /* train_step's update calls, among the backward kernels they follow */
        take_lines(f, src, "    /* optimizer", "    *batch_loss", NULL);
    if (c->tape)
        take_lines(f, src, "/* Applies the optimizer", NULL, "}");
    cr_assert(fclose(f) == 0);
    free(h);
    free(src);
    return out;
}

/* Compares case c in flavour with golden/optimizers/<flavour>/<name>.txt (or writes it). */
static void check_optimizer_golden(const golden_case *c, cg_flavour flavour)
{
    const char *fl = flavour == CG_HOST ? "host" : "portable";
    char dir[256], gpath[512];
    cr_assert(hx_tmpdir(dir, sizeof dir) == 0);
    cr_assert(emit_case(c, dir, flavour) == 0);
    char *got = optimizer_text(c, dir);
    snprintf(gpath, sizeof gpath, "%s/golden/optimizers/%s/%s.txt", OPS_SOURCE_DIR, fl, c->name);
    if (getenv("CGRAD_UPDATE_GOLDEN") && !strcmp(getenv("CGRAD_UPDATE_GOLDEN"), "1")) {
        char path[512];
        snprintf(path, sizeof path, "%s/golden/optimizers", OPS_SOURCE_DIR);
        mkdir(path, 0777);
        snprintf(path, sizeof path, "%s/golden/optimizers/%s", OPS_SOURCE_DIR, fl);
        mkdir(path, 0777);
        FILE *f = fopen(gpath, "w");
        cr_assert(f && fputs(got, f) >= 0 && fclose(f) == 0, "cannot write %s", gpath);
    } else {
        char *want = hx_read_file(gpath, NULL);
        cr_expect(want != NULL, "%s is missing: run CGRAD_UPDATE_GOLDEN=1 meson test ops-optimizers", gpath);
        if (want && strcmp(got, want)) {
            int line = 1;
            size_t i = 0, start = 0;
            for (; got[i] && got[i] == want[i]; i++)
                if (got[i] == '\n')
                    line++, start = i + 1;
            cr_expect(false, "%s (%s) differs from %s at line %d:\n  emitted: %.*s\n  golden:  %.*s", c->name, fl,
                      gpath, line, (int)strcspn(got + start, "\n"), got + start, (int)strcspn(want + start, "\n"),
                      want + start);
        }
        free(want);
    }
    free(got);
    hx_rmdir(dir);
}

Test(optimizers, golden)
{
    for (size_t i = 0; i < sizeof golden_cases / sizeof golden_cases[0]; i++) {
        check_optimizer_golden(&golden_cases[i], CG_PORTABLE);
        check_optimizer_golden(&golden_cases[i], CG_HOST);
    }
}

/* ---- fused: each parameter updated inside the backward pass, as the flat loop would ---------- */

#define FUSE_N 8
#define FUSE_STEPS 5
#define FUSE_IN 6
#define FUSE_OUT 4

/* A custom layer: w * x, w one weight per feature (its gradient a sum over the batch), which the
 * gradient of x reads. */
static cg_t fuse_scale_call(cg_layer_ctx *layer, cg_t x, void *self)
{
    (void)self;
    cg_t w = cg_add_weight(layer, "w", CG_SHAPE(cg_shape_of(x).dims[1]), cg_uniform(0.5f, 1.5f), true);
    return cg_mul(w, x);
}

/* 6 -> Dense(16, relu) -> w * x -> Dense(8, tanh) -> Dense(4), MSE, optimizer opt, built in flavour;
 * a global_clipnorm keeps its update in one flat loop after the backward pass. */
static cg_model *fuse_model(hx_module *mod, const char *name, cg_optimizer opt, cg_flavour flavour)
{
    cg_model *m = cg_sequential(name, CG_SHAPE(FUSE_IN));
    cg_model_add(m, cg_dense(16, .activation = CG_RELU));
    cg_model_add(m, cg_custom_layer("Scale", fuse_scale_call, NULL));
    cg_model_add(m, cg_dense(8, .activation = CG_TANH));
    cg_model_add(m, cg_dense(FUSE_OUT));
    cg_compile(m, .optimizer = opt, .loss = CG_MSE, .batch_size = FUSE_N);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    cr_assert(hx_build_model(mod, m, flavour, NULL) == 0, "%s", mod->err);
    return m;
}

/* True when the train_step of mod updates in one flat loop after the backward pass. */
static bool updates_flat(const hx_module *mod)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.c", mod->dir, mod->name);
    char *src = hx_read_file(path, NULL);
    cr_assert(src, "no %s", path);
    bool flat = strstr(src, "/* optimizer: one flat loop over the parameter block */") != NULL;
    free(src);
    return flat;
}

/* Trains the same model from the same parameters on the same batches with opt updating inside the
 * backward pass and, clipping at a global norm no gradient reaches, in one flat loop after it: the
 * losses and every parameter after FUSE_STEPS steps must be the same floats. */
static void check_fused_matches_flat(cg_optimizer opt, const char *what, cg_flavour flavour)
{
    hx_module fused, flat;
    cg_optimizer wide = opt;
    wide.global_clipnorm = 1e30f;
    cg_model *mf = fuse_model(&fused, "fused", opt, flavour), *ml = fuse_model(&flat, "flat", wide, flavour);
    cr_assert(!updates_flat(&fused) && updates_flat(&flat), "%s: fused and flat builds are not so", what);
    cr_assert(fused.param_floats == flat.param_floats);
    memcpy(flat.params, fused.params, sizeof(float) * (size_t)fused.param_floats);
    static float x[FUSE_N * FUSE_IN], y[FUSE_N * FUSE_OUT];
    uint64_t s = 4242;
    for (int k = 0; k < FUSE_STEPS; k++) {
        for (int i = 0; i < FUSE_N * (FUSE_IN + FUSE_OUT); i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
            *(i < FUSE_N * FUSE_IN ? &x[i] : &y[i - FUSE_N * FUSE_IN]) = u;
        }
        float lf, ll, metric;
        fused.train_step(fused.state, FUSE_N, x, y, &lf, &metric);
        flat.train_step(flat.state, FUSE_N, x, y, &ll, &metric);
        cr_expect(memcmp(&lf, &ll, sizeof lf) == 0, "%s: step %d: loss %.9g fused, %.9g flat", what, k + 1, (double)lf,
                  (double)ll);
    }
    for (long i = 0; i < fused.param_floats; i++)
        if (memcmp(&fused.params[i], &flat.params[i], sizeof(float))) {
            cr_expect(false, "%s: after %d steps parameter float %ld is %.9g fused, %.9g flat", what, FUSE_STEPS, i,
                      (double)fused.params[i], (double)flat.params[i]);
            break;
        }
    hx_close(&fused), hx_close(&flat);
    cg_model_free(mf), cg_model_free(ml);
}

Test(optimizers, fused_matches_flat, .timeout = 120)
{
    for (int k = 0; k < 2; k++) {
        cg_flavour fl = k ? CG_HOST : CG_PORTABLE;
        check_fused_matches_flat(cg_adam(0.01f), k ? "Adam (host)" : "Adam (portable)", fl);
        check_fused_matches_flat(cg_sgd(0.05f, 0.9f, false), k ? "momentum (host)" : "momentum (portable)", fl);
        check_fused_matches_flat(cg_adamw(0.01f, 0.1f), k ? "AdamW (host)" : "AdamW (portable)", fl);
    }
}

/* ---- AdamW: options ------------------------------------------------------------------------- */

/* The graph's error names line `line` of this file and holds every needle. */
static void expect_error(cg_graph *g, int line, const char *a, const char *b)
{
    char at[64];
    snprintf(at, sizeof at, "test_optimizers.c:%d: ", line);
    const char *err = cg_error(g);
    cr_expect(cg_failed(g), "no error (wanted one about %s)", b);
    cr_expect(err && strstr(err, at) && strstr(err, a) && strstr(err, b), "error \"%s\": wanted %s, \"%s\", \"%s\"",
              err ? err : "(none)", at, a, b);
}

/* 4 -> Dense(2), compiled with opt; returns the line of the cg_compile call. */
static int compile_small(cg_model **m, cg_optimizer opt)
{
    *m = cg_sequential("small", CG_SHAPE(4));
    cg_model_add(*m, cg_dense(2));
    int line = __LINE__ + 1;
    cg_compile(*m, .optimizer = opt, .loss = CG_MSE);
    return line;
}

Test(optimizers, adamw_defaults)
{
    cg_optimizer o = cg_adamw(1e-3f), w = cg_adamw(2e-3f, 0.01f);
    cr_expect(o.kind == CG_ADAMW && o.lr == 1e-3f && o.weight_decay == 0.004f && o.beta_1 == 0.9f &&
                  o.beta_2 == 0.999f && o.epsilon == 1e-7f,
              "cg_adamw(1e-3f): lr %g weight_decay %g beta_1 %g beta_2 %g "
              "epsilon %g",
              (double)o.lr, (double)o.weight_decay, (double)o.beta_1, (double)o.beta_2, (double)o.epsilon);
    cr_expect(w.kind == CG_ADAMW && w.lr == 2e-3f && w.weight_decay == 0.01f && w.beta_1 == 0.9f && w.epsilon == 1e-7f,
              "cg_adamw(2e-3f, 0.01f): lr %g weight_decay %g", (double)w.lr, (double)w.weight_decay);
    /* no decay is AdamW still, and accepted */
    cg_model *m;
    compile_small(&m, cg_adamw(1e-3f, 0.0f));
    cr_expect(!cg_failed(cg_model_graph(m)), "weight_decay 0 refused: %s", cg_error(cg_model_graph(m)));
    cg_model_free(m);
}

Test(optimizers, adamw_bad_options)
{
    struct {
        cg_optimizer opt;
        const char *needle;
    } cases[] = {
        {cg_adamw(1e-3f, NAN), "AdamW's weight_decay must be finite and at least 0, got nan"},
        {cg_adamw(1e-3f, -0.01f), "AdamW's weight_decay must be finite and at least 0, got -0.01"},
        {cg_adamw(1e-3f, INFINITY), "AdamW's weight_decay must be finite and at least 0, got inf"},
        {cg_adamw(NAN), "the learning rate must be positive and finite"},
        {cg_adamw(0.0f), "the learning rate must be positive and finite"},
        {{.kind = CG_ADAMW, .lr = 1e-3f, .beta_1 = NAN, .beta_2 = 0.999f, .epsilon = 1e-7f}, "AdamW's beta_1"},
        {{.kind = CG_ADAMW, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 1.0f, .epsilon = 1e-7f}, "AdamW's beta_2"},
        {{.kind = CG_ADAMW, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = -1.0f}, "AdamW's epsilon"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_model *m;
        int line = compile_small(&m, cases[i].opt);
        expect_error(cg_model_graph(m), line, "small: ", cases[i].needle);
        cg_model_free(m);
        cg_graph *g = cg_graph_new("tape");
        cg_t w = cg_variable(g, "w", CG_SHAPE(2), cg_ones());
        cg_gradients(g, cg_sum(cg_square(w)), w);
        line = __LINE__ + 1;
        int rc = cg_apply_gradients(g, cases[i].opt);
        cr_expect(rc != 0, "cg_apply_gradients accepted case %zu", i);
        expect_error(g, line, "cg_apply_gradients: ", cases[i].needle);
        cg_graph_free(g);
    }
}

/* ---- AdamW through the tape: NAME_apply_gradients against the formula ------------------------ */

#define TAPE_F 5
#define TAPE_STEPS 6

/* One AdamW step in double precision: decay (decay_first) before or after Adam's step, or none (wd 0). */
static void adamw_ref(double *p, double *m, double *v, const float *g, int count, double lr, double wd, int t,
                      bool decay_first)
{
    const double b1 = 0.8, b2 = 0.99, eps = 1e-6;
    for (int i = 0; i < count; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
        double u = lr / (1 - pow(b1, t)) * m[i] / (sqrt(v[i] / (1 - pow(b2, t))) + eps);
        p[i] = decay_first ? p[i] * (1 - lr * wd) - u : (p[i] - u) * (1 - lr * wd);
    }
}

/* loss = mean((x w - t)^2) over a batch, w (F); AdamW through cg_apply_gradients; TAPE_STEPS steps of
 * NAME_gradients then NAME_apply_gradients, each against adamw_ref from the same gradients and the
 * parameters before the step (|c - ref| <= 1e-6 + 1e-5 |ref|). The same steps with the decay after
 * Adam's step, or none, end far from the result: the test sees both. */
static void check_tape_adamw(cg_flavour flavour)
{
    const float lr = 0.1f, wd = 0.5f;
    cg_graph *g = cg_graph_new("tape_adamw_steps");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, TAPE_F));
    cg_t t = cg_placeholder(g, "t", CG_SHAPE(CG_BATCH, 1));
    cg_t w = cg_variable(g, "w", CG_SHAPE(TAPE_F, 1), cg_glorot_uniform());
    cg_gradients(g, cg_mean(cg_square(cg_sub(cg_matmul(x, w), t))), w);
    cg_optimizer opt = cg_adamw(lr, wd);
    opt.beta_1 = 0.8f, opt.beta_2 = 0.99f, opt.epsilon = 1e-6f;
    cr_assert(cg_apply_gradients(g, opt) == 0, "%s", cg_error(g));
    hx_module mod;
    cr_assert(hx_build_graph(&mod, g, 2, flavour, NULL) == 0, "%s", mod.err);
    cr_assert_eq(mod.opt_floats, 2 * TAPE_F, "AdamW keeps m and v: %ld floats of state", mod.opt_floats);
    void (*apply)(void *s);
    void *addr = dlsym(mod.so, "tape_adamw_steps_apply_gradients");
    cr_assert_not_null(addr, "no tape_adamw_steps_apply_gradients");
    memcpy(&apply, &addr, sizeof apply);
    cr_expect_eq(*mod.lr, lr, "init sets lr %g", (double)*mod.lr);

    double p[3][TAPE_F], m[3][TAPE_F] = {{0}}, v[3][TAPE_F] = {{0}}; /* decay first, decay after, none */
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < TAPE_F; i++)
            p[r][i] = mod.params[i];
    uint64_t s = 2024;
    float xs[4 * TAPE_F], ts[4];
    for (int step = 1; step <= TAPE_STEPS; step++) {
        for (int i = 0; i < 4 * TAPE_F + 4; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
            if (i < 4 * TAPE_F)
                xs[i] = u;
            else
                ts[i - 4 * TAPE_F] = u;
        }
        mod.gradients(mod.state, 4, (const float *[]){xs, ts});
        float before[TAPE_F];
        memcpy(before, mod.params, sizeof before);
        for (int i = 0; i < TAPE_F; i++) /* the reference continues from cgrad's parameters */
            p[0][i] = before[i];
        apply(mod.state);
        adamw_ref(p[0], m[0], v[0], mod.grads, TAPE_F, lr, wd, step, true);
        adamw_ref(p[1], m[1], v[1], mod.grads, TAPE_F, lr, wd, step, false);
        adamw_ref(p[2], m[2], v[2], mod.grads, TAPE_F, lr, 0.0, step, true);
        for (int i = 0; i < TAPE_F; i++)
            cr_expect(fabs(mod.params[i] - p[0][i]) <= 1e-6 + 1e-5 * fabs(p[0][i]),
                      "%s, step %d: w[%d] = %.9g after apply_gradients, AdamW gives %.9g (from %.9g, gradient %.9g)",
                      flavour == CG_HOST ? "host" : "portable", step, i, (double)mod.params[i], p[0][i],
                      (double)before[i], (double)mod.grads[i]);
    }
    double after = 0, none = 0;
    for (int i = 0; i < TAPE_F; i++) {
        after = fmax(after, fabs(mod.params[i] - p[1][i]));
        none = fmax(none, fabs(mod.params[i] - p[2][i]));
    }
    cr_expect(after > 1e-4 && none > 1e-3, "the decay's place and the decay itself leave no trace: %g and %g", after,
              none);
    hx_close(&mod);
    cg_graph_free(g);
}

Test(optimizers, adamw_tape_portable)
{
    check_tape_adamw(CG_PORTABLE);
}
Test(optimizers, adamw_tape_host)
{
    check_tape_adamw(CG_HOST);
}

/* ---- AdamW against torch.optim.AdamW ------------------------------------------------------------ */

/* Six AdamW steps of 5 -> Dense(8, tanh) -> Dense(3) (MSE, lr 0.01, weight decay 0.5), in both flavours,
 * against torch.optim.AdamW from the same initial parameters and batches; torch's Adam without the decay must
 * end elsewhere. */
Test(optimizers, adamw_torch, .timeout = 120)
{
    static or_run runs[2];
    const float lr = 0.01f, wd = 0.5f;
    char lines[128];
    snprintf(lines, sizeof lines, "optimizer adamw %.9g %.9g 0.9 0.999 1e-7\n", (double)lr, (double)wd);
    for (int k = 0; k < 2; k++)
        or_prepare(&runs[k], k ? "adamw_ref_host" : "adamw_ref", cg_adamw(lr, wd), k ? CG_HOST : CG_PORTABLE, lines, 6,
                   777, 1.0f);
    char log[4096];
    int status = or_run_torch(OPS_SOURCE_DIR "/torch_optim.py", runs, 2, log, sizeof log);
    if (status == 77)
        cr_skip_test("torch not installed");
    cr_assert(status == 0, "torch_optim.py failed:\n%s", log);
    for (int k = 0; k < 2; k++)
        or_verify(&runs[k], "torch's Adam without the decay");
}
