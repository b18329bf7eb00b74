/* test_data.c: the dataset loaders (IDX, CSV, NPY, cgrt_load_data), splits,
 * and the seeded shuffle. Good files load exact values; bad files fail with a
 * message naming the file and what is wrong. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Asserts that err mentions both the file and the phrase. */
#define assert_msg(err, file, phrase)                                                                       \
    do {                                                                                                    \
        cr_assert(strstr((err).msg, (file)) != NULL, "message \"%s\" does not name %s", (err).msg, (file)); \
        cr_assert(strstr((err).msg, (phrase)) != NULL, "message \"%s\" lacks \"%s\"", (err).msg, (phrase)); \
    } while (0)

static const int img_dims[3] = {3, 2, 2};
static const unsigned char img_data[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255};
static const int lab_dims[1] = {3};
static const unsigned char lab_data[3] = {2, 0, 1};

/* Writes the 3-image IDX pair into dir (gzip when gz), returning the two paths. */
static void write_idx_pair(const char *dir, int gz, const char **img, const char **lab)
{
    size_t n1, n2;
    unsigned char *a = t_idx(3, img_dims, img_data, &n1), *b = t_idx(1, lab_dims, lab_data, &n2);
    *img = t_path(dir, gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte");
    *lab = t_path(dir, gz ? "train-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte");
    (gz ? t_write_gz : t_write)(*img, a, n1);
    (gz ? t_write_gz : t_write)(*lab, b, n2);
    free(a);
    free(b);
}

/* Checks the dataset holds the 3-image pair scaled by 0.5. */
static void check_idx_values(const cgrt_dataset *d)
{
    int i;
    cr_assert_eq(d->n, 3);
    cr_assert_eq(d->features, 4);
    cr_assert_eq(d->label_width, 1);
    for (i = 0; i < 12; i++)
        cr_assert_eq(d->x[i], (float)img_data[i] * 0.5f, "x[%d] = %g", i, (double)d->x[i]);
    for (i = 0; i < 3; i++)
        cr_assert_eq(d->y[i], (float)lab_data[i]);
}

Test(idx, loads_plain_and_gzip)
{
    const char *dir = t_tmpdir(), *img, *lab;
    cgrt_dataset d;
    cgrt_error err;
    int gz;
    for (gz = 0; gz < 2; gz++) {
        write_idx_pair(dir, gz, &img, &lab);
        cr_assert_eq(cgrt_load_idx(img, lab, 0.5f, &d, &err), 0, "%s", err.msg);
        check_idx_values(&d);
        cgrt_dataset_free(&d);
    }
}

Test(idx, missing_file)
{
    const char *dir = t_tmpdir(), *img, *lab;
    cgrt_dataset d;
    cgrt_error err;
    write_idx_pair(dir, 0, &img, &lab);
    cr_assert_eq(cgrt_load_idx(t_path(dir, "nope-idx3-ubyte"), lab, 1.0f, &d, &err), -1);
    assert_msg(err, "nope-idx3-ubyte", "cannot open");
}

Test(idx, truncated)
{
    const char *dir = t_tmpdir(), *img, *lab;
    size_t n;
    unsigned char *a = t_idx(3, img_dims, img_data, &n);
    cgrt_dataset d;
    cgrt_error err;
    write_idx_pair(dir, 0, &img, &lab);
    t_write(img, a, n - 3);
    free(a);
    cr_assert_eq(cgrt_load_idx(img, lab, 1.0f, &d, &err), -1);
    assert_msg(err, img, "truncated");
    t_write_gz(t_path(dir, "short.gz"), "\0\0\x08", 3);
    cr_assert_eq(cgrt_load_idx(t_path(dir, "short.gz"), lab, 1.0f, &d, &err), -1);
    assert_msg(err, "short.gz", "truncated");
}

Test(idx, wrong_magic_and_gzip_of_text)
{
    const char *dir = t_tmpdir(), *img, *lab;
    const char *text = "a,b,c\n1,2,3\n";
    cgrt_dataset d;
    cgrt_error err;
    write_idx_pair(dir, 0, &img, &lab);
    t_write(t_path(dir, "bad"), "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    cr_assert_eq(cgrt_load_idx(t_path(dir, "bad"), lab, 1.0f, &d, &err), -1);
    assert_msg(err, "bad", "not an IDX file");
    t_write_gz(t_path(dir, "text.gz"), text, strlen(text));
    cr_assert_eq(cgrt_load_idx(t_path(dir, "text.gz"), lab, 1.0f, &d, &err), -1);
    assert_msg(err, "text.gz", "not an IDX file");
    t_write(t_path(dir, "corrupt.gz"), "\x1f\x8b\x08\x00garbage garbage garbage", 25);
    cr_assert_eq(cgrt_load_idx(t_path(dir, "corrupt.gz"), lab, 1.0f, &d, &err), -1);
    cr_assert(strstr(err.msg, "corrupt.gz: corrupt gzip data") != NULL, "%s", err.msg);
}

Test(idx, files_of_the_wrong_kind)
{
    const char *dir = t_tmpdir(), *img, *lab;
    cgrt_dataset d;
    cgrt_error err;
    write_idx_pair(dir, 1, &img, &lab);
    cr_assert_eq(cgrt_load_idx(lab, lab, 1.0f, &d, &err), -1);
    assert_msg(err, lab, "holds IDX labels (1 dimension), expected images");
    cr_assert_eq(cgrt_load_idx(img, img, 1.0f, &d, &err), -1);
    assert_msg(err, img, "expected labels");
}

Test(idx, label_count_mismatch)
{
    const char *dir = t_tmpdir(), *img, *lab;
    static const int two[1] = {2};
    size_t n;
    unsigned char *b = t_idx(1, two, lab_data, &n);
    cgrt_dataset d;
    cgrt_error err;
    write_idx_pair(dir, 0, &img, &lab);
    t_write(lab, b, n);
    free(b);
    cr_assert_eq(cgrt_load_idx(img, lab, 1.0f, &d, &err), -1);
    assert_msg(err, lab, "holds 2 labels but");
}

Test(idx, real_fashion_mnist_test_split)
{
    const char *img = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    const char *lab = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    FILE *f = fopen(img, "rb");
    cgrt_dataset d;
    cgrt_error err;
    int i, counts[10] = {0};
    if (!f)
        cr_skip_test("dataset-fashion-mnist is not installed");
    fclose(f);
    cr_assert_eq(cgrt_load_idx(img, lab, 1.0f / 255.0f, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 10000);
    cr_assert_eq(d.features, 784);
    cr_assert_eq(d.y[0], 9.0f); /* the first test image is an ankle boot */
    for (i = 0; i < d.n; i++)
        counts[(int)d.y[i]]++;
    for (i = 0; i < 10; i++)
        cr_assert_eq(counts[i], 1000, "class %d has %d samples", i, counts[i]);
    for (i = 0; i < d.n * d.features; i++)
        cr_assert(d.x[i] >= 0.0f && d.x[i] <= 1.0f);
    cgrt_dataset_free(&d);
}

/* ---- CSV ---- */

Test(csv, with_and_without_header_plain_and_gzip)
{
    const char *dir = t_tmpdir();
    const char *with = "f1,f2,f3,label\n1,2,3,0\n4.5, -6 ,7e1,2\r\n\n";
    const char *without = "1,2,3,0\n4.5,-6,7e1,2\n";
    const char *names[3] = {"a.csv", "b.csv", "c.csv.gz"};
    cgrt_dataset d;
    cgrt_error err;
    int k;
    t_write(t_path(dir, names[0]), with, strlen(with));
    t_write(t_path(dir, names[1]), without, strlen(without));
    t_write_gz(t_path(dir, names[2]), with, strlen(with));
    for (k = 0; k < 3; k++) {
        cr_assert_eq(cgrt_load_csv(t_path(dir, names[k]), 1, 2.0f, &d, &err), 0, "%s", err.msg);
        cr_assert_eq(d.n, 2);
        cr_assert_eq(d.features, 3);
        cr_assert_eq(d.label_width, 1);
        cr_assert_eq(d.x[0], 2.0f);
        cr_assert_eq(d.x[3], 9.0f);
        cr_assert_eq(d.x[4], -12.0f);
        cr_assert_eq(d.x[5], 140.0f);
        cr_assert_eq(d.y[0], 0.0f);
        cr_assert_eq(d.y[1], 2.0f);
        cgrt_dataset_free(&d);
    }
    cr_assert_eq(cgrt_load_csv(t_path(dir, names[1]), 0, 0.0f, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.features, 4);
    cr_assert_null(d.y);
    cgrt_dataset_free(&d);
}

Test(csv, ragged_row)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "ragged.csv");
    cgrt_dataset d;
    cgrt_error err;
    t_write(p, "a,b,c\n1,2,3\n4,5\n", 16);
    cr_assert_eq(cgrt_load_csv(p, 1, 1.0f, &d, &err), -1);
    assert_msg(err, "ragged.csv:3:", "row has 2 columns, expected 3");
}

Test(csv, non_numeric_cell)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "words.csv");
    cgrt_dataset d;
    cgrt_error err;
    t_write(p, "1,2,3\n4,abc,6\n", 14);
    cr_assert_eq(cgrt_load_csv(p, 1, 1.0f, &d, &err), -1);
    assert_msg(err, "words.csv:2:", "column 2: \"abc\" is not a number");
}

