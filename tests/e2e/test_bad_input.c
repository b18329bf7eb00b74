/* test_bad_input.c: a training binary never crashes on bad input. Each case
 * runs the real example binaries (digits_mlp: CSV, 64 features + label;
 * fashion_mlp: IDX, 28x28 images) and expects a non-zero exit without a
 * signal, and exactly one line on stderr naming the file and what is wrong. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define DIGITS_DATA SOURCE_DIR "/examples/data/digits.csv.gz"
#define ELEC_DATA SOURCE_DIR "/examples/data/elec_equip.csv"
#define ELEC_COLUMN "STS.M.I7.W.TOVT.NS0016.4.000"

TestSuite(bad_input, .timeout = 120, .fini = e2e_cleanup);

/* ---- writing test data -------------------------------------------------------------- */

/* Writes a CSV of n rows of `features` ones and the label `label` (row bad_row gets bad_label). */
static void write_csv(const char *path, int n, int features, const char *label, int bad_row, const char *bad_label)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < features; j++)
            fprintf(f, "%d,", (i + j) % 17);
        fprintf(f, "%s\n", i == bad_row ? bad_label : label);
    }
    cr_assert_eq(fclose(f), 0);
}

/* Appends a big-endian u32. */
static unsigned char *put_be32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* Writes a gzip IDX images file whose header says n images of rows x cols but holds only `have` of them. */
static void write_idx_images(const char *path, unsigned n, unsigned rows, unsigned cols, unsigned have)
{
    size_t bytes = 16 + (size_t)have * rows * cols;
    unsigned char *buf = calloc(1, bytes), *p = buf;
    cr_assert_not_null(buf);
    p = put_be32(p, 0x00000803);
    p = put_be32(p, n);
    p = put_be32(p, rows);
    p = put_be32(p, cols);
    for (size_t i = 0; i < (size_t)have * rows * cols; i++)
        p[i] = (unsigned char)(i * 7);
    e2e_write_gz(path, buf, bytes);
    free(buf);
}

/* Writes a gzip IDX labels file of n labels i % 10 (label bad_at is bad_value). */
static void write_idx_labels(const char *path, unsigned n, int bad_at, unsigned char bad_value)
{
    unsigned char *buf = calloc(1, 8 + n), *p = buf;
    cr_assert_not_null(buf);
    p = put_be32(p, 0x00000801);
    p = put_be32(p, n);
    for (unsigned i = 0; i < n; i++)
        p[i] = (int)i == bad_at ? bad_value : (unsigned char)(i % 10);
    e2e_write_gz(path, buf, 8 + n);
    free(buf);
}

/* Makes folder tmp/name holding generated train images and labels for fashion_mlp. */
static const char *idx_dir(const char *tmp, const char *name)
{
    const char *dir = e2e_path(tmp, name);
    e2e_mkdir(dir);
    return dir;
}

static bool have_fashion(void)
{
    return e2e_exists(FASHION_DATA "/train-images-idx3-ubyte.gz") &&
           e2e_exists(FASHION_DATA "/train-labels-idx1-ubyte.gz");
}

/* ---- data files ---------------------------------------------------------------------------- */

Test(bad_input, missing_data_file)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "no_such_file.csv");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path, "cannot open");
    e2e_run_free(&r);
    path = e2e_path(tmp, "no_such_folder");
    r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path, "cannot open");
    e2e_run_free(&r);
}

Test(bad_input, folder_without_data_files)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "empty");
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, dir, "train-images-idx3-ubyte");
    e2e_run_free(&r);
}

Test(bad_input, truncated_idx_generated)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "idx");
    const char *images = e2e_path(dir, "train-images-idx3-ubyte.gz");
    write_idx_images(images, 100, 28, 28, 10);
    write_idx_labels(e2e_path(dir, "train-labels-idx1-ubyte.gz"), 100, -1, 0);
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, images, "truncated");
    e2e_run_free(&r);
}

Test(bad_input, truncated_idx_real_file)
{
    if (!have_fashion())
        cr_skip_test("Fashion-MNIST is not installed");
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "idx");
    const char *images = e2e_path(dir, "train-images-idx3-ubyte.gz");
    e2e_copy(FASHION_DATA "/train-images-idx3-ubyte.gz", images, 100000); /* cut in the middle of the stream */
    e2e_copy(FASHION_DATA "/train-labels-idx1-ubyte.gz", e2e_path(dir, "train-labels-idx1-ubyte.gz"), (size_t)-1);
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, images, "truncated");
    e2e_run_free(&r);
}

