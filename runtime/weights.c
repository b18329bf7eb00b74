/* weights.c: the weights of the samples' losses (Keras' sample_weight and
 * class_weight). A dataset's w holds one weight per sample, or is NULL when
 * every weight is 1. Sample weights come from an NPY file of one float per
 * row of the data file (attached before any split, so they follow their
 * rows through the test hold-out, the validation split and the shuffles) or
 * from a CSV column (csv_data.c); class weights are given as "balanced" or
 * as class:weight pairs and multiply the training rows' weights. */
#include "rt_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The classes a class weight can name for m: its classes (one-hot or
 * sparse), 2 under binary cross-entropy with one label, 0 otherwise. */
int rt_weight_classes(const cgrt_model *m)
{
    if (m->num_outputs > 1)
        return 0;
    if (m->label_kind == CGRT_LABEL_SPARSE)
        return m->num_classes;
    if (m->label_width > 1 && m->loss_name && strcmp(m->loss_name, "categorical_crossentropy") == 0)
        return m->label_width; /* one-hot rows */
    if (m->label_width == 1 && m->loss_name && strcmp(m->loss_name, "binary_crossentropy") == 0)
        return 2;
    return 0;
}

/* The class of the label row y (m's labels, after the dataset checks):
 * the index for sparse labels, the argmax of a one-hot row, 0 or 1 for a
 * binary label (above 0.5: 1). */
static int class_of(const cgrt_model *m, const float *y)
{
    int c = 0;
    if (m->label_kind == CGRT_LABEL_SPARSE)
        return (int)y[0];
    if (m->label_width == 1)
        return y[0] > 0.5f;
    for (int j = 1; j < m->label_width; j++)
        if (y[j] > y[c])
            c = j;
    return c;
}

/* Keras' balanced weights (scikit-learn's compute_class_weight): class c
 * weighs n / (k * count_c) over the rows of train; a class without rows 1. */
static int balanced(const cgrt_model *m, const cgrt_dataset *train, int k, float *cw, cgrt_error *err)
{
    long *count = calloc((size_t)k, sizeof *count);
    if (!count)
        return rt_fail(err, "out of memory for the class counts");
    for (int i = 0; i < train->n; i++)
        count[class_of(m, train->y + (size_t)i * (size_t)train->label_width)]++;
    for (int c = 0; c < k; c++)
        cw[c] = count[c] ? (float)((double)train->n / ((double)k * (double)count[c])) : 1.0f;
    free(count);
    return 0;
}

/* Reads "C:W,C:W,..." into cw (k classes; a class not named weighs 1);
 * fails naming the pair that is not a class in 0..k-1 with a finite weight
 * of at least 0, or a class named twice. */
static int parse_pairs(const char *spec, int k, float *cw, cgrt_error *err)
{
    char *seen = calloc((size_t)k, 1);
    const char *p = spec;
    if (!seen)
        return rt_fail(err, "out of memory for the class weights");
    for (int c = 0; c < k; c++)
        cw[c] = 1.0f;
    while (*p) {
        char *end;
        size_t len = strcspn(p, ",");
        errno = 0;
        long c = strtol(p, &end, 10);
        int ok = end != p && *end == ':' && c >= 0 && c < k && !errno;
        double w = ok ? strtod(end + 1, &end) : 0.0;
        ok = ok && end == p + len && end[-1] != ':' && w >= 0.0 && w <= FLT_MAX && !errno;
        if (!ok || seen[c]) {
            free(seen);
            if (ok)
                return rt_fail(err, "--class-weight: class %ld is given twice", c);
            return rt_fail(err,
                           "--class-weight: '%.*s' is not CLASS:WEIGHT with a class in 0..%d and a weight of at "
                           "least 0 (or give 'balanced')",
                           (int)(len > 40 ? 40 : len), p, k - 1);
        }
        seen[c] = 1;
        cw[c] = (float)w;
        p += len + (p[len] == ',');
        if (p[-1] == ',' && !*p) { /* "1:2," */
            free(seen);
            return rt_fail(err, "--class-weight: '%s' ends with a comma", spec);
        }
    }
    free(seen);
    return 0;
}

/* The class weights of spec for m into cw (rt_weight_classes(m) floats):
 * "balanced" from the rows of train, or the pairs "C:W,...". Fails naming
 * the flag when m is not a classifier, takes no weights, or spec is wrong. */
int rt_class_weights(const cgrt_model *m, const char *spec, const cgrt_dataset *train, float *cw, cgrt_error *err)
{
    int k = rt_weight_classes(m);
    if (!m->train_step_weighted)
        return rt_fail(err, "--class-weight: model %s has a custom loss, which takes no weights", m->name);
    if (k < 1)
        return rt_fail(err,
                       "--class-weight: model %s is not a classifier with one output (class indices, one-hot "
                       "labels, or one binary label)",
                       m->name);
    if (strcmp(spec, "balanced") == 0)
        return balanced(m, train, k, cw, err);
    return parse_pairs(spec, k, cw, err);
}

/* Multiplies the weight of every sample of d by its class's cw (d->w,
 * allocated as ones when NULL); -1 when out of memory. */
int rt_apply_class_weights(const cgrt_model *m, cgrt_dataset *d, const float *cw, cgrt_error *err)
{
    if (!d->w && d->n > 0) {
        if (!(d->w = rt_alloc_array((size_t)d->n, sizeof(float))))
            return rt_fail(err, "out of memory for %d sample weights", d->n);
        for (int i = 0; i < d->n; i++)
            d->w[i] = 1.0f;
    }
    for (int i = 0; i < d->n; i++)
        d->w[i] *= cw[class_of(m, d->y + (size_t)i * (size_t)d->label_width)];
    return 0;
}

/* Checks that weight v of row `row` (0-based) is finite and at least 0;
 * what names its place ("FILE", "FILE:LINE"). */
int rt_check_weight(float v, const char *what, int row, cgrt_error *err)
{
    if (isfinite(v) && v >= 0.0f)
        return 0;
    return rt_fail(err, "%s: sample weight %g of row %d is %s", what, (double)v, row + 1,
                   isfinite(v) ? "negative" : "not a finite number");
}

/* Reads the NPY file at path (one float per sample: shape (n) or (n, 1))
 * into d->w; fails naming the file when its count is not d->n or a weight
 * is negative or not finite. */
int rt_attach_sample_weights(cgrt_dataset *d, const char *path, cgrt_error *err)
{
    float *w = NULL;
    int rank, dims[CGRT_MAX_RANK];
    long count;
    if (cgrt_load_npy(path, &w, &rank, dims, err) != 0)
        return -1;
    count = rank >= 1 ? dims[0] : 1;
    if (rank > 2 || (rank == 2 && dims[1] != 1)) {
        free(w);
        return rt_fail(err,
                       "%s: sample weights must be one float per row, shape (%d) or (%d, 1); this array has rank %d",
                       path, d->n, d->n, rank);
    }
    if (count != d->n) {
        free(w);
        return rt_fail(err, "%s: holds %ld sample weights, and the data file has %d rows", path, count, d->n);
    }
    for (int i = 0; i < d->n; i++)
        if (rt_check_weight(w[i], path, i, err) != 0) {
            free(w);
            return -1;
        }
    free(d->w);
    d->w = w;
    return 0;
}
