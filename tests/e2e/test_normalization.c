/* test_normalization.c: Normalization's statistics as fit computes them
 * (Keras' adapt), with the model tests/e2e/norm_model.c (Normalization ->
 * Dense(1)) built by `cgrad build` and trained on a CSV of three features of
 * very different scales whose last fifth is held out by --validation-split.
 *
 * Checked: the checkpoint's normalization_1/mean and /variance equal the
 * mean and population variance (ddof 0, computed here in double) of exactly
 * the training rows; a second run whose held-out rows are replaced by huge
 * values saves the same statistics, bit for bit; fit --weights goes on from
 * a checkpoint keeping its statistics (with every row training now); and
 * `--target firmware --weights CKPT` emits the statistics as const arrays,
 * whose build predicts what the training binary predicts. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define ROWS 50
#define TRAIN 40 /* --validation-split 0.2 keeps the first 40 rows */
#define FEATS 3

/* Row r of the data: three features (about 125, -2.5 and 0.005) and a target. */
static void data_row(int r, double v[FEATS + 1])
{
    v[0] = 100.0 + (r * 37 % 50);
    v[1] = -3.0 + (r * 13 % 17) / 17.0;
    v[2] = (r * 7 % 11) * 0.001;
    v[3] = 0.02 * v[0] + 3.0 * v[1] + 100.0 * v[2];
}

/* Writes the CSV; held-out rows get huge features when huge is set. */
static void write_csv(const char *path, bool huge)
{
    char text[ROWS * 128], *p = text;
    for (int r = 0; r < ROWS; r++) {
        double v[FEATS + 1];
        data_row(r, v);
        if (huge && r >= TRAIN)
            v[0] = 1e7, v[1] = -1e6, v[2] = 5e5;
        p += sprintf(p, "%.9g,%.9g,%.9g,%.9g\n", v[0], v[1], v[2], v[3]);
    }
    e2e_write_str(path, text);
}

/* The count floats of tensor name in safetensors file path into out; asserts it is there. */
static void read_tensor(const char *path, const char *name, float *out, int count)
{
    size_t len;
    char *b = e2e_read(path, &len), key[128];
    cr_assert(b && len > 8, "cannot read %s", path);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | (unsigned char)b[i];
    snprintf(key, sizeof key, "\"%s\"", name);
    char *k = strstr(b + 8, key), *o = k ? strstr(k, "\"data_offsets\"") : NULL;
    cr_assert(o && (size_t)(o - b) < 8 + hl, "%s has no tensor %s", path, name);
    long lo = strtol(strchr(o, '[') + 1, NULL, 10);
    cr_assert(8 + hl + (size_t)lo + sizeof(float) * (size_t)count <= len, "%s: %s past the end", path, name);
    memcpy(out, b + 8 + hl + lo, sizeof(float) * (size_t)count);
    free(b);
}

/* Runs bin with the arguments; asserts success. */
static void run_ok(const char *tmp, const char *const *argv)
{
    e2e_run r = e2e_exec(tmp, tmp, 240, argv);
    cr_assert_eq(r.status, 0, "%s %s failed: %s", argv[0], argv[1], r.err);
    e2e_run_free(&r);
}
#define RUN_OK(tmp, ...) run_ok(tmp, (const char *const[]){__VA_ARGS__, NULL})

/* Builds norm_model.c into tmp/out with cgrad build (host flavour); returns the training binary. */
static const char *build_model(const char *tmp)
{
    RUN_OK(tmp, CGRAD_TOOL, "build", SOURCE_DIR "/tests/e2e/norm_model.c", "-o", "out", "--cc", "gcc");
    return e2e_path(e2e_path(tmp, "out"), "norm_reg");
}

