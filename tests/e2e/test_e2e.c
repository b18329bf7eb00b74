/* test_e2e.c: the whole pipeline, end to end, through real processes:
 * `cgrad build` with gcc and clang in both flavours, training binaries that
 * fit, save, evaluate and predict, byte-identical emission, the gradient-tape
 * example, the firmware rules of the portable flavour, and Fashion-MNIST. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define DIGITS_DATA SOURCE_DIR "/examples/data/digits.csv.gz"

/* ---- building digits_mlp with the cgrad tool ---------------------------------- */

/* examples/digits_mlp/model.c takes its data folder from meson (-DCGRAD_DATA_DIR);
 * `cgrad build` has no -D, so build it through a two-line wrapper. */
static const char *digits_wrapper(const char *tmp)
{
    const char *path = e2e_path(tmp, "digits_model.c");
    e2e_write_str(path, "#define CGRAD_DATA_DIR \"" SOURCE_DIR "/examples/data\"\n"
                        "#include \"" SOURCE_DIR "/examples/digits_mlp/model.c\"\n");
    return path;
}

/* cgrad build MODEL -o TMP/OUT --flavour F --cc CC; asserts success; returns the binary's path. */
static const char *cgrad_build(const char *tmp, const char *model, const char *out, const char *flavour, const char *cc,
                               const char *name)
{
    const char *dir = e2e_path(tmp, out);
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", model, "-o", dir, "--flavour", flavour, "--cc", cc);
    cr_assert_eq(r.status, 0, "cgrad build %s --flavour %s --cc %s failed (%d):\n%s%s", model, flavour, cc, r.status,
                 r.out, r.err);
    e2e_run_free(&r);
    const char *bin = e2e_path(dir, name);
    cr_assert(e2e_exists(bin), "cgrad build made no %s", bin);
    return bin;
}

