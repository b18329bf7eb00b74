/* test_cli.c: cgrt_main end to end with the hand-written tiny model: fit
 * (history, falling loss, checkpoints, test figures), evaluate reproducing
 * them, predict, bench, early stopping, the stop on nan, and usage errors;
 * and a time series (the tiny forecaster) through fit, evaluate and predict. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Returns the loss column of history row `row` (1-based) of the CSV text. */
static double history_loss(const char *text, int row)
{
    const char *p = text;
    int i;
    for (i = 0; i < row; i++)
        p = strchr(p, '\n') + 1;
    p = strchr(p, ',') + 1;
    return atof(p);
}

Test(cli, fit_history_checkpoint_and_evaluate)
{
    const char *dir = t_tmpdir();
    const char *hist = t_path(dir, "h.csv"), *ck = t_path(dir, "w.safetensors");
    char *out, *errs, *h, test_line[256];
    const char *fit[] = {"fit", "--data", dir, "--epochs",  "6", "--batch-size",       "8",   "--lr=0.2", "--history",
                         hist,  "--save", ck,  "--verbose", "2", "--validation-split", "0.2", NULL};
    const char *ev[] = {"evaluate", "--weights", ck, "--data", dir, NULL};
    t_write_blobs_npy(dir, 200, 60, 11);
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, fit), 0, "stderr: %s", errs);
    cr_assert_str_eq(errs, "");
    cr_assert(strstr(out, "Epoch 1/6 - ") != NULL, "%s", out);
    cr_assert(strstr(out, " - val_accuracy: ") != NULL, "%s", out);
    cr_assert(strstr(out, "samples/s") != NULL, "%s", out);
    snprintf(test_line, sizeof test_line, "%s", t_last_line(out));
    cr_assert(strncmp(test_line, "test: loss=", 11) == 0, "last line: %s", test_line);
    cr_assert(strstr(test_line, " accuracy=") != NULL);
    h = t_read(hist, NULL);
    cr_assert_eq(t_count_lines(h), 7, "%s", h);
    cr_assert(strncmp(h, "epoch,loss,accuracy,val_loss,val_accuracy,seconds,samples_per_sec\n1,", 68) == 0, "%s", h);
    cr_assert_lt(history_loss(h, 6), history_loss(h, 1) * 0.8, "loss did not fall:\n%s", h);
    cr_assert_gt(atof(strstr(test_line, "accuracy=") + 9), 0.8, "%s", test_line);
    free(out);
    free(errs);
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, ev), 0, "stderr: %s", errs);
    cr_assert_str_eq(t_last_line(out), test_line + 6, "evaluate: \"%s\", fit: \"%s\"", t_last_line(out), test_line);
    free(out);
    free(errs);
    free(h);
}

Test(cli, history_without_validation_and_csv_test_split)
{
    const char *dir = t_tmpdir(), *csv = t_path(dir, "d.csv"), *hist = t_path(dir, "h.csv");
    cgrt_model m = tiny_model;
    FILE *f = fopen(csv, "w");
    char *out, *errs, *h;
    const char *fit[] = {"fit", "--data", csv, "--epochs", "2", "--history", hist, "--verbose", "0", NULL};
    int i;
    fprintf(f, "a,b,c,d,label\n");
    for (i = 0; i < 40; i++)
        fprintf(f, "%d,%d,0.5,1,%d\n", i % 3 == 0, i % 3 == 1, i % 3);
    fclose(f);
    m.data.test_split = 0.25f;
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs, fit), 0, "stderr: %s", errs);
    cr_assert_eq(t_count_lines(out), 1, "verbose 0 prints only the test line: %s", out);
    cr_assert(strncmp(out, "test: loss=", 11) == 0, "%s", out);
    h = t_read(hist, NULL);
    cr_assert_eq(t_count_lines(h), 3);
    cr_assert(strstr(h, "\n1,") != NULL && strstr(h, "\n2,") != NULL, "%s", h);
    cr_assert(strstr(h, ",,,") != NULL, "validation cells must be empty: %s", h);
    free(out);
    free(errs);
    free(h);
}

