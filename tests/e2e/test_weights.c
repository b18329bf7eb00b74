/* test_weights.c: sample and class weights end to end, with the model
 * tests/e2e/weights_model.c (logistic regression of two features) built by
 * `cgrad build`.
 *
 * Checked: on an imbalanced binary CSV (90% class 0, generated here with a
 * fixed seed), fit --class-weight balanced finds clearly more of the
 * minority class than fit without weights (recall from predict's output on
 * a second file of the same kind); the loss of one batch with sample
 * weights, through evaluate --sample-weight and through fit's first step,
 * equals Keras' weighted mean sum_i w_i l_i / n computed here from
 * predict's probabilities; in the portable flavour, weights of 1 train to
 * the same checkpoint, byte for byte, as no weights (the NULL path), and a
 * firmware build for prediction holds nothing of the weights. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

TestSuite(weights, .fini = e2e_cleanup);

/* Runs the command; asserts it succeeded; returns its stdout (malloc'd). */
static char *run_ok(const char *tmp, const char *const *argv)
{
    e2e_run r = e2e_exec(tmp, tmp, 240, argv);
    cr_assert_eq(r.status, 0, "%s %s failed: %s", argv[0], argv[1], r.err);
    char *out = r.out;
    r.out = NULL;
    e2e_run_free(&r);
    return out;
}
#define RUN_OK(tmp, ...) free(run_ok(tmp, (const char *const[]){__VA_ARGS__, NULL}))
#define RUN_OUT(tmp, ...) run_ok(tmp, (const char *const[]){__VA_ARGS__, NULL})

/* Builds weights_model.c into tmp/DIR in the flavour; returns the training binary. */
static const char *build_model(const char *tmp, const char *dir, const char *flavour)
{
    RUN_OK(tmp, CGRAD_TOOL, "build", SOURCE_DIR "/tests/e2e/weights_model.c", "-o", dir, "--flavour", flavour, "--cc",
           "gcc");
    return e2e_path(e2e_path(tmp, dir), "weighted_logreg");
}

/* A uniform number in (0, 1) from a 64-bit LCG. */
static double uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
}

/* Writes n rows "x1,x2,label" (labels when labels is set) to path: one row
 * in ten is class 1, its features drawn around (1.2, 1.2), the others'
 * around (0, 0), both with standard deviation 1 (Box-Muller). Returns the
 * labels in y. */
static void write_imbalanced(const char *path, int n, uint64_t seed, bool labels, int *y)
{
    char *text = malloc((size_t)n * 64), *p = text;
    for (int i = 0; i < n; i++) {
        y[i] = i % 10 == 3;
        double r = sqrt(-2.0 * log(uniform(&seed))), a = 6.283185307179586 * uniform(&seed);
        double c = y[i] ? 1.2 : 0.0;
        p += sprintf(p, "%.6f,%.6f", c + r * cos(a), c + r * sin(a));
        p += labels ? sprintf(p, ",%d\n", y[i]) : sprintf(p, "\n");
    }
    e2e_write(path, text, (size_t)(p - text));
    free(text);
}

/* The share of class-1 rows whose predicted probability (first cell of each line of pred) exceeds 0.5. */
static double minority_recall(const char *pred, const int *y, int n)
{
    int found = 0, total = 0;
    for (int i = 0; i < n; i++) {
        const char *line = e2e_line(pred, i);
        cr_assert(line[0], "predict wrote %d lines, expected %d", e2e_count_lines(pred), n);
        if (y[i]) {
            total++;
            found += strtod(line, NULL) > 0.5;
        }
    }
    return (double)found / total;
}

Test(weights, balanced_class_weights_raise_minority_recall, .timeout = 300)
{
    const char *tmp = e2e_tmpdir(), *bin = build_model(tmp, "host", "host");
    static int ytrain[1000], ytest[1000];
    write_imbalanced(e2e_path(tmp, "train.csv"), 1000, 11, true, ytrain);
    write_imbalanced(e2e_path(tmp, "test.csv"), 1000, 12, false, ytest);
    double recall[2];
    for (int k = 0; k < 2; k++) {
        const char *ckpt = e2e_path(tmp, k ? "balanced.safetensors" : "plain.safetensors");
        RUN_OK(tmp, bin, "fit", "--data", e2e_path(tmp, "train.csv"), "--epochs", "20", "--class-weight",
               k ? "balanced" : "none", "-q", "-o", ckpt);
        char *pred = RUN_OUT(tmp, bin, "predict", "-w", ckpt, "--input", e2e_path(tmp, "test.csv"));
        recall[k] = minority_recall(pred, ytest, 1000);
        free(pred);
    }
    cr_expect(recall[1] >= 0.6 && recall[1] >= recall[0] + 0.25,
              "minority recall %.3f with balanced class weights, %.3f without", recall[1], recall[0]);
}

