/* test_model_errors.c: model-definition programs with mistakes, written into a
 * temporary folder and built with `cgrad build`. The build must fail with a
 * non-zero status, make no training binary, and print the builder's message
 * `model.c:<line>: <layer>: ...`, pointing at the line of the mistake (marked
 * HERE in the sources below) and naming the layer and the shapes. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(model_errors, .timeout = 120, .fini = e2e_cleanup);

/* The line number (1-based) of the first line of src containing "HERE". */
static int marked_line(const char *src)
{
    const char *h = strstr(src, "HERE");
    int line = 1;
    cr_assert_not_null(h, "the test source has no HERE marker");
    for (const char *p = src; p < h; p++)
        line += *p == '\n';
    return line;
}

/* Writes src as tmp/model.c, runs `cgrad build model.c` in tmp, and returns the run. */
static e2e_run build(const char *tmp, const char *src)
{
    e2e_write_str(e2e_path(tmp, "model.c"), src);
    return E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", "model.c", "-o", "out", "--cc", "gcc");
}

/* Builds src and expects the failure at its HERE line, with "model.c:LINE: " +
 * `head` at the start of the message, and every phrase somewhere in it. */
static void fails_at_marker(const char *src, const char *head, const char *const *phrases)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = build(tmp, src);
    char want[256];
    cr_assert(!r.timed_out && r.signal == 0, "cgrad build crashed: %s", r.err);
    cr_assert_neq(r.status, 0, "the build succeeded; stdout: %s", r.out);
    snprintf(want, sizeof want, "model.c:%d: %s", marked_line(src), head);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", e2e_line(r.err, 0));
    cr_assert(strncmp(msg, want, strlen(want)) == 0, "expected the message to start with \"%s\":\n%s", want, r.err);
    for (const char *const *p = phrases; *p; p++)
        cr_assert_not_null(strstr(msg, *p), "the message lacks \"%s\": %s", *p, msg);
    cr_assert_not_null(strstr(r.err, "cgrad: model.c:"), "no closing line from the cgrad tool:\n%s", r.err);
    cr_assert(!e2e_exists(e2e_path(e2e_path(tmp, "out"), "model")), "a binary was made anyway");
    e2e_run_free(&r);
}
#define FAILS_AT_MARKER(src, head, ...) fails_at_marker(src, head, (const char *const[]){__VA_ARGS__, NULL})

/* ---- Sequential models ------------------------------------------------------------------- */

Test(model_errors, dense_on_a_rank3_input)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_model *m = cg_sequential(\"images\", CG_SHAPE(4, 4, 2));\n"
                    "    cg_model_add(m, cg_dense(3)); /* HERE */\n"
                    "    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,\n"
                    "               .from_logits = true, .metric = CG_ACCURACY, .batch_size = 8);\n"
                    "    return cg_main(m, argc, argv);\n"
                    "}\n",
                    "dense_1: ", "(n, 4, 4, 2)", "Dense");
}

Test(model_errors, zero_units)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_model *m = cg_sequential(\"zero\", CG_SHAPE(4));\n"
                    "    cg_model_add(m, cg_dense(8, .activation = CG_RELU));\n"
                    "    cg_model_add(m, cg_dense(0, .name = \"empty\")); /* HERE */\n"
                    "    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .batch_size = 8);\n"
                    "    return cg_main(m, argc, argv);\n"
                    "}\n",
                    "empty: ", "units", "0");
}

Test(model_errors, duplicate_layer_names)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_model *m = cg_sequential(\"dup\", CG_SHAPE(4));\n"
                    "    cg_model_add(m, cg_dense(8, .name = \"a\"));\n"
                    "    cg_model_add(m, cg_dense(3, .name = \"a\")); /* HERE */\n"
                    "    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,\n"
                    "               .from_logits = true, .metric = CG_ACCURACY, .batch_size = 8);\n"
                    "    return cg_main(m, argc, argv);\n"
                    "}\n",
                    "a: ", "already", "line 5");
}

Test(model_errors, sparse_crossentropy_on_one_unit)
{
    FAILS_AT_MARKER(
        "#include <cgrad.h>\n"
        "int main(int argc, char **argv)\n"
        "{\n"
        "    cg_model *m = cg_sequential(\"one_unit\", CG_SHAPE(4));\n"
        "    cg_model_add(m, cg_dense(8, .activation = CG_RELU));\n"
        "    cg_model_add(m, cg_dense(1));\n"
        "    cg_compile(m, .optimizer = cg_adam(1e-3f), /* HERE */\n"
        "               .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true, .batch_size = 8);\n"
        "    return cg_main(m, argc, argv);\n"
        "}\n",
        "one_unit: ", "sparse_categorical_crossentropy", "(n, 1)");
}

