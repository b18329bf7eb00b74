/* test_int8.c: --quantize int8 on the MLP examples, as a firmware developer
 * runs it: train with the example's binary, emit the int8 model from the
 * checkpoint with calibration data, and check
 *   - the emitted integer kernels against int8_ref.c, a reference of the same
 *     arithmetic written with exact long double products and roundl: every
 *     int8 output and every quantized input identical on real rows;
 *   - the model program's figures on the test split: int8 accuracy within one
 *     percentage point of float (digits_mlp and fashion_mlp on a slice);
 *   - the header's flash bytes: at least 3.5x fewer than the float weights,
 *     and the Fashion MLP's under 256 KB;
 *   - bad flags and models int8 does not cover fail with a message. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "e2e.h"

#define DIGITS_CSV SOURCE_DIR "/examples/data/digits.csv.gz"
#define REF_ROWS 300 /* rows through the reference */

TestSuite(int8, .timeout = 280, .fini = e2e_cleanup);

/* The value of "#define UNAME_INT8_WHAT <number>" in header text h (a
 * parenthesised value too); asserts it is there. */
static double int8_define(const char *h, const char *uname, const char *what)
{
    char key[200];
    snprintf(key, sizeof key, "#define %s_INT8_%s ", uname, what);
    const char *p = strstr(h, key);
    cr_assert_not_null(p, "no %s in the header", key);
    p += strlen(key);
    while (*p == ' ' || *p == '(')
        p++;
    return strtod(p, NULL);
}

/* The accuracy on the report line starting with prefix ("float: ", "int8: "). */
static double report_accuracy(const char *out, const char *prefix)
{
    for (int k = 0; e2e_line(out, k); k++) {
        const char *l = e2e_line(out, k), *a = strstr(l, "accuracy=");
        if (!strncmp(l, prefix, strlen(prefix)) && a)
            return strtod(a + 9, NULL);
    }
    cr_assert_fail("no \"%s\" line in:\n%s", prefix, out);
    return 0.0;
}

/* Runs model program gen: --target firmware --mode predict --weights ckpt
 * --quantize int8 --calibrate data into tmp/fw; returns its output. */
static char *quantize(const char *tmp, const char *gen, const char *ckpt, const char *data)
{
    e2e_run r = E2E_RUN(tmp, tmp, gen, "-o", e2e_path(tmp, "fw"), "--target", "firmware", "--mode", "predict",
                        "--weights", ckpt, "--max-batch", "1", "--quantize", "int8", "--calibrate", data);
    cr_assert_eq(r.status, 0, "%s --quantize int8 failed:\n%s%s", gen, r.out, r.err);
    free(r.err);
    return r.out;
}

/* Trains bin briefly (its own flags in fit) and saves tmp/ckpt.safetensors; returns the path. */
static const char *train(const char *tmp, const char *bin, const char *const *fit)
{
    const char *ckpt = e2e_path(tmp, "ckpt.safetensors");
    const char *argv[24] = {bin, "fit", "--verbose", "0", "--save", ckpt};
    int n = 6;
    while (*fit && n < 23)
        argv[n++] = *fit++;
    e2e_run r = e2e_exec(tmp, tmp, 240, argv);
    cr_assert_eq(r.status, 0, "%s fit failed:\n%s%s", bin, r.out, r.err);
    e2e_run_free(&r);
    return ckpt;
}
#define TRAIN(tmp, bin, ...) train(tmp, bin, (const char *const[]){__VA_ARGS__, NULL})

/* Writes tmp/fw/ref_model.h for int8_ref.c: model name's tables as layers. */
static void write_ref_model(const char *tmp, const char *name, const char *uname, const char *const *layers,
                            const char *const *ulayers, const int *relu, int n, const char *scale)
{
    char text[8192];
    int len = snprintf(text, sizeof text,
                       "#include \"%s_int8.h\"\n#define REF_IN %s_INT8_IN_FEATURES\n#define REF_OUT "
                       "%s_INT8_OUT_FEATURES\n#define REF_SCALE %s\n#define REF_INPUT_SCALE %s_INT8_INPUT_SCALE\n"
                       "#define REF_INPUT_ZP %s_INT8_INPUT_ZERO_POINT\n#define REF_LAYERS %d\n"
                       "#define ref_quantize %s_quantize_input\n#define ref_predict %s_predict_int8\n"
                       "static const ref_layer ref_layers[] = {\n",
                       name, uname, uname, scale, uname, uname, n, name, name);
    for (int i = 0; i < n; i++)
        len += snprintf(
            text + len, sizeof text - (size_t)len,
            "    {sizeof %s_int8_%s_w / (sizeof %s_int8_%s_b / 4), sizeof %s_int8_%s_b / 4, %d, %s_int8_%s_w, "
            "%s_int8_%s_b, %s_int8_%s_mult, %s_int8_%s_shift, %s_INT8_%s_ZERO_POINT},\n",
            name, layers[i], name, layers[i], name, layers[i], relu[i], name, layers[i], name, layers[i], name,
            layers[i], name, layers[i], uname, ulayers[i]);
    snprintf(text + len, sizeof text - (size_t)len, "};\n");
    e2e_write_str(e2e_path(tmp, "fw/ref_model.h"), text);
}

/* Builds int8_ref.c with the emitted tmp/fw/NAME_int8.c (gcc, C99, warnings
 * as errors) and runs it on tmp/rows.txt; returns its output. */
