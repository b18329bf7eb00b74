/* test_freeze.c: a frozen layer (cg_set_trainable(m, "dense_1", false)) gets
 * no gradient, no optimizer state and no update, and the emitted backward
 * pass is shorter, as the summary's figures show. */
#include <criterion/criterion.h>

#include <cgrad.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* 4 -> Dense(8, relu) -> Dense(3), Adam, optionally with dense_1 frozen. */
static cg_model *mlp(const char *name, bool freeze)
{
    cg_model *m = cg_sequential(name, CG_SHAPE(4));
    cg_model_add(m, cg_dense(8, .activation = CG_RELU));
    cg_model_add(m, cg_dense(3));
    if (freeze)
        cg_set_trainable(m, "dense_1", false);
    cg_compile(m, .optimizer = cg_adam(0.01f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 8);
    return m;
}

/* The number after "label" in the summary text. */
static long summary_number(const char *summary, const char *label)
{
    const char *p = strstr(summary, label);
    cr_assert_not_null(p, "no \"%s\" in the summary:\n%s", label, summary);
    char digits[32];
    size_t k = 0;
    for (p += strlen(label); *p && *p != '\n' && k + 1 < sizeof digits; p++)
        if (*p >= '0' && *p <= '9')
            digits[k++] = *p;
        else if (*p == ' ' && k)
            break;
    digits[k] = 0;
    return atol(digits);
}

Test(freeze, frozen_layer_has_no_gradient_state_or_update, .timeout = 60)
{
    cg_model *m = mlp("frozen", true), *full = mlp("unfrozen", false);
    const char *sf = cg_summary(m), *su = cg_summary(full);
    cr_expect_eq(summary_number(sf, "Trainable params: "), 27, "summary:\n%s", sf);
    cr_expect_eq(summary_number(sf, "Non-trainable params: "), 40, "summary:\n%s", sf);
    long bwd_frozen = summary_number(sf, "backward "), bwd_full = summary_number(su, "backward ");
    cr_expect_lt(bwd_frozen, bwd_full, "backward FLOPs: frozen %ld, unfrozen %ld", bwd_frozen, bwd_full);
    long opt_frozen = summary_number(sf, "optimizer state "), opt_full = summary_number(su, "optimizer state ");
    cr_expect_eq(opt_frozen, 27 * 2 * 4, "optimizer state bytes %ld", opt_frozen);
    cr_expect_eq(opt_full, 67 * 2 * 4, "optimizer state bytes %ld", opt_full);

    hx_module mod;
    cr_assert_eq(hx_build_model(&mod, m, CG_PORTABLE, NULL), 0, "%s", mod.err);
    cr_expect_eq(mod.trainable_floats, 27);
    cr_expect_eq(mod.opt_floats, 54);
    char path[512];
    snprintf(path, sizeof path, "%s/frozen.c", mod.dir);
    char *code = hx_read_file(path, NULL);
    cr_assert_not_null(code);
    cr_expect_null(strstr(code, "d_dense_1_kernel"), "the frozen kernel still has a gradient buffer");
    cr_expect_not_null(strstr(code, "d_dense_2_kernel"));
    free(code);

    long c1, c2;
    long k1 = hx_param(&mod, "dense_1/kernel", &c1), k2 = hx_param(&mod, "dense_2/kernel", &c2);
    cr_assert(k1 >= 0 && k2 >= 0);
    float before1[32], before2[24];
    memcpy(before1, mod.params + k1, sizeof before1);
    memcpy(before2, mod.params + k2, sizeof before2);
    float x[8 * 4], y[8];
    for (int i = 0; i < 8 * 4; i++)
        x[i] = sinf((float)i);
    for (int i = 0; i < 8; i++)
        y[i] = (float)(i % 3);
    for (int step = 0; step < 3; step++) {
        float loss, metric;
        mod.train_step(mod.state, 8, x, y, &loss, &metric);
    }
    cr_expect_eq(memcmp(before1, mod.params + k1, sizeof before1), 0, "the frozen kernel moved");
    cr_expect_neq(memcmp(before2, mod.params + k2, sizeof before2), 0, "the trainable kernel did not move");
    hx_close(&mod);
    cg_model_free(m);
    cg_model_free(full);
}

Test(freeze, unknown_layer_is_refused)
{
    cg_model *m = cg_sequential("nolayer", CG_SHAPE(4));
    cg_model_add(m, cg_dense(2));
    int line = __LINE__ + 1;
    int rc = cg_set_trainable(m, "dense_9", false);
    cr_expect(rc != 0);
    char want[64];
    snprintf(want, sizeof want, "test_freeze.c:%d:", line);
    cr_expect(strstr(cg_error(cg_model_graph(m)), want) && strstr(cg_error(cg_model_graph(m)), "dense_9"), "%s",
              cg_error(cg_model_graph(m)));
    cg_model_free(m);
}

/* Every layer frozen, with SGD: nothing to train, so no gradient block
 * (ISO C has no zero-length array: "float grads[0]" failed -Wpedantic) and no
 * optimizer; the training step still computes the loss, and the parameters
 * stay as they are. */
Test(freeze, everything_frozen_with_sgd)
{
    cg_model *m = cg_sequential("frozen", CG_SHAPE(4));
    cg_model_add(m, cg_dense(8, .activation = CG_RELU));
    cg_model_add(m, cg_dense(3));
    cg_set_trainable(m, "dense_1", false);
    cg_set_trainable(m, "dense_2", false);
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
               .from_logits = true, .batch_size = 8);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    for (int f = 0; f < 2; f++) {
        hx_module mod;
        cr_assert(hx_build_model(&mod, m, f ? CG_HOST : CG_PORTABLE, hx_default_cc()) == 0, "%s", mod.err);
        cr_expect_eq(mod.trainable_floats, 0);
        float x[8 * 4], y[8], loss = -1, metric;
        for (int i = 0; i < 8 * 4; i++)
            x[i] = (float)(i % 5) - 2.0f;
        for (int i = 0; i < 8; i++)
            y[i] = (float)(i % 3);
        float before[4 * 8 + 8 + 8 * 3 + 3];
        memcpy(before, mod.params, sizeof before);
        mod.train_step(mod.state, 8, x, y, &loss, &metric);
        cr_expect(loss > 0.0f && isfinite(loss), "loss %g", (double)loss);
        cr_expect(memcmp(before, mod.params, sizeof before) == 0, "a frozen parameter moved");
        hx_close(&mod);
    }
    cg_model_free(m);
}