Test(normalization, statistics_of_the_training_rows_alone, .timeout = 300)
{
    const char *tmp = e2e_tmpdir(), *bin = build_model(tmp);
    const char *csv = e2e_path(tmp, "d.csv"), *huge = e2e_path(tmp, "huge.csv");
    write_csv(csv, false);
    write_csv(huge, true);
    RUN_OK(tmp, bin, "fit", "--data", csv, "--epochs", "2", "--validation-split", "0.2", "--verbose", "0", "--save",
           "a.safetensors");
    RUN_OK(tmp, bin, "fit", "--data", huge, "--epochs", "2", "--validation-split", "0.2", "--verbose", "0", "--save",
           "b.safetensors");
    float mean[2][FEATS], var[2][FEATS];
    const char *ckpt[2] = {e2e_path(tmp, "a.safetensors"), e2e_path(tmp, "b.safetensors")};
    for (int k = 0; k < 2; k++) {
        read_tensor(ckpt[k], "normalization_1/mean", mean[k], FEATS);
        read_tensor(ckpt[k], "normalization_1/variance", var[k], FEATS);
    }
    for (int j = 0; j < FEATS; j++) {
        double m = 0, v = 0, row[FEATS + 1];
        for (int r = 0; r < TRAIN; r++)
            data_row(r, row), m += (float)row[j]; /* the CSV holds 9 digits: the floats the binary read */
        m /= TRAIN;
        for (int r = 0; r < TRAIN; r++)
            data_row(r, row), v += ((float)row[j] - m) * ((float)row[j] - m);
        v /= TRAIN;
        cr_expect(fabs(mean[0][j] - m) <= 1e-6 * fmax(1e-3, fabs(m)), "feature %d: mean %.9g, expected %.9g", j,
                  (double)mean[0][j], m);
        cr_expect(fabs(var[0][j] - v) <= 1e-5 * v, "feature %d: variance %.9g, expected %.9g", j, (double)var[0][j], v);
    }
    cr_expect(!memcmp(mean[0], mean[1], sizeof mean[0]) && !memcmp(var[0], var[1], sizeof var[0]),
              "huge held-out rows changed the statistics: mean[0] %.9g vs %.9g", (double)mean[0][0],
              (double)mean[1][0]);
    /* going on from a checkpoint keeps its statistics, whatever rows train now */
    RUN_OK(tmp, bin, "fit", "--data", csv, "--epochs", "1", "--weights", ckpt[0], "--verbose", "0", "--save",
           "c.safetensors"); /* every row trains: computed again, the statistics would change */
    float mc[FEATS], vc[FEATS];
    read_tensor(e2e_path(tmp, "c.safetensors"), "normalization_1/mean", mc, FEATS);
    read_tensor(e2e_path(tmp, "c.safetensors"), "normalization_1/variance", vc, FEATS);
    cr_expect(!memcmp(mc, mean[0], sizeof mc) && !memcmp(vc, var[0], sizeof vc),
              "fit --weights recomputed the statistics: mean[0] %.9g, saved %.9g", (double)mc[0], (double)mean[0][0]);
}

/* The firmware build of the checkpoint predicts what the training binary predicts. */
Test(normalization, firmware_carries_the_statistics, .timeout = 300)
{
    const char *tmp = e2e_tmpdir(), *bin = build_model(tmp), *csv = e2e_path(tmp, "d.csv");
    write_csv(csv, false);
    RUN_OK(tmp, bin, "fit", "--data", csv, "--epochs", "3", "--validation-split", "0.2", "--verbose", "0", "--save",
           "w.safetensors");
    const char *rows = e2e_path(tmp, "rows.csv");
    e2e_write_str(rows, "101,-2.5,0.004\n140,-2.9,0.009\n125.5,-2.1,0\n");
    RUN_OK(tmp, bin, "predict", "--weights", "w.safetensors", "--input", rows, "--output", "host.csv");
    RUN_OK(tmp, CGRAD_TOOL, "build", SOURCE_DIR "/tests/e2e/norm_model.c", "-o", "fw", "--cc", "gcc", "--target",
           "firmware", "--mode", "predict", "--weights", "w.safetensors", "--max-batch", "1");
    const char *fw = e2e_path(tmp, "fw");
    char *weights = e2e_read(e2e_path(fw, "norm_reg_weights.c"), NULL);
    cr_assert(weights && strstr(weights, "const float norm_reg_normalization_1_mean[3]") &&
                  strstr(weights, "const float norm_reg_normalization_1_variance[3]"),
              "the statistics are not in norm_reg_weights.c");
    free(weights);
    e2e_write_str(e2e_path(fw, "main.c"),
                  "#include \"norm_reg.h\"\n#include <stdio.h>\n\nstatic norm_reg_state state;\n\n"
                  "int main(int argc, char **argv)\n{\n    float x[3], y[1];\n"
                  "    FILE *f = argc > 1 ? fopen(argv[1], \"r\") : NULL;\n    if (!f)\n        return 2;\n"
                  "    while (fscanf(f, \" %f , %f , %f\", &x[0], &x[1], &x[2]) == 3) {\n"
                  "        if (norm_reg_predict_checked(&state, 1, x, y) != NORM_REG_OK)\n            return 3;\n"
                  "        printf(\"%.9g\\n\", (double)y[0]);\n    }\n    return 0;\n}\n");
    RUN_OK(tmp, "cc", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I", fw, e2e_path(fw, "norm_reg.c"),
           e2e_path(fw, "norm_reg_weights.c"), e2e_path(fw, "main.c"), "-lm", "-o", e2e_path(fw, "prog"));
    e2e_run r = E2E_RUN(tmp, tmp, e2e_path(fw, "prog"), rows);
    cr_assert_eq(r.status, 0, "the firmware build failed: %s", r.err);
    char *host = e2e_read(e2e_path(tmp, "host.csv"), NULL);
    cr_assert(host);
    const char *h = host, *d = r.out;
    for (int i = 0; i < 3; i++) {
        while (*h && !(*h == '-' || (*h >= '0' && *h <= '9')))
            h = strchr(h, '\n') ? strchr(h, '\n') + 1 : h + strlen(h); /* a header line */
        double want = strtod(h, (char **)&h), got = strtod(d, (char **)&d);
        cr_expect(fabs(got - want) <= 1e-4 * fmax(1.0, fabs(want)), "row %d: firmware %.9g, host %.9g", i, got, want);
    }
    free(host);
    e2e_run_free(&r);
}
