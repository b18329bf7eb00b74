/* test_model_gradients.c: a compiled model's NAME_gradients entry point (what
 * the training binary's gradcheck command differentiates). It must compute
 * the training-mode loss and gradients that train_step computes (Dropout's
 * masks and BatchNormalization's batch statistics included) and change
 * nothing else in the state: no optimizer step, no moving averages, and the
 * dropout generator put back, so that every call draws the same masks. Its
 * checked form refuses what the other checked entry points refuse. */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cgrad.h>

#include "harness.h"

typedef void (*gradients_fn)(void *s, int n, const float *x, const float *y, float *loss);
typedef int (*gradients_checked_fn)(void *s, int n, const float *x, const float *y, float *loss);

enum { BATCH = 8, FEATURES = 6, CLASSES = 3 };

/* Looks up the symbol NAME_what of mod into the function pointer *fp (through
 * memcpy: ISO C has no cast from an object pointer to a function pointer). */
static void lookup(hx_module *mod, const char *what, void *fp, size_t size)
{
    char sym[256];
    snprintf(sym, sizeof sym, "%s_%s", mod->name, what);
    void *f = dlsym(mod->so, sym);
    cr_assert_not_null(f, "%s is not exported", sym);
    cr_assert_eq(size, sizeof f);
    memcpy(fp, &f, sizeof f);
}

/* 6 -> Dense(8) -> BatchNormalization -> relu -> Dropout(0.25) -> Dense(3),
 * plain SGD (p -= lr g), so train_step's update shows the gradient it used. */
static cg_model *model(void)
{
    cg_model *m = cg_sequential("grads_bn_dropout", CG_SHAPE(FEATURES));
    cg_model_add(m, cg_dense(8));
    cg_model_add(m, cg_batch_normalization());
    cg_model_add(m, cg_activation_layer(CG_RELU));
    cg_model_add(m, cg_dropout(0.25f));
    cg_model_add(m, cg_dense(CLASSES));
    cg_compile(m, .optimizer = cg_sgd(0.5f, 0, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = BATCH);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    return m;
}

/* A batch of inputs and class labels. */
static void batch(float *x, float *y)
{
    for (int i = 0; i < BATCH * FEATURES; i++)
        x[i] = (float)((i * 7) % 13) / 13.0f - 0.4f;
    for (int i = 0; i < BATCH; i++)
        y[i] = (float)(i % CLASSES);
}

/* The bytes of the state from the learning rate to the end: lr, step and the
 * dropout generator (the arena, before them, is scratch). */
static size_t tail_offset(const hx_module *mod)
{
    return (size_t)((const char *)mod->lr - (const char *)mod->state);
}

static void same_as_train_step(cg_flavour flavour)
{
    cg_model *m = model();
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, flavour, hx_default_cc()) == 0, "%s", mod.err);
    gradients_fn gradients;
    lookup(&mod, "gradients", &gradients, sizeof gradients);
    float x[BATCH * FEATURES], y[BATCH], loss1 = -1, loss2 = -2, train_loss = -3, metric;
    batch(x, y);
    size_t tail = tail_offset(&mod), nt = (size_t)mod.trainable_floats, np = (size_t)mod.param_floats;
    char *before = malloc(mod.state_size);
    float *g1 = malloc(nt * sizeof(float));
    cr_assert(before && g1);
    memcpy(before, mod.state, mod.state_size);

    gradients(mod.state, BATCH, x, y, &loss1);
    memcpy(g1, mod.grads, nt * sizeof(float));
    cr_assert(isfinite(loss1) && loss1 > 0, "loss %g", (double)loss1);
    cr_expect(memcmp((char *)mod.params, before + ((char *)mod.params - (char *)mod.state), np * sizeof(float)) == 0,
              "gradients changed the parameters or the moving averages");
    cr_expect(memcmp((char *)mod.state + tail, before + tail, mod.state_size - tail) == 0,
              "gradients changed lr, step or the dropout generator");
    gradients(mod.state, BATCH, x, y, &loss2); /* the same masks again */
    cr_expect(loss2 == loss1, "a second call: loss %.9g, first %.9g", (double)loss2, (double)loss1);
    cr_expect(memcmp(mod.grads, g1, nt * sizeof(float)) == 0, "a second call gave other gradients");

    memcpy(mod.state, before, mod.state_size); /* train_step from the same state draws the same masks */
    mod.train_step(mod.state, BATCH, x, y, &train_loss, &metric);
    cr_expect(train_loss == loss1, "train_step's loss %.9g, gradients' %.9g", (double)train_loss, (double)loss1);
    const float *p0 = (const float *)(before + ((char *)mod.params - (char *)mod.state));
    double worst = 0;
    long at = -1;
    for (size_t i = 0; i < nt; i++) { /* SGD: p1 = p0 - lr g */
        double g = ((double)p0[i] - mod.params[i]) / 0.5, err = fabs(g - g1[i]) / fmax(1e-3, fabs(g1[i]));
        if (err > worst)
            worst = err, at = (long)i;
    }
    cr_expect(worst < 1e-4, "train_step's update implies gradient %.6g at %ld, gradients gave %.6g",
              at >= 0 ? ((double)p0[at] - mod.params[at]) / 0.5 : 0.0, at, at >= 0 ? (double)g1[at] : 0.0);
    bool moved = false; /* the moving averages, after the trainable floats: train_step updates them */
    for (size_t i = nt; i < np; i++)
        moved = moved || mod.params[i] != p0[i];
    cr_expect(moved, "train_step left the moving averages alone (the model must have some)");
    free(before);
    free(g1);
    hx_close(&mod);
    cg_model_free(m);
}

Test(model_gradients, same_as_train_step_without_the_update_portable, .timeout = 120)
{
    same_as_train_step(CG_PORTABLE);
}

Test(model_gradients, same_as_train_step_without_the_update_host, .timeout = 120)
{
    same_as_train_step(CG_HOST);
}

Test(model_gradients, checked_form_refuses_bad_arguments, .timeout = 120)
{
    cg_model *m = model();
    hx_module mod;
    cr_assert(hx_build_model(&mod, m, CG_PORTABLE, hx_default_cc()) == 0, "%s", mod.err);
    gradients_fn gradients;
    gradients_checked_fn checked;
    lookup(&mod, "gradients", &gradients, sizeof gradients);
    lookup(&mod, "gradients_checked", &checked, sizeof checked);
    float x[(BATCH + 1) * FEATURES], y[BATCH + 1], loss = -1, want = -2;
    batch(x, y);
    y[BATCH] = 0;
    cr_expect_eq(checked(NULL, 4, x, y, &loss), 1, "NULL state");
    cr_expect_eq(checked(mod.state, 4, x, NULL, &loss), 1, "NULL labels");
    cr_expect_eq(checked(mod.state, 4, x, y, NULL), 1, "NULL loss");
    cr_expect_eq(checked(mod.state, 0, x, y, &loss), 2, "n = 0");
    cr_expect_eq(checked(mod.state, BATCH + 1, x, y, &loss), 2, "n above the max batch");
    y[2] = (float)CLASSES;
    cr_expect_eq(checked(mod.state, 4, x, y, &loss), 3, "a label out of range");
    cr_expect(loss == -1, "a refused call wrote the loss");
    y[2] = 2;
    cr_expect_eq(checked(mod.state, 4, x, y, &loss), 0);
    gradients(mod.state, 4, x, y, &want);
    cr_expect(loss == want, "checked %.9g, plain %.9g", (double)loss, (double)want);
    hx_close(&mod);
    cg_model_free(m);
}
