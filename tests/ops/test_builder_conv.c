/* test_builder_conv.c: builder errors of the convolution, pooling and
 * reshaping layers (and of the internal op_conv2d/op_pool, for what the
 * layers cannot express: a stride of 0, a kernel whose channels do not match
 * the input). As in test_builder.c: each error is returned, names the user's
 * line (captured with __LINE__ on the line of the failing call), the layer
 * and the shapes, nothing is printed, and the error is sticky. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <string.h>

#include <cgrad.h>
#include "../../compiler/cgrad_int.h"
#include "../support/builder_errors.h"

#define EXPECT_ERROR(err, line, ...) be_expect_error(err, __FILE__, line, BE_NEEDLES(__VA_ARGS__))
#define quiet be_quiet
#define nothing_printed be_nothing_printed

TestSuite(builder_conv, .init = quiet);

/* A model whose last add fails; checks rc, the message and stickiness. */
static void fails(cg_model *m, int rc, int line, const char *const *needles, int n)
{
    cg_graph *g = cg_model_graph(m);
    cr_expect(rc != 0 && cg_failed(g), "the layer was accepted");
    char first[512];
    snprintf(first, sizeof first, "%s", cg_error(g));
    be_expect_error(first, __FILE__, line, needles, n);
    /* sticky: a valid layer afterwards fails too and keeps the first message */
    cr_expect(cg_model_add(m, cg_flatten()) != 0, "a layer after the error was accepted");
    cr_expect_str_eq(cg_error(g), first, "the first message was replaced");
    nothing_printed();
    cg_model_free(m);
}
#define FAILS(m, rc, line, ...) \
    fails(m, rc, line, (const char *[]){__VA_ARGS__}, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)))

Test(builder_conv, kernel_larger_than_input)
{
    cg_model *m = cg_sequential("big_kernel", CG_SHAPE(4, 4, 1));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv2d(2, 5));
    FAILS(m, rc, line, "conv2d_1: ", "5x5", "(n, 4, 4, 1)", "no output");
}

Test(builder_conv, dilated_kernel_larger_than_input)
{
    cg_model *m = cg_sequential("dilated", CG_SHAPE(6, 9, 2));
    cg_model_add(m, cg_conv2d(2, 3, .padding = CG_SAME));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_depthwise_conv2d(3, .kernel_w = 2, .dilation = 3, .name = "dw"));
    FAILS(m, rc, line, "dw: ", "3x2", "dilation 3x3", "(n, 6, 9, 2)");
}

Test(builder_conv, negative_stride)
{
    cg_model *m = cg_sequential("neg_stride", CG_SHAPE(8, 8, 1));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv2d(4, 3, .strides = -1));
    FAILS(m, rc, line, "conv2d_1: ", "strides", "-1");
}

Test(builder_conv, stride_and_dilation_together)
{
    cg_model *m = cg_sequential("both", CG_SHAPE(8, 8, 1));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv2d(4, 3, .strides = 2, .dilation = 2, .name = "strided"));
    FAILS(m, rc, line, "strided: ", "strides", "dilation");
}

Test(builder_conv, pooling_window_leaves_no_output)
{
    cg_model *m = cg_sequential("pool", CG_SHAPE(4, 4, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_max_pooling2d(5));
    FAILS(m, rc, line, "max_pooling2d_1: ", "5x5", "(n, 4, 4, 2)", "no output");
}

Test(builder_conv, average_pooling_after_shrinking)
{
    cg_model *m = cg_sequential("pool2", CG_SHAPE(6, 6, 2));
    cg_model_add(m, cg_conv2d(3, 3, .strides = 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_average_pooling2d(3));
    FAILS(m, rc, line, "average_pooling2d_1: ", "3x3", "(n, 2, 2, 3)");
}

Test(builder_conv, dense_on_an_image)
{
    cg_model *m = cg_sequential("no_flatten", CG_SHAPE(5, 5, 1));
    cg_model_add(m, cg_conv2d(2, 3));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_dense(10));
    FAILS(m, rc, line, "dense_1: ", "(n, 3, 3, 2)", "Dense", "flatten");
}

Test(builder_conv, conv_on_a_vector)
{
    cg_model *m = cg_sequential("flat", CG_SHAPE(4, 4, 2));
    cg_model_add(m, cg_flatten());
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_conv2d(2, 3));
    FAILS(m, rc, line, "conv2d_1: ", "(n, 32)", "(n, height, width, channels)");
}

Test(builder_conv, pooling_on_a_vector)
{
    cg_model *m = cg_sequential("flat_pool", CG_SHAPE(16));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_average_pooling2d(2));
    FAILS(m, rc, line, "average_pooling2d_1: ", "(n, 16)");
}

Test(builder_conv, global_pooling_on_a_vector)
{
    cg_model *m = cg_sequential("flat_gap", CG_SHAPE(16));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_global_average_pooling2d());
    FAILS(m, rc, line, "global_average_pooling2d_1: ", "(n, 16)");
}

