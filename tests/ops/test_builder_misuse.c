/* test_builder_misuse.c: the builder refuses nonsense with an error that
 * names the user's line, instead of emitting broken code or crashing:
 *   - float options that are NaN or infinite (range checks written so that
 *     NaN fails them): rates, momenta, epsilons, learning rates, loss weights,
 *     data options, leaky ReLU slopes, initializer parameters;
 *   - sizes that overflow int in the shape rules (slices, windows, padding,
 *     concatenation, reshape, weights) or that hold more elements than the
 *     emitted kernels index with their int loop variables (INT_MAX);
 *   - enum values out of range, at the builder call that received them;
 *   - layer references that cg_make_layer never made, or made for another
 *     model;
 *   - NULL pointers, tensors of another graph, and tensor ids past the end of
 *     their graph.
 * As in test_builder.c, the line is captured with __LINE__ on the line of the
 * failing call and nothing may be printed. Criterion runs each test in its own
 * process, so a crash fails only its test. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cgrad.h>
#include "../../compiler/cgrad_int.h"
#include "../support/builder_errors.h"

/* Asserts that g failed with an error naming this file's `line` and each needle. */
static void expect_failed(cg_graph *g, int line, const char *const *needles, int n)
{
    cr_expect(cg_failed(g), "the call at line %d was accepted", line);
    be_expect_error(cg_error(g), __FILE__, line, needles, n);
}
#define FAILED(g, line, ...) expect_failed(g, line, BE_NEEDLES(__VA_ARGS__))
#define quiet be_quiet
#define nothing_printed be_nothing_printed

TestSuite(misuse, .init = quiet);

/* ---- float options: NaN and infinities ------------------------------------ */

/* A small Sequential model: 4 features, one Dense layer. */
static cg_model *small_model(void)
{
    cg_model *m = cg_sequential("small", CG_SHAPE(4));
    cg_model_add(m, cg_dense(2));
    return m;
}

Test(misuse, dropout_rate_nan)
{
    cg_model *m = cg_sequential("drop", CG_SHAPE(4));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_dropout(NAN));
    cr_expect(rc != 0, "a NaN dropout rate was accepted");
    FAILED(cg_model_graph(m), line, "dropout_1: ", "rate", "nan");
    nothing_printed();
    cg_model_free(m);
}

Test(misuse, batch_norm_momentum_and_epsilon_nan_or_infinite)
{
    cg_model *m = cg_sequential("bn", CG_SHAPE(4));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_batch_normalization(.momentum = NAN));
    cr_expect(rc != 0);
    FAILED(cg_model_graph(m), line, "batch_normalization_1: ", "momentum");
    cg_model_free(m);
    m = cg_sequential("bn", CG_SHAPE(4));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_batch_normalization(.epsilon = NAN));
    cr_expect(rc != 0);
    FAILED(cg_model_graph(m), line, "epsilon");
    cg_model_free(m);
    m = cg_sequential("bn", CG_SHAPE(4));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_batch_normalization(.epsilon = INFINITY));
    cr_expect(rc != 0);
    FAILED(cg_model_graph(m), line, "epsilon");
    cg_model_free(m);
    nothing_printed();
}

Test(misuse, layer_norm_epsilon_nan_or_infinite)
{
    float bad[] = {NAN, INFINITY};
    for (int i = 0; i < 2; i++) {
        cg_model *m = cg_sequential("ln", CG_SHAPE(4));
        int line = __LINE__ + 1;
        int rc = cg_model_add(m, cg_layer_normalization(.epsilon = bad[i]));
        cr_expect(rc != 0, "LayerNormalization accepted epsilon %g", (double)bad[i]);
        FAILED(cg_model_graph(m), line, "layer_normalization_1: ", "epsilon");
        cg_model_free(m);
    }
    nothing_printed();
}

/* Compiles small_model() with `opt`; returns the line of the cg_compile call. */
static int compile_with_optimizer(cg_model *m, cg_optimizer opt)
{
    int line = __LINE__ + 1;
    cg_compile(m, .optimizer = opt, .loss = CG_MSE);
    return line;
}

