/* fit.c: the training loop (shuffled batches through m->train_step, running
 * means, timing, validation, history CSV, the stop on a non-finite loss)
 * with Keras' callbacks at the end of every epoch (checkpoints, or only the
 * best; early stopping and the best weights put back; the learning rate
 * reduced on a plateau: their decisions are callbacks.c's), and batched
 * evaluation.
 *
 * train_step and eval_step return the MEAN loss and metric of their batch; the
 * loop weights them by the batch size, so a short last batch counts for what
 * it holds. Data with sample weights (cgrt_dataset.w: class weights, sample
 * weights or both) goes through their _weighted forms, batch by batch with
 * the weights shuffled along with the rows. */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Copies the samples idx[0..b) of d into contiguous batch buffers x and y
 * (and their weights into w when d has weights). */
static void gather(const cgrt_dataset *d, const int *idx, int b, float *x, float *y, float *sw)
{
    size_t f = (size_t)d->features, w = (size_t)d->label_width;
    int i;
    for (i = 0; i < b; i++) {
        memcpy(x + (size_t)i * f, d->x + (size_t)idx[i] * f, f * sizeof(float));
        if (w)
            memcpy(y + (size_t)i * w, d->y + (size_t)idx[i] * w, w * sizeof(float));
        if (d->w)
            sw[i] = d->w[idx[i]];
    }
}

/* Evaluates state on d in batches of m->max_batch: the means of the loss
 * (each sample's loss times its weight when d has weights) and metrics. */
void rt_evaluate(const cgrt_model *m, void *state, const cgrt_dataset *d, double *loss, double *metrics)
{
    double sl = 0.0, sm[CGRT_MAX_METRICS] = {0.0};
    int i, k;
    for (i = 0; i < d->n; i += m->max_batch) {
        int b = d->n - i < m->max_batch ? d->n - i : m->max_batch;
        float l = 0.0f, mt[CGRT_MAX_METRICS] = {0.0f};
        const float *y = d->y ? d->y + (size_t)i * (size_t)d->label_width : NULL;
        if (d->w && m->eval_step_weighted)
            m->eval_step_weighted(state, b, d->x + (size_t)i * (size_t)d->features, y, d->w + i, &l, mt);
        else
            m->eval_step(state, b, d->x + (size_t)i * (size_t)d->features, y, &l, mt);
        sl += (double)l * b;
        for (k = 0; k < m->num_metrics; k++)
            sm[k] += (double)mt[k] * b;
    }
    *loss = d->n ? sl / d->n : 0.0;
    for (k = 0; k < m->num_metrics; k++)
        metrics[k] = d->n ? sm[k] / d->n : 0.0;
}

/* Room for a line of the history: a header of 2 * CGRT_MAX_METRICS names
 * of at most 64 bytes and their val_ prefixes, or a row of numbers. */
#define HISTORY_LINE 4096

/* The history's header (with an lr column when the learning rate follows a
 * schedule) into buf, its newline included. */
static void history_header(const cgrt_model *m, int has_lr, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "epoch,loss");
    int k;
    for (k = 0; k < m->num_metrics && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, ",%s", m->metric_names[k]);
    if (n < size)
        n += (size_t)snprintf(buf + n, size - n, ",val_loss");
    for (k = 0; k < m->num_metrics && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, ",val_%s", m->metric_names[k]);
    if (n < size)
        snprintf(buf + n, size - n, "%s,seconds,samples_per_sec\n", has_lr ? ",lr" : "");
}

/* One epoch's row of the history into buf, its newline included (validation cells empty without validation). */
static void history_line(const cgrt_model *m, int epoch, const rt_epoch_stats *s, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%d,%.6g", epoch, s->loss);
    int k;
    for (k = 0; k < m->num_metrics && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, ",%.6g", s->metric[k]);
    for (k = -1; k < m->num_metrics && n < size; k++) {
        if (!s->has_val)
            n += (size_t)snprintf(buf + n, size - n, ",");
        else
            n += (size_t)snprintf(buf + n, size - n, ",%.6g", k < 0 ? s->val_loss : s->val_metric[k]);
    }
    if (s->has_lr && n < size)
        n += (size_t)snprintf(buf + n, size - n, ",%.6g", s->lr);
    if (n < size)
        snprintf(buf + n, size - n, ",%.3f,%.1f\n", s->seconds, s->samples_per_sec);
}