Test(cli, early_stopping_and_nan)
{
    const char *dir = t_tmpdir(), *hist = t_path(dir, "h.csv");
    char *out, *errs, *h;
    const char *fit[] = {"fit", "--data",    dir,  "--epochs",  "10", "--patience",
                         "2",   "--history", hist, "--verbose", "2",  NULL};
    const char *nan[] = {"fit", "--data", dir, "--epochs", "3", "--batch-size", "16", NULL};
    t_write_blobs_npy(dir, 64, 0, 5);
    cr_assert_eq(t_run_cli(&tiny_flat_model, dir, &out, &errs, fit), 0, "stderr: %s", errs);
    cr_assert(strstr(out, "early stopping: loss did not improve for 2 epochs") != NULL, "%s", out);
    h = t_read(hist, NULL);
    cr_assert_eq(t_count_lines(h), 4, "%s", h);
    free(h);
    free(out);
    free(errs);
    cr_assert_eq(t_run_cli(&tiny_nan_model, dir, &out, &errs, nan), 1);
    cr_assert_str_eq(errs, "tiny_bin: stopping: loss is nan at epoch 1, batch 3\n");
    free(out);
    free(errs);
}

Test(cli, predict_csv_and_npy)
{
    const char *dir = t_tmpdir(), *ck = t_path(dir, "w.safetensors"), *in = t_path(dir, "in.csv");
    const char *res = t_path(dir, "pred.csv");
    float params[15] = {0};
    char *out, *errs, *p;
    const char *pr[] = {"predict", "--weights", ck, "--input", in, "--output", res, NULL};
    const char *pr2[] = {"predict", "--weights", ck, "--input", t_path(dir, "x_train.npy"), NULL};
    cgrt_error err;
    params[12 + 2] = 1.0f; /* bias favours class 2 */
    cr_assert_eq(cgrt_save_checkpoint(&tiny_model, params, ck, &err), 0, "%s", err.msg);
    t_write(in, "1,2,3,4\n5,6,7,8\n0,0,0,0\n", 24);
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, pr), 0, "stderr: %s", errs);
    p = t_read(res, NULL);
    cr_assert_eq(t_count_lines(p), 3);
    cr_assert_str_eq(t_last_line(p), "0.211942,0.211942,0.576117,2");
    free(p);
    free(out);
    free(errs);
    t_write_blobs_npy(dir, 7, 0, 1);
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, pr2), 0, "stderr: %s", errs);
    cr_assert_eq(t_count_lines(out), 7);
    free(out);
    free(errs);
    t_write(in, "1,2,3\n", 6);
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, pr), 1);
    cr_assert(strstr(errs, "in.csv: samples have 3 features, model tiny expects 4") != NULL, "%s", errs);
    free(out);
    free(errs);
}

Test(cli, evaluate_with_a_checkpoint_of_another_model)
{
    const char *dir = t_tmpdir(), *ck = t_path(dir, "w.safetensors");
    float params[32] = {0};
    char *out, *errs;
    const char *ev[] = {"evaluate", "--weights", ck, "--data", dir, NULL};
    cgrt_error err;
    t_write_blobs_npy(dir, 10, 0, 1);
    cr_assert_eq(cgrt_save_checkpoint(&tiny5_model, params, ck, &err), 0, "%s", err.msg);
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, ev), 1);
    cr_assert(strstr(errs, "has shape [5,3] in file but model tiny expects [4,3]") != NULL, "%s", errs);
    free(out);
    free(errs);
}

Test(cli, bench)
{
    const char *dir = t_tmpdir();
    char *out, *errs;
    const char *b[] = {"bench", "--iters", "5", NULL};
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, b), 0, "stderr: %s", errs);
    cr_assert(strstr(out, "train_samples_per_sec=") != NULL, "%s", out);
    cr_assert(strstr(out, "\npredict_us_per_sample=") != NULL, "%s", out);
    free(out);
    free(errs);
}

/* One bad command line and the status and message it must give. */
typedef struct bad_case {
    const char *args[8];
    int status;
    const char *msg;
} bad_case;