Test(misuse, optimizer_hyperparameters_nan_or_infinite)
{
    struct {
        cg_optimizer opt;
        const char *needle;
    } cases[] = {
        {cg_adam(NAN), "learning rate"},
        {cg_adam(INFINITY), "learning rate"},
        {cg_sgd(NAN, 0.0f, false), "learning rate"},
        {cg_sgd(0.1f, NAN, false), "momentum"},
        {cg_rmsprop(NAN), "learning rate"},
        {{.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = NAN, .beta_2 = 0.999f, .epsilon = 1e-7f}, "beta_1"},
        {{.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = NAN, .epsilon = 1e-7f}, "beta_2"},
        {{.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = NAN}, "epsilon"},
        {{.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = INFINITY}, "epsilon"},
        {{.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = -1e-7f}, "epsilon"},
        {{.kind = CG_RMSPROP, .lr = 1e-3f, .rho = NAN, .epsilon = 1e-7f}, "rho"},
        {{.kind = CG_RMSPROP, .lr = 1e-3f, .rho = 1.5f, .epsilon = 1e-7f}, "rho"},
        {{.kind = CG_RMSPROP, .lr = 1e-3f, .momentum = NAN, .rho = 0.9f, .epsilon = 1e-7f}, "momentum"},
        {{.kind = CG_RMSPROP, .lr = 1e-3f, .rho = 0.9f, .epsilon = NAN}, "epsilon"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_model *m = small_model();
        int line = compile_with_optimizer(m, cases[i].opt);
        cr_expect(cg_failed(cg_model_graph(m)), "optimizer case %zu was accepted", i);
        FAILED(cg_model_graph(m), line, cases[i].needle);
        cg_model_free(m);
    }
    nothing_printed();
}

Test(misuse, apply_gradients_hyperparameters_nan)
{
    cg_optimizer bad[] = {cg_adam(NAN),
                          cg_sgd(0.1f, NAN, false),
                          {.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = NAN, .beta_2 = 0.999f, .epsilon = 1e-7f},
                          {.kind = CG_RMSPROP, .lr = 1e-3f, .rho = NAN, .epsilon = 1e-7f},
                          {.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = NAN}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cg_graph *g = cg_graph_new("tape");
        cg_t w = cg_variable(g, "w", CG_SHAPE(2), cg_ones());
        cg_gradients(g, cg_sum(cg_square(w)), w);
        int line = __LINE__ + 1;
        int rc = cg_apply_gradients(g, bad[i]);
        cr_expect(rc != 0, "cg_apply_gradients accepted optimizer case %zu", i);
        FAILED(g, line, "cg_apply_gradients");
        cg_graph_free(g);
    }
    nothing_printed();
}

Test(misuse, loss_weight_infinite)
{
    cg_model *m = cg_functional("two");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_set_outputs(m, cg_apply(m, cg_dense(1, .name = "a"), x), cg_apply(m, cg_dense(1, .name = "b"), x));
    int line = __LINE__ + 1;
    int rc = cg_compile(
        m, .optimizer = cg_adam(1e-3f),
        .outputs = {{.name = "a", .loss = CG_MSE, .loss_weight = INFINITY}, {.name = "b", .loss = CG_MSE}});
    cr_expect(rc != 0, "an infinite loss weight was accepted");
    FAILED(cg_model_graph(m), line, "loss weight");
    nothing_printed();
    cg_model_free(m);
}

Test(misuse, data_scale_and_test_split_nan_or_out_of_range)
{
    cg_data_opts bad[] = {{.scale = NAN},      {.scale = INFINITY},  {.scale = -1.0f},
                          {.test_split = NAN}, {.test_split = 1.5f}, {.test_split = -0.25f}};
    const char *needle[] = {"scale", "scale", "scale", "test_split", "test_split", "test_split"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cg_model *m = small_model();
        int line = __LINE__ + 1;
        int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .data = bad[i]);
        cr_expect(rc != 0, "data option case %zu was accepted", i);
        FAILED(cg_model_graph(m), line, needle[i]);
        cg_model_free(m);
    }
    nothing_printed();
}

Test(misuse, leaky_relu_alpha_nan_or_infinite)
{
    cg_graph *g = cg_graph_new("leaky");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    int line = __LINE__ + 1;
    cg_t y = cg_leaky_relu(x, NAN);
    cr_expect(y.id < 0);
    FAILED(g, line, "alpha");
    cg_graph_free(g);
    cg_model *m = cg_sequential("leaky", CG_SHAPE(4));
    line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_dense(3, .activation = CG_LEAKY_RELU, .alpha = INFINITY));
    cr_expect(rc != 0, "an infinite leaky ReLU slope was accepted");
    FAILED(cg_model_graph(m), line, "dense_1: ", "alpha");
    cg_model_free(m);
    nothing_printed();
}

Test(misuse, initializer_parameters)
{
    cg_init bad[] = {cg_normal(0.0f, NAN),    cg_normal(NAN, 1.0f),        cg_normal(0.0f, -1.0f),
                     cg_uniform(1.0f, -1.0f), cg_uniform(-INFINITY, 0.0f), cg_constant_init(INFINITY),
                     cg_constant_init(NAN)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cg_model *m = cg_sequential("init", CG_SHAPE(4));
        int line = __LINE__ + 1;
        int rc = cg_model_add(m, cg_dense(3, .kernel_initializer = bad[i]));
        cr_expect(rc != 0, "initializer case %zu was accepted", i);
        FAILED(cg_model_graph(m), line, "dense_1: ", "initializer");
        cg_model_free(m);
    }
    nothing_printed();
}