Test(csv, empty_and_missing)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "empty.csv");
    cgrt_dataset d;
    cgrt_error err;
    t_write(p, "x,y\n", 4);
    cr_assert_eq(cgrt_load_csv(p, 1, 1.0f, &d, &err), -1);
    assert_msg(err, "empty.csv", "no data rows");
    cr_assert_eq(cgrt_load_csv(t_path(dir, "none.csv"), 1, 1.0f, &d, &err), -1);
    assert_msg(err, "none.csv", "cannot open");
    t_write(p, "1,2\n3,4\n", 8);
    cr_assert_eq(cgrt_load_csv(p, 2, 1.0f, &d, &err), -1);
    assert_msg(err, "empty.csv", "too few");
}

/* ---- NPY ---- */

Test(npy, f4_u1_i8_f8)
{
    const char *dir = t_tmpdir();
    static const float f4[6] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, 7.0f};
    static const unsigned char u1[4] = {0, 7, 200, 255};
    static const long long i8[3] = {-5, 0, 9};
    static const double f8[2] = {0.125, -1e10};
    float *data;
    int rank, dims[CGRT_MAX_RANK], i;
    cgrt_error err;
    t_write_npy(t_path(dir, "f4.npy"), "<f4", 0, "(2, 3)", f4, sizeof f4);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "f4.npy"), &data, &rank, dims, &err), 0, "%s", err.msg);
    cr_assert_eq(rank, 2);
    cr_assert_eq(dims[0], 2);
    cr_assert_eq(dims[1], 3);
    for (i = 0; i < 6; i++)
        cr_assert_eq(data[i], f4[i]);
    free(data);
    t_write_npy(t_path(dir, "u1.npy"), "|u1", 0, "(4,)", u1, sizeof u1);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "u1.npy"), &data, &rank, dims, &err), 0, "%s", err.msg);
    cr_assert_eq(rank, 1);
    cr_assert_eq(dims[0], 4);
    for (i = 0; i < 4; i++)
        cr_assert_eq(data[i], (float)u1[i]);
    free(data);
    t_write_npy(t_path(dir, "i8.npy"), "<i8", 0, "(3,)", i8, sizeof i8);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "i8.npy"), &data, &rank, dims, &err), 0, "%s", err.msg);
    for (i = 0; i < 3; i++)
        cr_assert_eq(data[i], (float)i8[i]);
    free(data);
    t_write_npy(t_path(dir, "f8.npy"), "<f8", 0, "(1, 2)", f8, sizeof f8);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "f8.npy"), &data, &rank, dims, &err), 0, "%s", err.msg);
    cr_assert_eq(data[0], 0.125f);
    cr_assert_eq(data[1], -1e10f);
    free(data);
}