Test(bad_input, gzip_of_text_where_idx_expected)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "idx");
    const char *images = e2e_path(dir, "train-images-idx3-ubyte.gz");
    const char *text = "this is not an IDX file, just some words in a gzip stream\n";
    e2e_write_gz(images, text, strlen(text));
    write_idx_labels(e2e_path(dir, "train-labels-idx1-ubyte.gz"), 10, -1, 0);
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, images, "not an IDX file");
    e2e_run_free(&r);
}

Test(bad_input, labels_file_where_images_expected)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "idx");
    const char *images = e2e_path(dir, "train-images-idx3-ubyte.gz");
    write_idx_labels(images, 10, -1, 0);
    write_idx_labels(e2e_path(dir, "train-labels-idx1-ubyte.gz"), 10, -1, 0);
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, images, "labels", "images");
    e2e_run_free(&r);
}

Test(bad_input, images_where_labels_expected)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "idx");
    const char *labels = e2e_path(dir, "train-labels-idx1-ubyte.gz");
    write_idx_images(e2e_path(dir, "train-images-idx3-ubyte.gz"), 10, 28, 28, 10);
    write_idx_images(labels, 10, 28, 28, 10);
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, labels, "images", "labels");
    e2e_run_free(&r);
}

Test(bad_input, idx_label_count_differs)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "idx");
    const char *labels = e2e_path(dir, "train-labels-idx1-ubyte.gz");
    write_idx_images(e2e_path(dir, "train-images-idx3-ubyte.gz"), 10, 28, 28, 10);
    write_idx_labels(labels, 12, -1, 0);
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, labels, "12", "10");
    e2e_run_free(&r);
}

Test(bad_input, idx_images_of_the_wrong_size)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "idx");
    const char *images = e2e_path(dir, "train-images-idx3-ubyte.gz");
    write_idx_images(images, 10, 8, 8, 10);
    write_idx_labels(e2e_path(dir, "train-labels-idx1-ubyte.gz"), 10, -1, 0);
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, images, "64 features", "784");
    e2e_run_free(&r);
}

Test(bad_input, idx_label_outside_the_classes)
{
    const char *tmp = e2e_tmpdir();
    const char *dir = idx_dir(tmp, "idx");
    const char *labels = e2e_path(dir, "train-labels-idx1-ubyte.gz");
    write_idx_images(e2e_path(dir, "train-images-idx3-ubyte.gz"), 10, 28, 28, 10);
    write_idx_labels(labels, 10, 3, 200);
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, labels, "200", "0..9");
    e2e_run_free(&r);
}

Test(bad_input, csv_with_the_wrong_feature_count)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "narrow.csv");
    write_csv(path, 20, 10, "3", -1, NULL);
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path, "10 features", "64");
    e2e_run_free(&r);
    path = e2e_path(tmp, "wide.csv.gz");
    {
        const char *plain = e2e_path(tmp, "wide.csv");
        size_t len;
        write_csv(plain, 20, 70, "3", -1, NULL);
        char *text = e2e_read(plain, &len);
        e2e_write_gz(path, text, len);
        free(text);
    }
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path, "70 features", "64");
    e2e_run_free(&r);
}

Test(bad_input, csv_label_outside_the_classes)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "labels.csv");
    write_csv(path, 20, 64, "3", 7, "12");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path, "12", "0..9");
    e2e_run_free(&r);
    write_csv(path, 20, 64, "3", 0, "-1");
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path, "-1", "0..9");
    e2e_run_free(&r);
    write_csv(path, 20, 64, "3", 4, "2.5");
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path, "2.5", "class");
    e2e_run_free(&r);
}

Test(bad_input, csv_cells_that_are_not_numbers)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "words.csv");
    write_csv(path, 20, 64, "3", 12, "seven");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    char where[1100];
    snprintf(where, sizeof where, "%s:13", path); /* row 12 is line 13 */
    E2E_ASSERT_FAILS(r, 1, where, "seven", "not a number");
    e2e_run_free(&r);
}

