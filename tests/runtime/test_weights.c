/* test_weights.c: sample and class weights through cgrt_main with the tiny
 * classifier (whose weighted steps multiply each sample's cross-entropy by
 * its weight): balanced class weights counted over the training rows alone,
 * class and sample weights that reach the loss, the CSV column of weights
 * that is never a feature, weights that follow their rows through the
 * splits, and the errors naming the file or the flag. */
#include "helpers.h"
#include "rt_internal.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ten rows of 4 features and a class: the first six (the training rows of
 * a 0.4 validation split) hold classes 0, 0, 0, 0, 1, 2; the last four, 1. */
static const char rows10[] = "0.1,0.2,0.3,0.4,0\n0.2,0.1,0.4,0.3,0\n0.3,0.3,0.1,0.2,0\n0.4,0.2,0.2,0.1,0\n"
                             "0.9,0.8,0.1,0.2,1\n0.1,0.1,0.9,0.8,2\n0.8,0.9,0.2,0.1,1\n0.7,0.9,0.1,0.1,1\n"
                             "0.9,0.7,0.2,0.2,1\n0.8,0.8,0.1,0.3,1\n";

/* The value of the first "loss=" or history loss after phrase in text. */
static double number_after(const char *text, const char *phrase)
{
    const char *p = strstr(text, phrase);
    cr_assert(p != NULL, "no \"%s\" in:\n%s", phrase, text);
    return strtod(p + strlen(phrase), NULL);
}

Test(weights, balanced_class_weights_count_the_training_rows_alone)
{
    const char *dir = t_tmpdir();
    char *out, *errs;
    t_write(t_path(dir, "d.csv"), rows10, strlen(rows10));
    const char *args[] = {"fit", "--data",         t_path(dir, "d.csv"), "--epochs", "1", "--validation-split",
                          "0.4", "--class-weight", "balanced",           "-v",       "2", NULL};
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, args), 0, "%s", errs);
    /* training rows: 4, 1, 1 of classes 0, 1, 2 -> 6 / (3 * count); over all ten rows it
     * would be 0.8333 0.6667 3.333 */
    cr_assert(strstr(out, "class weights (balanced over the training rows): 0=0.5 1=2 2=2\n") != NULL, "%s", out);
    free(out), free(errs);
}

Test(weights, class_weights_of_zero_make_the_training_loss_zero)
{
    const char *dir = t_tmpdir();
    char *out, *errs, *hist;
    t_write(t_path(dir, "d.csv"), rows10, strlen(rows10));
    const char *args[] = {"fit",         "--data",    t_path(dir, "d.csv"), "--epochs", "2", "--class-weight",
                          "0:0,1:0,2:0", "--history", t_path(dir, "h.csv"), "-q",       NULL};
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, args), 0, "%s", errs);
    hist = t_read(t_path(dir, "h.csv"), NULL);
    cr_assert(strstr(hist, "\n1,0,") && strstr(hist, "\n2,0,"), "the weighted loss is not 0:\n%s", hist);
    free(out), free(errs), free(hist);
    const char *plain[] = {"fit", "--data", t_path(dir, "d.csv"), "--epochs", "1", "--history", t_path(dir, "h2.csv"),
                           "-q",  NULL};
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, plain), 0, "%s", errs);
    hist = t_read(t_path(dir, "h2.csv"), NULL);
    cr_assert(number_after(hist, "\n1,") > 0.5, "the unweighted loss: %s", hist);
    free(out), free(errs), free(hist);
}

Test(weights, class_weight_pairs_that_are_wrong_are_usage_errors)
{
    const char *dir = t_tmpdir();
    static const char *const bad[][2] = {
        {"0:1,3:2", "'3:2'"}, {"0:-1", "'0:-1'"},   {"0:", "'0:'"},         {"1:2,1:3", "twice"},
        {"x", "'x'"},         {"0:nan", "'0:nan'"}, {"1:1e39", "'1:1e39'"}, {"1:2,", "ends with a comma"}};
    t_write(t_path(dir, "d.csv"), rows10, strlen(rows10));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out, *errs;
        const char *args[] = {"fit", "--data", t_path(dir, "d.csv"), "--class-weight", bad[i][0], "-q", NULL};
        cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, args), 2, "%s: %s", bad[i][0], errs);
        cr_assert(strstr(errs, "--class-weight") && strstr(errs, bad[i][1]), "%s: %s", bad[i][0], errs);
        free(out), free(errs);
    }
}