/* ---- sizes that overflow int --------------------------------------------- */

Test(misuse, slice_past_int_max)
{
    cg_graph *g = cg_graph_new("slice");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 4));
    int line = __LINE__ + 1;
    cg_t y = cg_slice(x, 1, INT_MAX, 2);
    cr_expect(y.id < 0, "slice [INT_MAX, INT_MAX + 2) of (n, 4) was accepted");
    FAILED(g, line, "slice");
    nothing_printed();
    cg_graph_free(g);
}

Test(misuse, huge_dilation)
{
    /* (3 - 1) x dilation + 1 taps overflow int */
    int dils[] = {INT_MAX, 1 << 30};
    for (int i = 0; i < 4; i++) {
        cg_model *m = cg_sequential("dil", CG_SHAPE(8, 8, 1));
        int line = __LINE__ + 1;
        int rc = cg_model_add(m, cg_conv2d(2, 3, .dilation = dils[i / 2], .padding = i % 2 ? CG_SAME : CG_VALID));
        cr_expect(rc != 0, "a dilation of %d was accepted (padding %d)", dils[i / 2], i % 2);
        FAILED(cg_model_graph(m), line, "conv2d_1: ", "dilation");
        cg_model_free(m);
    }
    nothing_printed();
}

Test(misuse, pad_sums)
{
    cg_graph *g = cg_graph_new("pad");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 4, 4, 1));
    int line = __LINE__ + 1;
    int y = op_pad(g, CG_HERE, x.id, (const int[]){INT_MAX, 0, 1, 0});
    cr_expect(y < 0, "padding the height to 4 + INT_MAX + 1 was accepted");
    FAILED(g, line, "pad");
    nothing_printed();
    cg_graph_free(g);
}

Test(misuse, concat_sum)
{
    cg_graph *g = cg_graph_new("cat");
    cg_t a = cg_placeholder(g, "a", CG_SHAPE(CG_BATCH, 1 << 30));
    cg_t b = cg_placeholder(g, "b", CG_SHAPE(CG_BATCH, 1 << 30));
    int line = __LINE__ + 1;
    cg_t c = cg_concat(a, b, 1);
    cr_expect(c.id < 0, "a concatenation of 2^31 features was accepted");
    FAILED(g, line, "concatenate");
    nothing_printed();
    cg_graph_free(g);
}

Test(misuse, reshape_product)
{
    /* 12648448 * 65537 * 22253377 = 2^16 (2^48 + 1) wraps to 2^16 = 256 * 256 in 64 bits */
    cg_graph *g = cg_graph_new("resh");
    cg_t w = cg_placeholder(g, "w", CG_SHAPE(256, 256));
    int line = __LINE__ + 1;
    cg_t r = cg_reshape(w, CG_SHAPE(12648448, 65537, 22253377));
    cr_expect(r.id < 0, "a reshape into 2^16 (2^48 + 1) elements was accepted");
    FAILED(g, line, "reshape");
    cg_graph_free(g);
    /* negative sizes whose product matches */
    g = cg_graph_new("resh");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 4));
    line = __LINE__ + 1;
    r = cg_reshape(x, CG_SHAPE(CG_BATCH, -2, -2));
    cr_expect(r.id < 0, "a reshape into (n, -2, -2) was accepted");
    FAILED(g, line, "reshape", "-2");
    cg_graph_free(g);
    cg_model *m = cg_sequential("resh", CG_SHAPE(4));
    line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_reshape_layer(CG_SHAPE(-1, -4)));
    cr_expect(rc != 0, "a Reshape layer into (-1, -4) was accepted");
    FAILED(cg_model_graph(m), line, "reshape_1: ");
    cg_model_free(m);
    nothing_printed();
}

Test(misuse, weights_past_int_max)
{
    /* Dense kernel 4096 x 2^20, Conv2D kernel 3 x 3 x 65536 x 8192, an Embedding table 2^20 x 4096 */
    cg_model *m = cg_sequential("big", CG_SHAPE(4096));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_dense(1 << 20));
    cr_expect(rc != 0, "a Dense kernel of 2^32 floats was accepted");
    FAILED(cg_model_graph(m), line, "dense_1: ", "kernel");
    cg_model_free(m);
    m = cg_sequential("big", CG_SHAPE(8, 8, 65536));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_conv2d(8192, 3));
    cr_expect(rc != 0, "a Conv2D kernel of 4.8e9 floats was accepted");
    FAILED(cg_model_graph(m), line, "conv2d_1: ", "kernel");
    cg_model_free(m);
    m = cg_sequential("big", CG_SHAPE(5));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_embedding(1 << 20, 4096));
    cr_expect(rc != 0, "an Embedding table of 2^32 floats was accepted");
    FAILED(cg_model_graph(m), line, "embedding_1: ", "embeddings");
    cg_model_free(m);
    nothing_printed();
}

