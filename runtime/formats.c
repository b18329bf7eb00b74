/* formats.c: the data-format table, and rt_load, the one place that decides
 * how a data path is read. Each format is one row: its name, a line that
 * describes it (for --help and messages), a probe that says whether a path
 * is of that format (by its suffix, its first bytes, the files of a folder
 * or the model's data spec), and a loader that reads it into an rt_loaded
 * and checks it against the model. Rows are asked in order and the first
 * that claims the path reads it, so the order settles overlaps: the time
 * series before anything (it reads any path as CSV), then the CSV with a
 * named label column (which claims any training path once a label column is
 * named, to refuse what is not such a file rather than ignore the name).
 *
 * Adding a format is adding its row and its reader (docs/adding-a-data-format.md). */
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RT_PATH_MAX 4096

/* ---- what the probes look at ------------------------------------------------- */

/* 1 when the path ends in one of the suffixes (NULL-terminated list). */
static int has_suffix(const rt_source *src, const char *const *suffixes)
{
    for (; *suffixes; suffixes++)
        if (rt_ends_with(src->path, *suffixes))
            return 1;
    return 0;
}

static const char *const csv_suffixes[] = {".csv", ".csv.gz", NULL};
static const char *const npy_suffixes[] = {".npy", ".npy.gz", NULL};