Test(weights, sample_weights_of_the_wrong_count_fail_naming_the_file)
{
    const char *dir = t_tmpdir();
    char *out, *errs;
    float w[3] = {1, 2, 3};
    t_write(t_path(dir, "d.csv"), rows10, strlen(rows10));
    t_write_npy(t_path(dir, "sw.npy"), "<f4", 0, "(3,)", w, sizeof w);
    const char *args[] = {"fit", "--data", t_path(dir, "d.csv"), "--sample-weight", t_path(dir, "sw.npy"), "-q", NULL};
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, args), 1, "%s", errs);
    cr_assert(strstr(errs, t_path(dir, "sw.npy")) && strstr(errs, "holds 3 sample weights") && strstr(errs, "10 rows"),
              "%s", errs);
    free(out), free(errs);
}

Test(weights, a_negative_sample_weight_fails_naming_the_file_and_row)
{
    const char *dir = t_tmpdir();
    char *out, *errs;
    float w[10] = {1, 1, 1, 1, 1, 1, -2, 1, 1, 1};
    t_write(t_path(dir, "d.csv"), rows10, strlen(rows10));
    t_write_npy(t_path(dir, "sw.npy"), "<f4", 0, "(10,)", w, sizeof w);
    const char *args[] = {"fit", "--data", t_path(dir, "d.csv"), "--sample-weight", t_path(dir, "sw.npy"), "-q", NULL};
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, args), 1, "%s", errs);
    cr_assert(strstr(errs, t_path(dir, "sw.npy")) && strstr(errs, "row 7 is negative"), "%s", errs);
    free(out), free(errs);
}

/* evaluate's loss of the checkpoint w.safetensors in dir with the extra args (NULL-terminated, at most 6). */
static double eval_loss(const cgrt_model *m, const char *dir, const char *data, const char *const *extra)
{
    const char *args[12] = {"evaluate", "-w", t_path(dir, "w.safetensors"), "--data", data};
    char *out, *errs;
    int n = 5;
    while (*extra)
        args[n++] = *extra++;
    args[n] = NULL;
    cr_assert_eq(t_run_cli(m, dir, &out, &errs, args), 0, "%s", errs);
    double loss = number_after(out, "loss=");
    free(out), free(errs);
    return loss;
}