Test(npy, version_2_header)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "v2.npy");
    const char *h = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
    unsigned char buf[128];
    static const int vals[2] = {-3, 40000};
    size_t n = strlen(h);
    float *data;
    int rank, dims[CGRT_MAX_RANK];
    cgrt_error err;
    memcpy(buf, "\x93NUMPY\x02\x00", 8);
    buf[8] = (unsigned char)(n + 1);
    buf[9] = buf[10] = buf[11] = 0;
    memcpy(buf + 12, h, n);
    buf[12 + n] = '\n';
    memcpy(buf + 13 + n, vals, sizeof vals);
    t_write(p, buf, 13 + n + sizeof vals);
    cr_assert_eq(cgrt_load_npy(p, &data, &rank, dims, &err), 0, "%s", err.msg);
    cr_assert_eq(rank, 1);
    cr_assert_eq(dims[0], 2);
    cr_assert_eq(data[0], -3.0f);
    cr_assert_eq(data[1], 40000.0f);
    free(data);
}

Test(npy, fortran_order_bad_dtype_truncated_bad_magic)
{
    const char *dir = t_tmpdir();
    static const float f4[6] = {0};
    float *data;
    int rank, dims[CGRT_MAX_RANK];
    cgrt_error err;
    t_write_npy(t_path(dir, "fortran.npy"), "<f4", 1, "(2, 3)", f4, sizeof f4);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "fortran.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "fortran.npy", "fortran_order is True");
    t_write_npy(t_path(dir, "complex.npy"), "<c8", 0, "(3,)", f4, sizeof f4);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "complex.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "complex.npy", "dtype '<c8' is not supported");
    t_write_npy(t_path(dir, "big.npy"), ">f4", 0, "(3,)", f4, 12);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "big.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "big.npy", "is not supported");
    t_write_npy(t_path(dir, "short.npy"), "<f4", 0, "(2, 3)", f4, 20);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "short.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "short.npy", "truncated");
    t_write(t_path(dir, "text.npy"), "hello world", 11);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "text.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "text.npy", "not an NPY file");
}

