/* dataset.c: datasets in memory, whatever format they came from: their
 * lifetime, their checks against a model (feature counts, class indices,
 * class ranges, one-hot labels, probabilities), the seeded hold-out of a test
 * part, tail splits, the seeded generator and the Fisher-Yates shuffle. The
 * loaders (data.c, csv_data.c, series.c) fill datasets; nothing here reads a
 * file. */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- datasets -------------------------------------------------------------- */

/* Frees the arrays of d and zeroes it. */
void cgrt_dataset_free(cgrt_dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    free(d->w);
    memset(d, 0, sizeof *d);
}

/* Allocates x (and y if label_width > 0) for n samples; -1 with err set when out of memory. */
int rt_dataset_alloc(cgrt_dataset *d, int n, int features, int label_width, const char *path, cgrt_error *err)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->features = features;
    d->label_width = label_width;
    d->x = rt_alloc_array((size_t)n * (size_t)features, sizeof(float));
    if (label_width > 0)
        d->y = rt_alloc_array((size_t)n * (size_t)label_width, sizeof(float));
    if (!d->x || (label_width > 0 && !d->y)) {
        cgrt_dataset_free(d);
        return rt_fail(err, "%s: out of memory for %d samples", path, n);
    }
    return 0;
}

/* ---- checks against the model ---------------------------------------------- */

/* Expands class-index labels into one-hot rows of width w (for dense-label models). */
static int one_hot(cgrt_dataset *d, int w, const char *path, cgrt_error *err)
{
    float *y = rt_alloc_array((size_t)d->n * (size_t)w, sizeof(float));
    int i;
    if (!y)
        return rt_fail(err, "%s: out of memory", path);
    memset(y, 0, (size_t)d->n * (size_t)w * sizeof(float));
    for (i = 0; i < d->n; i++)
        y[(size_t)i * (size_t)w + (size_t)d->y[i]] = 1.0f;
    free(d->y);
    d->y = y;
    d->label_width = w;
    return 0;
}

/* Checks that label column col of every sample is a class index in [0, k);
 * names the first that is not (and the output, when given). */
static int check_class_column(const cgrt_dataset *d, int col, const char *output, int k, const char *path,
                              cgrt_error *err)
{
    int i;
    for (i = 0; i < d->n; i++) {
        float v = d->y[(size_t)i * (size_t)d->label_width + (size_t)col];
        if (!(v >= 0.0f && v < (float)k))
            return rt_fail(err, "%s: label %g at sample %d%s%s is outside 0..%d", path, (double)v, i,
                           output ? " for output " : "", output ? output : "", k - 1);
        if (v != floorf(v))
            return rt_fail(err, "%s: label %g at sample %d%s%s is not a class index (an integer in 0..%d)", path,
                           (double)v, i, output ? " for output " : "", output ? output : "", k - 1);
    }
    return 0;
}

/* Checks that every label of d lies in [0, 1], as binary cross-entropy needs
 * (it would train silently towards a label of 2); names the first that does not. */
static int check_probabilities(const cgrt_dataset *d, const char *path, cgrt_error *err)
{
    size_t i, w = (size_t)d->label_width, n = (size_t)d->n * w;
    char col[48] = "";
    for (i = 0; i < n; i++) {
        float v = d->y[i];
        if (v >= 0.0f && v <= 1.0f)
            continue;
        if (w > 1)
            snprintf(col, sizeof col, " (label column %zu)", i % w);
        return rt_fail(err, "%s: label %g at sample %zu%s is outside 0..1 (binary cross-entropy takes probabilities)",
                       path, (double)v, i / w, col);
    }
    return 0;
}

/* Checks that every label of d is a class index in [0, k); names the first that is not. */
static int check_class_indices(const cgrt_dataset *d, int k, const char *path, cgrt_error *err)
{
    return check_class_column(d, 0, NULL, k, path, err);
}

/* Keeps the samples whose class index lies in [lo, hi], relabelled 0..hi-lo
 * (the data spec's class_range: a model trained on some of the classes). */
static int keep_classes(cgrt_dataset *d, int lo, int hi, const char *path, cgrt_error *err)
{
    int i, k = 0;
    size_t f = (size_t)d->features;
    if (!d->y || d->label_width != 1)
        return rt_fail(err, "%s: a class range needs one class index per sample, the labels have %d values", path,
                       d->label_width);
    for (i = 0; i < d->n; i++) {
        float v = d->y[i];
        if (!(v >= (float)lo && v <= (float)hi))
            continue;
        memmove(d->x + (size_t)k * f, d->x + (size_t)i * f, f * sizeof(float));
        if (d->w)
            d->w[k] = d->w[i];
        d->y[k++] = v - (float)lo;
    }
    if (k == 0)
        return rt_fail(err, "%s: no sample has a class in %d..%d", path, lo, hi);
    d->n = k;
    return 0;
}

/* Checks features and labels of d against the model (converting class
 * indices to one-hot rows for dense-label classifiers). */