Test(bad_input, csv_ragged_and_empty)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "ragged.csv");
    write_csv(path, 20, 64, "3", -1, NULL);
    {
        FILE *f = fopen(path, "a");
        cr_assert_not_null(f);
        fputs("1,2,3\n", f);
        fclose(f);
    }
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    char where[1100];
    snprintf(where, sizeof where, "%s:21", path);
    E2E_ASSERT_FAILS(r, 1, where, "columns");
    e2e_run_free(&r);
    path = e2e_path(tmp, "empty.csv");
    e2e_write_str(path, "");
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path, "no data");
    e2e_run_free(&r);
}

Test(bad_input, truncated_gzip_csv_mid_stream)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "cut.csv.gz");
    e2e_copy(DIGITS_DATA, path, 3000);
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path);
    e2e_run_free(&r);
}

/* A gzip stream cut off exactly after a flushed block that ends a row: every
 * byte that made it decompresses to whole rows, so only zlib's "unexpected
 * end of file" (Z_BUF_ERROR from gzerror at EOF) tells the file is
 * truncated. Loading it would silently train on part of the data. */
Test(bad_input, truncated_gzip_csv_at_a_row_boundary)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "cut_at_row.csv.gz");
    const char *plain = e2e_path(tmp, "rows.csv");
    size_t len;
    write_csv(plain, 200, 64, "3", -1, NULL);
    char *text = e2e_read(plain, &len);
    size_t half = 0;
    for (int rows = 0; rows < 100; half++)
        rows += text[half] == '\n';
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    unsigned char out[1 << 16];
    z.next_in = (unsigned char *)text;
    z.avail_in = (unsigned)half;
    z.next_out = out;
    z.avail_out = sizeof out;
    cr_assert_eq(deflate(&z, Z_FULL_FLUSH), Z_OK);
    cr_assert_gt(z.avail_out, 0);
    e2e_write(path, out, sizeof out - z.avail_out); /* no final block, no trailer */
    deflateEnd(&z);
    free(text);
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0", "--epochs", "1");
    E2E_ASSERT_FAILS(r, 1, path, "truncated");
    e2e_run_free(&r);
}

Test(bad_input, data_of_an_unknown_kind)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "data.txt");
    e2e_write_str(path, "1,2,3\n");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, path);
    e2e_run_free(&r);
}

/* ---- values that are not what they seem ------------------------------------------------------ */

static const char *digits_checkpoint(const char *tmp, const char *name);

/* Writes an NPY file of n x features float32 ones, whose value k is v. */
static void write_npy_f4(const char *path, int n, int features, int k, float v)
{
    char head[192];
    int len = snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, features);
    while ((10 + len + 1) % 64)
        head[len++] = ' ';
    head[len++] = '\n';
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(len & 0xff, f);
    fputc(len >> 8, f);
    fwrite(head, 1, (size_t)len, f);
    for (int i = 0; i < n * features; i++) {
        float x = i == k ? v : 1.0f;
        fwrite(&x, sizeof x, 1, f);
    }
    cr_assert_eq(fclose(f), 0);
}

/* 1e39 was read as inf, and predictions came out nan with exit 0; nan and inf in
 * predict input were answered with nan. Each is now an error naming the place. */
Test(bad_input, values_beyond_a_float_or_not_finite)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "huge.csv");
    char where[1100];
    write_csv(path, 20, 64, "3", 6, "1e39");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--verbose", "0");
    snprintf(where, sizeof where, "%s:7: column 65", path);
    E2E_ASSERT_FAILS(r, 1, where, "\"1e39\"", "32-bit float");
    e2e_run_free(&r);
    const char *w = digits_checkpoint(tmp, "w.safetensors");
    const char *x = e2e_path(tmp, "nan.csv");
    write_csv(x, 3, 63, "0", 1, "nan");
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "predict", "--weights", w, "--input", x);
    snprintf(where, sizeof where, "%s:2: column 64", x);
    E2E_ASSERT_FAILS(r, 1, where, "\"nan\"", "missing value");
    e2e_run_free(&r);
    x = e2e_path(tmp, "inf.npy");
    write_npy_f4(x, 3, 64, 64 + 5, INFINITY);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "predict", "--weights", w, "--input", x);
    E2E_ASSERT_FAILS(r, 1, x, "sample 1, value 5 is inf");
    e2e_run_free(&r);
}