Test(builder_conv, reshape_to_another_size)
{
    cg_model *m = cg_sequential("reshape", CG_SHAPE(4, 4, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_reshape_layer(CG_SHAPE(5, 5, 1)));
    FAILS(m, rc, line, "reshape_1: ", "(n, 4, 4, 2)", "(n, 5, 5, 1)");
}

Test(builder_conv, dropout_rate_of_one)
{
    cg_model *m = cg_sequential("drop", CG_SHAPE(4));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_dropout(1.0f));
    FAILS(m, rc, line, "dropout_1: ", "rate", "1");
}

Test(builder_conv, batch_norm_momentum_of_one)
{
    cg_model *m = cg_sequential("bn", CG_SHAPE(4));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_batch_normalization(.momentum = 1.0f));
    FAILS(m, rc, line, "batch_normalization_1: ", "momentum");
}

/* ---- the internal ops --------------------------------------------------------------------- */

Test(builder_conv, op_conv2d_stride_zero)
{
    cg_graph *g = cg_graph_new("stride0");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 6, 6, 2));
    cg_t k = cg_variable(g, "k", CG_SHAPE(3, 3, 2, 4), cg_zeros());
    spatial sp = {{3, 3}, {0, 1}, {1, 1}, {0, 0, 0, 0}};
    int line = __LINE__ + 1;
    int y = op_conv2d(g, CG_HERE, x.id, k.id, &sp, false);
    cr_expect(y < 0 && cg_failed(g), "op_conv2d accepted a stride of 0");
    EXPECT_ERROR(cg_error(g), line, "conv2d", "stride 0");
    nothing_printed();
    cg_graph_free(g);
}

Test(builder_conv, op_pool_stride_zero)
{
    cg_graph *g = cg_graph_new("pool_stride0");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 6, 6, 2));
    spatial sp = {{2, 2}, {2, 0}, {1, 1}, {0, 0, 0, 0}};
    int line = __LINE__ + 1;
    int y = op_pool(g, CG_HERE, OP_MAX_POOL, x.id, &sp);
    cr_expect(y < 0 && cg_failed(g), "op_pool accepted a stride of 0");
    EXPECT_ERROR(cg_error(g), line, "max_pool", "stride 0");
    nothing_printed();
    cg_graph_free(g);
}

Test(builder_conv, op_conv2d_channel_mismatch)
{
    cg_graph *g = cg_graph_new("channels");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 5, 5, 3));
    cg_t k = cg_variable(g, "k", CG_SHAPE(3, 3, 2, 4), cg_zeros());
    spatial sp = {{3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}};
    int line = __LINE__ + 1;
    int y = op_conv2d(g, CG_HERE, x.id, k.id, &sp, false);
    cr_expect(y < 0 && cg_failed(g), "op_conv2d accepted 3 input channels against a kernel for 2");
    EXPECT_ERROR(cg_error(g), line, "conv2d", "(n, 5, 5, 3)", "(3, 3, 2, 4)", "3 channels", "expects 2");
    nothing_printed();
    cg_graph_free(g);
}

Test(builder_conv, op_depthwise_channel_mismatch)
{
    cg_graph *g = cg_graph_new("dw_channels");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 5, 5, 3));
    cg_t k = cg_variable(g, "k", CG_SHAPE(3, 3, 4), cg_zeros());
    spatial sp = {{3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}};
    int line = __LINE__ + 1;
    int y = op_conv2d(g, CG_HERE, x.id, k.id, &sp, true);
    cr_expect(y < 0 && cg_failed(g));
    EXPECT_ERROR(cg_error(g), line, "depthwise_conv2d", "(n, 5, 5, 3)", "(3, 3, 4)");
    nothing_printed();
    cg_graph_free(g);
}

Test(builder_conv, op_conv2d_kernel_rank)
{
    cg_graph *g = cg_graph_new("kernel_rank");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 5, 5, 3));
    cg_t k = cg_variable(g, "k", CG_SHAPE(3, 3, 3), cg_zeros());
    spatial sp = {{3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}};
    int line = __LINE__ + 1;
    int y = op_conv2d(g, CG_HERE, x.id, k.id, &sp, false);
    cr_expect(y < 0 && cg_failed(g));
    EXPECT_ERROR(cg_error(g), line, "conv2d", "(3, 3, 3)", "filters");
    nothing_printed();
    cg_graph_free(g);
}

Test(builder_conv, op_pad_negative)
{
    cg_graph *g = cg_graph_new("pad");
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 5, 5, 3));
    int line = __LINE__ + 1;
    int y = op_pad(g, CG_HERE, x.id, (const int[4]){1, -1, 0, 0});
    cr_expect(y < 0 && cg_failed(g));
    EXPECT_ERROR(cg_error(g), line, "pad", "-1");
    nothing_printed();
    cg_graph_free(g);
}