/* Splits CSV line s into at most max numbers; returns the count (-1 when a field is not a number). */
static int csv_numbers(const char *s, double *v, int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        if (n == max)
            return -1;
        if (*p == ',' || *p == '\0') {
            v[n++] = NAN; /* empty field */
            end = (char *)p;
        } else {
            v[n++] = strtod(p, &end);
            if (end == p)
                return -1;
        }
        if (*end == '\0')
            return n;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

/* Builds digits_mlp with cc in flavour, fits 5 epochs with --verbose 2 and
 * --history, and checks the history and the output. */
static void build_and_fit_five_epochs(const char *cc, const char *flavour)
{
    const char *tmp = e2e_tmpdir();
    const char *bin = cgrad_build(tmp, digits_wrapper(tmp), "out", flavour, cc, "digits_mlp");
    const char *dir = e2e_path(tmp, "out");
    e2e_run r = E2E_RUN(tmp, dir, bin, "fit", "--epochs", "5", "--verbose", "2", "--history", "h.csv");
    cr_assert_eq(r.status, 0, "fit failed (%d): %s", r.status, r.err);

    /* verbose 2: one line per epoch; then the test figures */
    for (int e = 1; e <= 5; e++) {
        char want[32];
        snprintf(want, sizeof want, "Epoch %d/5", e);
        cr_assert_not_null(strstr(r.out, want), "no \"%s\" line in the output:\n%s", want, r.out);
    }
    double loss, acc;
    const char *last = e2e_last_line(r.out);
    cr_assert(e2e_parse_figures(last, "test: ", &loss, &acc), "last line is not \"test: loss=<x> accuracy=<y>\": %s",
              last);
    cr_assert(loss > 0 && loss < 3 && acc >= 0 && acc <= 1, "implausible figures: %s", last);

    /* the history */
    char *h = e2e_read(e2e_path(dir, "h.csv"), NULL);
    cr_assert_not_null(h, "no history file");
    cr_assert_str_eq(e2e_line(h, 0), "epoch,loss,accuracy,val_loss,val_accuracy,seconds,samples_per_sec");
    cr_assert_eq(e2e_count_lines(h), 6, "history has %d lines, expected header + 5:\n%s", e2e_count_lines(h), h);
    double prev_loss = INFINITY, first = 0, lastl = 0;
    for (int e = 1; e <= 5; e++) {
        double v[16];
        const char *row = e2e_line(h, e);
        int n = csv_numbers(row, v, 16);
        cr_assert_eq(n, 7, "history row %d has %d fields: %s", e, n, row);
        cr_assert_eq(v[0], (double)e, "history row %d names epoch %g", e, v[0]);
        cr_assert(isfinite(v[1]) && v[1] > 0, "history row %d: bad loss: %s", e, row);
        cr_assert(v[2] >= 0 && v[2] <= 1, "history row %d: bad accuracy: %s", e, row);
        cr_assert(isnan(v[3]) && isnan(v[4]), "history row %d: validation columns should be empty: %s", e, row);
        cr_assert(v[5] >= 0 && v[6] > 0, "history row %d: bad timing: %s", e, row);
        cr_assert_lt(v[1], prev_loss, "the loss rose at epoch %d:\n%s", e, h);
        prev_loss = v[1];
        if (e == 1)
            first = v[1];
        lastl = v[1];
    }
    cr_assert_lt(lastl, 0.6 * first, "the loss barely fell (%g -> %g):\n%s", first, lastl, h);
    free(h);
    e2e_run_free(&r);
}

TestSuite(e2e, .timeout = 200, .fini = e2e_cleanup);

Test(e2e, digits_gcc_host)
{
    build_and_fit_five_epochs("gcc", "host");
}
Test(e2e, digits_gcc_portable)
{
    build_and_fit_five_epochs("gcc", "portable");
}
Test(e2e, digits_clang_host)
{
    build_and_fit_five_epochs("clang", "host");
}
Test(e2e, digits_clang_portable)
{
    build_and_fit_five_epochs("clang", "portable");
}

/* The examples' model programs build as they are, as their comments say
 * (`cgrad build examples/fashion_mlp/model.c`). */
Test(e2e, example_models_build_as_is)
{
    const char *tmp = e2e_tmpdir();
    cgrad_build(tmp, SOURCE_DIR "/examples/fashion_mlp/model.c", "fashion", "portable", "gcc", "fashion_mlp");
    cgrad_build(tmp, SOURCE_DIR "/examples/digits_mlp/model.c", "digits", "portable", "gcc", "digits_mlp");
}

/* The convolutional examples' emitted code compiles warning-free (-Wall
 * -Wextra -Wpedantic -Werror, which cgrad build uses) under gcc and clang,
 * in both flavours: im2col and the GEMM shim, and the plain loops. */
Test(e2e, cnn_examples_build_with_gcc_and_clang_in_both_flavours, .timeout = 240)
{
    static const char *const models[] = {"fashion_cnn", "fashion_cnn_bn"};
    static const char *const ccs[] = {"gcc", "clang"};
    static const char *const flavours[] = {"host", "portable"};
    const char *tmp = e2e_tmpdir();
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < 2; c++)
            for (int f = 0; f < 2; f++) {
                char model[512], out[128];
                snprintf(model, sizeof model, SOURCE_DIR "/examples/%s/model.c", models[m]);
                snprintf(out, sizeof out, "%s_%s_%s", models[m], ccs[c], flavours[f]);
                cgrad_build(tmp, model, out, flavours[f], ccs[c], models[m]);
            }
}

/* The requirement: portable trains to the same accuracy (within 0.01) as host. */
Test(e2e, host_and_portable_reach_the_same_accuracy)
{
    const char *tmp = e2e_tmpdir();
    const char *model = digits_wrapper(tmp);
    const char *bins[2] = {cgrad_build(tmp, model, "host", "host", "gcc", "digits_mlp"),
                           cgrad_build(tmp, model, "portable", "portable", "gcc", "digits_mlp")};
    double acc[2], loss;
    for (int i = 0; i < 2; i++) {
        e2e_run r = E2E_RUN(tmp, tmp, bins[i], "fit", "--verbose", "0");
        cr_assert_eq(r.status, 0, "%s fit failed: %s", bins[i], r.err);
        const char *last = e2e_last_line(r.out);
        cr_assert(e2e_parse_figures(last, "test: ", &loss, &acc[i]), "bad last line: %s", last);
        cr_assert_geq(acc[i], 0.95, "%s: test accuracy %g after the default 60 epochs", bins[i], acc[i]);
        e2e_run_free(&r);
    }
    cr_assert_leq(fabs(acc[0] - acc[1]), 0.01, "host %g vs portable %g", acc[0], acc[1]);
}

/* ---- determinism ------------------------------------------------------------------ */