Test(misuse, recurrent_units_times_gates)
{
    /* LSTM: 4 x 2^29 gate columns overflow int; GRU: its saved sequence is 8 x 2^29 wide; SimpleRNN: 2 x 2^30 */
    struct {
        cg_layer layer;
        const char *name;
    } cases[] = {
        {cg_lstm(1 << 29), "lstm_1: "}, {cg_gru(1 << 29), "gru_1: "}, {cg_simple_rnn(1 << 30), "simple_rnn_1: "}};
    for (int i = 0; i < 3; i++) {
        cg_model *m = cg_sequential("rnn", CG_SHAPE(3, 1));
        int rc = cg_model_add(m, cases[i].layer);
        cr_expect(rc != 0, "%s was accepted", cases[i].name);
        FAILED(cg_model_graph(m), cases[i].layer.src.line, cases[i].name, "units");
        cg_model_free(m);
    }
    nothing_printed();
}

/* A weight of 65536^4 floats (2^64: past long) declared by a custom layer. */
static cg_t huge_weight_call(cg_layer_ctx *layer, cg_t x, void *self)
{
    *(int *)self = __LINE__ + 1;
    cg_t w = cg_add_weight(layer, "w", CG_SHAPE(65536, 65536, 65536, 65536), cg_zeros(), true);
    return cg_add(x, cg_sum(w));
}

Test(misuse, custom_weight_of_65536_to_the_4)
{
    cg_model *m = cg_sequential("huge", CG_SHAPE(4));
    int line = 0;
    int rc = cg_model_add(m, cg_custom_layer("Huge", huge_weight_call, &line));
    cr_expect(rc != 0, "a weight of 65536^4 floats was accepted");
    FAILED(cg_model_graph(m), line, "huge_1: ", "w");
    nothing_printed();
    cg_model_free(m);
}

Test(misuse, variable_past_int_max_in_the_tape)
{
    /* 2^32 + 2^16 floats: the emitted loops index with int */
    cg_graph *g = cg_graph_new("tape");
    int line = __LINE__ + 1;
    cg_t w = cg_variable(g, "w", CG_SHAPE(65536, 65537), cg_zeros());
    int rc = cg_gradients(g, cg_sum(w), w);
    cr_expect(rc != 0, "a variable of 2^33 floats was accepted");
    FAILED(g, line, "w", "2147483647");
    nothing_printed();
    cg_graph_free(g);
}

Test(misuse, tensor_past_int_max_at_the_maximum_batch)
{
    /* 2^25 floats per sample fit int; 64 samples of them do not */
    int line = __LINE__ + 1;
    cg_model *m = cg_sequential("wide", CG_SHAPE(1 << 15, 1 << 10));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(1));
    cg_compile(m, .optimizer = cg_sgd(0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = 64);
    cr_assert(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    cr_expect_str_eq(cg_summary(m), "", "a model with 2^31 floats in one tensor was planned");
    FAILED(cg_model_graph(m), line, "maximum batch 64", "2147483647");
    nothing_printed();
    cg_model_free(m);
}

Test(misuse, input_past_int_max_per_sample)
{
    int line = __LINE__ + 1;
    cg_model *m = cg_sequential("wide", CG_SHAPE(1 << 16, 1 << 15));
    FAILED(cg_model_graph(m), line, "2147483647");
    cg_model_free(m);
    m = cg_functional("wide");
    line = __LINE__ + 1;
    cg_input(m, "a", CG_SHAPE(65536, 65536));
    FAILED(cg_model_graph(m), line, "2147483647");
    cg_model_free(m);
    nothing_printed();
}

Test(misuse, packed_inputs_past_int_max)
{
    /* two inputs of 2^30 floats: the packed sample x holds 2^31 */
    cg_model *m = cg_functional("packed");
    cg_t a = cg_input(m, "a", CG_SHAPE(1 << 30));
    cg_t b = cg_input(m, "b", CG_SHAPE(1 << 30));
    cg_set_outputs(m, cg_apply(m, cg_add_layer(), a, b));
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .batch_size = 1);
    cr_expect(rc != 0, "a packed sample of 2^31 floats was accepted");
    FAILED(cg_model_graph(m), line, "2147483647");
    nothing_printed();
    cg_model_free(m);
}