/* ---- cgrt_load_data ---- */

Test(load_data, npy_directory_with_test_split)
{
    const char *dir = t_tmpdir();
    cgrt_dataset tr, te;
    cgrt_error err;
    t_write_blobs_npy(dir, 20, 6, 7);
    cr_assert_eq(cgrt_load_data(&tiny_model, dir, &tr, &te, &err), 0, "%s", err.msg);
    cr_assert_eq(tr.n, 20);
    cr_assert_eq(te.n, 6);
    cr_assert_eq(tr.features, 4);
    cr_assert_eq(tr.label_width, 1);
    cgrt_dataset_free(&tr);
    cgrt_dataset_free(&te);
}

Test(load_data, idx_directory)
{
    const char *dir = t_tmpdir(), *img, *lab;
    cgrt_model m = tiny_model;
    cgrt_dataset tr, te;
    cgrt_error err;
    write_idx_pair(dir, 1, &img, &lab);
    m.data.scale = 0.5f;
    cr_assert_eq(cgrt_load_data(&m, dir, &tr, &te, &err), 0, "%s", err.msg);
    check_idx_values(&tr);
    cr_assert_eq(te.n, 0);
    cgrt_dataset_free(&tr);
    m.data.test_split = 0.6f;
    cr_assert_eq(cgrt_load_data(&m, dir, &tr, &te, &err), 0, "%s", err.msg);
    cr_assert_eq(tr.n, 1);
    cr_assert_eq(te.n, 2);
    /* The held-out part is a seeded random sample: every image lands in
     * exactly one part, with its own label, and the split repeats. */
    float seen = tr.x[0] + te.x[0] + te.x[4];
    cr_assert_eq(seen, 0.0f + 2.0f + 4.0f, "first pixels of the 3 images: got sum %g", (double)seen);
    for (int i = 0; i < te.n; i++) { /* first pixels 0, 2, 4 carry labels 2, 0, 1 */
        float p = te.x[i * 4], label = p == 0.0f ? 2.0f : p == 2.0f ? 0.0f : 1.0f;
        cr_assert_eq(te.y[i], label, "sample %d lost its label", i);
    }
    float first = te.x[0];
    cgrt_dataset_free(&tr);
    cgrt_dataset_free(&te);
    cr_assert_eq(cgrt_load_data(&m, dir, &tr, &te, &err), 0, "%s", err.msg);
    cr_assert_eq(te.x[0], first, "the hold-out must not change between runs");
    cgrt_dataset_free(&tr);
    cgrt_dataset_free(&te);
}

Test(load_data, feature_and_label_checks)
{
    const char *dir = t_tmpdir();
    const char *p = t_path(dir, "d.csv"), *q = t_path(dir, "l.csv");
    cgrt_dataset tr, te;
    cgrt_error err;
    t_write(p, "1,2,3,0\n", 8);
    cr_assert_eq(cgrt_load_data(&tiny_model, p, &tr, &te, &err), -1);
    assert_msg(err, "d.csv", "samples have 3 features, model tiny expects 4");
    t_write(q, "1,2,3,4,0\n1,2,3,4,7\n", 20);
    cr_assert_eq(cgrt_load_data(&tiny_model, q, &tr, &te, &err), -1);
    assert_msg(err, "l.csv", "label 7 at sample 1 is outside 0..2");
    t_write(q, "1,2,3,4,0.5\n", 12);
    cr_assert_eq(cgrt_load_data(&tiny_model, q, &tr, &te, &err), -1);
    assert_msg(err, "l.csv", "is not a class index");
    cr_assert_eq(cgrt_load_data(&tiny_model, dir, &tr, &te, &err), -1);
    assert_msg(err, dir, "directory holds none of the data this binary reads");
    cr_assert(strstr(err.msg, "train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "x_train.npy + y_train.npy") != NULL, "%s", err.msg);
    cr_assert_eq(cgrt_load_data(&tiny_model, t_path(dir, "x.txt"), &tr, &te, &err), -1);
    assert_msg(err, "x.txt", "cannot open");
}

Test(load_data, dense_labels)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "d.csv");
    cgrt_model m = tiny_model;
    cgrt_dataset tr, te;
    cgrt_error err;
    m.label_kind = CGRT_LABEL_DENSE;
    m.label_width = 3;
    t_write(p, "1,2,3,4,0,0,1\n", 14);
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), 0, "%s", err.msg);
    cr_assert_eq(tr.label_width, 3);
    cr_assert_eq(tr.y[2], 1.0f);
    cgrt_dataset_free(&tr);
    t_write_blobs_npy(dir, 10, 0, 3); /* class indices become one-hot rows */
    cr_assert_eq(cgrt_load_data(&m, dir, &tr, &te, &err), 0, "%s", err.msg);
    cr_assert_eq(tr.label_width, 3);
    cr_assert_eq(tr.y[0] + tr.y[1] + tr.y[2], 1.0f);
    cgrt_dataset_free(&tr);
    m.label_width = 2;
    cr_assert_eq(cgrt_load_data(&m, dir, &tr, &te, &err), -1);
    assert_msg(err, "y_train.npy", "labels have 1 values per sample, model tiny expects 2");
}

