/* test_schedules.c: learning-rate schedules (Keras' ExponentialDecay,
 * CosineDecay with warm-up, PiecewiseConstantDecay) evaluated by the
 * emitted step.
 *
 *   formula   NAME_learning_rate(k) of each schedule, for every step k from 0
 *             past its last change (the staircase's jumps, the warm-up's end,
 *             the boundaries, the end of the decay), against Keras' formula
 *             written out here in double precision; both flavours.
 *   steps     NAME_apply_gradients (SGD) runs step k with that rate: s->lr
 *             after the step, and the parameter moved by lr g.
 *   errors    bad schedules refused at the user's line; ReduceLROnPlateau
 *             with a schedule refused by cg_compile, as Keras does.
 */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Keras' schedule s at step k, in double precision, from keras/src/optimizers/schedules. */
static double keras_lr(const cg_schedule *s, int k)
{
    const double pi = 3.14159265358979323846;
    if (s->kind == CG_EXPONENTIAL_DECAY) {
        double p = (double)k / s->decay_steps;
        return s->initial_lr * pow(s->decay_rate, s->staircase ? floor(p) : p);
    }
    if (s->kind == CG_COSINE_DECAY) {
        double warmup = s->warmup_target != 0.0f ? s->warmup_steps : 0.0;
        double step = fmin(k, s->decay_steps + warmup),
               from = s->warmup_target != 0.0f ? s->warmup_target : s->initial_lr;
        if (step < warmup)
            return (s->warmup_target - (double)s->initial_lr) * (step / warmup) + s->initial_lr;
        double cosine = 0.5 * (1.0 + cos(pi * (step - warmup) / s->decay_steps));
        return from * ((1.0 - s->alpha) * cosine + s->alpha);
    }
    for (int i = 0; i < s->nboundaries; i++) /* values[i] while step <= boundaries[i] */
        if (k <= s->boundaries[i])
            return s->values[i];
    return s->values[s->nboundaries];
}

/* A tape graph (loss = mean(x w), w (2)) trained by SGD with schedule s; built and loaded into mod. */
static cg_graph *schedule_graph(hx_module *mod, cg_schedule s, cg_flavour flavour)
{
    cg_graph *g = cg_graph_new("sched");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 2));
    cg_t w = cg_variable(g, "w", CG_SHAPE(2, 1), cg_zeros());
    cg_gradients(g, cg_mean(cg_matmul(x, w)), w);
    cg_optimizer o = cg_sgd(1.0f, 0.0f, false);
    o.schedule = s;
    cr_assert(cg_apply_gradients(g, o) == 0, "%s", cg_error(g));
    cr_assert(hx_build_graph(mod, g, 1, flavour, NULL) == 0, "%s", mod->err);
    return g;
}

/* Looks up symbol name of mod into *fn (a function pointer of any type). */
#define LOOKUP(mod, name, fn)                                         \
    do {                                                              \
        void *addr_ = dlsym((mod)->so, name);                         \
        cr_assert_not_null(addr_, "no %s in the emitted code", name); \
        memcpy(&(fn), &addr_, sizeof(fn));                            \
    } while (0)

/* Schedule s of `what`, both flavours: NAME_learning_rate(k) for k in [0, steps) against keras_lr
 * (|c - keras| <= 1e-6 |keras| + 1e-9); init's s->lr is step 0's; then `steps` steps of SGD: after
 * step k, s->lr is step k's rate and w moved by it times the gradient. */
static void check_schedule(const char *what, cg_schedule s, int steps)
{
    for (int f = 0; f < 2; f++) {
        const char *fl = f ? "host" : "portable";
        hx_module mod;
        cg_graph *g = schedule_graph(&mod, s, f ? CG_HOST : CG_PORTABLE);
        float (*lr_at)(int);
        void (*apply)(void *);
        LOOKUP(&mod, "sched_learning_rate", lr_at);
        LOOKUP(&mod, "sched_apply_gradients", apply);
        cr_expect(*mod.lr == lr_at(0), "%s, %s: init sets lr %.9g, step 0's is %.9g", what, fl, (double)*mod.lr,
                  (double)lr_at(0));
        for (int k = 0; k < steps; k++) {
            double want = keras_lr(&s, k);
            float got = lr_at(k);
            cr_expect(fabs(got - want) <= 1e-6 * fabs(want) + 1e-9, "%s, %s: step %d: lr %.9g, Keras %.9g", what, fl, k,
                      (double)got, want);
        }
        const float x[2] = {1.0f, -2.0f}; /* the gradient of mean(x w) is x */
        for (int k = 0; k < steps; k++) {
            mod.gradients(mod.state, 1, (const float *[]){x});
            float before = mod.params[1];
            apply(mod.state);
            cr_expect(*mod.lr == lr_at(k), "%s, %s: step %d ran with lr %.9g, its rate is %.9g", what, fl, k,
                      (double)*mod.lr, (double)lr_at(k));
            float moved = before - mod.params[1];
            cr_expect(fabsf(moved - lr_at(k) * x[1]) <= 1e-5f * fabsf(lr_at(k) * x[1]) + 1e-7f,
                      "%s, %s: step %d moved w by %.9g, lr g is %.9g", what, fl, k, (double)moved,
                      (double)(lr_at(k) * x[1]));
        }
        hx_close(&mod);
        cg_graph_free(g);
    }
}