Test(misuse, class_range_up_to_int_max)
{
    /* {0, INT_MAX} keeps INT_MAX + 1 classes: counted without overflow */
    cg_model *m = cg_sequential("classes", CG_SHAPE(4));
    cg_model_add(m, cg_dense(3));
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
                        .data = {.class_range = {0, INT_MAX}});
    cr_expect(rc != 0);
    FAILED(cg_model_graph(m), line, "keeps 2147483648 classes");
    nothing_printed();
    cg_model_free(m);
}

/* ---- enum values out of range -------------------------------------------- */

Test(misuse, unknown_metric_loss_optimizer)
{
    cg_model *m = small_model();
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .metric = (cg_metric)99);
    cr_expect(rc != 0, "metric 99 was accepted");
    FAILED(cg_model_graph(m), line, "metric", "99");
    cg_model_free(m);
    m = small_model();
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = (cg_loss)42);
    cr_expect(rc != 0, "loss 42 was accepted");
    FAILED(cg_model_graph(m), line, "loss", "42");
    cg_model_free(m);
    m = small_model();
    cg_optimizer odd = cg_adam(1e-3f);
    odd.kind = (cg_optimizer_kind)7;
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = odd, .loss = CG_MSE);
    cr_expect(rc != 0, "optimizer kind 7 was accepted");
    FAILED(cg_model_graph(m), line, "optimizer", "7");
    cg_model_free(m);
    cg_graph *g = cg_graph_new("tape");
    cg_t w = cg_variable(g, "w", CG_SHAPE(2), cg_ones());
    cg_gradients(g, cg_sum(cg_square(w)), w);
    line = __LINE__ + 1;
    rc = cg_apply_gradients(g, odd);
    cr_expect(rc != 0, "cg_apply_gradients accepted optimizer kind 7");
    FAILED(g, line, "optimizer", "7");
    cg_graph_free(g);
    nothing_printed();
}

Test(misuse, unknown_metric_in_outputs)
{
    cg_model *m = cg_functional("two");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_set_outputs(m, cg_apply(m, cg_dense(1, .name = "a"), x), cg_apply(m, cg_dense(1, .name = "b"), x));
    int line = __LINE__ + 1;
    int rc = cg_compile(
        m, .optimizer = cg_adam(1e-3f),
        .outputs = {{.name = "a", .loss = CG_MSE}, {.name = "b", .loss = CG_MAE, .metric = (cg_metric)-3}});
    cr_expect(rc != 0, "metric -3 was accepted");
    FAILED(cg_model_graph(m), line, "metric", "-3");
    nothing_printed();
    cg_model_free(m);
}

Test(misuse, unknown_activation_padding_init)
{
    cg_model *m = cg_sequential("enums", CG_SHAPE(8, 8, 1));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv2d(2, 3, .padding = (cg_padding)5));
    cr_expect(rc != 0, "padding 5 was accepted");
    FAILED(cg_model_graph(m), line, "conv2d_1: ", "padding", "5");
    cg_model_free(m);
    m = cg_sequential("enums", CG_SHAPE(8, 8, 1));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_max_pooling2d(2, .padding = (cg_padding)-1));
    cr_expect(rc != 0, "padding -1 was accepted");
    FAILED(cg_model_graph(m), line, "max_pooling2d_1: ", "padding", "-1");
    cg_model_free(m);
    m = cg_sequential("enums", CG_SHAPE(8, 8, 1));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_conv2d(2, 3, .activation = (cg_activation)77));
    cr_expect(rc != 0, "activation 77 was accepted");
    FAILED(cg_model_graph(m), line, "conv2d_1: ", "activation", "77");
    cg_model_free(m);
    m = cg_sequential("enums", CG_SHAPE(4));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_dense(3, .bias_initializer = (cg_init){(cg_init_kind)42, 0, 0}));
    cr_expect(rc != 0, "initializer kind 42 was accepted");
    FAILED(cg_model_graph(m), line, "dense_1: ", "initializer", "42");
    cg_model_free(m);
    m = cg_sequential("enums", CG_SHAPE(3, 2));
    line = __LINE__ + 1;
    rc = cg_model_add(m, cg_lstm(4, .recurrent_initializer = (cg_init){(cg_init_kind)-1, 0, 0}));
    cr_expect(rc != 0, "initializer kind -1 was accepted");
    FAILED(cg_model_graph(m), line, "lstm_1: ", "initializer");
    cg_model_free(m);
    nothing_printed();
}

Test(misuse, unknown_initializer_of_a_raw_variable)
{
    cg_graph *g = cg_graph_new("tape");
    int line = __LINE__ + 1;
    cg_t w = cg_variable(g, "w", CG_SHAPE(2), ((cg_init){(cg_init_kind)42, 0, 0}));
    int rc = cg_gradients(g, cg_sum(cg_square(w)), w);
    cr_expect(rc != 0, "initializer kind 42 was accepted");
    FAILED(g, line, "w", "initializer", "42");
    nothing_printed();
    cg_graph_free(g);
}