/* ---- splits and shuffle ---- */

Test(split, tail_is_copied_and_train_shrinks)
{
    float x[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, y[5] = {0, 1, 2, 0, 1};
    cgrt_dataset d = {5, 2, 1, NULL, NULL, NULL}, v;
    cgrt_error err;
    d.x = malloc(sizeof x);
    d.y = malloc(sizeof y);
    memcpy(d.x, x, sizeof x);
    memcpy(d.y, y, sizeof y);
    cr_assert_eq(cgrt_split_tail(&d, 0.4f, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(v.n, 2);
    cr_assert_eq(v.x[0], 6.0f);
    cr_assert_eq(v.y[1], 1.0f);
    cgrt_dataset_free(&v);
    cr_assert_eq(cgrt_split_tail(&d, 1.5f, &v, &err), -1);
    cgrt_dataset_free(&d);
    cgrt_dataset_free(&v);
}

Test(shuffle, permutation_and_deterministic)
{
    int a[1000], b[1000], seen[1000] = {0}, i, moved = 0, same = 1;
    cgrt_rng r1 = {42}, r2 = {42}, r3 = {43};
    for (i = 0; i < 1000; i++)
        a[i] = b[i] = i;
    cgrt_shuffle(a, 1000, &r1);
    cgrt_shuffle(b, 1000, &r2);
    for (i = 0; i < 1000; i++) {
        cr_assert_eq(a[i], b[i]);
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (i = 0; i < 1000; i++)
        cr_assert_eq(seen[i], 1);
    cr_assert_gt(moved, 900);
    for (i = 0; i < 1000; i++)
        b[i] = i;
    cgrt_shuffle(b, 1000, &r3);
    for (i = 0; i < 1000; i++)
        same &= a[i] == b[i];
    cr_assert_not(same, "seeds 42 and 43 gave the same order");
}

/* ---- loaders that never lie: headers, encodings, values that are not floats ---- */

/* Loads text written to dir/name as a CSV with one label column; returns the load's status. */
static int load_csv_text(const char *dir, const char *name, const char *text, size_t len, cgrt_dataset *d,
                         cgrt_error *err)
{
    t_write(t_path(dir, name), text, len);
    return cgrt_load_csv(t_path(dir, name), 1, 1.0f, d, err);
}

Test(csv, header_of_another_width_as_scikit_learn_writes_it)
{
    /* scikit-learn's bundled CSVs start "n_samples,n_features,class names..." */
    const char *dir = t_tmpdir(), *text = "2,4,setosa,versicolor\n1,2,3,4,0\n5,6,7,8,1\n";
    cgrt_dataset d;
    cgrt_error err;
    cr_assert_eq(load_csv_text(dir, "iris.csv", text, strlen(text), &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.features, 4);
    cr_assert_eq(d.x[7], 8.0f);
    cr_assert_eq(d.y[1], 1.0f);
    cgrt_dataset_free(&d);
    /* the width is the first data row's: a later row must match it, not the header */
    text = "a,b\n1,2,3,0\n4,5,6\n";
    cr_assert_eq(load_csv_text(dir, "ragged.csv", text, strlen(text), &d, &err), -1);
    assert_msg(err, "ragged.csv:3:", "row has 3 columns, expected 4 (as on line 2)");
}

Test(csv, a_first_row_with_a_bad_cell_is_data_not_a_header)
{
    const char *dir = t_tmpdir();
    cgrt_dataset d;
    cgrt_error err;
    cr_assert_eq(load_csv_text(dir, "gap.csv", "1,,3,0\n4,5,6,1\n", 15, &d, &err), -1);
    assert_msg(err, "gap.csv:1:", "column 2 is empty");
    cr_assert_eq(load_csv_text(dir, "nan.csv", "nan,2,3,0\n4,5,6,1\n", 18, &d, &err), -1);
    assert_msg(err, "nan.csv:1:", "column 1: \"nan\"");
    cr_assert_eq(load_csv_text(dir, "big.csv", "1,2,1e39,0\n4,5,6,1\n", 19, &d, &err), -1);
    assert_msg(err, "big.csv:1:", "column 3: \"1e39\" does not fit a 32-bit float");
}

Test(csv, byte_order_mark_is_not_a_header)
{
    const char *dir = t_tmpdir();
    const char *plain = "\xEF\xBB\xBF"
                        "1,2,3,0\n4,5,6,1\n",
               *headed = "\xEF\xBB\xBF"
                         "a,b,c,label\n1,2,3,0\n";
    cgrt_dataset d;
    cgrt_error err;
    cr_assert_eq(load_csv_text(dir, "bom.csv", plain, strlen(plain), &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 2, "the first row vanished: %d rows", d.n);
    cr_assert_eq(d.x[0], 1.0f);
    cgrt_dataset_free(&d);
    t_write_gz(t_path(dir, "bom.csv.gz"), plain, strlen(plain));
    cr_assert_eq(cgrt_load_csv(t_path(dir, "bom.csv.gz"), 1, 1.0f, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 2);
    cgrt_dataset_free(&d);
    cr_assert_eq(load_csv_text(dir, "bomh.csv", headed, strlen(headed), &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 1);
    cgrt_dataset_free(&d);
    /* UTF-16 is not read as garbage */
    cr_assert_eq(load_csv_text(dir, "utf16.csv",
                               "\xFF\xFE"
                               "1\0,\0"
                               "2\0",
                               8, &d, &err),
                 -1);
    assert_msg(err, "utf16.csv", "UTF-16");
}

Test(csv, values_that_do_not_fit_a_float_and_non_finite_values)
{
    static const char *const cells[] = {"1e39", "-3.5e38", "inf", "-Infinity", "nan", "NA"};
    static const char *const why[] = {"does not fit a 32-bit float",
                                      "does not fit a 32-bit float",
                                      "is not finite",
                                      "is not finite",
                                      "missing value",
                                      "missing value"};
    const char *dir = t_tmpdir();
    cgrt_dataset d;
    cgrt_error err;
    size_t k;
    for (k = 0; k < sizeof cells / sizeof cells[0]; k++) {
        char text[128], where[64];
        snprintf(text, sizeof text, "a,b,c,label\n1,2,3,0\n4,%s,6,1\n", cells[k]);
        cr_assert_eq(load_csv_text(dir, "v.csv", text, strlen(text), &d, &err), -1, "%s loaded", cells[k]);
        snprintf(where, sizeof where, "v.csv:3: column 2: \"%s\"", cells[k]);
        assert_msg(err, where, why[k]);
    }
    /* the largest float and tiny values are fine */
    cr_assert_eq(load_csv_text(dir, "edge.csv", "3.4028234e38,1e-50,0\n", 21, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.x[0], 3.4028234e38f);
    cr_assert_eq(d.x[1], 0.0f);
    cgrt_dataset_free(&d);
}

Test(csv, carriage_return_line_ends)
{
    const char *dir = t_tmpdir();
    const char *cr = "a,b,label\r1,2,0\r3,4,1\r", *mixed = "1,2,0\r\n3,4,1\r5,6,2\n7,8,0";
    cgrt_dataset d;
    cgrt_error err;
    cr_assert_eq(load_csv_text(dir, "cr.csv", cr, strlen(cr), &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.x[3], 4.0f);
    cgrt_dataset_free(&d);
    cr_assert_eq(load_csv_text(dir, "mixed.csv", mixed, strlen(mixed), &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 4);
    cr_assert_eq(d.y[3], 0.0f);
    cgrt_dataset_free(&d);
    /* line numbers count every kind of line end */
    cr_assert_eq(load_csv_text(dir, "crbad.csv", "1,2,0\r3,x,1\r", 12, &d, &err), -1);
    assert_msg(err, "crbad.csv:2:", "column 2: \"x\" is not a number");
}

Test(csv, quoted_cells_may_hold_commas)
{
    const char *dir = t_tmpdir();
    const char *names = "\"width, cm\",\"height, cm\",label\n1,\"2\",0\n";
    cgrt_dataset d;
    cgrt_error err;
    cr_assert_eq(load_csv_text(dir, "q.csv", names, strlen(names), &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.features, 2);
    cr_assert_eq(d.x[1], 2.0f);
    cgrt_dataset_free(&d);
    cr_assert_eq(load_csv_text(dir, "qc.csv", "1,2,0\n\"3,5\",4,1\n", 16, &d, &err), -1);
    assert_msg(err, "qc.csv:2:", "column 1: \"3,5\" is not a number");
    cr_assert_eq(load_csv_text(dir, "open.csv", "1,2,0\n\"3,4,1\n", 13, &d, &err), -1);
    assert_msg(err, "open.csv:2:", "quote");
}

Test(data_files, devices_and_fifos_are_refused, .timeout = 20)
{
    const char *dir = t_tmpdir(), *fifo = t_path(dir, "pipe.csv");
    cgrt_dataset d;
    cgrt_error err;
    float *data;
    int rank, dims[CGRT_MAX_RANK];
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(cgrt_load_csv(fifo, 1, 1.0f, &d, &err), -1);
    assert_msg(err, "pipe.csv", "not a regular file");
    cr_assert_eq(cgrt_load_csv("/dev/zero", 1, 1.0f, &d, &err), -1);
    assert_msg(err, "/dev/zero", "not a regular file");
    cr_assert_eq(cgrt_load_npy("/dev/zero", &data, &rank, dims, &err), -1);
    assert_msg(err, "/dev/zero", "not a regular file");
    cr_assert_eq(cgrt_load_idx("/dev/zero", fifo, 1.0f, &d, &err), -1);
    assert_msg(err, "/dev/zero", "not a regular file");
}

Test(npy, non_finite_values_and_doubles_beyond_float)
{
    const char *dir = t_tmpdir();
    const float f4[6] = {1, 2, 3, 4, NAN, 6};
    const float inf4[2] = {1, -INFINITY};
    const double f8[4] = {1, 2, 3, 1e39};
    float *data;
    int rank, dims[CGRT_MAX_RANK];
    cgrt_error err;
    t_write_npy(t_path(dir, "nan.npy"), "<f4", 0, "(3, 2)", f4, sizeof f4);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "nan.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "nan.npy", "sample 2, value 0");
    cr_assert(strstr(err.msg, "nan") != NULL, "%s", err.msg);
    t_write_npy(t_path(dir, "inf.npy"), "<f4", 0, "(2,)", inf4, sizeof inf4);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "inf.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "inf.npy", "sample 1");
    t_write_npy(t_path(dir, "big.npy"), "<f8", 0, "(2, 2)", f8, sizeof f8);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "big.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "big.npy", "sample 1, value 1");
    assert_msg(err, "big.npy", "does not fit a 32-bit float");
}

Test(npy, label_count_mismatch_names_both_counts)
{
    const char *dir = t_tmpdir();
    static const float x[8] = {0};
    static const long long y[3] = {0, 1, 2};
    cgrt_dataset tr, te;
    cgrt_error err;
    t_write_npy(t_path(dir, "x_train.npy"), "<f4", 0, "(2, 4)", x, sizeof x);
    t_write_npy(t_path(dir, "y_train.npy"), "<i8", 0, "(3,)", y, sizeof y);
    cr_assert_eq(cgrt_load_data(&tiny_model, dir, &tr, &te, &err), -1);
    assert_msg(err, "y_train.npy", "holds 3 labels but");
    assert_msg(err, "x_train.npy", "holds 2 samples");
}

Test(npy, zero_dimension_beside_huge_ones)
{
    const char *dir = t_tmpdir();
    static const long long y[3] = {0, 1, 2};
    cgrt_dataset tr, te;
    cgrt_error err;
    t_write_npy(t_path(dir, "y_train.npy"), "<i8", 0, "(3,)", y, sizeof y);
    t_write_npy(t_path(dir, "x_train.npy"), "<f4", 0, "(0, 2147483647, 2147483647, 2147483647)", "", 0);
    cr_assert_eq(cgrt_load_data(&tiny_model, dir, &tr, &te, &err), -1);
    assert_msg(err, "x_train.npy", "shape (0, 2147483647, 2147483647, 2147483647) is absurd");
    t_write_npy(t_path(dir, "x_train.npy"), "<f4", 0, "(3, 0)", "", 0);
    cr_assert_eq(cgrt_load_data(&tiny_model, dir, &tr, &te, &err), -1);
    assert_msg(err, "x_train.npy", "samples have no values");
}

Test(npy, header_promising_more_than_the_file_holds)
{
    const char *dir = t_tmpdir();
    static const float x[4] = {1, 2, 3, 4};
    float *data;
    int rank, dims[CGRT_MAX_RANK];
    cgrt_error err;
    t_write_npy(t_path(dir, "lie.npy"), "<f4", 0, "(100000, 100000)", x, sizeof x);
    cr_assert_eq(cgrt_load_npy(t_path(dir, "lie.npy"), &data, &rank, dims, &err), -1);
    assert_msg(err, "lie.npy", "truncated: the header promises 10000000000 values (40000000000 bytes)");
    assert_msg(err, "lie.npy", "holds 16 bytes");
}

/* Writes a 16-byte IDX images header (n images of rows x cols) followed by
 * `have` pseudo-random data bytes (which gzip cannot shrink). */
static void write_idx_header(const char *path, unsigned n, unsigned rows, unsigned cols, size_t have, int gz)
{
    size_t len = 16 + have, i;
    unsigned char *b = calloc(1, len);
    unsigned v[4] = {0x803, n, rows, cols};
    cgrt_rng r = {5};
    for (i = 0; i < 16; i++)
        b[i] = (unsigned char)(v[i / 4] >> (24 - 8 * (i % 4)));
    for (i = 16; i < len; i++)
        b[i] = (unsigned char)(cgrt_rng_next(&r) >> 56);
    (gz ? t_write_gz : t_write)(path, b, len);
    free(b);
}

Test(idx, header_promising_more_than_the_file_holds_allocates_nothing)
{
    /* 60000 images of 466 x 466: 52 GB of floats promised by a 16-byte file */
    const char *dir = t_tmpdir(), *p = t_path(dir, "lie-idx3-ubyte"), *g = t_path(dir, "lie-idx3-ubyte.gz");
    cgrt_dataset d;
    cgrt_error err;
    write_idx_header(p, 60000, 466, 466, 0, 0);
    cr_assert_eq(cgrt_load_idx(p, t_path(dir, "no-labels"), 1.0f, &d, &err), -1);
    assert_msg(err, p, "truncated: the header promises 13029360000 bytes of images, the file holds 0");
    write_idx_header(g, 60000, 466, 466, 0, 1);
    cr_assert_eq(cgrt_load_idx(g, t_path(dir, "no-labels"), 1.0f, &d, &err), -1);
    assert_msg(err, g, "truncated: the header promises 13029360000 bytes of images");
    /* a gzip file can promise no more than deflate can expand its bytes to */
    assert_msg(err, g, "gzip file of");
    /* within that bound, the values come as they are inflated: the message says what the file held */
    write_idx_header(g, 1000, 100, 100, 2000000, 1);
    cr_assert_eq(cgrt_load_idx(g, t_path(dir, "no-labels"), 1.0f, &d, &err), -1);
    assert_msg(err, g, "truncated: the header promises 10000000 bytes of images, the file holds 2000000");
}

Test(idx, dimension_beyond_int_is_named)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "wide-idx3-ubyte");
    cgrt_dataset d;
    cgrt_error err;
    write_idx_header(p, 2, 0x80000000u, 1, 0, 0);
    cr_assert_eq(cgrt_load_idx(p, t_path(dir, "no-labels"), 1.0f, &d, &err), -1);
    assert_msg(err, p, "dimension 2 is 2147483648");
}

Test(load_data, binary_cross_entropy_labels_lie_in_0_1)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "b.csv");
    cgrt_model m = tiny_model;
    cgrt_dataset tr, te;
    cgrt_error err;
    m.label_kind = CGRT_LABEL_DENSE;
    m.label_width = 1;
    m.num_classes = 0;
    m.loss_name = "binary_crossentropy";
    t_write(p, "1,2,3,4,0\n1,2,3,4,0.25\n1,2,3,4,1\n", 33);
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), 0, "%s", err.msg);
    cgrt_dataset_free(&tr);
    cgrt_dataset_free(&te);
    t_write(p, "1,2,3,4,0\n1,2,3,4,1\n1,2,3,4,2\n", 30);
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), -1);
    assert_msg(err, "b.csv", "label 2 at sample 2 is outside 0..1");
    t_write(p, "1,2,3,4,-0.5\n", 13);
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), -1);
    assert_msg(err, "b.csv", "label -0.5 at sample 0 is outside 0..1");
    /* another loss takes any value */
    m.loss_name = "mean_squared_error";
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), 0, "%s", err.msg);
    cgrt_dataset_free(&tr);
    cgrt_dataset_free(&te);
}
