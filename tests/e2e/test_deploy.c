/* test_deploy.c: firmware deployment emission (--target firmware, --mode,
 * --weights, --max-batch, --max-ram) run as a firmware developer would: train
 * on the host with the training binary, emit from its checkpoint, compile the
 * emitted sources with a small main of our own (as C99, -ffp-contract=off,
 * warning-free), and compare with the training binary's predict.
 *
 * Checked: a predict-only build with const weights computes exactly what a
 * training build initialised from the same checkpoint computes, and what the
 * training binary predicts (to its printed digits, same classes), raw inputs
 * fed through the header's preprocessing; the header's RAM figures equal
 * sizeof the state and agree across builds; --max-ram below the need fails
 * with the breakdown, at the need passes; the checked entry point refuses n
 * above the planned batch; a series model's header carries the checkpoint's
 * standardisation; bad flags and checkpoints fail cleanly. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

/* The value of "#define NAME_WHAT <number>" in the header text h, -1 when absent. */
static double header_value(const char *h, const char *uname, const char *what)
{
    char key[160];
    snprintf(key, sizeof key, "#define %s_%s ", uname, what);
    const char *p = strstr(h, key);
    return p ? strtod(p + strlen(key), NULL) : -1.0;
}

/* Emits model program gen's code into tmp/dir with the extra flags; asserts success. */
static const char *emit(const char *tmp, const char *gen, const char *dir, const char *const *flags)
{
    const char *argv[16] = {gen, "-o", e2e_path(tmp, dir)};
    int n = 3;
    while (flags && *flags && n < 15)
        argv[n++] = *flags++;
    argv[n] = NULL;
    e2e_run r = e2e_exec(tmp, NULL, 240, argv);
    cr_assert_eq(r.status, 0, "%s -o %s ... failed: %s", gen, dir, r.err);
    e2e_run_free(&r);
    return e2e_path(tmp, dir);
}
#define EMIT(tmp, gen, dir, ...) emit(tmp, gen, dir, (const char *const[]){__VA_ARGS__, NULL})

/* Writes dir/main.c: reads raw CSV rows of NAME_IN_FEATURES values from argv[1],
 * preprocesses them as the header says, predicts one at a time through the
 * checked entry point and prints each output with %.9g; then sizeof the
 * state, and what the checked entry point says to n = MAX_BATCH + 1. With
 * -DINIT it initialises the state first (weights in RAM). */
static void write_main(const char *dir, const char *name, const char *uname)
{
    char text[4096];
    snprintf(text, sizeof text,
             "#include \"%s.h\"\n#include <stdio.h>\n\nstatic %s_state state;\n\n"
             "int main(int argc, char **argv)\n{\n"
             "    static float x[%s_MAX_BATCH + 1][%s_IN_FEATURES], out[%s_MAX_BATCH + 1][%s_OUT_FEATURES];\n"
             "    FILE *f = argc > 1 ? fopen(argv[1], \"r\") : NULL;\n    if (!f)\n        return 2;\n"
             "#ifdef INIT\n    %s_init(&state, 1);\n#endif\n"
             "    for (;;) {\n        float raw;\n        int j = 0;\n"
             "        for (; j < %s_IN_FEATURES && fscanf(f, \" %%f ,\", &raw) == 1; j++)\n"
             "            x[0][j] = raw * %s_INPUT_SCALE + %s_INPUT_OFFSET;\n"
             "        if (j < %s_IN_FEATURES)\n            break;\n"
             "        if (%s_predict_checked(&state, 1, x[0], out[0]) != %s_OK)\n            return 3;\n"
             "        for (int k = 0; k < %s_OUT_FEATURES; k++)\n"
             "            printf(\"%%.9g%%c\", (double)out[0][k], k + 1 < %s_OUT_FEATURES ? ',' : '\\n');\n    }\n"
             "    printf(\"sizeof %%lu\\n\", (unsigned long)sizeof state);\n"
             "    printf(\"over %%d\\n\", %s_predict_checked(&state, %s_MAX_BATCH + 1, x[0], out[0]));\n"
             "    return 0;\n}\n",
             name, name, uname, uname, uname, uname, name, uname, uname, uname, uname, name, uname, uname, uname, name,
             uname);
    e2e_write_str(e2e_path(dir, "main.c"), text);
}

/* Compiles dir's emitted sources and main.c into dir/prog (C99, no FMA
 * contraction, warnings are errors); init: -DINIT. */