Test(misuse, unknown_op_codes)
{
    cg_graph *g = cg_graph_new("codes");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    int line = __LINE__ + 1;
    cg_t y = cg_binary_at(CG_HERE, (cg_op_code)77, x, x);
    cr_expect(y.id < 0);
    FAILED(g, line, "77");
    cg_graph_free(g);
    g = cg_graph_new("codes");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    line = __LINE__ + 1;
    y = cg_unary_at(CG_HERE, CG_OP_ADD, x);
    cr_expect(y.id < 0, "cg_unary_at accepted the binary op ADD");
    FAILED(g, line, "unary");
    cg_graph_free(g);
    g = cg_graph_new("codes");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    line = __LINE__ + 1;
    y = cg_reduce_at(CG_HERE, CG_OP_EXP, x, 0, false);
    cr_expect(y.id < 0, "cg_reduce_at accepted EXP");
    FAILED(g, line, "reduction");
    cg_graph_free(g);
    g = cg_graph_new("codes");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    line = __LINE__ + 1;
    y = cg_binary_at(CG_HERE, CG_OP_SUM, x, x);
    cr_expect(y.id < 0, "cg_binary_at accepted SUM");
    FAILED(g, line, "binary");
    cg_graph_free(g);
    nothing_printed();
}

Test(misuse, unknown_flavour)
{
    cg_model *m = small_model();
    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE);
    int rc = cg_emit_model(m, "/nonexistent-dir", (cg_flavour)3);
    cr_expect(rc != 0);
    cr_expect(strstr(cg_error(cg_model_graph(m)), "flavour 3") != NULL, "%s", cg_error(cg_model_graph(m)));
    cg_model_free(m);
    cg_graph *g = cg_graph_new("tape");
    cg_t w = cg_variable(g, "w", CG_SHAPE(2), cg_ones());
    cg_gradients(g, cg_sum(cg_square(w)), w);
    rc = cg_emit_graph(g, "/nonexistent-dir", (cg_flavour)-2);
    cr_expect(rc != 0);
    cr_expect(strstr(cg_error(g), "flavour -2") != NULL, "%s", cg_error(g));
    cg_graph_free(g);
    nothing_printed();
}

/* ---- layer references ----------------------------------------------------- */

Test(misuse, layer_reference_never_made)
{
    cg_model *m = cg_functional("refs");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_layer_ref d = cg_make_layer(m, cg_dense(2));
    int line = __LINE__ + 1;
    cg_t y = cg_call(((cg_layer_ref){m, 12345}), x);
    cr_expect(y.id < 0, "layer reference 12345 was accepted");
    FAILED(cg_model_graph(m), line, "cg_call");
    cg_model_free(m);
    m = cg_functional("refs");
    x = cg_input(m, "features", CG_SHAPE(4));
    line = __LINE__ + 1;
    y = cg_call(((cg_layer_ref){m, -7}), x);
    cr_expect(y.id < 0, "layer reference -7 was accepted");
    FAILED(cg_model_graph(m), line, "cg_call");
    cg_model_free(m);
    m = cg_functional("refs");
    x = cg_input(m, "features", CG_SHAPE(4));
    line = __LINE__ + 1;
    y = cg_call(((cg_layer_ref){NULL, 0}), x);
    cr_expect(y.id < 0, "an empty layer reference was accepted");
    FAILED(cg_model_graph(m), line, "cg_call");
    cg_model_free(m);
    (void)d;
    nothing_printed();
}

Test(misuse, layer_of_another_model)
{
    cg_model *a = cg_functional("one"), *b = cg_functional("two");
    cg_t x = cg_input(a, "features", CG_SHAPE(4));
    cg_input(b, "features", CG_SHAPE(4));
    cg_layer_ref theirs = cg_make_layer(b, cg_dense(2, .name = "theirs"));
    int line = __LINE__ + 1;
    cg_t y = cg_call(theirs, x);
    cr_expect(y.id < 0);
    /* the model being built (the tensor's) fails, naming the call */
    FAILED(cg_model_graph(a), line, "theirs", "two");
    nothing_printed();
    cg_model_free(a);
    cg_model_free(b);
}

/* ---- NULL pointers, foreign tensors, ids past the end ----------------------- */

