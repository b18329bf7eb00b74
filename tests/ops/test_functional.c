/* test_functional.c: functional models (several inputs and outputs, merge
 * layers, a layer called twice) and custom models (init + call, with a
 * residual connection and a shared block), checked through their emitted
 * code: the gradient train_step leaves in the gradient block against central
 * finite differences of its loss (tests/support/fdcheck.c); inference mode of
 * raw ops after Dropout; and the builder errors of the API.
 *
 * The finite differences use eps = 1e-2 on a float loss of O(1) terms: the
 * same budget as test_gradcheck.c, TOL = 5e-3 relative to max(1, |g|).
 */
#include <criterion/criterion.h>

#include <cgrad.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdcheck.h"
#include "harness.h"
#include "models.h"

#define TOL 5e-3
#define EPS 1e-2f
#define N 6

static uint64_t rng_state = 20261127u;
static float unif(float lo, float hi)
{
    return fd_unif(&rng_state, lo, hi);
}

/* Checks every trainable float of mod (see fdcheck.h). */
static void check_model_gradients(hx_module *mod, const float *x, const float *y)
{
    fd_check_model(mod->name, mod, N, x, y, EPS, TOL, false);
}

static void functional_gradients(cg_flavour flavour)
{
    cg_model *m = tm_two_in_two_out(flavour == CG_HOST ? "fn_host" : "fn_portable");
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert_eq(hx_build_model(&mod, m, flavour, NULL), 0, "%s", mod.err);
    /* proj_a 5*4+4, proj_b 3*4+4, shared 4*4+4 (once), cls 8*3+3, reg 4*2+2 */
    cr_expect_eq(mod.trainable_floats, 24 + 16 + 20 + 27 + 10);
    float x[N * 8], y[N * 3];
    for (int i = 0; i < N * 8; i++)
        x[i] = unif(-1, 1);
    for (int i = 0; i < N; i++) { /* packed labels: cls (a class index), then reg (2 values) */
        y[i * 3] = (float)(i % 3);
        y[i * 3 + 1] = unif(-1, 1);
        y[i * 3 + 2] = unif(-1, 1);
    }
    /* the total loss is cls_loss + 0.5 reg_loss, and the metrics come in Keras' order */
    float loss, metrics[4];
    mod.eval_step(mod.state, N, x, y, &loss, metrics);
    cr_expect_float_eq(loss, metrics[0] + 0.5f * metrics[1], 1e-5f, "loss %g, cls_loss %g, reg_loss %g", (double)loss,
                       (double)metrics[0], (double)metrics[1]);
    cr_expect(metrics[2] >= 0.0f && metrics[2] <= 1.0f, "cls_accuracy %g", (double)metrics[2]);
    float out[N * 5];
    mod.predict(mod.state, N, x, out);
    double mae = 0; /* reg's MAE from the packed predictions (cls 3 floats, then reg 2) */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 2; j++)
            mae += fabs(out[i * 5 + 3 + j] - y[i * 3 + 1 + j]);
    cr_expect_float_eq(metrics[3], mae / (N * 2), 1e-5, "reg_mae %g, from predict %g", (double)metrics[3],
                       mae / (N * 2));
    check_model_gradients(&mod, x, y);
    char path[512];
    snprintf(path, sizeof path, "%s/%s_main.c", mod.dir, mod.name);
    char *main_c = hx_read_file(path, NULL);
    cr_assert_not_null(main_c);
    cr_expect_not_null(strstr(main_c, "\"cls_loss\", \"reg_loss\", \"cls_accuracy\", \"reg_mae\""), "%s", main_c);
    free(main_c);
    hx_close(&mod);
    cg_model_free(m);
}

Test(functional, two_inputs_two_outputs_gradients_portable, .timeout = 60)
{
    functional_gradients(CG_PORTABLE);
}
Test(functional, two_inputs_two_outputs_gradients_host, .timeout = 60)
{
    functional_gradients(CG_HOST);
}

/* The custom model of models.h: a stem, one residual block called twice
 * (shared weights), a head. */