/* Writes an NPY file (version 1.0, little-endian float32) of the n floats v, shape (n,). */
static void write_npy(const char *path, const float *v, int n)
{
    char head[128];
    int len = snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }", n);
    unsigned char *file = malloc(128 + sizeof(float) * (size_t)n);
    int total = 10 + len, pad = 64 - (total + 1) % 64;
    pad = pad == 64 ? 0 : pad;
    memcpy(file, "\x93NUMPY\x01\x00", 8);
    file[8] = (unsigned char)((len + pad + 1) & 0xff), file[9] = (unsigned char)((len + pad + 1) >> 8);
    memcpy(file + 10, head, (size_t)len);
    memset(file + 10 + len, ' ', (size_t)pad);
    file[10 + len + pad] = '\n';
    memcpy(file + 11 + len + pad, v, sizeof(float) * (size_t)n);
    e2e_write(path, file, (size_t)(11 + len + pad) + sizeof(float) * (size_t)n);
    free(file);
}

Test(weights, weighted_batch_loss_is_keras_weighted_mean, .timeout = 300)
{
    const char *tmp = e2e_tmpdir(), *bin = build_model(tmp, "host", "host");
    static const char data[] = "0.5,-1.0,1\n-0.3,0.8,0\n1.5,0.2,1\n-2.0,-0.4,0\n0.1,0.1,1\n0.9,-1.7,0\n";
    static const char input[] = "0.5,-1.0\n-0.3,0.8\n1.5,0.2\n-2.0,-0.4\n0.1,0.1\n0.9,-1.7\n";
    const float w[6] = {0.5f, 2.0f, 0.0f, 1.0f, 3.0f, 1.5f};
    const int y[6] = {1, 0, 1, 0, 1, 0};
    e2e_write_str(e2e_path(tmp, "d.csv"), data);
    e2e_write_str(e2e_path(tmp, "x.csv"), input);
    write_npy(e2e_path(tmp, "sw.npy"), w, 6);
    RUN_OK(tmp, bin, "fit", "--data", "d.csv", "--epochs", "0", "-s", "5", "-o", "w0.safetensors");
    char *pred = RUN_OUT(tmp, bin, "predict", "-w", "w0.safetensors", "--input", "x.csv");
    double expect = 0.0;
    for (int i = 0; i < 6; i++) {
        double p = strtod(e2e_line(pred, i), NULL);
        expect += w[i] * -(y[i] ? log(p) : log(1.0 - p));
    }
    expect /= 6.0; /* Keras' sum_over_batch_size: divided by the batch size, not by the weights' sum */
    free(pred);
    char *out = RUN_OUT(tmp, bin, "evaluate", "-w", "w0.safetensors", "--data", "d.csv", "--sample-weight", "sw.npy");
    double loss, acc;
    cr_assert(e2e_parse_figures(e2e_last_line(out), "", &loss, &acc), "evaluate printed: %s", out);
    free(out);
    cr_expect(fabs(loss - expect) <= 2e-4 * expect, "evaluate's weighted loss %.6f, Keras' weighted mean %.6f", loss,
              expect);
    /* fit's first step reports the batch's loss before its update: the same figure */
    RUN_OK(tmp, bin, "fit", "--data", "d.csv", "--epochs", "1", "-s", "5", "-b", "6", "--shuffle", "false",
           "--sample-weight", "sw.npy", "--history", "h.csv", "-q");
    char *hist = e2e_read(e2e_path(tmp, "h.csv"), NULL);
    double fit_loss = strtod(strchr(e2e_line(hist, 1), ',') + 1, NULL);
    free(hist);
    cr_expect(fabs(fit_loss - expect) <= 2e-4 * expect, "fit's weighted loss %.6f, Keras' weighted mean %.6f", fit_loss,
              expect);
}

Test(weights, portable_weights_of_one_are_the_null_path, .timeout = 300)
{
    const char *tmp = e2e_tmpdir(), *bin = build_model(tmp, "portable", "portable");
    static int y[200];
    float ones[200];
    for (int i = 0; i < 200; i++)
        ones[i] = 1.0f;
    write_imbalanced(e2e_path(tmp, "d.csv"), 200, 3, true, y);
    write_npy(e2e_path(tmp, "ones.npy"), ones, 200);
    RUN_OK(tmp, bin, "fit", "--data", "d.csv", "--epochs", "3", "-q", "-o", "plain.safetensors");
    RUN_OK(tmp, bin, "fit", "--data", "d.csv", "--epochs", "3", "-q", "-o", "ones.safetensors", "--sample-weight",
           "ones.npy");
    size_t la, lb;
    char *a = e2e_read(e2e_path(tmp, "plain.safetensors"), &la), *b = e2e_read(e2e_path(tmp, "ones.safetensors"), &lb);
    cr_expect(a && b && la == lb && memcmp(a, b, la) == 0, "weights of 1 trained other parameters than no weights");
    free(a), free(b);
    /* a firmware build for prediction keeps nothing of the weights */
    RUN_OK(tmp, CGRAD_TOOL, "build", SOURCE_DIR "/tests/e2e/weights_model.c", "-o", "fw", "--target", "firmware",
           "--mode", "predict", "--cc", "gcc");
    char *src = e2e_read(e2e_path(e2e_path(tmp, "fw"), "weighted_logreg.c"), NULL),
         *hdr = e2e_read(e2e_path(e2e_path(tmp, "fw"), "weighted_logreg.h"), NULL);
    cr_assert(src && hdr, "the firmware build wrote no weighted_logreg.c/.h");
    cr_expect(!strstr(src, "sample_weight") && !strstr(src, "_weighted") && !strstr(hdr, "_weighted"),
              "a predict-only firmware mentions the sample weights");
    free(src), free(hdr);
}