Test(misuse, null_model_and_graph_are_no_ops)
{
    cg_t none = {NULL, -1};
    cr_expect(cg_model_add(NULL, cg_dense(2)) != 0);
    cr_expect(cg_compile(NULL, .optimizer = cg_adam(1e-3f), .loss = CG_MSE) != 0);
    cr_expect(cg_set_trainable(NULL, "dense_1", false) != 0);
    cr_expect(cg_input(NULL, "a", CG_SHAPE(2)).id < 0);
    cr_expect(cg_make_layer(NULL, cg_dense(2)).id < 0);
    cr_expect(cg_call(cg_make_layer(NULL, cg_dense(2)), none).id < 0);
    cr_expect(cg_set_outputs(NULL, none) != 0);
    cr_expect(cg_rnn_state(NULL, "lstm_1", CG_STATE_H).id < 0);
    cr_expect(cg_model_output(NULL).id < 0);
    cr_expect(cg_model_graph(NULL) == NULL);
    cr_expect(cg_emit_model(NULL, ".", CG_HOST) != 0);
    cr_expect_str_eq(cg_summary(NULL), "");
    cr_expect(cg_placeholder(NULL, "x", CG_SHAPE(2)).id < 0);
    cr_expect(cg_variable(NULL, "w", CG_SHAPE(2), cg_zeros()).id < 0);
    cr_expect(cg_scalar(NULL, 1.0f).id < 0);
    cr_expect(cg_gradients(NULL, none, none) != 0);
    cr_expect(cg_apply_gradients(NULL, cg_adam(1e-3f)) != 0);
    cr_expect(cg_add(none, none).id < 0 && cg_relu(none).id < 0 && cg_sum(none).id < 0);
    cr_expect(cg_matmul(none, none).id < 0 && cg_reshape(none, CG_SHAPE(2)).id < 0 && cg_transpose(none).id < 0);
    cr_expect(cg_slice(none, 0, 0, 1).id < 0 && cg_concat(none, none, 0).id < 0);
    cr_expect(cg_softmax_cross_entropy(none, none, true).id < 0 && cg_where(none, none, none).id < 0);
    cr_expect(cg_add_weight(NULL, "w", CG_SHAPE(2), cg_zeros(), true).id < 0);
    cr_expect(cg_failed(NULL));
    cg_set_max_batch(NULL, 8);
    cg_model_free(NULL);
    cg_graph_free(NULL);
    nothing_printed();
}

Test(misuse, null_arrays)
{
    cg_model *m = cg_functional("nulls");
    cg_t x = cg_input(m, "features", CG_SHAPE(4));
    cg_layer_ref d = cg_make_layer(m, cg_dense(2));
    int line = __LINE__ + 1;
    cg_t y = cg_call_at(CG_HERE, d, NULL, 1);
    cr_expect(y.id < 0);
    FAILED(cg_model_graph(m), line, "cg_call");
    cg_model_free(m);
    m = cg_functional("nulls");
    x = cg_input(m, "features", CG_SHAPE(4));
    line = __LINE__ + 1;
    int rc = cg_set_outputs_at(CG_HERE, m, NULL, 1);
    cr_expect(rc != 0);
    FAILED(cg_model_graph(m), line, "cg_set_outputs");
    cg_model_free(m);
    cg_graph *g = cg_graph_new("nulls");
    cg_t w = cg_variable(g, "w", CG_SHAPE(2), cg_ones());
    line = __LINE__ + 1;
    rc = cg_gradients_at(CG_HERE, g, cg_sum(w), NULL, 1);
    cr_expect(rc != 0);
    FAILED(g, line, "cg_gradients");
    cg_graph_free(g);
    cg_model *s = small_model();
    cg_compile(s, .optimizer = cg_adam(1e-3f), .loss = CG_MSE);
    rc = cg_emit_model(s, NULL, CG_PORTABLE);
    cr_expect(rc != 0);
    cr_expect(strstr(cg_error(cg_model_graph(s)), "NULL") != NULL, "%s", cg_error(cg_model_graph(s)));
    cg_model_free(s);
    (void)x;
    nothing_printed();
}

