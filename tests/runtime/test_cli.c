/* test_cli.c: cgrt_main end to end with the hand-written tiny model: fit
 * (history, falling loss, checkpoints, test figures), evaluate reproducing
 * them, predict, bench, early stopping, the stop on nan, and usage errors. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Runs cgrt_main on the NULL-terminated argument list with stdout and stderr
 * sent to files in dir; returns the status, *out and *errs get their text. */
static int run(const cgrt_model *m, const char *dir, char **out, char **errs, const char *const *args)
{
    char *argv[64];
    int argc = 0, rc;
    argv[argc++] = (char *)"tiny_bin";
    while (*args)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    cr_assert_not_null(freopen(t_path(dir, "stdout.txt"), "w", stdout));
    cr_assert_not_null(freopen(t_path(dir, "stderr.txt"), "w", stderr));
    rc = cgrt_main(argc, argv, m);
    fflush(stdout);
    fflush(stderr);
    *out = t_read(t_path(dir, "stdout.txt"), NULL);
    *errs = t_read(t_path(dir, "stderr.txt"), NULL);
    return rc;
}

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
    const char *fit[] = {"fit", "--data", dir, "--epochs", "6", "--batch-size", "8", "--lr=0.2", "--history", hist,
                         "--save", ck, "--verbose", "2", "--validation-split", "0.2", NULL};
    const char *ev[] = {"evaluate", "--weights", ck, "--data", dir, NULL};
    t_write_blobs_npy(dir, 200, 60, 11);
    cr_assert_eq(run(&tiny_model, dir, &out, &errs, fit), 0, "stderr: %s", errs);
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
    cr_assert_eq(run(&tiny_model, dir, &out, &errs, ev), 0, "stderr: %s", errs);
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
    cr_assert_eq(run(&m, dir, &out, &errs, fit), 0, "stderr: %s", errs);
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
    const char *fit[] = {"fit", "--data", dir, "--epochs", "10", "--patience", "2", "--history", hist, "--verbose",
                         "2", NULL};
    const char *nan[] = {"fit", "--data", dir, "--epochs", "3", "--batch-size", "16", NULL};
    t_write_blobs_npy(dir, 64, 0, 5);
    cr_assert_eq(run(&tiny_flat_model, dir, &out, &errs, fit), 0, "stderr: %s", errs);
    cr_assert(strstr(out, "early stopping: loss did not improve for 2 epochs") != NULL, "%s", out);
    h = t_read(hist, NULL);
    cr_assert_eq(t_count_lines(h), 4, "%s", h);
    free(h);
    free(out);
    free(errs);
    cr_assert_eq(run(&tiny_nan_model, dir, &out, &errs, nan), 1);
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
    cr_assert_eq(run(&tiny_model, dir, &out, &errs, pr), 0, "stderr: %s", errs);
    p = t_read(res, NULL);
    cr_assert_eq(t_count_lines(p), 3);
    cr_assert_str_eq(t_last_line(p), "0.211942,0.211942,0.576117,2");
    free(p);
    free(out);
    free(errs);
    t_write_blobs_npy(dir, 7, 0, 1);
    cr_assert_eq(run(&tiny_model, dir, &out, &errs, pr2), 0, "stderr: %s", errs);
    cr_assert_eq(t_count_lines(out), 7);
    free(out);
    free(errs);
    t_write(in, "1,2,3\n", 6);
    cr_assert_eq(run(&tiny_model, dir, &out, &errs, pr), 1);
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
    cr_assert_eq(run(&tiny_model, dir, &out, &errs, ev), 1);
    cr_assert(strstr(errs, "has shape [5,3] in file but model tiny expects [4,3]") != NULL, "%s", errs);
    free(out);
    free(errs);
}

Test(cli, bench)
{
    const char *dir = t_tmpdir();
    char *out, *errs;
    const char *b[] = {"bench", "--iters", "5", NULL};
    cr_assert_eq(run(&tiny_model, dir, &out, &errs, b), 0, "stderr: %s", errs);
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
        {{"fit", "--epochs", "0", NULL}, 2, "--epochs: 0 is outside 1.."},
        {{"fit", "--batch-size", "0", NULL}, 2, "--batch-size: 0 is outside"},
        {{"fit", "--batch-size", "17", NULL}, 2, "--batch-size 17 is larger than 16"},
        {{"fit", "--lr", "-1", NULL}, 2, "--lr: -1 is out of range"},
        {{"fit", "--lr", "1e", NULL}, 2, "--lr: '1e' is not a number"},
        {{"fit", "--verbose", "3", NULL}, 2, "--verbose: 3 is outside 0..2"},
        {{"fit", "--validation-split", "1", NULL}, 2, "--validation-split: 1 is out of range"},
        {{"fit", "--seed", "-4", NULL}, 2, "--seed: '-4' is not a non-negative integer"},
        {{"fit", "epochs", NULL}, 2, "unexpected argument 'epochs'"},
        {{"fit", "--weights", "w", NULL}, 2, "flag --weights does not apply to fit"},
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
        int rc = run(&tiny_model, dir, &out, &errs, cases[i].args);
        cr_assert_eq(rc, cases[i].status, "case %zu: status %d, stderr %s", i, rc, errs);
        cr_assert(strstr(errs, cases[i].msg) != NULL, "case %zu: stderr \"%s\" lacks \"%s\"", i, errs, cases[i].msg);
        free(out);
        free(errs);
    }
}