/* Runs the model program gen twice (into folders of different names) and compares every emitted file. */
static void emits_identically(const char *gen, const char *name, const char *flavour)
{
    const char *tmp = e2e_tmpdir();
    const char *dirs[2] = {e2e_path(tmp, "a"), e2e_path(tmp, "second_run")};
    for (int i = 0; i < 2; i++) {
        e2e_run r = E2E_RUN(tmp, tmp, gen, "-o", dirs[i], "--flavour", flavour);
        cr_assert_eq(r.status, 0, "%s failed: %s", gen, r.err);
        e2e_run_free(&r);
    }
    static const char *const suffixes[] = {".h", ".c", "_main.c"};
    for (int k = 0; k < 3; k++) {
        char file[256];
        size_t la, lb;
        snprintf(file, sizeof file, "%s%s", name, suffixes[k]);
        char *a = e2e_read(e2e_path(dirs[0], file), &la), *b = e2e_read(e2e_path(dirs[1], file), &lb);
        cr_assert_not_null(a, "%s: no %s", flavour, file);
        cr_assert_not_null(b, "%s: no %s", flavour, file);
        cr_assert(la == lb && memcmp(a, b, la) == 0, "%s (%s) differs between two runs", file, flavour);
        cr_assert_null(strstr(a, tmp), "%s names the output folder", file);
        free(a);
        free(b);
    }
}

Test(e2e, deterministic_digits_host)
{
    emits_identically(DIGITS_MLP_GEN, "digits_mlp", "host");
}
Test(e2e, deterministic_digits_portable)
{
    emits_identically(DIGITS_MLP_GEN, "digits_mlp", "portable");
}
Test(e2e, deterministic_fashion_host)
{
    emits_identically(FASHION_MLP_GEN, "fashion_mlp", "host");
}
Test(e2e, deterministic_fashion_portable)
{
    emits_identically(FASHION_MLP_GEN, "fashion_mlp", "portable");
}
Test(e2e, deterministic_elec_host)
{
    emits_identically(ELEC_MLP_GEN, "elec_mlp", "host");
}

/* The emitted code does not depend on which compiler built the model program.
 * Every builder call of this model fits on one line: for a macro call that
 * spans lines, gcc's __LINE__ is the line of the macro name and clang's the
 * line of its closing parenthesis, so the (model.c:N) banners would differ. */
Test(e2e, emission_independent_of_the_compiler)
{
    const char *tmp = e2e_tmpdir();
    const char *model = e2e_path(tmp, "model.c");
    e2e_write_str(
        model,
        "#include <cgrad.h>\n"
        "int main(int argc, char **argv)\n"
        "{\n"
        "    cg_model *m = cg_sequential(\"digits_mlp\", CG_SHAPE(64));\n"
        "    cg_model_add(m, cg_dense(64, .activation = CG_RELU));\n"
        "    cg_model_add(m, cg_dense(10, .kernel_initializer = cg_normal(0.0f, 0.05f)));\n"
        "    cg_compile(m, .optimizer = cg_rmsprop(1e-3f), .loss = CG_SPARSE_CATEGORICAL_CROSSENTROPY, "
        ".from_logits = true, .metric = CG_ACCURACY, .batch_size = 32, .epochs = 3, .data = {.path = \"" DIGITS_DATA
        "\", .scale = 1.0f / 16.0f, .test_split = 0.2f});\n"
        "    return cg_main(m, argc, argv);\n"
        "}\n");
    const char *bins[2] = {cgrad_build(tmp, model, "gcc", "portable", "gcc", "digits_mlp"),
                           cgrad_build(tmp, model, "clang", "portable", "clang", "digits_mlp")};
    static const char *const files[] = {"digits_mlp.h", "digits_mlp.c", "digits_mlp_main.c"};
    for (int k = 0; k < 3; k++) {
        size_t la, lb;
        char *a = e2e_read(e2e_path(e2e_path(tmp, "gcc"), files[k]), &la);
        char *b = e2e_read(e2e_path(e2e_path(tmp, "clang"), files[k]), &lb);
        cr_assert(a && b && la == lb && memcmp(a, b, la) == 0, "%s differs between gcc and clang model programs",
                  files[k]);
        free(a);
        free(b);
    }
    /* and the two binaries (same code, two compilers) train alike */
    double loss[2], acc[2];
    for (int i = 0; i < 2; i++) {
        e2e_run r = E2E_RUN(tmp, tmp, bins[i], "fit", "--verbose", "0");
        cr_assert_eq(r.status, 0, "%s: %s", bins[i], r.err);
        cr_assert(e2e_parse_figures(e2e_last_line(r.out), "test: ", &loss[i], &acc[i]), "%s", r.out);
        e2e_run_free(&r);
    }
    cr_assert_leq(fabs(acc[0] - acc[1]), 0.01, "gcc %g vs clang %g", acc[0], acc[1]);
}