/* scikit-learn's CSV layout: a first line "n_samples,n_features,names..." narrower than the rows. */
Test(bad_input, csv_header_narrower_than_the_rows_is_a_header)
{
    const char *tmp = e2e_tmpdir();
    const char *path = e2e_path(tmp, "sklearn.csv"), *rows = e2e_path(tmp, "rows.csv");
    write_csv(rows, 40, 64, "3", -1, NULL);
    char *text = e2e_read(rows, NULL);
    FILE *f = fopen(path, "w");
    cr_assert(text && f);
    fprintf(f, "40,64,zero,one,two,three,four,five,six,seven,eight,nine\n%s", text);
    fclose(f);
    free(text);
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--data", path, "--epochs", "1", "--verbose", "0");
    cr_assert_eq(r.status, 0, "fit failed (%d): %s", r.status, r.err);
    e2e_run_free(&r);
}

/* A FIFO or a device is refused at once: reading /dev/zero never ended, a FIFO waited for a writer. */
Test(bad_input, fifo_or_device_as_data)
{
    const char *tmp = e2e_tmpdir();
    const char *fifo = e2e_path(tmp, "pipe.csv"), *zero = e2e_path(tmp, "zero.csv");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(symlink("/dev/zero", zero), 0);
    e2e_run r = e2e_exec(tmp, tmp, 30,
                         (const char *const[]){DIGITS_MLP, "fit", "--data", fifo, "--verbose", "0", NULL});
    E2E_ASSERT_FAILS(r, 1, fifo, "not a regular file");
    e2e_run_free(&r);
    r = e2e_exec(tmp, tmp, 30, (const char *const[]){DIGITS_MLP, "fit", "--data", zero, "--verbose", "0", NULL});
    E2E_ASSERT_FAILS(r, 1, zero, "not a regular file");
    e2e_run_free(&r);
}

/* Builds tmp/NAME.c (the text) with cgrad build into tmp/out; returns the binary, or NULL when the build
 * fails (its output in *r, which the caller frees). */
static const char *build_model(const char *tmp, const char *name, const char *text, e2e_run *r)
{
    char file[128];
#ifdef E2E_SANITIZED
    cr_skip_test("cgrad build does not link model programs in a sanitizer build");
#endif
    snprintf(file, sizeof file, "%s.c", name);
    e2e_write_str(e2e_path(tmp, file), text);
    *r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", file, "-o", "out", "--cc", "gcc");
    cr_assert(!r->timed_out && r->signal == 0, "cgrad build crashed: %.1000s", r->err);
    return r->status == 0 ? e2e_path(e2e_path(tmp, "out"), name) : NULL;
}

/* elec_equip.csv with the value of line `lineno` (1-based) made empty, its date kept. */
static const char *elec_gap(const char *tmp, const char *name, int lineno)
{
    char *text = e2e_read(ELEC_DATA, NULL), *p = text;
    const char *path = e2e_path(tmp, name);
    FILE *f = fopen(path, "w");
    cr_assert(text && f);
    for (int k = 1; *p; k++) {
        char *nl = strchr(p, '\n'), *comma = strchr(p, ',');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (k == lineno)
            fprintf(f, "%.*s\n", (int)(comma - p + 1), p);
        else
            fwrite(p, 1, len, f);
        p += len;
    }
    fclose(f);
    free(text);
    return path;
}

/* A forecaster of elec_equip.csv whose .series carries `extra` (the .missing option). */
static const char *series_model(const char *name, const char *data, const char *extra)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "#include <cgrad.h>\n"
             "int main(int argc, char **argv)\n"
             "{\n"
             "    cg_model *m = cg_sequential(\"%s\", CG_SHAPE(12));\n"
             "    cg_model_add(m, cg_dense(8, .activation = CG_RELU));\n"
             "    cg_model_add(m, cg_dense(1));\n"
             "    cg_compile(m, .optimizer = cg_adam(1e-3f), .loss = CG_MSE, .metric = CG_METRIC_MAE,\n"
             "               .batch_size = 16, .epochs = 2,\n"
             "               .data = {.path = \"%s\", .series = {.column = \"" ELEC_COLUMN "\", .window = 12,\n"
             "                        .val_steps = 24, .test_steps = 24, .season = 12%s}});\n"
             "    return cg_main(m, argc, argv);\n"
             "}\n",
             name, data, extra);
    return text;
}

/* A missing value stopped the series loader as "not a number"; now the message names .series.missing, and a
 * model compiled with it fills the gap: the option travels into the generated binary. */