Test(custom_model, residual_shared_block_gradients, .timeout = 60)
{
    cg_model *m = tm_residual("resnet");
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    const char *summary = cg_summary(m);
    cr_expect_not_null(strstr(summary, "Total params: 93"), "the shared block counts once:\n%s", summary);
    hx_module mod;
    cr_assert_eq(hx_build_model(&mod, m, CG_PORTABLE, NULL), 0, "%s", mod.err);
    cr_expect_eq(mod.trainable_floats, 30 + 42 + 21);
    float x[N * 4], y[N];
    for (int i = 0; i < N * 4; i++)
        x[i] = unif(-1, 1);
    for (int i = 0; i < N; i++)
        y[i] = (float)((i * 7) % 3);
    check_model_gradients(&mod, x, y);
    hx_close(&mod);
    cg_model_free(m);
}

/* A custom layer like the custom_layer example's MyDense (inputs @ kernel,
 * no bias; tanh instead of relu, whose kink the finite differences would
 * straddle) inside a functional model: applied once, and as a layer object
 * called on two branches (one kernel for both). */
static cg_t my_dense_call(cg_layer_ctx *layer, cg_t inputs, void *self)
{
    int units = *(const int *)self;
    cg_t kernel = cg_add_weight(layer, "kernel", CG_SHAPE(cg_shape_of(inputs).dims[1], units), cg_glorot_uniform(),
                                true);
    return cg_tanh(cg_matmul(inputs, kernel));
}

Test(functional, custom_layer_in_a_functional_model, .timeout = 60)
{
    static int four = 4, three = 3;
    cg_model *m = cg_functional("fn_custom");
    cg_t a = cg_input(m, "a", CG_SHAPE(3));
    cg_t b = cg_input(m, "b", CG_SHAPE(3));
    cg_layer_ref shared = cg_make_layer(m, cg_custom_layer("MyDense", my_dense_call, &four));
    cg_t h = cg_apply(m, cg_concatenate(), cg_call(shared, a), cg_call(shared, b));
    cg_t y = cg_apply(m, cg_custom_layer("MyDense", my_dense_call, &three), h);
    cg_set_outputs(m, y);
    cg_compile(m, .optimizer = cg_sgd(1.0f, 0.0f, false), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
               .from_logits = true, .batch_size = 8);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert_eq(hx_build_model(&mod, m, CG_PORTABLE, NULL), 0, "%s", mod.err);
    cr_expect_eq(mod.trainable_floats, 3 * 4 + 8 * 3, "my_dense_1 holds one (3, 4) kernel for both calls");
    cr_expect_geq(hx_param(&mod, "my_dense_1/kernel", NULL), 0);
    float x[N * 6], lab[N];
    for (int i = 0; i < N * 6; i++)
        x[i] = unif(-1, 1);
    for (int i = 0; i < N; i++)
        lab[i] = (float)(i % 3);
    check_model_gradients(&mod, x, lab);
    hx_close(&mod);
    cg_model_free(m);
}

/* A raw op after Dropout must use the inference-mode value in predict and
 * eval_step: those are deterministic and agree with each other, while the
 * training step (which draws masks) sees another loss. */