static char *run_ref(const char *tmp, const char *name)
{
    char src[512], inc[512];
    snprintf(src, sizeof src, "%s/fw/%s_int8.c", tmp, name);
    snprintf(inc, sizeof inc, "-I%s/fw", tmp);
    e2e_run r = E2E_RUN(tmp, tmp, "cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror", inc,
                        SOURCE_DIR "/tests/e2e/int8_ref.c", src, "-o", e2e_path(tmp, "ref"), "-lm");
    cr_assert_eq(r.status, 0, "building int8_ref.c failed:\n%s", r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, e2e_path(tmp, "ref"));
    cr_assert_eq(r.status, 0, "int8_ref failed:\n%s", r.err);
    free(r.err);
    return r.out;
}

/* Writes the features of the first n rows of digits.csv.gz to tmp/rows.txt. */
static void digits_rows(const char *tmp, int n)
{
    gzFile in = gzopen(DIGITS_CSV, "rb");
    FILE *out = fopen(e2e_path(tmp, "rows.txt"), "w");
    char line[4096];
    cr_assert(in && out);
    for (int i = 0; i < n && gzgets(in, line, sizeof line); i++) {
        char *last = strrchr(line, ','); /* the label */
        cr_assert_not_null(last);
        *last = '\0';
        for (char *p = line; *p; p++)
            *p = *p == ',' ? ' ' : *p;
        fprintf(out, "%s\n", line);
    }
    gzclose(in);
    fclose(out);
}

Test(int8, digits_mlp_matches_reference_and_float)
{
    const char *tmp = e2e_tmpdir();
    const char *ckpt = TRAIN(tmp, DIGITS_MLP, "--epochs", "30");
    char *out = quantize(tmp, DIGITS_MLP_GEN, ckpt, DIGITS_CSV);
    double f = report_accuracy(out, "float: "), q = report_accuracy(out, "int8: ");
    cr_log_info("digits_mlp: float accuracy %.4f, int8 %.4f", f, q);
    cr_assert_gt(f, 0.9, "the float model did not learn:\n%s", out);
    cr_assert_leq(fabs(f - q), 0.01, "int8 %.4f is more than a point from float %.4f:\n%s", q, f, out);
    char *h = e2e_read(e2e_path(tmp, "fw/digits_mlp_int8.h"), NULL);
    double fl = int8_define(h, "DIGITS_MLP", "FLASH_BYTES"), ff = int8_define(h, "DIGITS_MLP", "FLOAT_FLASH_BYTES");
    cr_log_info("digits_mlp: flash %.0f B int8, %.0f B float (%.2fx)", fl, ff, ff / fl);
    cr_assert_eq(fl, 64 * 64 + 64 * 10 + 12 * (64 + 10), "int8 tables: one byte a weight, 12 per unit");
    cr_assert_gt(ff / fl, 3.0);
    digits_rows(tmp, REF_ROWS);
    write_ref_model(tmp, "digits_mlp", "DIGITS_MLP", (const char *const[]){"dense_1_out", "dense_2_out"},
                    (const char *const[]){"DENSE_1_OUT", "DENSE_2_OUT"}, (const int[]){1, 0}, 2, "0.0625f");
    char *ref = run_ref(tmp, "digits_mlp");
    const char *last = e2e_last_line(ref);
    cr_assert(!strncmp(last, "rows 300 mismatches 0", 21), "the emitted kernels differ from the reference: %s", last);
    free(ref), free(h), free(out);
}

Test(int8, fashion_mlp_within_a_point_and_fits_256k)
{
    const char *tmp = e2e_tmpdir();
    const char *data = e2e_fashion_slice(tmp, 12000, 3000);
    const char *ckpt = TRAIN(tmp, FASHION_MLP, "--data", data, "--epochs", "3");
    char *out = quantize(tmp, FASHION_MLP_GEN, ckpt, data);
    double f = report_accuracy(out, "float: "), q = report_accuracy(out, "int8: ");
    cr_log_info("fashion_mlp: float accuracy %.4f, int8 %.4f", f, q);
    cr_assert_gt(f, 0.75, "the float model did not learn:\n%s", out);
    cr_assert_leq(fabs(f - q), 0.01, "int8 %.4f is more than a point from float %.4f:\n%s", q, f, out);
    char *h = e2e_read(e2e_path(tmp, "fw/fashion_mlp_int8.h"), NULL);
    double fl = int8_define(h, "FASHION_MLP", "FLASH_BYTES"), ff = int8_define(h, "FASHION_MLP", "FLOAT_FLASH_BYTES");
    cr_log_info("fashion_mlp: flash %.0f B int8, %.0f B float (%.2fx)", fl, ff, ff / fl);
    cr_assert_lt(fl, 256 * 1024, "the int8 Fashion MLP takes %.0f B of flash", fl);
    cr_assert_gt(ff / fl, 3.5);
    free(h), free(out);
}

Test(int8, bad_flags_fail_with_a_message)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP_GEN, "-o", e2e_path(tmp, "fw"), "--target", "firmware", "--mode",
                        "predict", "--quantize", "int8");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "--quantize int8 goes with --calibrate DATA"), "%s", r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP_GEN, "-o", e2e_path(tmp, "fw"), "--quantize", "int4", "--calibrate", "x");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "unknown quantize 'int4'"), "%s", r.err);
    e2e_run_free(&r);
}

/* A forecaster (MSE on a time series) is not a classifier: refused by name, not by its labels. */
Test(int8, a_regression_model_is_refused_naming_its_loss)
{
    const char *tmp = e2e_tmpdir();
    const char *ckpt = TRAIN(tmp, ELEC_MLP, "--epochs", "0");
    e2e_run r = E2E_RUN(tmp, tmp, ELEC_MLP_GEN, "-o", e2e_path(tmp, "fw"), "--target", "firmware", "--mode", "predict",
                        "--weights", ckpt, "--quantize", "int8", "--calibrate",
                        SOURCE_DIR "/examples/data/elec_equip.csv");
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "covers classifiers") && strstr(r.err, "mean_squared_error"), "%s", r.err);
    e2e_run_free(&r);
}