int rt_check_dataset(const cgrt_model *m, cgrt_dataset *d, const char *xpath, const char *ypath, cgrt_error *err)
{
    if (m->data.class_range[1] > 0 && d->y &&
        keep_classes(d, m->data.class_range[0], m->data.class_range[1], ypath, err) != 0)
        return -1;
    if (d->features != m->in_features)
        return rt_fail(err, "%s: samples have %d features, model %s expects %d", xpath, d->features, m->name,
                       m->in_features);
    if (m->label_kind == CGRT_LABEL_SPARSE) {
        if (d->label_width != 1)
            return rt_fail(err, "%s: labels have %d values per sample, model %s expects 1 class index", ypath,
                           d->label_width, m->name);
        return check_class_indices(d, m->num_classes, ypath, err);
    }
    if (d->label_width == 1 && m->label_width > 1 && m->num_classes == m->label_width) {
        if (check_class_indices(d, m->num_classes, ypath, err) != 0)
            return -1;
        return one_hot(d, m->label_width, ypath, err);
    }
    if (d->label_width != m->label_width)
        return rt_fail(err, "%s: labels have %d values per sample, model %s expects %d", ypath, d->label_width, m->name,
                       m->label_width);
    if (m->loss_name && strcmp(m->loss_name, "binary_crossentropy") == 0)
        return check_probabilities(d, ypath, err);
    if (m->num_outputs > 1) { /* several outputs: each class-index column in its range */
        int k, col = 0;
        for (k = 0; k < m->num_outputs; k++) {
            if (m->outputs[k].num_classes > 0 &&
                check_class_column(d, col, m->outputs[k].name, m->outputs[k].num_classes, ypath, err) != 0)
                return -1;
            col += m->outputs[k].label_width;
        }
    }
    return 0;
}

/* The classes a file's labels may name for m (0: its labels are not classes). */
int rt_model_classes(const cgrt_model *m)
{
    int classes = 0;
    if (m->label_kind == CGRT_LABEL_SPARSE)
        classes = m->num_classes;
    else if (m->label_width > 1 && m->num_classes == m->label_width)
        classes = m->num_classes;
    else if (m->label_width == 1 && m->loss_name && strcmp(m->loss_name, "binary_crossentropy") == 0)
        return 2;
    if (classes > 0 && m->data.class_range[1] > 0) /* the file numbers classes 0..hi; the model keeps lo..hi */
        return m->data.class_range[1] + 1;
    return classes;
}

/* ---- splits, generator, shuffle --------------------------------------------- */

/* Reorders the samples of d (and their weights) by a Fisher-Yates permutation drawn from seed. */
int rt_permute_rows(cgrt_dataset *d, uint64_t seed, cgrt_error *err)
{
    int *idx = rt_alloc_array((size_t)d->n, sizeof(int));
    float *x = rt_alloc_array((size_t)d->n * (size_t)d->features, sizeof(float));
    float *y = d->y ? rt_alloc_array((size_t)d->n * (size_t)d->label_width, sizeof(float)) : NULL;
    float *w = d->w ? rt_alloc_array((size_t)d->n, sizeof(float)) : NULL;
    if (!idx || !x || (d->y && !y) || (d->w && !w)) {
        free(idx), free(x), free(y), free(w);
        return rt_fail(err, "out of memory shuffling %d samples", d->n);
    }
    cgrt_rng rng = {seed};
    for (int i = 0; i < d->n; i++)
        idx[i] = i;
    cgrt_shuffle(idx, d->n, &rng);
    for (int i = 0; i < d->n; i++) {
        memcpy(x + (size_t)i * (size_t)d->features, d->x + (size_t)idx[i] * (size_t)d->features,
               sizeof(float) * (size_t)d->features);
        if (y)
            memcpy(y + (size_t)i * (size_t)d->label_width, d->y + (size_t)idx[i] * (size_t)d->label_width,
                   sizeof(float) * (size_t)d->label_width);
        if (w)
            w[i] = d->w[idx[i]];
    }
    free(idx);
    free(d->x);
    d->x = x;
    if (y) {
        free(d->y);
        d->y = y;
    }
    if (w) {
        free(d->w);
        d->w = w;
    }
    return 0;
}

/* Moves a seeded random `fraction` of train into test. Files are often
 * ordered (by writer, by class): the test part is a random sample, the same
 * on every run whatever --seed says. */
int rt_hold_out_test(cgrt_dataset *train, float fraction, cgrt_dataset *test, cgrt_error *err)
{
    if (rt_permute_rows(train, 20240601u, err) != 0 || cgrt_split_tail(train, fraction, test, err) != 0)
        return -1;
    return 0;
}

/* Moves a copy of the last `fraction` of d (their weights too) into val and shrinks d. */
int cgrt_split_tail(cgrt_dataset *d, float fraction, cgrt_dataset *val, cgrt_error *err)
{
    int keep, k;
    memset(val, 0, sizeof *val);
    if (!(fraction > 0.0f && fraction < 1.0f))
        return rt_fail(err, "split fraction %g is not between 0 and 1", (double)fraction);
    k = (int)((double)d->n * (double)fraction + 0.5);
    keep = d->n - k;
    if (k < 1 || keep < 1)
        return rt_fail(err, "a split of %g of %d samples leaves one part empty", (double)fraction, d->n);
    if (rt_dataset_alloc(val, k, d->features, d->y ? d->label_width : 0, "split", err) != 0)
        return -1;
    val->label_width = d->label_width;
    memcpy(val->x, d->x + (size_t)keep * (size_t)d->features, (size_t)k * (size_t)d->features * sizeof(float));
    if (d->y)
        memcpy(val->y, d->y + (size_t)keep * (size_t)d->label_width,
               (size_t)k * (size_t)d->label_width * sizeof(float));
    if (d->w) {
        if (!(val->w = rt_alloc_array((size_t)k, sizeof(float)))) {
            cgrt_dataset_free(val);
            return rt_fail(err, "split: out of memory for %d sample weights", k);
        }
        memcpy(val->w, d->w + keep, (size_t)k * sizeof(float));
    }
    d->n = keep;
    return 0;
}

/* Returns the next 64 random bits (splitmix64). */
uint64_t cgrt_rng_next(cgrt_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Shuffles idx[0..n) in place (Fisher-Yates). */
void cgrt_shuffle(int *idx, int n, cgrt_rng *r)
{
    int i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)(((cgrt_rng_next(r) >> 32) * (uint64_t)(i + 1)) >> 32);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