Test(bad_input, series_missing_value)
{
    const char *tmp = e2e_tmpdir();
    const char *gap = elec_gap(tmp, "gap.csv", 50);
    e2e_run r = E2E_RUN(tmp, tmp, ELEC_MLP, "fit", "--data", gap, "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, "gap.csv:50: column \"" ELEC_COLUMN "\" is empty, a missing value",
                     ".series.missing = CG_MISSING_INTERPOLATE or CG_MISSING_PREVIOUS");
    e2e_run_free(&r);

    const char *bin = build_model(tmp, "elec_fill",
                                  series_model("elec_fill", "gap.csv", ", .missing = CG_MISSING_INTERPOLATE"), &r);
    cr_assert_not_null(bin, "cgrad build failed (%d): %.1000s%.1000s", r.status, r.out, r.err);
    e2e_run_free(&r);
    char *main_c = e2e_read(e2e_path(e2e_path(tmp, "out"), "elec_fill_main.c"), NULL);
    cr_assert_not_null(main_c);
    cr_assert_not_null(strstr(main_c, ".missing = CGRT_MISSING_INTERPOLATE"), "%s", main_c);
    free(main_c);
    r = E2E_RUN(tmp, tmp, bin, "fit", "--verbose", "0");
    cr_assert_eq(r.status, 0, "fit with interpolation failed (%d): %s", r.status, r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, bin, "fit", "--verbose", "2", "--epochs", "1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "series: 257 values (1 missing, filled by linear interpolation); 197 training"),
                       "%s", r.out);
    e2e_run_free(&r);

    /* an option outside the enum stops the build, naming it */
    cr_assert_null(build_model(tmp, "elec_bad", series_model("elec_bad", "gap.csv", ", .missing = (cg_missing)7"), &r));
    cr_assert_not_null(strstr(r.err, ".data.series.missing is 7"), "%.1000s%.1000s", r.out, r.err);
    e2e_run_free(&r);
}

/* Binary cross-entropy trained silently on a label of 2. */
Test(bad_input, binary_labels_outside_0_1)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r;
    const char *bin = build_model(
        tmp, "bce",
        "#include <cgrad.h>\n"
        "int main(int argc, char **argv)\n"
        "{\n"
        "    cg_model *m = cg_sequential(\"bce\", CG_SHAPE(4));\n"
        "    cg_model_add(m, cg_dense(1));\n"
        "    cg_compile(m, .optimizer = cg_adam(1e-2f), .loss = CG_BINARY_CROSSENTROPY,\n"
        "               .from_logits = true, .metric = CG_ACCURACY, .batch_size = 8, .epochs = 1,\n"
        "               .data = {.path = \"b.csv\"});\n"
        "    return cg_main(m, argc, argv);\n"
        "}\n",
        &r);
    cr_assert_not_null(bin, "cgrad build failed (%d): %.1000s%.1000s", r.status, r.out, r.err);
    e2e_run_free(&r);
    const char *path = e2e_path(tmp, "b.csv");
    write_csv(path, 20, 4, "1", 7, "2");
    r = E2E_RUN(tmp, tmp, bin, "fit", "--verbose", "0");
    E2E_ASSERT_FAILS(r, 1, "b.csv: label 2 at sample 7 is outside 0..1");
    e2e_run_free(&r);
    write_csv(path, 20, 4, "1", 7, "0");
    r = E2E_RUN(tmp, tmp, bin, "fit", "--verbose", "0");
    cr_assert_eq(r.status, 0, "fit with labels 0 and 1 failed (%d): %s", r.status, r.err);
    e2e_run_free(&r);
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

/* Trains digits_mlp for one epoch and saves tmp/name. */
static const char *digits_checkpoint(const char *tmp, const char *name)
{
    const char *w = e2e_path(tmp, name);
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--epochs", "1", "--verbose", "0", "--save", w);
    cr_assert_eq(r.status, 0, "fit --save failed: %s", r.err);
    e2e_run_free(&r);
    return w;
}

/* Copies src to dst replacing the first occurrence of `from` by `to` (same length). */
static void edit_copy(const char *src, const char *dst, const char *from, const char *to)
{
    size_t len, k = strlen(from);
    char *data = e2e_read(src, &len);
    cr_assert_not_null(data);
    cr_assert_eq(strlen(to), k);
    char *p = NULL;
    for (size_t i = 0; i + k <= len; i++)
        if (!memcmp(data + i, from, k)) {
            p = data + i;
            break;
        }
    cr_assert_not_null(p, "%s does not contain %s", src, from);
    memcpy(p, to, k);
    e2e_write(dst, data, len);
    free(data);
}

