/* test_custom_loss.c: a loss and a metric composed from ops and given to
 * cg_compile behave exactly as the built-in ones they spell out; a custom
 * loss that is not a scalar is refused with the user's line. */
#include <criterion/criterion.h>

#include <cgrad.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* Mean squared error and mean absolute error, written by hand. */
static cg_t my_mse(cg_t y_true, cg_t y_pred, void *self)
{
    (void)self;
    return cg_mean(cg_square(cg_sub(y_pred, y_true)));
}
static cg_t my_mae(cg_t y_true, cg_t y_pred, void *self)
{
    (void)self;
    return cg_mean(cg_abs(cg_sub(y_pred, y_true)));
}
/* Not a loss: one value per sample. */
static cg_t per_sample(cg_t y_true, cg_t y_pred, void *self)
{
    (void)self;
    return cg_sum_axes(cg_square(cg_sub(y_pred, y_true)), CG_AXIS(1), false);
}

/* A small regression model, with either the built-in or the custom pieces. */
static cg_model *regressor(bool custom)
{
    cg_model *m = cg_sequential(custom ? "custom_reg" : "builtin_reg", CG_SHAPE(3));
    cg_model_add(m, cg_dense(8, .activation = CG_TANH));
    cg_model_add(m, cg_dense(2));
    if (custom)
        cg_compile(m, .optimizer = cg_adam(0.01f), .custom_loss = my_mse, .custom_loss_name = "my_mse",
                   .custom_metric = my_mae, .custom_metric_name = "my_mae", .batch_size = 8);
    else
        cg_compile(m, .optimizer = cg_adam(0.01f), .loss = CG_MSE, .metric = CG_METRIC_MAE, .batch_size = 8);
    return m;
}

Test(custom_loss, equals_the_builtin_it_spells_out, .timeout = 60)
{
    hx_module a, b;
    cg_model *ma = regressor(false), *mb = regressor(true);
    cr_assert_eq(hx_build_model(&a, ma, CG_PORTABLE, NULL), 0, "%s", a.err);
    cr_assert_eq(hx_build_model(&b, mb, CG_PORTABLE, NULL), 0, "%s", b.err);
    cr_assert_eq(a.param_floats, b.param_floats);
    memcpy(b.params, a.params, sizeof(float) * (size_t)a.param_floats); /* the same start */
    float x[8 * 3], y[8 * 2];
    for (int i = 0; i < 8 * 3; i++)
        x[i] = sinf((float)i);
    for (int i = 0; i < 8 * 2; i++)
        y[i] = cosf((float)i * 0.7f);
    for (int step = 0; step < 5; step++) {
        float la, ma_, lb, mb_;
        a.train_step(a.state, 8, x, y, &la, &ma_);
        b.train_step(b.state, 8, x, y, &lb, &mb_);
        cr_assert_float_eq(la, lb, 1e-6f, "step %d: loss %g (built-in) vs %g (custom)", step, (double)la, (double)lb);
        cr_assert_float_eq(ma_, mb_, 1e-6f, "step %d: metric %g vs %g", step, (double)ma_, (double)mb_);
    }
    hx_close(&a);
    hx_close(&b);
    cg_model_free(ma);
    cg_model_free(mb);
}

Test(custom_loss, must_be_a_scalar)
{
    cg_model *m = cg_sequential("bad_loss", CG_SHAPE(3));
    cg_model_add(m, cg_dense(2));
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(0.01f), .custom_loss = per_sample);
    cr_expect(rc != 0, "a per-sample custom loss was accepted");
    char want[64];
    snprintf(want, sizeof want, "test_custom_loss.c:%d:", line);
    const char *err = cg_error(cg_model_graph(m));
    cr_expect(strstr(err, want) && strstr(err, "scalar") && strstr(err, "(n)"), "message: %s", err);
    cg_model_free(m);
}