static const char *build(const char *tmp, const char *dir, const char *name, bool init)
{
    char src[512], weights[512];
    snprintf(src, sizeof src, "%s/%s.c", dir, name);
    snprintf(weights, sizeof weights, "%s/%s_weights.c", dir, name);
    const char *prog = e2e_path(dir, "prog");
    e2e_run r = E2E_RUN(tmp, NULL, "cc", "-std=c99", "-O1", "-ffp-contract=off", "-Wall", "-Wextra", "-Wpedantic",
                        "-Wvla", "-Wdouble-promotion", "-Werror", init ? "-DINIT" : "-DNO_INIT", "-I", dir, src,
                        e2e_path(dir, "main.c"), e2e_exists(weights) ? weights : "-DNO_WEIGHTS", "-lm", "-o", prog);
    cr_assert_eq(r.status, 0, "the emitted sources in %s do not compile: %s", dir, r.err);
    e2e_run_free(&r);
    return prog;
}

/* Runs prog on the raw rows in input; returns its stdout (caller frees). */
static char *run_prog(const char *tmp, const char *prog, const char *input)
{
    e2e_run r = E2E_RUN(tmp, NULL, prog, input);
    cr_assert_eq(r.status, 0, "%s failed (%d): %s", prog, r.status, r.err);
    char *out = r.out;
    r.out = NULL;
    e2e_run_free(&r);
    return out;
}

/* Index of the largest of the n comma-separated values of line. */
static int argmax_of(const char *line, int n, double *v)
{
    int best = 0;
    for (int k = 0; k < n; k++) {
        v[k] = strtod(line, (char **)&line);
        line += *line == ',';
        if (v[k] > v[best])
            best = k;
    }
    return best;
}

/* The training binary's digits checkpoint, and five raw rows of its data (the 64 pixels, without the label). */
static void digits_checkpoint(const char *tmp, const char **ckpt, const char **rows)
{
    *ckpt = e2e_path(tmp, "digits.safetensors");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--epochs", "2", "--verbose", "0", "--save", *ckpt);
    cr_assert_eq(r.status, 0, "fit failed: %s", r.err);
    e2e_run_free(&r);
    *rows = e2e_path(tmp, "rows.csv");
    e2e_write_str(*rows, "0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,"
                         "0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0\n"
                         "0,0,0,12,13,5,0,0,0,0,0,11,16,9,0,0,0,0,3,15,16,6,0,0,0,7,15,16,16,2,0,0,0,0,1,16,"
                         "16,3,0,0,0,0,1,16,16,6,0,0,0,0,1,16,16,6,0,0,0,0,0,11,16,10,0,0\n"
                         "0,0,7,15,13,1,0,0,0,8,13,6,15,4,0,0,0,2,1,13,13,0,0,0,0,0,2,15,11,1,0,0,0,0,0,1,12,"
                         "12,1,0,0,0,0,0,1,10,8,0,0,0,8,4,5,14,9,0,0,0,7,13,13,9,0,0\n"
                         "0,0,0,1,11,0,0,0,0,0,0,7,8,0,0,0,0,0,1,13,6,2,2,0,0,0,7,15,0,9,8,0,0,5,16,10,0,16,6,"
                         "0,0,4,15,16,13,16,1,0,0,0,0,3,15,10,0,0,0,0,0,2,16,4,0,0\n"
                         "16,16,16,16,16,16,16,16,0,0,0,0,0,0,0,0,16,0,16,0,16,0,16,0,0,16,0,16,0,16,0,16,16,"
                         "16,16,16,16,16,16,16,0,0,0,0,0,0,0,0,1,2,3,4,5,6,7,8,8,7,6,5,4,3,2,1\n");
}