/* Where one fit's history goes: the --history file and the rows --plot draws. */
typedef struct fit_history {
    FILE *f;      /* NULL: no --history */
    int plot;     /* 1: the lines are kept for --plot */
    rt_history h; /* the lines read back, as `cgrad plot` reads the file */
    int lines;
} fit_history;

/* Writes one line of the history to its file and feeds it to the rows --plot draws; -1 with err set. */
static int history_put(fit_history *fh, const rt_fit_opts *o, const char *line, cgrt_error *err)
{
    fh->lines++;
    if (fh->f && (fputs(line, fh->f) == EOF || fflush(fh->f) != 0 || ferror(fh->f)))
        return rt_fail(err, "%s: cannot write history: %s", o->history_path, strerror(errno));
    if (fh->plot && rt_history_line(&fh->h, line, line + strcspn(line, "\n"), fh->lines, err) != 0)
        return -1;
    return 0;
}

/* Opens the history file (when --history names one) and writes its header; -1 with err set on failure. */
static int history_open(const cgrt_model *m, const rt_fit_opts *o, fit_history *fh, cgrt_error *err)
{
    char line[HISTORY_LINE];
    memset(fh, 0, sizeof *fh);
    fh->plot = o->plot_path != NULL;
    rt_history_init(&fh->h, o->history_path ? o->history_path : o->plot_path);
    if (!o->history_path && !fh->plot)
        return 0;
    if (o->history_path && !(fh->f = fopen(o->history_path, "w")))
        return rt_fail(err, "%s: cannot write history: %s", o->history_path, strerror(errno));
    history_header(m, o->cb.reduce_lr_factor > 0.0 || m->learning_rate, line, sizeof line);
    return history_put(fh, o, line, err);
}

/* Appends one epoch's row to the history. */
static int history_row(fit_history *fh, const cgrt_model *m, const rt_fit_opts *o, int epoch, const rt_epoch_stats *s,
                       cgrt_error *err)
{
    char line[HISTORY_LINE];
    if (!fh->f && !fh->plot)
        return 0;
    history_line(m, epoch, s, line, sizeof line);
    return history_put(fh, o, line, err);
}

/* Closes the history; with --plot draws the epochs it holds when training
 * ended well or stopped on a non-finite loss (rc), keeping rc's message. */
static int history_close(fit_history *fh, const cgrt_model *m, const rt_fit_opts *o, int rc, cgrt_error *err)
{
    cgrt_error plot_err;
    if (fh->f)
        fclose(fh->f);
    if (fh->plot && (rc == RT_FIT_OK || rc == RT_FIT_NONFINITE) && fh->h.rows > 0 &&
        rt_plot_svg(&fh->h, m->name, o->plot_path, &plot_err) != 0 && rc == RT_FIT_OK) {
        *err = plot_err;
        rc = RT_FIT_ERROR;
    }
    rt_history_free(&fh->h);
    return rc;
}

/* Scratch buffers of one fit. */
typedef struct fit_bufs {
    int *idx;
    float *x, *y, *w; /* w: the batch's sample weights, when the data has weights */
} fit_bufs;

/* Allocates the index permutation and the batch buffers; -1 when out of memory. */
static int bufs_alloc(fit_bufs *b, const cgrt_model *m, const cgrt_dataset *train, cgrt_error *err)
{
    int i;
    b->idx = rt_alloc_array((size_t)train->n, sizeof(int));
    b->x = rt_alloc_array((size_t)m->max_batch * (size_t)train->features, sizeof(float));
    b->y = rt_alloc_array((size_t)m->max_batch * (size_t)(train->label_width ? train->label_width : 1), sizeof(float));
    b->w = train->w ? rt_alloc_array((size_t)m->max_batch, sizeof(float)) : NULL;
    if (!b->idx || !b->x || !b->y || (train->w && !b->w))
        return rt_fail(err, "out of memory for the batch buffers");
    for (i = 0; i < train->n; i++)
        b->idx[i] = i;
    return 0;
}

/* Runs one training pass; fills s->loss, metric, seconds, samples_per_sec.
 * Returns RT_FIT_NONFINITE (err set) when a batch loss is nan or inf. */
