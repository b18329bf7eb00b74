/* test_builder.c: builder errors are returned, never printed or fatal; they
 * name the user's source line (captured with __LINE__ on the same line as
 * the failing call), the layer and the shapes; and they are sticky: later
 * calls return id -1 and keep the first message. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <string.h>

#include <cgrad.h>

#include "../support/builder_errors.h"

/* Asserts that err names this file's line and mentions each needle. */
static void expect_error(const char *err, int line, const char *const *needles, int n)
{
    be_expect_error(err, __FILE__, line, needles, n);
}
#define quiet be_quiet
#define nothing_printed be_nothing_printed

TestSuite(builder, .init = quiet);

Test(builder, matmul_shapes)
{
    cg_graph *g = cg_graph_new("mm");
    cg_t a = cg_placeholder(g, "a", CG_SHAPE(CG_BATCH, 3));
    cg_t b = cg_variable(g, "b", CG_SHAPE(4, 5), cg_zeros());
    int line = __LINE__ + 1;
    cg_t c = cg_matmul(a, b);
    cr_expect(c.id < 0, "cg_matmul of (n, 3) and (4, 5) returned node %d", c.id);
    cr_expect(cg_failed(g));
    expect_error(cg_error(g), line, (const char *[]){"(n, 3)", "(4, 5)"}, 2);
    nothing_printed();
    cg_graph_free(g);
}

Test(builder, sticky)
{
    cg_graph *g = cg_graph_new("sticky");
    cg_t a = cg_variable(g, "a", CG_SHAPE(2, 3), cg_zeros());
    cg_t b = cg_variable(g, "b", CG_SHAPE(4), cg_zeros());
    int line = __LINE__ + 1;
    cg_t bad = cg_add(a, b);
    char first[512];
    snprintf(first, sizeof first, "%s", cg_error(g));
    expect_error(first, line, (const char *[]){"(2, 3)", "(4)"}, 2);
    /* later calls, even valid ones and ones that would fail differently, return -1 and keep the message */
    cg_t ok = cg_square(a);
    cg_t worse = cg_matmul(a, a);
    cg_t use = cg_relu(bad);
    cg_t v = cg_variable(g, "c", CG_SHAPE(2), cg_ones());
    cr_expect(bad.id < 0 && ok.id < 0 && worse.id < 0 && use.id < 0 && v.id < 0,
              "calls after an error returned ids %d %d %d %d %d", bad.id, ok.id, worse.id, use.id, v.id);
    cr_expect(cg_gradients(g, cg_sum(a), a) != 0, "cg_gradients succeeded after an error");
    cr_expect_str_eq(cg_error(g), first, "the first message was overwritten");
    char dir[] = "/tmp/cgrad-builder-XXXXXX";
    cr_assert(mkdtemp(dir));
    cr_expect(cg_emit_graph(g, dir, CG_PORTABLE) != 0, "a failed graph was emitted");
    remove(dir);
    nothing_printed();
    cg_graph_free(g);
}

Test(builder, no_error_is_empty)
{
    cg_graph *g = cg_graph_new("fine");
    cr_expect(!cg_failed(g));
    cr_expect_str_eq(cg_error(g), "");
    cg_graph_free(g);
}

Test(builder, dense_wrong_rank)
{
    /* a sequence (n, T, F) is fine (every step, as Keras); an image is not */
    cg_model *m = cg_sequential("dense_rank", CG_SHAPE(4, 5, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_dense(3));
    cr_expect(rc != 0, "Dense on a rank-4 input (n, 4, 5, 2) was accepted");
    expect_error(cg_error(cg_model_graph(m)), line, (const char *[]){"dense_1", "(n, 4, 5, 2)"}, 2);
    nothing_printed();
    cg_model_free(m);
}

Test(builder, compile_loss_metric_mismatch)
{
    cg_model *m = cg_sequential("mismatch", CG_SHAPE(4));
    cg_model_add(m, cg_dense(3));
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_CATEGORICAL_CROSSENTROPY,
                        .metric = CG_SPARSE_CATEGORICAL_ACCURACY);
    cr_expect(rc != 0, "sparse accuracy with categorical crossentropy was accepted");
    expect_error(cg_error(cg_model_graph(m)), line,
                 (const char *[]){"sparse_categorical_accuracy", "categorical_crossentropy"}, 2);
    nothing_printed();
    cg_model_free(m);
}

Test(builder, unreachable_variable)
{
    cg_graph *g = cg_graph_new("unreach");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 2));
    cg_t w = cg_variable(g, "w", CG_SHAPE(2, 1), cg_zeros());
    int vline = __LINE__ + 1;
    cg_t lonely = cg_variable(g, "lonely", CG_SHAPE(3), cg_zeros());
    int line = __LINE__ + 1;
    int rc = cg_gradients(g, cg_mean(cg_matmul(x, w)), w, lonely);
    cr_expect(rc != 0, "a variable the loss does not depend on was accepted");
    const char *err = cg_error(g);
    char at_call[64], at_var[64];
    snprintf(at_call, sizeof at_call, "test_builder.c:%d:", line);
    snprintf(at_var, sizeof at_var, "test_builder.c:%d:", vline);
    cr_expect(strstr(err, at_call) || strstr(err, at_var),
              "error \"%s\" names neither the call (%s) nor the variable (%s)", err, at_call, at_var);
    cr_expect(strstr(err, "lonely") != NULL, "error \"%s\" does not name the variable", err);
    nothing_printed();
    cg_graph_free(g);
}