Test(deploy, predict_only_const_weights_match_the_training_binary, .timeout = 300)
{
    const char *tmp = e2e_tmpdir(), *ckpt, *rows;
    digits_checkpoint(tmp, &ckpt, &rows);
    const char *po = EMIT(tmp, DIGITS_MLP_GEN, "po", "--target", "firmware", "--mode", "predict", "--weights", ckpt,
                          "--max-batch", "1");
    const char *tr = EMIT(tmp, DIGITS_MLP_GEN, "tr", "--target", "firmware", "--weights", ckpt);
    cr_expect(!e2e_exists(e2e_path(po, "digits_mlp_main.c")), "a firmware build has no main program");
    for (int e = 0; e < 2; e++) { /* the firmware rules hold for what was emitted, weights included */
        e2e_run c = E2E_RUN(tmp, NULL, CGRAD_TOOL, "check", "--engine", e ? "clang" : "flags", po);
        cr_expect(c.status == 0 || (e == 1 && strstr(c.err, "libclang")), "cgrad check %s: %s%s", po, c.out, c.err);
        e2e_run_free(&c);
    }
    write_main(po, "digits_mlp", "DIGITS_MLP");
    write_main(tr, "digits_mlp", "DIGITS_MLP");
    char *a = run_prog(tmp, build(tmp, po, "digits_mlp", false), rows);
    char *b = run_prog(tmp, build(tmp, tr, "digits_mlp", true), rows);
    for (int i = 0; i < 5; i++)
        cr_expect_str_eq(e2e_line(a, i), e2e_line(b, i), "row %d: flash weights vs weights copied into RAM", i);
    cr_expect_str_eq(e2e_line(a, 6), "over 2", "n above the planned batch of 1 is ERR_BATCH");
    /* the training binary's predict on the same raw rows */
    const char *out = e2e_path(tmp, "pred.csv");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "predict", "--weights", ckpt, "--input", rows, "--output", out);
    cr_assert_eq(r.status, 0, "predict failed: %s", r.err);
    e2e_run_free(&r);
    char *host = e2e_read(out, NULL);
    cr_assert_not_null(host);
    for (int i = 0; i < 5; i++) {
        double v[11], w[11];
        char line[1024];
        snprintf(line, sizeof line, "%s", e2e_line(a, i));
        int ca = argmax_of(line, 10, v);
        snprintf(line, sizeof line, "%s", e2e_line(host, i));
        int cb = argmax_of(line, 11, w);
        cr_expect_eq(ca, (int)w[10], "row %d: class %d, the training binary says %g", i, ca, w[10]);
        (void)cb;
        for (int k = 0; k < 10; k++)
            cr_expect(fabs(v[k] - w[k]) <= 1e-5 * fabs(w[k]) + 1e-5, "row %d output %d: %.9g vs the binary's %g", i, k,
                      v[k], w[k]);
    }
    free(a), free(b), free(host);
}

/* The RAM figures of four builds of the CNN with BatchNormalization and
 * Dropout (a generator in the training state) and of the digits MLP. */
Test(deploy, ram_figures_equal_sizeof_the_state, .timeout = 300)
{
    const char *tmp = e2e_tmpdir(), *ckpt, *rows;
    digits_checkpoint(tmp, &ckpt, &rows);
    e2e_write_str(e2e_path(tmp, "empty.csv"), "");
    struct {
        const char *gen, *name, *uname, *dir;
        const char *flags[10];
        bool init;
    } builds[] = {
        {DIGITS_MLP_GEN,
         "digits_mlp",
         "DIGITS_MLP",
         "d_po",
         {"--target", "firmware", "--mode", "predict", "--weights", ckpt, "--max-batch", "1"},
         false},
        {DIGITS_MLP_GEN, "digits_mlp", "DIGITS_MLP", "d_ram", {"--target", "firmware", "--mode", "predict"}, true},
        {DIGITS_MLP_GEN, "digits_mlp", "DIGITS_MLP", "d_tr", {"--target", "firmware"}, true},
        {FASHION_CNN_BN_GEN,
         "fashion_cnn_bn",
         "FASHION_CNN_BN",
         "c_tr",
         {"--target", "firmware", "--max-batch", "3"},
         true},
        {FASHION_CNN_BN_GEN,
         "fashion_cnn_bn",
         "FASHION_CNN_BN",
         "c_po",
         {"--target", "firmware", "--mode", "predict", "--max-batch", "3"},
         true},
    };
    double ram[5], predict[5], train[5];
    for (int b = 0; b < 5; b++) {
        const char *dir = emit(tmp, builds[b].gen, builds[b].dir, builds[b].flags);
        char hpath[512];
        snprintf(hpath, sizeof hpath, "%s/%s.h", dir, builds[b].name);
        char *h = e2e_read(hpath, NULL);
        cr_assert_not_null(h);
        ram[b] = header_value(h, builds[b].uname, "RAM_BYTES");
        predict[b] = header_value(h, builds[b].uname, "PREDICT_RAM_BYTES");
        train[b] = header_value(h, builds[b].uname, "TRAIN_RAM_BYTES");
        double parts = header_value(h, builds[b].uname, "RAM_PARAM_BYTES") +
                       header_value(h, builds[b].uname, "RAM_GRAD_BYTES") +
                       header_value(h, builds[b].uname, "RAM_OPT_BYTES") +
                       header_value(h, builds[b].uname, "RAM_ARENA_BYTES") +
                       header_value(h, builds[b].uname, "RAM_SCALAR_BYTES");
        cr_expect_eq(parts, ram[b], "%s: the parts add up to %g, RAM_BYTES is %g", builds[b].dir, parts, ram[b]);
        free(h);
        write_main(dir, builds[b].name, builds[b].uname);
        char *out = run_prog(tmp, build(tmp, dir, builds[b].name, builds[b].init), e2e_path(tmp, "empty.csv"));
        char want[64];
        snprintf(want, sizeof want, "sizeof %.0f", ram[b]);
        cr_expect_str_eq(e2e_line(out, 0), want, "%s: sizeof the state vs the header's RAM_BYTES", builds[b].dir);
        free(out);
    }
    cr_expect_eq(ram[0], 320, "the digits MLP predicts at batch 1 from 320 B of RAM (its arena)");
    cr_expect_eq(predict[2], ram[1], "the training build's predict figure is the predict build's RAM");
    cr_expect_eq(train[1], ram[2], "the predict build's training figure is the training build's RAM");
    cr_expect_eq(predict[3], ram[4], "CNN: the same across its two builds");
    cr_expect_eq(train[4], ram[3], "CNN: the same across its two builds");
}