/* ---- checkpoints ---------------------------------------------------------------------- */

/* Writes the first n rows of the digits data, features only, to path as CSV. */
static void write_digits_inputs(const char *path, int n, int labels_out[])
{
    gzFile f = gzopen(DIGITS_DATA, "rb");
    FILE *o = fopen(path, "w");
    char line[4096];
    cr_assert(f && o);
    for (int i = 0; i < n; i++) {
        cr_assert_not_null(gzgets(f, line, sizeof line));
        char *comma = strrchr(line, ',');
        cr_assert_not_null(comma);
        labels_out[i] = atoi(comma + 1);
        *comma = '\0';
        fprintf(o, "%s\n", line);
    }
    gzclose(f);
    cr_assert_eq(fclose(o), 0);
}

Test(e2e, checkpoint_round_trip)
{
    const char *tmp = e2e_tmpdir();
    const char *w = e2e_path(tmp, "w.safetensors");
    e2e_run fit = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--epochs", "15", "--verbose", "0", "--save", w);
    cr_assert_eq(fit.status, 0, "fit failed: %s", fit.err);
    char fit_line[256];
    snprintf(fit_line, sizeof fit_line, "%s", e2e_last_line(fit.out));
    double loss, acc;
    cr_assert(e2e_parse_figures(fit_line, "test: ", &loss, &acc), "bad fit output: %s", fit_line);
    cr_assert_geq(acc, 0.85, "15 epochs reach only %g", acc);

    /* the file is a safetensors file: u64 header length, JSON header naming every tensor, data */
    size_t len;
    unsigned char *st = (unsigned char *)e2e_read(w, &len);
    cr_assert_not_null(st, "no checkpoint written");
    cr_assert_gt(len, 8);
    unsigned long long hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | st[i];
    cr_assert_leq(hlen + 8, len);
    cr_assert_eq(st[8], '{', "header is not JSON");
    const size_t data_bytes = 4 * (64 * 64 + 64 + 64 * 10 + 10);
    cr_assert_eq(len, 8 + hlen + data_bytes, "file size %zu, expected 8 + %llu + %zu", len, hlen, data_bytes);
    char *header = strndup((char *)st + 8, hlen);
    cr_assert_not_null(strstr(header, "\"dense_1/kernel\""), "header: %s", header);
    cr_assert_not_null(strstr(header, "\"dense_2/bias\""), "header: %s", header);
    cr_assert_not_null(strstr(header, "\"F32\""), "header: %s", header);
    free(header);
    free(st);

    /* evaluate gives the fit's test figures */
    e2e_run ev = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", w);
    cr_assert_eq(ev.status, 0, "evaluate failed: %s", ev.err);
    cr_assert_str_eq(e2e_last_line(ev.out), fit_line + strlen("test: "), "evaluate differs from fit's test figures");

    /* predict: one CSV line per row, ten scores and the class */
    const char *x = e2e_path(tmp, "X.csv");
    int labels[6], right = 0;
    write_digits_inputs(x, 6, labels);
    for (int to_file = 0; to_file < 2; to_file++) {
        const char *outp = e2e_path(tmp, "pred.csv");
        e2e_run pr = to_file ? E2E_RUN(tmp, tmp, DIGITS_MLP, "predict", "--weights", w, "--input", x, "--output", outp)
                             : E2E_RUN(tmp, tmp, DIGITS_MLP, "predict", "--weights", w, "--input", x);
        cr_assert_eq(pr.status, 0, "predict failed: %s", pr.err);
        char *text = to_file ? e2e_read(outp, NULL) : strdup(pr.out);
        cr_assert_not_null(text);
        cr_assert_eq(e2e_count_lines(text), 6, "predict wrote %d lines for 6 rows:\n%s", e2e_count_lines(text), text);
        right = 0;
        for (int i = 0; i < 6; i++) {
            double v[16];
            const char *row = e2e_line(text, i);
            cr_assert_eq(csv_numbers(row, v, 16), 11, "prediction row %d is not 10 scores + class: %s", i, row);
            int best = 0;
            for (int j = 1; j < 10; j++)
                if (v[j] > v[best])
                    best = j;
            cr_assert_eq(v[10], (double)best, "class column %g is not the argmax %d: %s", v[10], best, row);
            right += best == labels[i];
        }
        free(text);
        e2e_run_free(&pr);
    }
    cr_assert_geq(right, 4, "only %d of 6 training rows predicted right", right);
    e2e_run_free(&fit);
    e2e_run_free(&ev);
}