static int train_epoch(const cgrt_model *m, void *state, const rt_fit_opts *o, const cgrt_dataset *train, fit_bufs *b,
                       int epoch, rt_progress *p, rt_epoch_stats *s, cgrt_error *err)
{
    int steps = (train->n + o->batch - 1) / o->batch, k, j;
    double sl = 0.0, sm[CGRT_MAX_METRICS] = {0.0}, mean[CGRT_MAX_METRICS], t0 = rt_now();
    rt_progress_begin_epoch(p, epoch, o->epochs, steps);
    for (k = 0; k < steps; k++) {
        int start = k * o->batch, n = train->n - start < o->batch ? train->n - start : o->batch;
        float loss = 0.0f, metrics[CGRT_MAX_METRICS] = {0.0f};
        gather(train, b->idx + start, n, b->x, b->y, b->w);
        if (train->w)
            m->train_step_weighted(state, n, b->x, b->y, b->w, &loss, metrics);
        else
            m->train_step(state, n, b->x, b->y, &loss, metrics);
        if (!isfinite(loss)) {
            rt_progress_abort(p);
            rt_fail(err, "stopping: loss is %s at epoch %d, batch %d", isnan(loss) ? "nan" : "inf", epoch, k + 1);
            return RT_FIT_NONFINITE;
        }
        sl += (double)loss * n;
        for (j = 0; j < m->num_metrics; j++) {
            sm[j] += (double)metrics[j] * n;
            mean[j] = sm[j] / (start + n);
        }
        rt_progress_update(p, k + 1, sl / (start + n), mean);
    }
    s->seconds = rt_now() - t0;
    s->loss = sl / train->n;
    for (j = 0; j < m->num_metrics; j++)
        s->metric[j] = sm[j] / train->n;
    s->samples_per_sec = s->seconds > 0.0 ? train->n / s->seconds : 0.0;
    return RT_FIT_OK;
}

/* What the callbacks keep across the epochs of one fit. */
typedef struct fit_cb {
    rt_early_stop es;
    rt_plateau plateau;
    double ckpt_best;          /* the best monitored value a checkpoint was saved for (--save-best-only) */
    float *best_params;        /* --restore-best-weights: the parameters of the best epoch */
    rt_epoch_stats best_stats; /* and its figures, which name the last checkpoint */
    float lr;                  /* the learning rate in effect */
} fit_cb;

/* Sets up the callbacks of o; -1 with err set when out of memory or the model cannot change its rate. */
static int cb_begin(const cgrt_model *m, const rt_fit_opts *o, fit_cb *c, cgrt_error *err)
{
    const rt_callback_opts *cb = &o->cb;
    memset(c, 0, sizeof *c);
    rt_early_stop_init(&c->es, cb->max_mode, cb->min_delta, cb->patience);
    rt_plateau_init(&c->plateau, cb->max_mode, cb->reduce_lr_factor, cb->reduce_lr_patience, cb->reduce_lr_min_delta,
                    cb->reduce_lr_cooldown, cb->min_lr);
    c->ckpt_best = cb->max_mode ? -INFINITY : INFINITY;
    c->lr = o->lr;
    if (cb->reduce_lr_factor > 0.0 && !m->set_lr)
        return rt_fail(err, "model %s cannot change its learning rate (no set_lr)", m->name);
    if (cb->restore_best_weights &&
        !(c->best_params = rt_alloc_array(m->param_floats ? m->param_floats : 1, sizeof(float))))
        return rt_fail(err, "out of memory for the best epoch's weights");
    return 0;
}

/* Writes the checkpoint of epoch (its figures s; NULL before training) under the name --save gives it. */
static int save(const cgrt_model *m, void *state, const rt_fit_opts *o, int epoch, const rt_epoch_stats *s,
                cgrt_error *err)
{
    char path[4096];
    if (rt_checkpoint_name(o->save_path, m, epoch, s, path, sizeof path, err) != 0)
        return -1;
    return cgrt_save_checkpoint_series(m, m->param_block(state), o->series_stats, path, err);
}

/* The callbacks after epoch (figures s), in Keras' order: the checkpoint
 * (after every epoch, or with --save-best-only when the monitored value beats
 * every earlier one), early stopping (keeping the best epoch's weights), the
 * learning-rate schedule. Returns 1 to stop, 0 to go on, -1 on error. */