Test(bad_input, checkpoint_of_another_model)
{
    const char *tmp = e2e_tmpdir();
    /* a fashion_mlp checkpoint without Fashion-MNIST: train one epoch on 64 generated images */
    const char *dir = idx_dir(tmp, "idx");
    write_idx_images(e2e_path(dir, "train-images-idx3-ubyte.gz"), 64, 28, 28, 64);
    write_idx_labels(e2e_path(dir, "train-labels-idx1-ubyte.gz"), 64, -1, 0);
    const char *w = e2e_path(tmp, "fashion.safetensors");
    e2e_run r = E2E_RUN(tmp, tmp, FASHION_MLP, "fit", "--data", dir, "--epochs", "1", "--verbose", "0", "--save", w);
    cr_assert_eq(r.status, 0, "fashion_mlp fit failed: %s", r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", w);
    E2E_ASSERT_FAILS(r, 1, w, "dense_1/kernel", "[784,256]", "[64,64]");
    e2e_run_free(&r);
    const char *x = e2e_path(tmp, "x.csv");
    write_csv(x, 3, 63, "1", -1, NULL); /* 63 + 1 columns = 64 features */
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "predict", "--weights", w, "--input", x);
    E2E_ASSERT_FAILS(r, 1, w, "shape");
    e2e_run_free(&r);
}

Test(bad_input, checkpoint_with_other_shapes)
{
    const char *tmp = e2e_tmpdir();
    const char *good = digits_checkpoint(tmp, "good.safetensors");
    const char *bad = e2e_path(tmp, "transposed.safetensors");
    edit_copy(good, bad, "[64,10]", "[10,64]");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", bad);
    E2E_ASSERT_FAILS(r, 1, bad, "dense_2/kernel", "[10,64]", "[64,10]");
    e2e_run_free(&r);
}

Test(bad_input, checkpoint_missing_a_tensor)
{
    const char *tmp = e2e_tmpdir();
    const char *good = digits_checkpoint(tmp, "good.safetensors");
    const char *bad = e2e_path(tmp, "renamed.safetensors");
    edit_copy(good, bad, "\"dense_2/bias\"", "\"dense_2/biaz\"");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", bad);
    E2E_ASSERT_FAILS(r, 1, bad, "dense_2/bias", "missing");
    e2e_run_free(&r);
}

Test(bad_input, checkpoint_of_another_dtype)
{
    const char *tmp = e2e_tmpdir();
    const char *good = digits_checkpoint(tmp, "good.safetensors");
    const char *bad = e2e_path(tmp, "f16.safetensors");
    edit_copy(good, bad, "\"F32\"", "\"F16\"");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", bad);
    E2E_ASSERT_FAILS(r, 1, bad, "F16");
    e2e_run_free(&r);
}

Test(bad_input, truncated_checkpoint)
{
    const char *tmp = e2e_tmpdir();
    const char *good = digits_checkpoint(tmp, "good.safetensors");
    const char *cut = e2e_path(tmp, "cut.safetensors");
    e2e_copy(good, cut, 1000); /* inside the data */
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", cut);
    E2E_ASSERT_FAILS(r, 1, cut, "truncated");
    e2e_run_free(&r);
    e2e_copy(good, cut, 100); /* inside the header */
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", cut);
    E2E_ASSERT_FAILS(r, 1, cut);
    e2e_run_free(&r);
    e2e_copy(good, cut, 5); /* not even the header length */
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", cut);
    E2E_ASSERT_FAILS(r, 1, cut);
    e2e_run_free(&r);
}

Test(bad_input, checkpoint_that_is_not_safetensors)
{
    const char *tmp = e2e_tmpdir();
    const char *bad = e2e_path(tmp, "junk.safetensors");
    /* a header length of 2^62, then junk */
    unsigned char junk[64] = {0, 0, 0, 0, 0, 0, 0, 0x40, '{', '"'};
    e2e_write(bad, junk, sizeof junk);
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", bad);
    E2E_ASSERT_FAILS(r, 1, bad);
    e2e_run_free(&r);
    /* a plausible length, a header that is not JSON */
    memset(junk, 'x', sizeof junk);
    junk[0] = 40;
    memset(junk + 1, 0, 7);
    e2e_write(bad, junk, sizeof junk);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", bad);
    E2E_ASSERT_FAILS(r, 1, bad);
    e2e_run_free(&r);
    /* the digits data where weights are expected */
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", DIGITS_DATA);
    E2E_ASSERT_FAILS(r, 1, DIGITS_DATA);
    e2e_run_free(&r);
}