Test(cli, bad_command_lines)
{
    static const bad_case cases[] = {
        {{NULL}, 2, "usage:"},
        {{"train", NULL}, 2, "unknown command 'train'"},
        {{"fit", "--epoch", "3", NULL}, 2, "unknown flag --epoch"},
        {{"fit", "--epochs", NULL}, 2, "--epochs needs a value"},
        {{"fit", "--epochs", "three", NULL}, 2, "--epochs: 'three' is not an integer"},
        {{"fit", "--epochs", "-1", NULL}, 2, "--epochs: -1 is outside 0.."},
        {{"fit", "--batch-size", "0", NULL}, 2, "--batch-size: 0 is outside"},
        {{"fit", "--batch-size", "17", NULL}, 2, "--batch-size 17 is larger than 16"},
        {{"fit", "--lr", "-1", NULL}, 2, "--lr: -1 is out of range"},
        {{"fit", "--lr", "1e", NULL}, 2, "--lr: '1e' is not a number"},
        {{"fit", "--verbose", "3", NULL}, 2, "--verbose: 3 is outside 0..2"},
        {{"fit", "--validation-split", "1", NULL}, 2, "--validation-split: 1 is out of range"},
        {{"fit", "--seed", "-4", NULL}, 2, "--seed: '-4' is not a non-negative integer"},
        {{"fit", "epochs", NULL}, 2, "unexpected argument 'epochs'"},
        {{"fit", "--input", "x", NULL}, 2, "flag --input does not apply to fit"},
        {{"fit", NULL}, 2, "no --data given"},
        {{"evaluate", NULL}, 2, "evaluate needs --weights FILE"},
        {{"predict", "--weights", "w", NULL}, 2, "predict needs --weights FILE and --input FILE"},
        {{"fit", "--data", "/nonexistent/dir", NULL}, 1, "/nonexistent/dir: cannot open"},
        {{"evaluate", "--weights", "/nonexistent/w", "--data", "x", NULL}, 1, "/nonexistent/w: cannot open"},
        {{"bench", "--iters", "0", NULL}, 2, "--iters: 0 is outside"},
    };
    const char *dir = t_tmpdir();
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *errs;
        int rc = t_run_cli(&tiny_model, dir, &out, &errs, cases[i].args);
        cr_assert_eq(rc, cases[i].status, "case %zu: status %d, stderr %s", i, rc, errs);
        cr_assert(strstr(errs, cases[i].msg) != NULL, "case %zu: stderr \"%s\" lacks \"%s\"", i, errs, cases[i].msg);
        free(out);
        free(errs);
    }
}

/* ---- time series ---- */

/* The numbers after "rmse=" and "mae=" in line k (0-based) of text. */
static void rmse_mae(const char *text, int k, double *rmse, double *mae)
{
    const char *p = text, *r;
    int i;
    for (i = 0; i < k; i++)
        p = strchr(p, '\n') + 1;
    r = strstr(p, "rmse=");
    cr_assert(r != NULL && r < strchr(p, '\n'), "line %d has no rmse=: %s", k, text);
    cr_assert_eq(sscanf(r, "rmse=%lf mae=%lf", rmse, mae), 2, "line %d: %s", k, text);
}

/* The little-endian float at the end of a checkpoint (the tiny forecaster's bias). */
static float last_float(const char *path)
{
    size_t n;
    char *b = t_read(path, &n);
    unsigned char *u = (unsigned char *)b + n - 4;
    uint32_t w = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    float f;
    memcpy(&f, &w, 4);
    free(b);
    return f;
}