Test(model_errors, metric_that_does_not_fit_the_loss)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_model *m = cg_sequential(\"mismatch\", CG_SHAPE(4));\n"
                    "    cg_model_add(m, cg_dense(3));\n"
                    "    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_CATEGORICAL_CROSSENTROPY, /* HERE */\n"
                    "               .from_logits = true, .metric = CG_SPARSE_CATEGORICAL_ACCURACY, .batch_size = 8);\n"
                    "    return cg_main(m, argc, argv);\n"
                    "}\n",
                    "mismatch: ", "sparse_categorical_accuracy", "categorical_crossentropy");
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_model *m = cg_sequential(\"mismatch\", CG_SHAPE(4));\n"
                    "    cg_model_add(m, cg_dense(3));\n"
                    "\n"
                    "    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, /* HERE */\n"
                    "               .metric = CG_SPARSE_CATEGORICAL_ACCURACY, .batch_size = 8);\n"
                    "    return cg_main(m, argc, argv);\n"
                    "}\n",
                    "mismatch: ", "sparse_categorical_accuracy", "mean_squared_error");
}

Test(model_errors, learning_rate_of_zero)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_model *m = cg_sequential(\"frozen\", CG_SHAPE(4));\n"
                    "    cg_model_add(m, cg_dense(3));\n"
                    "    cg_compile(m, .optimizer = cg_adam(0.0f), .loss = CG_MSE, .batch_size = 8); /* HERE */\n"
                    "    return cg_main(m, argc, argv);\n"
                    "}\n",
                    "frozen: ", "learning rate", "0");
}

/* cg_sgd(lr <= 0, no momentum) silently becomes Keras' default SGD(0.01):
 * reasonable for an unset (zero) rate, but a negative rate is a mistake that
 * cg_adam and cg_rmsprop report. */
Test(model_errors, negative_sgd_learning_rate)
{
    FAILS_AT_MARKER(
        "#include <cgrad.h>\n"
        "int main(int argc, char **argv)\n"
        "{\n"
        "    cg_model *m = cg_sequential(\"ascent\", CG_SHAPE(4));\n"
        "    cg_model_add(m, cg_dense(3));\n"
        "    cg_compile(m, .optimizer = cg_sgd(-0.1f, 0.0f, false), .loss = CG_MSE, .batch_size = 8); /* HERE */\n"
        "    return cg_main(m, argc, argv);\n"
        "}\n",
        "ascent: ", "learning rate", "-0.1");
}

Test(model_errors, batch_size_above_max_batch)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_model *m = cg_sequential(\"batches\", CG_SHAPE(4));\n"
                    "    cg_model_add(m, cg_dense(3));\n"
                    "    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, /* HERE */\n"
                    "               .batch_size = 64, .max_batch = 16);\n"
                    "    return cg_main(m, argc, argv);\n"
                    "}\n",
                    "batches: ", "64", "16");
}

/* ---- gradient-tape graphs --------------------------------------------------------------------- */

Test(model_errors, matmul_after_a_reshape_with_mismatched_inner_dimensions)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_graph *g = cg_graph_new(\"tape\");\n"
                    "    cg_t x = cg_placeholder(g, \"x\", CG_SHAPE(CG_BATCH, 2, 3));\n"
                    "    cg_t w = cg_variable(g, \"w\", CG_SHAPE(4, 1), cg_zeros());\n"
                    "    cg_t flat = cg_reshape(x, CG_SHAPE(CG_BATCH, 6));\n"
                    "    cg_t y = cg_matmul(flat, w); /* HERE */\n"
                    "    cg_gradients(g, cg_mean(y), w);\n"
                    "    return cg_main_graph(g, argc, argv);\n"
                    "}\n",
                    "matmul", "(n, 6)", "(4, 1)");
}