/* ---- the gradient-tape example -------------------------------------------------------- */

Test(e2e, linear_regression_recovers_the_coefficients)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, LINEAR_REGRESSION);
    cr_assert_eq(r.status, 0, "linear_regression exited %d: %s%s", r.status, r.out, r.err);
    cr_assert_not_null(strstr(r.out, "recovered the coefficients"), "output:\n%s", r.out);
    cr_assert_null(strstr(r.out, "FAILED"), "output:\n%s", r.out);
    e2e_run_free(&r);
}

/* The extended tape: a custom (Huber) loss, gradients clipped by global norm
 * in C, then the emitted Adam step (curve_apply_gradients). The program
 * checks its own fit against sin(x) and that clipping happened. */
Test(e2e, custom_loop_fits_through_the_outliers)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, CUSTOM_LOOP);
    cr_assert_eq(r.status, 0, "custom_loop exited %d: %s%s", r.status, r.out, r.err);
    cr_assert_not_null(strstr(r.out, "fitted the curve through the outliers"), "output:\n%s", r.out);
    e2e_run_free(&r);
}

/* A custom layer (the Keras guide's MyDense: relu(inputs @ kernel), no bias)
 * stacked twice in a Sequential model trains on the digits like Dense. */
Test(e2e, custom_layer_trains)
{
    double acc = e2e_fit_accuracy(e2e_tmpdir(), CUSTOM_LAYER);
    cr_assert_geq(acc, 0.95, "custom_layer reached accuracy %.4f, expected 0.95 or more", acc);
}

/* The custom model (a residual MLP whose block is called twice, with
 * Dropout between) trains on the digits; the seeded hold-out run gives
 * 0.9666, the test asks for 0.95. */
Test(e2e, custom_model_trains)
{
    double acc = e2e_fit_accuracy(e2e_tmpdir(), CUSTOM_MODEL);
    cr_assert_geq(acc, 0.95, "custom_model reached accuracy %.4f, expected 0.95 or more", acc);
}

/* The functional model (two inputs, two outputs) on iris: both heads learn,
 * every figure is reported under its output's name, the history file has a
 * column for each, and evaluate after reloading the checkpoint gives the
 * test figures of fit again. */
Test(e2e, functional_model_trains_both_outputs)
{
    const char *tmp = e2e_tmpdir();
    char ckpt[512], hist[512];
    snprintf(ckpt, sizeof ckpt, "%s/fn.safetensors", tmp);
    snprintf(hist, sizeof hist, "%s/fn.csv", tmp);
    e2e_run r = E2E_RUN(tmp, tmp, FUNCTIONAL, "fit", "--verbose", "0", "--save", ckpt, "--history", hist);
    cr_assert_eq(r.status, 0, "functional fit exited %d: %s%s", r.status, r.out, r.err);
    double loss, wl, sl, mae, acc;
    const char *line = strstr(r.out, "test: loss=");
    cr_assert_not_null(line, "no test line:\n%s", r.out);
    cr_assert_eq(sscanf(line,
                        "test: loss=%lf petal_width_loss=%lf species_loss=%lf petal_width_mae=%lf "
                        "species_accuracy=%lf",
                        &loss, &wl, &sl, &mae, &acc),
                 5, "bad test line: %s", line);
    cr_expect_float_eq(loss, wl + sl, 2e-4, "the total loss %g is not the sum of %g and %g", loss, wl, sl);
    cr_expect_geq(acc, 0.9, "species accuracy %.4f, expected 0.9 or more", acc);
    cr_expect_leq(mae, 0.25, "petal width MAE %.4f cm, expected 0.25 or less", mae);
    char *h = e2e_read(hist, NULL);
    cr_assert_not_null(h);
    cr_expect(!strncmp(h, "epoch,loss,petal_width_loss,species_loss,petal_width_mae,species_accuracy,val_loss,", 82),
              "history header: %.120s", h);
    free(h);
    char first[256];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(line, "\n"), line + strlen("test: "));
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, FUNCTIONAL, "evaluate", "--weights", ckpt);
    cr_assert_eq(r.status, 0, "evaluate exited %d: %s%s", r.status, r.out, r.err);
    cr_expect_not_null(strstr(r.out, first), "evaluate printed %s, fit's test line was %s", r.out, first);
    e2e_run_free(&r);
}