Test(functional, raw_op_after_dropout_uses_inference_mode, .timeout = 60)
{
    cg_model *m = cg_functional("drop_raw");
    cg_t x = cg_input(m, "features", CG_SHAPE(8));
    cg_t h = cg_apply(m, cg_dense(16, .activation = CG_RELU), x);
    h = cg_apply(m, cg_dropout(0.5f), h);
    cg_t z = cg_mul(h, cg_scalar(cg_model_graph(m), 2.0f)); /* raw op on a mode-dependent tensor */
    cg_t out = cg_apply(m, cg_dense(1, .name = "out"), z);
    cg_set_outputs(m, out);
    cg_compile(m, .optimizer = cg_sgd(1e-9f, 0.0f, false), .loss = CG_MSE, .batch_size = 8);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert_eq(hx_build_model(&mod, m, CG_PORTABLE, NULL), 0, "%s", mod.err);
    float xs[N * 8], y[N], p1[N], p2[N], metrics[1];
    for (int i = 0; i < N * 8; i++)
        xs[i] = unif(0.1f, 1);
    for (int i = 0; i < N; i++)
        y[i] = 0.0f;
    mod.predict(mod.state, N, xs, p1);
    mod.predict(mod.state, N, xs, p2);
    cr_expect_arr_eq(p1, p2, sizeof p1, "predict is not deterministic: dropout reached inference mode");
    double mse = 0;
    for (int i = 0; i < N; i++)
        mse += (double)p1[i] * p1[i];
    float eval_loss, train_loss = 0;
    mod.eval_step(mod.state, N, xs, y, &eval_loss, metrics);
    cr_expect_float_eq(eval_loss, mse / N, 1e-4 * fmax(1.0, mse / N), "eval loss %g, predict's MSE %g",
                       (double)eval_loss, mse / N);
    bool differs = false;
    for (int k = 0; k < 4 && !differs; k++) { /* with lr 1e-9 the weights stay put; masks change the loss */
        mod.train_step(mod.state, N, xs, y, &train_loss, metrics);
        differs = fabsf(train_loss - eval_loss) > 1e-4f * fmaxf(1.0f, eval_loss);
    }
    cr_expect(differs, "training loss %g equals the inference loss %g: dropout is not active in training",
              (double)train_loss, (double)eval_loss);
    hx_close(&mod);
    cg_model_free(m);
}

/* A custom layer whose call() calls a layer object (not allowed). */
static int nested_line;
static cg_t nested_call(cg_layer_ctx *layer, cg_t inputs, void *self)
{
    (void)layer;
    nested_line = __LINE__ + 1;
    return cg_call(*(cg_layer_ref *)self, inputs);
}

/* The builder error of the model made by make(), which must fail. */
static const char *error_of(cg_model *m)
{
    cr_assert(cg_failed(cg_model_graph(m)), "the model was accepted");
    return cg_error(cg_model_graph(m));
}

static void expect_error(cg_model *m, const char *part, int line)
{
    const char *e = error_of(m);
    char where[64];
    snprintf(where, sizeof where, "test_functional.c:%d:", line);
    cr_expect_not_null(strstr(e, part), "error \"%s\" lacks \"%s\"", e, part);
    cr_expect_not_null(strstr(e, where), "error \"%s\" does not name %s", e, where);
    cg_model_free(m);
}

Test(functional_errors, output_that_does_not_depend_on_an_input)
{
    cg_model *m = cg_functional("bad");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_apply(m, cg_dense(2), x);
    cg_t c = cg_scalar(cg_model_graph(m), 1.0f);
    int line = __LINE__ + 1;
    cg_set_outputs(m, c);
    expect_error(m, "does not depend on any input", line);
}

Test(functional_errors, unused_input)
{
    cg_model *m = cg_functional("bad");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    int line = __LINE__ + 1;
    cg_input(m, "extra", CG_SHAPE(2));
    cg_t y = cg_apply(m, cg_dense(2), x);
    cg_set_outputs(m, y);
    expect_error(m, "input extra is not used by any output", line);
}

Test(functional_errors, loss_for_an_output_that_does_not_exist)
{
    cg_model *m = cg_functional("bad");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_t y = cg_apply(m, cg_dense(2, .name = "score"), x);
    cg_set_outputs(m, y);
    int line = __LINE__ + 1;
    cg_compile(m, .optimizer = cg_adam(1e-3f), .outputs = {{.name = "scores", .loss = CG_MSE}});
    expect_error(m, "a loss is given for output scores, but the model's outputs are: score", line);
}

Test(functional_errors, output_without_a_loss)
{
    cg_model *m = cg_functional("bad");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_t a = cg_apply(m, cg_dense(2, .name = "first"), x);
    cg_t b = cg_apply(m, cg_dense(2, .name = "second"), x);
    cg_set_outputs(m, a, b);
    int line = __LINE__ + 1;
    cg_compile(m, .optimizer = cg_adam(1e-3f), .outputs = {{.name = "first", .loss = CG_MSE}});
    expect_error(m, "output second has no loss", line);
}

Test(functional_errors, two_layers_with_one_name)
{
    cg_model *m = cg_functional("bad");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_t h = cg_apply(m, cg_dense(3, .name = "hidden"), x);
    int line = __LINE__ + 1;
    cg_apply(m, cg_dense(3, .name = "hidden"), h);
    expect_error(m, "a layer named hidden already exists", line);
}