/* A rank-3 A is a sequence ((n, 3, 2) . (2, 1) is (n, 3, 1)); a rank-3 B is not, unless both are contracted over their rows. */
Test(model_errors, matmul_of_a_rank3_tensor)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_graph *g = cg_graph_new(\"tape\");\n"
                    "    cg_t x = cg_placeholder(g, \"x\", CG_SHAPE(CG_BATCH, 6));\n"
                    "    cg_t w = cg_variable(g, \"w\", CG_SHAPE(4, 3), cg_zeros());\n"
                    "    cg_t r = cg_reshape(x, CG_SHAPE(CG_BATCH, 3, 2));\n"
                    "    cg_t y = cg_matmul(w, r); /* HERE */\n"
                    "    cg_gradients(g, cg_mean(y), w);\n"
                    "    return cg_main_graph(g, argc, argv);\n"
                    "}\n",
                    "matmul", "(4, 3)", "(n, 3, 2)");
}

Test(model_errors, reshape_to_another_size)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_graph *g = cg_graph_new(\"tape\");\n"
                    "    cg_t x = cg_placeholder(g, \"x\", CG_SHAPE(CG_BATCH, 6));\n"
                    "    cg_t w = cg_variable(g, \"w\", CG_SHAPE(4, 1), cg_zeros());\n"
                    "    cg_t r = cg_reshape(x, CG_SHAPE(CG_BATCH, 4)); /* HERE */\n"
                    "    cg_gradients(g, cg_mean(cg_matmul(r, w)), w);\n"
                    "    return cg_main_graph(g, argc, argv);\n"
                    "}\n",
                    "", "reshape", "(n, 6)", "(n, 4)");
}

Test(model_errors, loss_that_is_not_a_scalar)
{
    FAILS_AT_MARKER("#include <cgrad.h>\n"
                    "int main(int argc, char **argv)\n"
                    "{\n"
                    "    cg_graph *g = cg_graph_new(\"tape\");\n"
                    "    cg_t x = cg_placeholder(g, \"x\", CG_SHAPE(CG_BATCH, 6));\n"
                    "    cg_t w = cg_variable(g, \"w\", CG_SHAPE(6, 2), cg_zeros());\n"
                    "    cg_gradients(g, cg_matmul(x, w), w); /* HERE */\n"
                    "    return cg_main_graph(g, argc, argv);\n"
                    "}\n",
                    "", "scalar", "(n, 2)");
}

/* ---- programs that are not models ------------------------------------------------------------- */

Test(model_errors, model_program_that_does_not_compile)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = build(tmp, "#include <cgrad.h>\nint main(void) { return cg_no_such_function(); }\n");
    cr_assert_eq(r.signal, 0);
    cr_assert_neq(r.status, 0);
    cr_assert_not_null(strstr(r.err, "model.c"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "does not compile"), "%s", r.err);
    e2e_run_free(&r);
}

Test(model_errors, model_program_that_emits_nothing)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = build(tmp, "int main(void) { return 0; }\n");
    cr_assert_eq(r.signal, 0);
    cr_assert_neq(r.status, 0);
    cr_assert_not_null(strstr(r.err, "cg_main"), "%s", r.err);
    e2e_run_free(&r);
}

Test(model_errors, missing_model_file_and_bad_flavour)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", "no_such_model.c");
    cr_assert_eq(r.signal, 0);
    cr_assert_neq(r.status, 0);
    cr_assert_not_null(strstr(r.err, "no_such_model.c"), "%s", r.err);
    e2e_run_free(&r);
    e2e_write_str(e2e_path(tmp, "model.c"), "int main(void) { return 0; }\n");
    r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", "model.c", "--flavour", "embedded");
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "embedded"), "%s", r.err);
    e2e_run_free(&r);
}

/* ---- the pipeline's passes by name ----------------------------------------------------------- */

/* --dump-after autodiff shows the backward graph before fusion; an unknown
 * pass name is refused with the list of the passes. */
Test(model_errors, dump_after_pass_names)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP_GEN, "-o", "out", "--dump-after", "autodiff");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_not_null(strstr(r.out, "d_dense_1_kernel = "), "no gradient of dense_1's kernel in:\n%.2000s", r.out);
    cr_expect_not_null(strstr(r.out, "= MATMUL"), "no MATMUL before fusion");
    cr_expect_null(strstr(r.out, "= DENSE"), "fused already after autodiff");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP_GEN, "-o", "out", "--dump-after", "fuse");
    cr_expect_not_null(strstr(r.out, "= DENSE"), "not fused after fuse");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP_GEN, "-o", "out", "--dump-after", "autodif");
    E2E_ASSERT_FAILS(r, 2, "--dump-after", "\"autodif\"", "autodiff, verify, fuse, layout, plan");
    e2e_run_free(&r);
}