/* Transfer learning: the base model learns the digits 0..4; the fine-tuned
 * model starts from its checkpoint (features_1, features_2 by name; its
 * own head new_head stays initialised; base_head is not used), keeps the
 * features frozen and learns 5..9. One run: base 1.0000 on 0..4, fine-tuned
 * 0.9106 on 5..9 (0.8603 with frozen random features). */
Test(e2e, transfer_fine_tunes_a_new_head)
{
    const char *tmp = e2e_tmpdir();
    char base[512], tuned[512];
    snprintf(base, sizeof base, "%s/base.safetensors", tmp);
    snprintf(tuned, sizeof tuned, "%s/tuned.safetensors", tmp);
    e2e_run r = E2E_RUN(tmp, tmp, TRANSFER_BASE, "fit", "--verbose", "0", "--save", base);
    cr_assert_eq(r.status, 0, "transfer_base fit exited %d: %s%s", r.status, r.out, r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, TRANSFER, "fit", "--verbose", "2", "--init-from", base, "--save", tuned);
    cr_assert_eq(r.status, 0, "transfer fit exited %d: %s%s", r.status, r.out, r.err);
    cr_expect_not_null(strstr(r.out, ": loaded 4 tensors (features_1/kernel, features_1/bias, features_2/kernel, "
                                     "features_2/bias); kept initial values: new_head/kernel, new_head/bias; not in "
                                     "this model: base_head/kernel, base_head/bias\n"),
                       "output:\n%s", r.out);
    double loss = 0, acc = 0;
    cr_assert(e2e_parse_figures(e2e_last_line(r.out), "test: ", &loss, &acc), "bad last line: %s", r.out);
    cr_expect_geq(acc, 0.88, "the fine-tuned head reached accuracy %.4f on the digits 5..9, expected 0.88 or more",
                  acc);
    e2e_run_free(&r);

    /* a tensor with a matching name but another shape is an error naming both shapes */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmp);
    const char header[] = "{\"features_1/kernel\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
    FILE *f = fopen(bad, "wb");
    cr_assert_not_null(f);
    unsigned char len[8] = {(unsigned char)(sizeof header - 1)};
    float zeros[6] = {0};
    fwrite(len, 1, 8, f);
    fwrite(header, 1, sizeof header - 1, f);
    fwrite(zeros, sizeof zeros, 1, f);
    fclose(f);
    r = E2E_RUN(tmp, tmp, TRANSFER, "fit", "--verbose", "0", "--epochs", "1", "--init-from", bad);
    cr_expect_eq(r.status, 1, "a mismatched checkpoint gave status %d", r.status);
    cr_expect_not_null(strstr(r.err, "bad.safetensors: tensor \"features_1/kernel\" has shape [2,3] in file but "
                                     "model transfer expects [64,64]"),
                       "stderr: %s", r.err);
    e2e_run_free(&r);
    /* a checkpoint that shares no name with the model */
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--verbose", "0", "--epochs", "1", "--init-from", tuned);
    cr_expect_eq(r.status, 1);
    cr_expect_not_null(strstr(r.err, "no tensor of the file has a name of model digits_mlp"), "stderr: %s", r.err);
    e2e_run_free(&r);
}

/* ---- firmware rules of the portable flavour --------------------------------------------- */

/* Replaces comments, string and character literals of C source s by spaces. */
static void strip_comments_and_strings(char *s)
{
    for (char *p = s; *p;) {
        if (p[0] == '/' && p[1] == '*') {
            char *e = strstr(p + 2, "*/");
            char *end = e ? e + 2 : p + strlen(p);
            for (; p < end; p++)
                if (*p != '\n')
                    *p = ' ';
        } else if (p[0] == '/' && p[1] == '/') {
            for (; *p && *p != '\n'; p++)
                *p = ' ';
        } else if (*p == '"' || *p == '\'') {
            char q = *p;
            *p++ = ' ';
            for (; *p && *p != q; p++) {
                if (*p == '\\' && p[1])
                    *p++ = ' ';
                *p = ' ';
            }
            if (*p)
                *p++ = ' ';
        } else {
            p++;
        }
    }
}

