/* test_builder_series.c: the time-series options of cg_compile (.data.series).
 * cg_compile checks them against the model (a window of the input's size, one
 * output, a regression loss) and reports a builder error naming the user's
 * line; a model that passes emits them into NAME_main.c. Also .data.label, the
 * header name of a CSV file's label column: checked and emitted the same way.
 * As in test_builder.c, nothing is printed. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cgrad.h>

static void expect_error(const char *err, int line, const char *const *needles, int n)
{
    char where[64];
    snprintf(where, sizeof where, "test_builder_series.c:%d:", line);
    cr_expect(strstr(err, where) != NULL, "error \"%s\" does not name the line: expected %s", err, where);
    for (int i = 0; i < n; i++)
        cr_expect(strstr(err, needles[i]) != NULL, "error \"%s\" does not mention \"%s\"", err, needles[i]);
}
#define EXPECT_ERROR(m, line, ...)                                                 \
    expect_error(cg_error(cg_model_graph(m)), line, (const char *[]){__VA_ARGS__}, \
                 (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)))

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

TestSuite(builder_series, .init = quiet);

/* Dense(8, relu) -> Dense(out) over inputs of shape `input`. */
static cg_model *forecaster(cg_shape input, int out)
{
    cg_model *m = cg_sequential("fc", input);
    cg_model_add(m, cg_dense(8, .activation = CG_RELU));
    cg_model_add(m, cg_dense(out));
    return m;
}

Test(builder_series, window_must_match_the_input)
{
    cg_model *m = forecaster(CG_SHAPE(12), 1);
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE,
                        .data = {.path = "s.csv", .series = {.window = 6}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "fc: the series window is 6 values", "(6) or (6, 1)", "got (12)");
    cg_model_free(m);
}

Test(builder_series, input_of_shape_window_by_one_is_accepted_window_by_two_is_not)
{
    cg_model *m = cg_sequential("seq", CG_SHAPE(6, 1));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(1));
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .data = {.series = {.window = 6}});
    cr_expect_eq(rc, 0, "%s", cg_error(cg_model_graph(m)));
    cg_model_free(m);
    m = cg_sequential("seq2", CG_SHAPE(3, 2));
    cg_model_add(m, cg_flatten());
    cg_model_add(m, cg_dense(1));
    int line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .data = {.series = {.window = 6}});
    cr_expect(rc != 0, "a (3, 2) input holds 6 values but is not a window");
    EXPECT_ERROR(m, line, "got (3, 2)");
    cg_model_free(m);
}

Test(builder_series, one_output_and_a_regression_loss)
{
    cg_model *m = forecaster(CG_SHAPE(4), 2);
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .data = {.series = {.window = 4}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "fc: a forecaster predicts one value per sample", "(n, 2)");
    cg_model_free(m);
    m = forecaster(CG_SHAPE(4), 1);
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_BINARY_CROSSENTROPY, .data = {.series = {.window = 4}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "loss binary_crossentropy is not a regression loss", "CG_MSE");
    cg_model_free(m);
    m = forecaster(CG_SHAPE(4), 1);
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MAE, .metric = CG_ACCURACY,
                    .data = {.series = {.window = 4}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "metric accuracy does not fit a forecaster");
    cg_model_free(m);
}

Test(builder_series, a_horizon_that_would_overflow_the_indices)
{
    cg_model *m = forecaster(CG_SHAPE(4), 1);
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE,
                        .data = {.series = {.window = 4, .horizon = 2147483640}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "window, horizon, val_steps, test_steps and season must be at most 16777216");
    cg_model_free(m);
}

Test(builder_series, option_mistakes)
{
    cg_model *m = forecaster(CG_SHAPE(4), 1);
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE,
                        .data = {.series = {.column = "v", .test_steps = 4}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, ".data.series needs a .window");
    cg_model_free(m);
    m = forecaster(CG_SHAPE(4), 1);
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .data = {.series = {.window = 4, .val_steps = -1}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "must not be negative", "val_steps (-1)");
    cg_model_free(m);
    m = forecaster(CG_SHAPE(4), 1);
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE,
                    .data = {.series = {.window = 4, .column = "v", .column_index = 2}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "either .column", ".column_index");
    cg_model_free(m);
    m = forecaster(CG_SHAPE(4), 1);
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE,
                    .data = {.path = "x.csv", .test_split = 0.2f, .series = {.window = 4}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "do not apply to a time series");
    cg_model_free(m);
    m = forecaster(CG_SHAPE(4), 1);
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE,
                    .data = {.path = "/data/fashion", .series = {.window = 4}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "a time series is read from a .csv or .csv.gz file, not /data/fashion");
    cg_model_free(m);
}

