/* adapt.c: Keras' Normalization.adapt() for the training binaries. fit
 * computes each Normalization layer's statistics from the training part of
 * its data, after the test and validation splits, so that no held-out row
 * leaks into the model; a checkpoint keeps them, so evaluate, predict and
 * fit --weights use the saved ones and never recompute them. */
#include "rt_internal.h"

#include <stdlib.h>

/* The mean and population variance of each of a->features features of the
 * input a describes, over every row of d and every position, into mean and
 * var (two passes in double: the mean, then the squared deviations). */
static void feature_stats(const cgrt_adapt *a, const cgrt_dataset *d, double *mean, double *var)
{
    int f = a->features, per_row = a->in_count / f;
    double count = (double)d->n * per_row;
    for (int j = 0; j < f; j++)
        mean[j] = var[j] = 0.0;
    for (int r = 0; r < d->n; r++) {
        const float *x = d->x + (size_t)r * (size_t)d->features + a->in_offset;
        for (int k = 0; k < a->in_count; k++)
            mean[k % f] += x[k];
    }
    for (int j = 0; j < f; j++)
        mean[j] /= count;
    for (int r = 0; r < d->n; r++) {
        const float *x = d->x + (size_t)r * (size_t)d->features + a->in_offset;
        for (int k = 0; k < a->in_count; k++) {
            double dv = x[k] - mean[k % f];
            var[k % f] += dv * dv;
        }
    }
    for (int j = 0; j < f; j++)
        var[j] /= count;
}

/* Fills the statistics of every layer of m->adapt from train; -1 with err
 * naming the layer when train has no rows or does not hold its input. */
int cgrt_adapt_stats(const cgrt_model *m, float *params, const cgrt_dataset *train, cgrt_error *err)
{
    for (int i = 0; i < m->num_adapt; i++) {
        const cgrt_adapt *a = &m->adapt[i];
        if (train->n < 1)
            return rt_fail(err, "%s: no training rows to compute its mean and variance from (Keras' adapt)", a->layer);
        if (a->features < 1 || a->in_count % a->features || a->in_offset + a->in_count > train->features)
            return rt_fail(err, "%s: its input (floats %d to %d, %d features) does not fit the data's %d", a->layer,
                           a->in_offset, a->in_offset + a->in_count, a->features, train->features);
        double *st = rt_alloc_array(2 * (size_t)a->features, sizeof(double));
        if (!st)
            return rt_fail(err, "%s: out of memory for its statistics", a->layer);
        feature_stats(a, train, st, st + a->features);
        for (int j = 0; j < a->features; j++) {
            params[a->mean + (size_t)j] = (float)st[j];
            params[a->variance + (size_t)j] = (float)st[a->features + j];
        }
        free(st);
    }
    return 0;
}