/* Asserts that the emitted file uses no heap, no stdio and no BLAS, and includes only allowed headers. */
static void check_firmware_rules(const char *path, const char *own_header)
{
    char *src = e2e_read(path, NULL);
    cr_assert_not_null(src, "cannot read %s", path);
    /* #include lines: only the model's own header and freestanding ones (+ math.h) */
    for (const char *p = src; (p = strstr(p, "#include")) != NULL; p++) {
        char inc[256];
        size_t n = strcspn(p, "\n");
        snprintf(inc, sizeof inc, "%.*s", (int)(n < 255 ? n : 255), p);
        bool ok = strstr(inc, "<math.h>") || strstr(inc, "<stdint.h>") || strstr(inc, "<stddef.h>") ||
                  strstr(inc, "<stdbool.h>") || strstr(inc, "<float.h>") || strstr(inc, "<limits.h>") ||
                  (own_header && strstr(inc, own_header));
        cr_assert(ok, "%s: %s is not allowed in portable code", path, inc);
    }
    strip_comments_and_strings(src);
    static const char *const banned[] = {"malloc", "calloc",      "realloc",     "free",         "alloca",
                                         "printf", "fprintf",     "sprintf",     "snprintf",     "puts",
                                         "fopen",  "FILE",        "stdout",      "stderr",       "exit",
                                         "abort",  "cblas_sgemm", "cblas_sgemv", "CblasRowMajor"};
    for (char *p = src; *p;) {
        if (isalpha((unsigned char)*p) || *p == '_') {
            char id[128];
            char *q = p;
            while (isalnum((unsigned char)*q) || *q == '_')
                q++;
            snprintf(id, sizeof id, "%.*s", (int)(q - p), p);
            for (size_t k = 0; k < sizeof banned / sizeof banned[0]; k++)
                cr_assert_str_neq(id, banned[k], "%s uses %s", path, id);
            cr_assert(strncmp(id, "cblas", 5) && strncmp(id, "cgrt_", 5) && !strstr(id, "gemm"), "%s uses %s", path,
                      id);
            p = q;
        } else {
            p++;
        }
    }
    free(src);
}

/* Undefined symbols a freestanding object may need: <math.h> and what compilers emit for copies. */
static bool allowed_undefined(const char *sym)
{
    static const char *const ok[] = {
        "memcpy", "memset", "memmove", "exp",   "expf",   "log",   "logf", "sqrt", "sqrtf", "tanh",   "tanhf",
        "fabs",   "fabsf",  "fmax",    "fmaxf", "fmin",   "fminf", "pow",  "powf", "floor", "floorf", "ceil",
        "ceilf",  "log1p",  "log1pf",  "expm1", "expm1f", "erf",   "erff", "sin",  "sinf",  "cos",    "cosf"};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
        if (!strcmp(sym, ok[k]))
            return true;
    return false;
}

/* Compiles c_file with cc -ffreestanding and checks the object's undefined symbols. */
static void compiles_freestanding(const char *tmp, const char *cc, const char *c_file)
{
    const char *obj = e2e_path(tmp, "fw.o");
    e2e_run r = E2E_RUN(tmp, tmp, cc, "-std=c99", "-ffreestanding", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2",
                        "-c", c_file, "-o", obj);
    cr_assert_eq(r.status, 0, "%s -ffreestanding -c %s failed:\n%s", cc, c_file, r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, "nm", "-u", obj);
    cr_assert_eq(r.status, 0, "nm failed: %s", r.err);
    for (int i = 0, n = e2e_count_lines(r.out); i < n; i++) {
        const char *line = e2e_line(r.out, i);
        const char *sym = strrchr(line, ' ');
        sym = sym ? sym + 1 : line;
        if (*sym)
            cr_assert(allowed_undefined(sym), "%s (%s) needs %s", c_file, cc, sym);
    }
    e2e_run_free(&r);
}