Test(deploy, max_ram_below_the_need_fails_with_the_breakdown, .timeout = 120)
{
    const char *tmp = e2e_tmpdir();
    e2e_write_str(e2e_path(tmp, "empty.csv"), "");
    const char *argv_base[] = {FASHION_CNN_GEN, "-o", e2e_path(tmp, "cnn"), "--target", "firmware", "--mode", "predict",
                               "--max-batch",   "1",  "--max-ram",          NULL,       NULL};
    argv_base[10] = "247463";
    e2e_run r = e2e_exec(tmp, NULL, 120, argv_base);
    E2E_ASSERT_FAILS(r, 1, "fashion_cnn", "needs 247464 bytes of RAM, more than --max-ram 247463",
                     "parameters 139304 B", "activation arena 108160 B", "peak", "conv2d_1_out (86528 B)");
    e2e_run_free(&r);
    argv_base[10] = "247464";
    r = e2e_exec(tmp, NULL, 120, argv_base);
    cr_expect_eq(r.status, 0, "exactly the need is enough: %s", r.err);
    e2e_run_free(&r);
}

/* The series' standardisation comes from the checkpoint into the header. */
Test(deploy, series_statistics_in_the_header, .timeout = 120)
{
    const char *tmp = e2e_tmpdir(), *ckpt = e2e_path(tmp, "ts.safetensors");
    e2e_run r = E2E_RUN(tmp, tmp, TIMESERIES_RNN, "fit", "--epochs", "1", "--verbose", "0", "--save", ckpt);
    cr_assert_eq(r.status, 0, "fit failed: %s", r.err);
    e2e_run_free(&r);
    const char *dir = EMIT(tmp, TIMESERIES_RNN_GEN, "ts", "--target", "firmware", "--mode", "predict", "--weights",
                           ckpt, "--max-batch", "1");
    char *h = e2e_read(e2e_path(dir, "timeseries_rnn.h"), NULL), *c = e2e_read(ckpt, NULL);
    cr_assert(h && c);
    const char *json = c + 8; /* after the header's length */
    const char *m = strstr(json, "\"series_mean\":\""), *s = strstr(json, "\"series_std\":\"");
    cr_assert(m && s, "the checkpoint records the statistics");
    double mean = strtod(m + 15, NULL), std = strtod(s + 14, NULL);
    cr_expect(fabs(header_value(h, "TIMESERIES_RNN", "SERIES_MEAN") - mean) <= 1e-5 * fabs(mean), "mean %g", mean);
    cr_expect(fabs(header_value(h, "TIMESERIES_RNN", "SERIES_STD") - std) <= 1e-5 * fabs(std), "std %g", std);
    free(h), free(c);
}

Test(deploy, bad_flags_and_checkpoints_fail_cleanly, .timeout = 120)
{
    const char *tmp = e2e_tmpdir(), *ckpt, *rows;
    digits_checkpoint(tmp, &ckpt, &rows);
    const char *out = e2e_path(tmp, "x");
    e2e_run r = E2E_RUN(tmp, NULL, DIGITS_MLP_GEN, "-o", out, "--mode", "predict");
    E2E_ASSERT_FAILS(r, 2, "--mode and --weights", "--target firmware");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, NULL, DIGITS_MLP_GEN, "-o", out, "--target", "firmware", "--flavour", "host");
    E2E_ASSERT_FAILS(r, 2, "portable flavour");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, NULL, DIGITS_MLP_GEN, "-o", out, "--target", "firmware", "--max-batch", "0");
    E2E_ASSERT_FAILS(r, 2, "--max-batch", "\"0\"");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, NULL, FASHION_MLP_GEN, "-o", out, "--target", "firmware", "--weights", ckpt);
    E2E_ASSERT_FAILS(r, 1, "--weights", "dense_1/kernel", "[64,64]", "[784,256]");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, NULL, DIGITS_MLP_GEN, "-o", out, "--target", "firmware", "--weights", e2e_path(tmp, "nothing"));
    E2E_ASSERT_FAILS(r, 1, "--weights", "nothing");
    e2e_run_free(&r);
}