Test(misuse, tensor_ids_past_the_end)
{
    cg_graph *g = cg_graph_new("ids");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    cg_t bogus = {g, 99999};
    struct {
        const char *what;
        cg_t (*call)(cg_t x, cg_t bogus, int *line);
    } *unused = NULL;
    (void)unused;
    int line;
    cg_t y;
    line = __LINE__ + 1;
    y = cg_sum(bogus);
    cr_expect(y.id < 0);
    FAILED(g, line, "not a tensor");
    cg_graph_free(g);

    g = cg_graph_new("ids");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    bogus = (cg_t){g, 99999};
    line = __LINE__ + 1;
    y = cg_slice(bogus, 1, 0, 1);
    cr_expect(y.id < 0);
    FAILED(g, line, "not a tensor");
    cg_graph_free(g);

    g = cg_graph_new("ids");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    bogus = (cg_t){g, 99999};
    line = __LINE__ + 1;
    y = cg_concat(x, bogus, 1);
    cr_expect(y.id < 0);
    FAILED(g, line, "not a tensor");
    cg_graph_free(g);

    g = cg_graph_new("ids");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    bogus = (cg_t){g, 99999};
    line = __LINE__ + 1;
    y = cg_reshape(bogus, CG_SHAPE(CG_BATCH, 3));
    cr_expect(y.id < 0);
    FAILED(g, line, "not a tensor");
    cg_graph_free(g);

    g = cg_graph_new("ids");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    bogus = (cg_t){g, 99999};
    line = __LINE__ + 1;
    y = cg_transpose(bogus);
    cr_expect(y.id < 0);
    FAILED(g, line, "not a tensor");
    cg_graph_free(g);

    g = cg_graph_new("ids");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    bogus = (cg_t){g, 99999};
    line = __LINE__ + 1;
    y = cg_matmul(x, bogus);
    cr_expect(y.id < 0);
    FAILED(g, line, "not a tensor");
    cg_graph_free(g);

    g = cg_graph_new("ids");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    bogus = (cg_t){g, 99999};
    line = __LINE__ + 1;
    y = cg_softmax_cross_entropy(x, bogus, true);
    cr_expect(y.id < 0);
    FAILED(g, line, "not a tensor");
    cg_graph_free(g);

    g = cg_graph_new("ids");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    bogus = (cg_t){g, 99999};
    line = __LINE__ + 1;
    int rc = cg_gradients(g, bogus, x);
    cr_expect(rc != 0);
    FAILED(g, line, "cg_gradients");
    cg_graph_free(g);

    g = cg_graph_new("ids");
    x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    bogus = (cg_t){g, 99999};
    line = __LINE__ + 1;
    rc = cg_gradients(g, cg_sum(x), bogus);
    cr_expect(rc != 0);
    FAILED(g, line, "cg_gradients");
    cg_graph_free(g);

    cg_model *m = cg_functional("ids");
    x = cg_input(m, "features", CG_SHAPE(4));
    line = __LINE__ + 1;
    rc = cg_set_outputs(m, ((cg_t){cg_model_graph(m), 99999}));
    cr_expect(rc != 0);
    FAILED(cg_model_graph(m), line, "output 1");
    cg_model_free(m);
    nothing_printed();
}

Test(misuse, tensors_of_two_graphs_in_one_op)
{
    cg_graph *g = cg_graph_new("one"), *h = cg_graph_new("two");
    cg_t a = cg_placeholder(g, "a", CG_SHAPE(CG_BATCH, 3));
    cg_t w = cg_variable(h, "w", CG_SHAPE(3, 2), cg_zeros());
    cg_t t = cg_placeholder(h, "t", CG_SHAPE(CG_BATCH));
    int line = __LINE__ + 1;
    cg_t y = cg_matmul(a, w);
    cr_expect(y.id < 0, "a matmul across two graphs was accepted");
    FAILED(g, line, "graph");
    FAILED(h, line, "graph");
    cg_graph_free(g);
    cg_graph_free(h);

    g = cg_graph_new("one"), h = cg_graph_new("two");
    a = cg_placeholder(g, "a", CG_SHAPE(CG_BATCH, 3));
    t = cg_placeholder(h, "t", CG_SHAPE(CG_BATCH));
    line = __LINE__ + 1;
    y = cg_softmax_cross_entropy(a, t, true);
    cr_expect(y.id < 0, "a cross-entropy across two graphs was accepted");
    FAILED(g, line, "graph");
    cg_graph_free(g);
    cg_graph_free(h);

    /* an empty tensor first: the error goes to the graph of the other operand */
    g = cg_graph_new("one");
    a = cg_placeholder(g, "a", CG_SHAPE(CG_BATCH, 3));
    line = __LINE__ + 1;
    y = cg_add(((cg_t){NULL, -1}), a);
    cr_expect(y.id < 0);
    FAILED(g, line, "operand 1");
    cg_graph_free(g);
    g = cg_graph_new("one");
    a = cg_placeholder(g, "a", CG_SHAPE(CG_BATCH, 3));
    line = __LINE__ + 1;
    y = cg_concat(((cg_t){NULL, -1}), a, 1);
    cr_expect(y.id < 0);
    FAILED(g, line, "operand 1");
    cg_graph_free(g);
    nothing_printed();
}

/* A raw variable of 65536^3 floats: its fan-in (65536^2) overflowed an int
 * before any size check; now its shape is refused at the call. */
Test(misuse, raw_variable_of_65536_cubed)
{
    cg_graph *g = cg_graph_new("raw");
    int line = __LINE__ + 1;
    cg_t v = cg_variable(g, "v", CG_SHAPE(65536, 65536, 65536), cg_glorot_uniform());
    cr_expect(v.id < 0, "a variable of 65536^3 floats was accepted");
    FAILED(g, line, "elements");
    nothing_printed();
    cg_graph_free(g);
}