Test(builder, loss_not_scalar)
{
    cg_graph *g = cg_graph_new("notscalar");
    cg_t w = cg_variable(g, "w", CG_SHAPE(2, 3), cg_zeros());
    int line = __LINE__ + 1;
    int rc = cg_gradients(g, cg_square(w), w);
    cr_expect(rc != 0);
    expect_error(cg_error(g), line, (const char *[]){"(2, 3)"}, 1);
    nothing_printed();
    cg_graph_free(g);
}

Test(builder, batch_only_first)
{
    cg_graph *g = cg_graph_new("batchpos");
    int line = __LINE__ + 1;
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(3, CG_BATCH));
    cr_expect(x.id < 0);
    expect_error(cg_error(g), line, NULL, 0);
    nothing_printed();
    cg_graph_free(g);
}

Test(builder, variable_with_batch)
{
    cg_graph *g = cg_graph_new("varbatch");
    int line = __LINE__ + 1;
    cg_t v = cg_variable(g, "v", CG_SHAPE(CG_BATCH, 3), cg_zeros());
    cr_expect(v.id < 0);
    expect_error(cg_error(g), line, (const char *[]){"v"}, 1);
    nothing_printed();
    cg_graph_free(g);
}

Test(builder, transpose_of_batch)
{
    cg_graph *g = cg_graph_new("tbatch");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    int line = __LINE__ + 1;
    cg_t t = cg_transpose(x);
    cr_expect(t.id < 0);
    expect_error(cg_error(g), line, (const char *[]){"(n, 3)"}, 1);
    nothing_printed();
    cg_graph_free(g);
}

Test(builder, xent_label_shape)
{
    cg_graph *g = cg_graph_new("xent");
    cg_t z = cg_placeholder(g, "z", CG_SHAPE(CG_BATCH, 4));
    cg_t t = cg_placeholder(g, "t", CG_SHAPE(CG_BATCH, 3));
    int line = __LINE__ + 1;
    cg_t l = cg_softmax_cross_entropy(z, t, false);
    cr_expect(l.id < 0);
    expect_error(cg_error(g), line, (const char *[]){"labels have shape (n, 3)", "need labels of shape (n, 4)"}, 2);
    nothing_printed();
    cg_graph_free(g);
}

Test(builder, layer_error_names_layer)
{
    cg_model *m = cg_sequential("named", CG_SHAPE(4));
    cg_model_add(m, cg_dense(3, .name = "hidden"));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_dense(0, .name = "broken"));
    cr_expect(rc != 0, "Dense with 0 units was accepted");
    expect_error(cg_error(cg_model_graph(m)), line, (const char *[]){"broken"}, 1);
    nothing_printed();
    cg_model_free(m);
}

Test(builder, apply_gradients_needs_gradients_first)
{
    cg_graph *g = cg_graph_new("opt");
    cg_t w = cg_variable(g, "w", CG_SHAPE(2), cg_ones());
    int line = __LINE__ + 1;
    int rc = cg_apply_gradients(g, cg_adam(0.01f));
    cr_expect(rc != 0, "cg_apply_gradients before cg_gradients was accepted");
    expect_error(cg_error(g), line, (const char *[]){"cg_gradients first"}, 1);
    nothing_printed();
    cg_graph_free(g);
    (void)w;
}

Test(builder, apply_gradients_learning_rate)
{
    cg_graph *g = cg_graph_new("opt2");
    cg_t w = cg_variable(g, "w", CG_SHAPE(2), cg_ones());
    cg_gradients(g, cg_sum(cg_square(w)), w);
    int line = __LINE__ + 1;
    int rc = cg_apply_gradients(g, cg_adam(-1.0f));
    cr_expect(rc != 0, "a negative learning rate was accepted");
    expect_error(cg_error(g), line, (const char *[]){"learning rate must be positive", "-1"}, 2);
    nothing_printed();
    cg_graph_free(g);
}

/* A custom layer whose call() reaches for another layer's weight. */
static cg_t borrowed_kernel;
static cg_t borrowing_call(cg_layer_ctx *layer, cg_t x, void *self)
{
    (void)layer, (void)self;
    return cg_matmul(x, borrowed_kernel);
}
static cg_t owning_call(cg_layer_ctx *layer, cg_t x, void *self)
{
    (void)self;
    borrowed_kernel = cg_add_weight(layer, "kernel", CG_SHAPE(4, 4), cg_ones(), true);
    return cg_matmul(x, borrowed_kernel);
}

Test(builder, custom_layer_uses_another_layers_weight)
{
    cg_model *m = cg_sequential("borrow", CG_SHAPE(4));
    cg_model_add(m, cg_custom_layer("Owner", owning_call, NULL));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_custom_layer("Borrower", borrowing_call, NULL));
    cr_expect(rc != 0, "a custom layer using another layer's weight was accepted");
    expect_error(cg_error(cg_model_graph(m)), line, (const char *[]){"borrower_1", "owner_1/kernel"}, 2);
    nothing_printed();
    cg_model_free(m);
}