/* Writes DIR/NAME or DIR/NAME.gz into buf if that regular file exists; returns 1 if found. */
static int find_in_dir(const char *dir, const char *name, char *buf, size_t size)
{
    static const char *const ext[] = {"", ".gz"};
    size_t i;
    for (i = 0; i < 2; i++) {
        struct stat st;
        int n = snprintf(buf, size, "%s/%s%s", dir, name, ext[i]);
        if (n > 0 && (size_t)n < size && stat(buf, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

/* The files of a data set kept as a folder: training inputs and labels, and
 * optional test inputs and labels. */
typedef struct dir_layout {
    const char *train_x, *train_y, *test_x, *test_y;
} dir_layout;

static const dir_layout idx_layout = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                      "t10k-labels-idx1-ubyte"};
static const dir_layout npy_layout = {"x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy"};

/* 1 when src is a folder holding the training files of the layout. */
static int dir_has(const rt_source *src, const dir_layout *l)
{
    char xp[RT_PATH_MAX], yp[RT_PATH_MAX];
    return src->is_dir && find_in_dir(src->path, l->train_x, xp, sizeof xp) &&
           find_in_dir(src->path, l->train_y, yp, sizeof yp);
}

/* The model's input scale (0 means 1). */
static float scale_of(const rt_source *src)
{
    return src->m->data.scale == 0.0f ? 1.0f : src->m->data.scale;
}

/* A loader of an inputs file and a labels file (cgrt_load_idx, rt_load_npy_pair). */
typedef int (*pair_loader)(const char *xpath, const char *ypath, float scale, cgrt_dataset *out, cgrt_error *err);

/* Loads one labelled pair and checks it against the model. */
static int load_pair(const rt_source *src, pair_loader load, const char *xp, const char *yp, cgrt_dataset *d,
                     cgrt_error *err)
{
    if (load(xp, yp, scale_of(src), d, err) != 0)
        return -1;
    if (rt_check_dataset(src->m, d, xp, yp, err) != 0) {
        cgrt_dataset_free(d);
        return -1;
    }
    return 0;
}

/* Loads a folder of the layout: the training pair into out->train, the test
 * pair (when the folder has it) into out->test. */
static int load_dir(const rt_source *src, const dir_layout *l, pair_loader load, rt_loaded *out, cgrt_error *err)
{
    char xp[RT_PATH_MAX], yp[RT_PATH_MAX];
    if (!find_in_dir(src->path, l->train_x, xp, sizeof xp) || !find_in_dir(src->path, l->train_y, yp, sizeof yp))
        return rt_fail(err, "%s: directory holds no %s + %s", src->path, l->train_x, l->train_y);
    if (load_pair(src, load, xp, yp, &out->train, err) != 0)
        return -1;
    if (find_in_dir(src->path, l->test_x, xp, sizeof xp) && find_in_dir(src->path, l->test_y, yp, sizeof yp) &&
        load_pair(src, load, xp, yp, &out->test, err) != 0)
        return -1;
    return 0;
}

/* ---- the rows ------------------------------------------------------------------ */

/* Time series: the model's data spec has a window; any path is read as CSV. */
static int probe_series(const rt_source *src)
{
    return src->m->data.series.window > 0;
}

static int load_series(const rt_source *src, rt_loaded *out, cgrt_error *err)
{
    if (src->role == RT_ROLE_INPUT)
        return cgrt_read_series(src->path, &src->m->data.series, &out->series, err);
    return rt_load_series_data(src->m, src->path, &out->train, &out->val, &out->test, &out->series, err);
}

/* IDX: a folder of Fashion-MNIST's file names; for predict, a file whose
 * first bytes are an IDX magic number (0, 0, element type, rank 1..4). */
static int probe_idx(const rt_source *src)
{
    if (src->role != RT_ROLE_INPUT)
        return dir_has(src, &idx_layout);
    return src->head_len >= 4 && src->head[0] == 0 && src->head[1] == 0 && src->head[3] >= 1 && src->head[3] <= 4;
}

static int load_idx(const rt_source *src, rt_loaded *out, cgrt_error *err)
{
    if (src->role == RT_ROLE_INPUT)
        return rt_load_idx_images(src->path, scale_of(src), &out->train, err);
    return load_dir(src, &idx_layout, cgrt_load_idx, out, err);
}

/* NPY: a folder of x_train.npy + y_train.npy; for predict, a .npy file (or
 * one that starts with NPY's magic string). */
static int probe_npy(const rt_source *src)
{
    if (src->role != RT_ROLE_INPUT)
        return dir_has(src, &npy_layout);
    return has_suffix(src, npy_suffixes) || (src->head_len >= 6 && memcmp(src->head, "\x93NUMPY", 6) == 0);
}

static int load_npy(const rt_source *src, rt_loaded *out, cgrt_error *err)
{
    if (src->role == RT_ROLE_INPUT)
        return rt_load_npy_samples(src->path, scale_of(src), &out->train, err);
    return load_dir(src, &npy_layout, rt_load_npy_pair, out, err);
}

/* CSV whose header names the label column: the data spec (or --label-column)
 * names one. Training data must then be such a file; predict input may be
 * another format, which has no label column to drop. */
static int probe_csv_named(const rt_source *src)
{
    return src->m->data.label_column && (src->role != RT_ROLE_INPUT || has_suffix(src, csv_suffixes));
}

static int load_csv_named(const rt_source *src, rt_loaded *out, cgrt_error *err)
{
    const cgrt_model *m = src->m;
    int labels = src->role != RT_ROLE_INPUT;
    if (src->is_dir || !has_suffix(src, csv_suffixes))
        return rt_fail(err,
                       "%s: the labels are the column named \"%.100s\" of a CSV file with a header, and this is "
                       "not a .csv or .csv.gz file",
                       src->path, m->data.label_column);
    if (rt_load_csv_named(src->path, m->data.label_column, m->data.sample_weight_column, rt_model_classes(m), labels,
                          scale_of(src), &out->train, out->note, sizeof out->note, err) != 0)
        return -1;
    if (labels && rt_check_dataset(m, &out->train, src->path, src->path, err) != 0)
        return -1;
    return 0;
}

/* CSV: a .csv or .csv.gz file, the labels in its last columns (none for predict input). */
static int probe_csv(const rt_source *src)
{
    return !src->is_dir && has_suffix(src, csv_suffixes);
}

static int load_csv(const rt_source *src, rt_loaded *out, cgrt_error *err)
{
    const cgrt_model *m = src->m;
    int lw = m->label_kind == CGRT_LABEL_SPARSE ? 1 : m->label_width;
    if (src->role == RT_ROLE_INPUT)
        return cgrt_load_csv(src->path, 0, scale_of(src), &out->train, err);
    if (cgrt_load_csv(src->path, lw, scale_of(src), &out->train, err) != 0)
        return -1;
    return rt_check_dataset(m, &out->train, src->path, src->path, err);
}

/* The table, asked in this order. */
static const rt_format formats[] = {
    {"time series", "a CSV column cut into windows (.data.series)", probe_series, load_series},
    {"CSV with a label column", "a .csv[.gz] file whose header names the label column (.data.label, --label-column)",
     probe_csv_named, load_csv_named},
    {"IDX", "train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] in a folder (predict: an images file)",
     probe_idx, load_idx},
    {"NPY", "x_train.npy + y_train.npy in a folder (predict: a .npy[.gz] file)", probe_npy, load_npy},
    {"CSV", "a .csv[.gz] file, the labels in its last columns", probe_csv, load_csv},
};
#define NUM_FORMATS ((int)(sizeof formats / sizeof formats[0]))

/* ---- rt_load ------------------------------------------------------------------- */

/* Fills src for path: whether it is a folder, and a file's first bytes.
 * Fails (naming path) when it does not exist, or is a file that cannot be
 * read (not a regular file, corrupt gzip). */
static int source_init(rt_source *src, const cgrt_model *m, const char *path, int role, cgrt_error *err)
{
    struct stat st;
    rt_file f;
    long long got;
    memset(src, 0, sizeof *src);
    src->m = m;
    src->path = path;
    src->role = role;
    if (stat(path, &st) != 0)
        return rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    src->is_dir = S_ISDIR(st.st_mode);
    if (src->is_dir)
        return 0;
    if (rt_file_open(&f, path, err) != 0)
        return -1;
    got = rt_file_read(&f, src->head, sizeof src->head, err);
    rt_file_close(&f);
    if (got < 0)
        return -1;
    src->head_len = (int)got;
    return 0;
}

/* Fails naming path and listing what the table reads. */
static int no_format(const rt_source *src, cgrt_error *err)
{
    char list[480];
    size_t len = 0;
    int i;
    list[0] = '\0';
    for (i = 0; i < NUM_FORMATS && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s: %s", i ? "; " : "", formats[i].name,
                                formats[i].describe);
    if (src->is_dir)
        return rt_fail(err, "%s: directory holds none of the data this binary reads: %s", src->path, list);
    return rt_fail(err, "%s: not a data file this binary reads: %s", src->path, list);
}

/* Frees what a load gave. */
void rt_loaded_free(rt_loaded *d)
{
    cgrt_dataset_free(&d->train);
    cgrt_dataset_free(&d->val);
    cgrt_dataset_free(&d->test);
    cgrt_series_free(&d->series);
}

/* Reads path for m through the first row that claims it, then does what
 * the row leaves to every format: checks predict input's feature count,
 * attaches the sample weights of an NPY file to the training rows, and
 * holds out the test part of data without one (the weights follow their
 * rows). */
int rt_load(const cgrt_model *m, const char *path, int role, rt_loaded *out, cgrt_error *err)
{
    rt_source src;
    int i;
    memset(out, 0, sizeof *out);
    if (source_init(&src, m, path, role, err) != 0)
        return -1;
    for (i = 0; i < NUM_FORMATS && !formats[i].probe(&src); i++)
        ;
    if (i == NUM_FORMATS)
        return no_format(&src, err);
    if (formats[i].load(&src, out, err) != 0) {
        rt_loaded_free(out);
        return -1;
    }
    if (m->data.series.window > 0)
        return 0;
    if (role == RT_ROLE_INPUT && out->train.features != m->in_features) {
        rt_fail(err, "%s: samples have %d features, model %s expects %d", path, out->train.features, m->name,
                m->in_features);
        rt_loaded_free(out);
        return -1;
    }
    if (role == RT_ROLE_DATA && m->data.sample_weight_file &&
        rt_attach_sample_weights(&out->train, m->data.sample_weight_file, err) != 0) {
        rt_loaded_free(out);
        return -1;
    }
    if (role == RT_ROLE_DATA && out->test.n == 0 && m->data.test_split > 0.0f &&
        rt_hold_out_test(&out->train, m->data.test_split, &out->test, err) != 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rt_fail(err, "%s: the model's test split: %s", path, why);
        rt_loaded_free(out);
        return -1;
    }
    return 0;
}

/* Loads the data at path for m; hold_out 1 splits a test part off data without one. */
int rt_load_data(const cgrt_model *m, const char *path, int hold_out, cgrt_dataset *train, cgrt_dataset *test,
                 cgrt_error *err)
{
    rt_loaded d;
    if (rt_load(m, path, hold_out ? RT_ROLE_DATA : RT_ROLE_VALIDATION, &d, err) != 0) {
        memset(train, 0, sizeof *train);
        memset(test, 0, sizeof *test);
        return -1;
    }
    *train = d.train;
    *test = d.test;
    cgrt_dataset_free(&d.val);
    cgrt_series_free(&d.series);
    return 0;
}

/* Loads the training data at path for m, and its test split when it has one. */
int cgrt_load_data(const cgrt_model *m, const char *path, cgrt_dataset *train, cgrt_dataset *test, cgrt_error *err)
{
    return rt_load_data(m, path, 1, train, test, err);
}

/* Prints one line per format: what --data and --input take. */
void rt_formats_usage(FILE *f)
{
    int i;
    fprintf(f, "data formats (--data, --validation-data, --input):\n");
    for (i = 0; i < NUM_FORMATS; i++)
        fprintf(f, "  %s: %s\n", formats[i].name, formats[i].describe);
}