Test(weights, sample_weights_from_npy_or_a_csv_column_weigh_evaluate_loss)
{
    const char *dir = t_tmpdir();
    char *out, *errs;
    float w[10] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, z[10] = {0, 0, 0, 0, 0, 1, 1, 0, 0, 0};
    char csv[1024] = "a,b,label,w,c,d\n";
    cgrt_model named = tiny_model;
    t_write(t_path(dir, "d.csv"), rows10, strlen(rows10));
    t_write_npy(t_path(dir, "two.npy"), "<f4", 0, "(10,)", w, sizeof w);
    t_write_npy(t_path(dir, "some.npy"), "<f4", 0, "(10, 1)", z, sizeof z);
    const char *save[] = {"fit", "--data", t_path(dir, "d.csv"),         "--epochs",
                          "0",   "-o",     t_path(dir, "w.safetensors"), NULL};
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, save), 0, "%s", errs);
    free(out), free(errs);
    const char *none[] = {NULL}, *two[] = {"--sample-weight", t_path(dir, "two.npy"), NULL},
               *some[] = {"--sample-weight", t_path(dir, "some.npy"), NULL};
    double plain = eval_loss(&tiny_model, dir, t_path(dir, "d.csv"), none);
    cr_assert_float_eq(eval_loss(&tiny_model, dir, t_path(dir, "d.csv"), two), 2.0 * plain, 1e-4 * plain);
    /* weights 1 on rows 6 and 7 alone: (l_6 + l_7) / 10, rows 6 and 7 being one sample of each */
    double l67 = eval_loss(&tiny_model, dir, t_path(dir, "d.csv"), some);
    cr_assert(l67 > 0.0 && l67 < plain, "loss %g with two rows weighted, %g unweighted", l67, plain);
    /* the same rows as a CSV with a header: the label and the weights in the middle, never features */
    for (const char *p = rows10; *p;) {
        float x[4], y;
        int used;
        sscanf(p, "%f,%f,%f,%f,%f%n", &x[0], &x[1], &x[2], &x[3], &y, &used);
        snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "%g,%g,%g,%g,%g,%g\n", (double)x[0], (double)x[1],
                 (double)y, (double)z[t_count_lines(csv) - 1], (double)x[2], (double)x[3]);
        p += used + 1;
    }
    t_write(t_path(dir, "named.csv"), csv, strlen(csv));
    const char *col[] = {"--label-column", "label", "--sample-weight-column", "w", NULL};
    cr_assert_float_eq(eval_loss(&named, dir, t_path(dir, "named.csv"), col), l67, 1e-5);
    const char *nocol[] = {"--label-column", "label", "--sample-weight-column", "weight", NULL};
    const char *args[] = {"evaluate",
                          "-w",
                          t_path(dir, "w.safetensors"),
                          "--data",
                          t_path(dir, "named.csv"),
                          nocol[0],
                          nocol[1],
                          nocol[2],
                          nocol[3],
                          NULL};
    cr_assert_eq(t_run_cli(&named, dir, &out, &errs, args), 1, "%s", errs);
    cr_assert(strstr(errs, "named.csv: no column named \"weight\" for the sample weights"), "%s", errs);
    free(out), free(errs);
}

Test(weights, weights_follow_their_rows_through_the_shuffle_and_the_split)
{
    cgrt_dataset d;
    cgrt_dataset v;
    cgrt_error err;
    cr_assert_eq(rt_dataset_alloc(&d, 50, 1, 1, "mem", &err), 0);
    d.w = malloc(50 * sizeof(float));
    for (int i = 0; i < 50; i++)
        d.x[i] = (float)i, d.y[i] = (float)(i % 3), d.w[i] = 100.0f + (float)i;
    cr_assert_eq(rt_permute_rows(&d, 7, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_split_tail(&d, 0.2f, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 40);
    cr_assert_eq(v.n, 10);
    cr_assert(v.w != NULL);
    for (int i = 0; i < d.n; i++)
        cr_assert_eq(d.w[i], 100.0f + d.x[i], "row %d: weight %g of sample %g", i, (double)d.w[i], (double)d.x[i]);
    for (int i = 0; i < v.n; i++)
        cr_assert_eq(v.w[i], 100.0f + v.x[i], "validation row %d: weight %g of sample %g", i, (double)v.w[i],
                     (double)v.x[i]);
    cgrt_dataset_free(&d);
    cgrt_dataset_free(&v);
}

Test(weights, models_without_weighted_steps_and_other_misuses_are_usage_errors)
{
    const char *dir = t_tmpdir();
    char *out, *errs;
    t_write(t_path(dir, "d.csv"), rows10, strlen(rows10));
    const char *custom[] = {"fit", "--data", t_path(dir, "d.csv"), "--class-weight", "balanced", NULL};
    cr_assert_eq(t_run_cli(&tiny5_model, dir, &out, &errs, custom), 2);
    cr_assert(strstr(errs, "custom loss") != NULL, "%s", errs);
    free(out), free(errs);
    const char *column[] = {"fit", "--data", t_path(dir, "d.csv"), "--sample-weight-column", "w", NULL};
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, column), 2);
    cr_assert(strstr(errs, "--sample-weight-column needs --label-column") != NULL, "%s", errs);
    free(out), free(errs);
    const char *series[] = {"fit", "--class-weight", "balanced", NULL};
    cr_assert_eq(t_run_cli(&tiny_series_model, dir, &out, &errs, series), 2);
    cr_assert(strstr(errs, "time series") != NULL, "%s", errs);
    free(out), free(errs);
}