/* Reads a whole file into a malloc'd string (NULL when unreadable). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

Test(builder_series, emitted_into_main_with_the_name_escaped)
{
    char dir[] = "/tmp/cgrad_series_XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    cg_model *m = forecaster(CG_SHAPE(12), 1);
    int rc = cg_compile(
        m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .metric = CG_METRIC_MAE,
        .data = {.path = "d/s.csv.gz",
                 .series = {.column = "say \"hi\"?\?/", .window = 12, .val_steps = 5, .test_steps = 7, .season = 12}});
    cr_assert_eq(rc, 0, "%s", cg_error(cg_model_graph(m)));
    cr_assert_eq(cg_emit_model(m, dir, CG_PORTABLE), 0, "%s", cg_error(cg_model_graph(m)));
    snprintf(path, sizeof path, "%s/fc_main.c", dir);
    char *text = slurp(path);
    cr_assert_not_null(text);
    const char
        *want = ".data = { .path = \"d/s.csv.gz\", .scale = 0.0f, .test_split = 0.0f,\n"
                "                  .series = { .column = \"say \\\"hi\\\"\\?\\?/\", .column_index = 0, .window = 12, "
                ".horizon = 1,\n"
                "                              .val_steps = 5, .test_steps = 7, .season = 12 } },\n";
    cr_expect(strstr(text, want) != NULL, "fc_main.c lacks\n%s\nit reads:\n%s", want, text);
    free(text);
    static const char *const files[] = {"fc.h", "fc.c", "fc_main.c"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    cg_model_free(m);
}

/* ---- .data.label: the header name of a CSV file's label column ---- */

/* Dense(3) over 4 features: a classifier of 3 classes. */
static cg_model *classifier(void)
{
    cg_model *m = cg_sequential("cls", CG_SHAPE(4));
    cg_model_add(m, cg_dense(3));
    return m;
}

Test(builder_series, label_must_name_a_column_of_a_csv_file)
{
    cg_model *m = classifier();
    int line = __LINE__ + 1;
    int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .data = {.path = "p.csv", .label = ""});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "cls: .data.label is empty");
    cg_model_free(m);
    m = classifier();
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE,
                    .data = {.path = "/data/fashion", .label = "species"});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "cls: .data.label names a column of a CSV file", "/data/fashion is not a .csv or .csv.gz");
    cg_model_free(m);
    m = forecaster(CG_SHAPE(4), 1);
    line = __LINE__ + 1;
    rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .data = {.label = "y", .series = {.window = 4}});
    cr_expect(rc != 0);
    EXPECT_ERROR(m, line, "fc: .data.label does not apply to a time series");
    cg_model_free(m);
}

Test(builder_series, label_emitted_into_main_only_when_set)
{
    char dir[] = "/tmp/cgrad_label_XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    for (int set = 0; set < 2; set++) {
        cg_model *m = classifier();
        int rc = cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY,
                            .from_logits = true, .data = {.path = "p.csv.gz", .label = set ? "the \"species\"" : NULL});
        cr_assert_eq(rc, 0, "%s", cg_error(cg_model_graph(m)));
        cr_assert_eq(cg_emit_model(m, dir, CG_PORTABLE), 0, "%s", cg_error(cg_model_graph(m)));
        snprintf(path, sizeof path, "%s/cls_main.c", dir);
        char *text = slurp(path);
        cr_assert_not_null(text);
        const char *want = set ? ".data = { .path = \"p.csv.gz\", .scale = 0.0f, .test_split = 0.0f,\n"
                                 "                  .label_column = \"the \\\"species\\\"\" },\n"
                               : ".data = { .path = \"p.csv.gz\", .scale = 0.0f, .test_split = 0.0f },\n";
        cr_expect(strstr(text, want) != NULL, "cls_main.c lacks\n%s\nit reads:\n%s", want, text);
        free(text);
        static const char *const files[] = {"cls.h", "cls.c", "cls_main.c"};
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            unlink(path);
        }
        cg_model_free(m);
    }
    rmdir(dir);
}
