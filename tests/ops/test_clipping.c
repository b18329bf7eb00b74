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
#include "optim_ref.h"

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

/* 5 -> Dense(8, tanh) -> Dense(3), MSE, SGD (lr 0.5) clipping as kind says at c, five steps: cgrad's side. */
static void clip_prepare(or_run *run, clip_kind kind, float c, cg_flavour flavour)
{
    static const char *const words[] = {"norm", "global", "value"};
    char name[64], lines[128];
    snprintf(name, sizeof name, "clip_%s_%s", words[kind], flavour == CG_HOST ? "host" : "portable");
    snprintf(lines, sizeof lines, "optimizer sgd 0.5\nclip %s %.9g\n", words[kind], (double)c);
    cg_optimizer opt = clipping_sgd(kind, c);
    opt.lr = 0.5f;
    or_prepare(run, name, opt, flavour, lines, 5, 4242, 2.0f);
}

/* Each kind of clipping, both flavours, against torch from the same parameters and batches; torch's SGD
 * without clipping must end elsewhere. */
Test(clipping, torch, .timeout = 180)
{
    static or_run runs[6];
    const float bounds[3] = {0.1f, 0.2f, 0.02f}; /* clipnorm, global_clipnorm, clipvalue: all bite */
    for (int k = 0; k < 6; k++)
        clip_prepare(&runs[k], (clip_kind)(k / 2), bounds[k / 2], k % 2 ? CG_HOST : CG_PORTABLE);
    char log[4096];
    int status = or_run_torch(OPS_SOURCE_DIR "/torch_optim.py", runs, 6, log, sizeof log);
    if (status == 77)
        cr_skip_test("torch not installed");
    cr_assert(status == 0, "torch_optim.py failed:\n%s", log);
    for (int k = 0; k < 6; k++)
        or_verify(&runs[k], "SGD without clipping");
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