static int cb_end_epoch(const cgrt_model *m, void *state, const rt_fit_opts *o, fit_cb *c, int epoch,
                        const rt_epoch_stats *s, cgrt_error *err)
{
    const rt_callback_opts *cb = &o->cb;
    double v = rt_column_value(s, cb->monitor);
    int better = rt_improves(cb->max_mode, 0.0, v, c->ckpt_best), es;
    if (better)
        c->ckpt_best = v;
    if (o->save_path && (better || !cb->save_best_only) && save(m, state, o, epoch, s, err) != 0)
        return -1;
    es = rt_early_stop_update(&c->es, epoch, v);
    if ((es & RT_ES_BEST) && c->best_params) {
        memcpy(c->best_params, m->param_block(state), m->param_floats * sizeof(float));
        c->best_stats = *s;
    }
    if ((es & RT_ES_STOP) && o->verbose > 0)
        printf("early stopping: %s did not improve for %d epochs\n", cb->monitor_name, c->es.wait);
    if (cb->reduce_lr_factor > 0.0) {
        float next = rt_plateau_update(&c->plateau, v, c->lr);
        if (next != c->lr) {
            m->set_lr(state, next);
            if (o->verbose > 0)
                printf("Epoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", epoch, (double)next);
            c->lr = next;
        }
    }
    fflush(stdout);
    return (es & RT_ES_STOP) != 0;
}

/* --restore-best-weights when training ends (early or after the last
 * epoch, as Keras 3 does): puts back the best epoch's weights and, when they
 * are not the last epoch's, writes its checkpoint again. */
static int cb_end(const cgrt_model *m, void *state, const rt_fit_opts *o, fit_cb *c, int last, cgrt_error *err)
{
    if (!c->best_params || c->es.best_epoch == 0)
        return 0;
    memcpy(m->param_block(state), c->best_params, m->param_floats * sizeof(float));
    if (o->verbose > 0) {
        printf("Restoring model weights from the end of the best epoch: %d.\n", c->es.best_epoch);
        fflush(stdout);
    }
    if (o->save_path && c->es.best_epoch != last)
        return save(m, state, o, c->es.best_epoch, &c->best_stats, err);
    return 0;
}

/* Trains for o->epochs (or until early stopping), validating on val when it
 * holds samples, with the callbacks of o->cb; with 0 epochs only writes the
 * initial weights to --save. */
int rt_fit(const cgrt_model *m, void *state, const rt_fit_opts *o, const cgrt_dataset *train, const cgrt_dataset *val,
           cgrt_error *err)
{
    fit_bufs b = {NULL, NULL, NULL, NULL};
    fit_history hist;
    rt_progress p;
    cgrt_rng rng;
    fit_cb c;
    int epoch, stop = 0, rc = RT_FIT_ERROR;
    float prev_lr;
    rng.s = o->seed;
    rt_progress_init(&p, o->verbose, m, stdout);
    memset(&hist, 0, sizeof hist);
    if (cb_begin(m, o, &c, err) != 0 || bufs_alloc(&b, m, train, err) != 0 || history_open(m, o, &hist, err) != 0)
        goto done;
    if (o->epochs == 0 && o->save_path && save(m, state, o, 0, NULL, err) != 0)
        goto done;
    prev_lr = c.lr;
    for (epoch = 1; epoch <= o->epochs && !stop; epoch++) {
        rt_epoch_stats s;
        memset(&s, 0, sizeof s);
        s.lr = c.lr;
        s.has_lr = o->cb.reduce_lr_factor > 0.0;
        s.lr_changed = c.lr != prev_lr;
        prev_lr = c.lr;
        if (o->cb.shuffle)
            cgrt_shuffle(b.idx, train->n, &rng);
        rc = train_epoch(m, state, o, train, &b, epoch, &p, &s, err);
        if (rc != RT_FIT_OK)
            goto done;
        if (m->learning_rate) /* a schedule: the rate of the epoch's last step */
            s.lr = m->learning_rate(epoch * ((train->n + o->batch - 1) / o->batch) - 1), s.has_lr = 1;
        rc = RT_FIT_ERROR;
        if (val && val->n > 0) {
            s.has_val = 1;
            rt_evaluate(m, state, val, &s.val_loss, s.val_metric);
        }
        rt_progress_end_epoch(&p, &s);
        if (history_row(&hist, m, o, epoch, &s, err) != 0)
            goto done;
        if ((stop = cb_end_epoch(m, state, o, &c, epoch, &s, err)) < 0)
            goto done;
    }
    if (cb_end(m, state, o, &c, epoch - 1, err) != 0)
        goto done;
    rc = RT_FIT_OK;
done:
    rc = history_close(&hist, m, o, rc, err);
    free(c.best_params);
    free(b.idx);
    free(b.x);
    free(b.y);
    free(b.w);
    return rc;
}