Test(bad_input, missing_checkpoint_and_predict_input)
{
    const char *tmp = e2e_tmpdir();
    const char *w = e2e_path(tmp, "nothing.safetensors");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "evaluate", "--weights", w);
    E2E_ASSERT_FAILS(r, 1, w, "cannot open");
    e2e_run_free(&r);
    const char *good = digits_checkpoint(tmp, "good.safetensors");
    const char *x = e2e_path(tmp, "nothing.csv");
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "predict", "--weights", good, "--input", x);
    E2E_ASSERT_FAILS(r, 1, x, "cannot open");
    e2e_run_free(&r);
    x = e2e_path(tmp, "narrow.csv");
    write_csv(x, 3, 9, "1", -1, NULL);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "predict", "--weights", good, "--input", x);
    E2E_ASSERT_FAILS(r, 1, x, "10 features", "64");
    e2e_run_free(&r);
}

Test(bad_input, unwritable_outputs)
{
    const char *tmp = e2e_tmpdir();
    const char *w = e2e_path(tmp, "no_dir/w.safetensors");
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--epochs", "1", "--verbose", "0", "--save", w);
    cr_assert_eq(r.signal, 0);
    cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, w), "stderr does not name %s: %s", w, r.err);
    e2e_run_free(&r);
    const char *h = e2e_path(tmp, "no_dir/h.csv");
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "fit", "--epochs", "1", "--verbose", "0", "--history", h);
    cr_assert_eq(r.signal, 0);
    cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, h), "stderr does not name %s: %s", h, r.err);
    e2e_run_free(&r);
}

/* ---- the command line ---------------------------------------------------------------------- */

/* Runs digits_mlp with the arguments and expects a one-line usage error (exit 2) containing phrase. */
static void usage_error(const char *phrase, const char *const *args)
{
    const char *tmp = e2e_tmpdir();
    const char *argv[16] = {DIGITS_MLP};
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    e2e_run r = e2e_exec(tmp, tmp, 60, argv);
    e2e_assert_clean_failure(&r, 2, (const char *const[]){phrase, NULL});
    e2e_run_free(&r);
}
#define USAGE_ERROR(phrase, ...) usage_error(phrase, (const char *const[]){__VA_ARGS__, NULL})

Test(bad_input, bad_flags)
{
    USAGE_ERROR("--epochs", "fit", "--epochs", "x");
    USAGE_ERROR("--epochs", "fit", "--epochs", "5x");
    USAGE_ERROR("--epochs", "fit", "--epochs", "-1");
    USAGE_ERROR("--monitor", "fit", "--monitor", "val_bogus");
    USAGE_ERROR("--shuffle", "fit", "--shuffle", "maybe");
    USAGE_ERROR("--batch-size", "fit", "--batch-size", "0");
    USAGE_ERROR("--batch-size", "fit", "--batch-size", "100000");
    USAGE_ERROR("--batch-size", "bench", "--batch-size", "100000");
    USAGE_ERROR("--lr", "fit", "--lr", "0");
    USAGE_ERROR("--lr", "fit", "--lr", "nan");
    USAGE_ERROR("--validation-split", "fit", "--validation-split", "1");
    USAGE_ERROR("--verbose", "fit", "--verbose", "3");
    USAGE_ERROR("--seed", "fit", "--seed", "-1");
    USAGE_ERROR("--bogus", "fit", "--bogus", "1");
    USAGE_ERROR("--input", "fit", "--input", "x.csv");
    USAGE_ERROR("--epochs", "fit", "--epochs");
    USAGE_ERROR("--weights", "evaluate");
    USAGE_ERROR("--input", "predict", "--weights", "w.safetensors");
    USAGE_ERROR("stray", "fit", "stray");
}

Test(bad_input, unknown_subcommand)
{
    USAGE_ERROR("frobnicate", "frobnicate");
    USAGE_ERROR("FIT", "FIT", "--epochs", "1");
}

Test(bad_input, no_subcommand_prints_usage)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, DIGITS_MLP);
    cr_assert_eq(r.signal, 0);
    cr_assert_eq(r.status, 2);
    cr_assert_not_null(strstr(r.err, "usage:"), "%s", r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, DIGITS_MLP, "--help");
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "usage:"), "%s", r.out);
    e2e_run_free(&r);
}