static void portable_rules(const char *gen, const char *name)
{
    const char *tmp = e2e_tmpdir();
    char file[256], header[256];
    e2e_run r = E2E_RUN(tmp, tmp, gen, "-o", tmp, "--flavour", "portable");
    cr_assert_eq(r.status, 0, "%s failed: %s", gen, r.err);
    e2e_run_free(&r);
    snprintf(file, sizeof file, "%s.c", name);
    snprintf(header, sizeof header, "\"%s.h\"", name);
    check_firmware_rules(e2e_path(tmp, file), header);
    snprintf(file, sizeof file, "%s.h", name);
    check_firmware_rules(e2e_path(tmp, file), NULL);
    snprintf(file, sizeof file, "%s.c", name);
    compiles_freestanding(tmp, "gcc", e2e_path(tmp, file));
    compiles_freestanding(tmp, "clang", e2e_path(tmp, file));
}

Test(e2e, portable_digits_no_heap_stdio_blas)
{
    portable_rules(DIGITS_MLP_GEN, "digits_mlp");
}
Test(e2e, portable_fashion_no_heap_stdio_blas)
{
    portable_rules(FASHION_MLP_GEN, "fashion_mlp");
}

Test(e2e, portable_linreg_no_heap_stdio_blas)
{
    const char *tmp = e2e_tmpdir();
    check_firmware_rules(LINREG_C, "\"linreg.h\"");
    compiles_freestanding(tmp, "gcc", LINREG_C);
    compiles_freestanding(tmp, "clang", LINREG_C);
}

/* The scan above does see BLAS where it is: the host flavour calls GEMM (cgrt_sgemm, the runtime's BLAS shim). */
Test(e2e, host_flavour_uses_blas)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP_GEN, "-o", tmp, "--flavour", "host");
    cr_assert_eq(r.status, 0, "%s", r.err);
    char *src = e2e_read(e2e_path(tmp, "digits_mlp.c"), NULL);
    cr_assert_not_null(src);
    cr_assert_not_null(strstr(src, "sgemm("), "the host flavour calls no GEMM");
    free(src);
    e2e_run_free(&r);
}

/* ---- Fashion-MNIST ------------------------------------------------------------------------- */

static bool have_fashion(void)
{
    return e2e_exists(FASHION_DATA "/train-images-idx3-ubyte.gz") &&
           e2e_exists(FASHION_DATA "/t10k-labels-idx1-ubyte.gz");
}

/* One 5-epoch fit of fashion_mlp on the real data. The test set doubles as
 * validation data (a folder whose train-* files link to the t10k-* ones), so
 * the history gives the test accuracy after every epoch: >= 0.80 after the
 * first, and the final test figures >= 0.87 after five. */
Test(e2e, fashion_one_and_five_epochs)
{
    if (!have_fashion())
        cr_skip_test("Fashion-MNIST is not installed at %s (package dataset-fashion-mnist)", FASHION_DATA);
    const char *tmp = e2e_tmpdir();
    const char *val = e2e_path(tmp, "test_as_val");
    e2e_mkdir(val);
    cr_assert_eq(symlink(FASHION_DATA "/t10k-images-idx3-ubyte.gz", e2e_path(val, "train-images-idx3-ubyte.gz")), 0);
    cr_assert_eq(symlink(FASHION_DATA "/t10k-labels-idx1-ubyte.gz", e2e_path(val, "train-labels-idx1-ubyte.gz")), 0);
    const char *hist = e2e_path(tmp, "h.csv");
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--epochs", "5", "--verbose", "0", "--validation-data", val,
                        "--history", hist);
    cr_assert_eq(r.status, 0, "fit failed: %s", r.err);
    double loss, acc;
    const char *last = e2e_last_line(r.out);
    cr_assert(e2e_parse_figures(last, "test: ", &loss, &acc), "bad last line: %s", last);
    cr_assert_geq(acc, 0.87, "fashion_mlp: test accuracy %g after 5 epochs", acc);
    char *h = e2e_read(hist, NULL);
    cr_assert_not_null(h);
    cr_assert_eq(e2e_count_lines(h), 6, "%s", h);
    double v[16];
    cr_assert_eq(csv_numbers(e2e_line(h, 1), v, 16), 7, "%s", h);
    cr_assert_geq(v[4], 0.80, "fashion_mlp: test accuracy %g after 1 epoch", v[4]);
    cr_assert_eq(csv_numbers(e2e_line(h, 5), v, 16), 7, "%s", h);
    cr_assert_float_eq(v[4], acc, 1e-4, "the last validation accuracy %g is not the test accuracy %g", v[4], acc);
    free(h);
    e2e_run_free(&r);
}