Test(functional_errors, merge_of_different_shapes)
{
    cg_model *m = cg_functional("bad");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_t a = cg_apply(m, cg_dense(3), x);
    cg_t b = cg_apply(m, cg_dense(2), x);
    int line = __LINE__ + 1;
    cg_apply(m, cg_add_layer(), a, b);
    expect_error(m, "input 2 has shape (n, 2), input 1 has (n, 3): Add needs one shape", line);
}

Test(functional_errors, input_named_x_and_layer_calls_on_sequential)
{
    cg_model *m = cg_functional("bad");
    int line = __LINE__ + 1;
    cg_input(m, "x", CG_SHAPE(4));
    expect_error(m, "an input may not be called x", line);
    cg_model *s = cg_sequential("seq", CG_SHAPE(4));
    cg_layer_ref d = cg_make_layer(s, cg_dense(2));
    line = __LINE__ + 1;
    cg_call(d, cg_model_output(s));
    expect_error(s, "a Sequential model takes its layers from cg_model_add", line);
}

Test(functional_errors, raw_output_after_dropout_and_shared_layer_outputs)
{
    /* an output that is a raw op over a mode-dependent tensor (its inference
     * value is made while the outputs are set), and two outputs from two
     * calls of one shared layer (the second goes by its node's name) */
    cg_model *m = cg_functional("outs");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_t h = cg_apply(m, cg_dropout(0.5f), cg_apply(m, cg_dense(4), x));
    cg_layer_ref shared = cg_make_layer(m, cg_dense(2, .name = "shared"));
    cg_set_outputs(m, cg_add(h, x), cg_call(shared, x), cg_call(shared, h));
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    hx_module mod;
    cr_assert_eq(hx_build_model(&mod, m, CG_PORTABLE, NULL), 0, "%s", mod.err);
    char path[512];
    snprintf(path, sizeof path, "%s/outs_main.c", mod.dir);
    char *main_c = hx_read_file(path, NULL);
    cr_assert_not_null(main_c);
    cr_expect_not_null(strstr(main_c, "{\"shared\", 2, 2, 0},\n    {\"shared_out_2\", 2, 2, 0},"), "%s", main_c);
    free(main_c);
    hx_close(&mod);
    cg_model_free(m);
}

Test(functional_errors, layer_called_inside_a_custom_layer)
{
    cg_model *m = cg_functional("bad");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    static cg_layer_ref inner;
    inner = cg_make_layer(m, cg_dense(4, .name = "inner"));
    cg_apply(m, cg_custom_layer("Outer", nested_call, &inner), x);
    expect_error(m, "a layer cannot be called inside another layer's call()", nested_line);
}

Test(functional_errors, class_range_that_does_not_fit_the_output)
{
    cg_model *m = cg_sequential("bad", CG_SHAPE(4));
    cg_model_add(m, cg_dense(3));
    int line = __LINE__ + 1;
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
               .data = {.class_range = {5, 9}});
    expect_error(m, "keeps 5 classes, so the model needs one output of 5 classes", line);
}

Test(functional_errors, shared_layer_called_on_a_wrong_shape_names_the_call)
{
    cg_model *m = cg_functional("bad");
    cg_t a = cg_input(m, "a", CG_SHAPE(4));
    cg_t b = cg_input(m, "b", CG_SHAPE(4, 2));
    cg_layer_ref d = cg_make_layer(m, cg_dense(2, .name = "d"));
    cg_call(d, a);
    int line = __LINE__ + 1;
    cg_call(d, b);
    expect_error(m, "d: weight d/kernel has shape (4, 2), now asked for (2, 2)", line);
}

Test(functional_errors, tensor_of_another_model)
{
    cg_model *m = cg_functional("one"), *other = cg_functional("two");
    cg_t x = cg_input(other, "features", CG_SHAPE(4));
    cg_input(m, "features", CG_SHAPE(4));
    int line = __LINE__ + 1;
    cg_apply(m, cg_dense(2), x);
    expect_error(m, "input 1 is not a tensor of model one", line);
    cg_model_free(other);
}