Test(schedules, exponential)
{
    check_schedule("ExponentialDecay", cg_exponential_decay(0.1f, 10, 0.5f, false), 45);
}

Test(schedules, exponential_staircase)
{
    check_schedule("ExponentialDecay(staircase)", cg_exponential_decay(0.1f, 10, 0.5f, true), 45);
}

Test(schedules, cosine)
{
    check_schedule("CosineDecay", cg_cosine_decay(0.1f, 20, 0.1f, 0.0f, 0), 30);
}

Test(schedules, cosine_warmup)
{
    check_schedule("CosineDecay(warm-up from 0)", cg_cosine_decay(0.0f, 20, 0.0f, 0.1f, 5), 32);
    check_schedule("CosineDecay(warm-up, alpha)", cg_cosine_decay(0.01f, 16, 0.25f, 0.2f, 8), 30);
}

Test(schedules, piecewise)
{
    static const int bounds[] = {4, 9, 10};
    static const float values[] = {0.1f, 0.05f, 0.02f, 0.001f};
    check_schedule("PiecewiseConstantDecay", cg_piecewise_constant(bounds, values), 16);
}

/* cg_apply_gradients with schedule s must fail at its line with a message holding what. */
static void expect_refused(cg_schedule s, const char *what)
{
    cg_graph *g = cg_graph_new("sched_bad");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 2));
    cg_t w = cg_variable(g, "w", CG_SHAPE(2, 1), cg_zeros());
    cg_gradients(g, cg_mean(cg_matmul(x, w)), w);
    cg_optimizer o = cg_adam(0.0f); /* the schedule sets the rate: lr is not checked */
    o.schedule = s;
    int line = __LINE__ + 1;
    cr_expect(cg_apply_gradients(g, o) != 0, "accepted: %s", what);
    char at[64];
    snprintf(at, sizeof at, "test_schedules.c:%d: ", line);
    cr_expect(strstr(cg_error(g), at) && strstr(cg_error(g), what), "error '%s' lacks '%s%s'", cg_error(g), at, what);
    cg_graph_free(g);
}

Test(schedules, errors)
{
    expect_refused(cg_exponential_decay(0.1f, 0, 0.9f, false),
                   "ExponentialDecay's decay_steps must be positive, got 0");
    expect_refused(cg_exponential_decay(-0.1f, 10, 0.9f, false), "ExponentialDecay's initial_lr must be positive");
    expect_refused(cg_exponential_decay(0.1f, 10, NAN, true), "ExponentialDecay's decay_rate must be positive");
    expect_refused(cg_cosine_decay(0.1f, 10, 1.5f, 0.0f, 0), "CosineDecay's alpha must lie in [0, 1], got 1.5");
    expect_refused(cg_cosine_decay(0.1f, 10, 0.0f, 0.0f, 5), "CosineDecay's warmup_steps must be 0 without");
    static const int bounds[] = {5, 3};
    static const float two[] = {0.1f, 0.01f}, three[] = {0.1f, 0.01f, 0.001f};
    expect_refused(cg_piecewise_constant(bounds, two), "PiecewiseConstantDecay's needs one value more than boundaries");
    expect_refused(cg_piecewise_constant(bounds, three), "boundaries must be steps >= 0 in increasing order, got 3");
    expect_refused((cg_schedule){.kind = (cg_schedule_kind)9}, "unknown schedule kind 9");

    cg_model *m = cg_sequential("sched_plateau", CG_SHAPE(3));
    cg_model_add(m, cg_dense(1));
    cg_optimizer o = cg_sgd(0.1f, 0.0f, false);
    o.schedule = cg_exponential_decay(0.1f, 100, 0.9f, false);
    int line = __LINE__ + 1;
    cr_expect(cg_compile(m, .optimizer = o, .loss = CG_MSE, .callbacks = {.reduce_lr_factor = 0.5f}) != 0);
    char at[64];
    snprintf(at, sizeof at, "test_schedules.c:%d: sched_plateau: ReduceLROnPlateau", line);
    cr_expect(strstr(cg_error(cg_model_graph(m)), at) && strstr(cg_error(cg_model_graph(m)), "(ExponentialDecay)"),
              "%s", cg_error(cg_model_graph(m)));
    cg_model_free(m);
}