Test(cli, series_fit_evaluate_predict_in_original_units)
{
    const char *dir = t_tmpdir(), *csv = t_path(dir, "s.csv"), *ck = t_path(dir, "w.safetensors");
    const char *pred = t_path(dir, "p.csv");
    const char *fit[] = {"fit", "--data", csv, "--epochs", "20", "--save", ck, "--verbose", "0", NULL};
    const char *ev[] = {"evaluate", "--weights", ck, "--data", csv, NULL};
    const char *pr[] = {"predict", "--weights", ck, "--data", csv, "--output", pred, NULL};
    double v[60], mean = 0, std = 0, b, se = 0, ae = 0, nse = 0, nae = 0, rmse, mae, nrmse, nmae;
    char *out, *errs, *ev_out, *p, line[256];
    cgrt_series_stats st;
    cgrt_error err;
    int i, k = 60 - 4 - 2 + 1 - 6 - 8 + 4 + 2 - 1; /* values up to the last training target */
    t_write_series(csv, 60, v);
    cr_assert_eq(t_run_cli(&tiny_series_model, dir, &out, &errs, fit), 0, "stderr: %s", errs);
    cr_assert_eq(t_count_lines(out), 3, "%s", out);
    cr_assert(strncmp(out, "test: loss=", 11) == 0 && strstr(out, " mae=") != NULL, "%s", out);
    cr_assert(strstr(out, "\ntest: original units (8 test targets): rmse=") != NULL, "%s", out);
    cr_assert(strstr(out, "\ntest: seasonal naive (season 6):       rmse=") != NULL, "%s", out);
    /* evaluate, in a separate call, gives the same figures from the checkpoint */
    cr_assert_eq(t_run_cli(&tiny_series_model, dir, &ev_out, &errs, ev), 0, "stderr: %s", errs);
    free(errs);
    cr_assert_eq(t_count_lines(ev_out), 3, "%s", ev_out);
    for (i = 0; i < 3; i++) {
        const char *a = out, *e = ev_out;
        int j;
        for (j = 0; j < i; j++)
            a = strchr(a, '\n') + 1, e = strchr(e, '\n') + 1;
        snprintf(line, sizeof line, "%.*s", (int)(strchr(e, '\n') - e), e);
        cr_assert(strncmp(a, "test: ", 6) == 0 && strncmp(a + 6, line, strlen(line)) == 0,
                  "fit and evaluate differ at line %d:\n%s\n%s", i, out, ev_out);
    }
    /* the statistics in the checkpoint are those of the training part */
    for (i = 0; i < k; i++)
        mean += v[i] / k;
    for (i = 0; i < k; i++)
        std += (v[i] - mean) * (v[i] - mean) / k;
    std = sqrt(std);
    cr_assert_eq(cgrt_load_series_stats(ck, &st, &err), 0, "%s", err.msg);
    cr_assert_float_eq(st.mean, mean, 1e-5 * mean, "mean %g, expected %g", st.mean, mean);
    cr_assert_float_eq(st.std, std, 1e-5 * std, "std %g, expected %g", st.std, std);
    /* the figures, recomputed here: forecast = value 2 steps before + bias * std; naive = value 6 before */
    b = last_float(ck);
    cr_assert_gt(fabs(b - 0.5), 0.01, "the bias did not train (%g)", b);
    for (i = 52; i < 60; i++) {
        double f = v[i - 2] + b * std;
        se += (f - v[i]) * (f - v[i]);
        ae += fabs(f - v[i]);
        nse += (v[i - 6] - v[i]) * (v[i - 6] - v[i]);
        nae += fabs(v[i - 6] - v[i]);
    }
    rmse_mae(ev_out, 1, &rmse, &mae);
    rmse_mae(ev_out, 2, &nrmse, &nmae);
    cr_assert_float_eq(rmse, sqrt(se / 8), 1e-3, "rmse %g, expected %g", rmse, sqrt(se / 8));
    cr_assert_float_eq(mae, ae / 8, 1e-3, "mae %g, expected %g", mae, ae / 8);
    cr_assert_float_eq(nrmse, sqrt(nse / 8), 1e-3, "naive rmse %g, expected %g", nrmse, sqrt(nse / 8));
    cr_assert_float_eq(nmae, nae / 8, 1e-3, "naive mae %g, expected %g", nmae, nae / 8);
    free(out);
    free(ev_out);
    /* predict: the test part, one line per target, in original units */
    cr_assert_eq(t_run_cli(&tiny_series_model, dir, &out, &errs, pr), 0, "stderr: %s", errs);
    cr_assert_str_eq(out, "");
    p = t_read(pred, NULL);
    cr_assert_eq(t_count_lines(p), 9, "%s", p);
    cr_assert(strncmp(p, "index,forecast,actual,seasonal_naive\n", 37) == 0, "%s", p);
    {
        const char *q = strchr(p, '\n') + 1;
        for (i = 52; i < 60; i++, q = strchr(q, '\n') + 1) {
            int idx;
            double f, a, n;
            cr_assert_eq(sscanf(q, "%d,%lf,%lf,%lf", &idx, &f, &a, &n), 4, "%s", q);
            cr_assert_eq(idx, i);
            cr_assert_float_eq(f, v[i - 2] + b * std, 1e-3, "forecast of %d", i);
            cr_assert_float_eq(a, v[i], 1e-4);
            cr_assert_float_eq(n, v[i - 6], 1e-4);
        }
    }
    free(p);
    free(out);
    free(errs);
}

Test(cli, series_predict_input_and_errors)
{
    const char *dir = t_tmpdir(), *csv = t_path(dir, "s.csv"), *ck = t_path(dir, "w.safetensors");
    const char *in = t_path(dir, "in.csv"), *plain = t_path(dir, "plain.safetensors");
    const char *pr[] = {"predict", "--weights", ck, "--input", in, NULL};
    const char *fit[] = {"fit", "--data", csv, "--epochs", "1", "--save", ck, "--verbose", "0", NULL};
    const char *ev_plain[] = {"evaluate", "--weights", plain, "--data", csv, NULL};
    float params[1] = {0.0f};
    char *out, *errs;
    cgrt_error err;
    t_write_series(csv, 60, NULL);
    cr_assert_eq(t_run_cli(&tiny_series_model, dir, &out, &errs, fit), 0, "stderr: %s", errs);
    free(out);
    free(errs);
    /* 6 raw values: 3 windows; the first target (index 5) is known, the others lie past the end;
     * the seasonal-naive value (6 back) exists from index 6 on */
    t_write(in, "10\n11\n12\n13\n14\n15\n", 18);
    cr_assert_eq(t_run_cli(&tiny_series_model, dir, &out, &errs, pr), 0, "stderr: %s", errs);
    cr_assert_eq(t_count_lines(out), 4, "%s", out);
    cr_assert(strncmp(out, "index,forecast,actual,seasonal_naive\n5,", 39) == 0, "%s", out);
    cr_assert(strstr(out, ",15,\n6,") != NULL, "index 5: actual 15, no naive value: %s", out);
    cr_assert(strstr(out, ",,10\n7,") != NULL, "index 6: no actual value, naive 10: %s", out);
    cr_assert(strstr(out, ",,11\n") != NULL, "index 7: no actual value, naive 11: %s", out);
    free(out);
    free(errs);
    t_write(in, "10\n11\n12\n", 9);
    cr_assert_eq(t_run_cli(&tiny_series_model, dir, &out, &errs, pr), 1);
    cr_assert(strstr(errs, "in.csv: holds 3 values, fewer than the window of 4 values") != NULL, "%s", errs);
    cr_assert_eq(t_count_lines(errs), 1);
    free(out);
    free(errs);
    cr_assert_eq(cgrt_save_checkpoint(&tiny_series_model, params, plain, &err), 0, "%s", err.msg);
    cr_assert_eq(t_run_cli(&tiny_series_model, dir, &out, &errs, ev_plain), 1);
    cr_assert(strstr(errs, "plain.safetensors: holds no time-series statistics") != NULL, "%s", errs);
    free(out);
    free(errs);
    {
        static const bad_case cases[] = {
            {{"fit", "--data", "s.csv", "--validation-split", "0.2", NULL}, 2, "validates on its val_steps targets"},
            {{"predict", NULL}, 2, "predict needs --weights FILE"},
        };
        size_t i;
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int rc = t_run_cli(&tiny_series_model, dir, &out, &errs, cases[i].args);
            cr_assert_eq(rc, cases[i].status, "case %zu: status %d, stderr %s", i, rc, errs);
            cr_assert(strstr(errs, cases[i].msg) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, errs, cases[i].msg);
            free(out);
            free(errs);
        }
    }
    {
        const char *pd[] = {"predict", "--weights", ck, "--data", csv, NULL};
        cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, pd), 2);
        cr_assert(strstr(errs, "flag --data does not apply to predict") != NULL, "%s", errs);
        free(out);
        free(errs);
    }
}
