/* progress.c: the Keras-style progress display of fit (command-line layer,
 * so it prints). verbose 1 on a terminal redraws one live line per epoch:
 *
 *   Epoch 1/5
 *   938/938 [==============================] - 3s 3ms/step - loss: 0.4932 - accuracy: 0.8254 - val_loss: ...
 *
 * verbose 2 (or 1 when stdout is not a terminal) prints one line per epoch:
 *
 *   Epoch 1/5 - 3s - loss: 0.4932 - accuracy: 0.8254 - val_loss: 0.4100 - val_accuracy: 0.8500 - 21034 samples/s
 *
 * verbose 0 prints nothing. */
#include "rt_internal.h"

#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define REDRAW_SECONDS 0.1

/* Sets up the display; the live bar only when verbose is 1 and out is a terminal. */
void rt_progress_init(rt_progress *p, int verbose, const cgrt_model *m, FILE *out)
{
    memset(p, 0, sizeof *p);
    p->verbose = verbose;
    p->num_metrics = m->num_metrics;
    p->metric_names = m->metric_names;
    p->out = out;
    p->live = verbose == 1 && isatty(fileno(out));
}

/* Formats a duration: "3s", "2:05" or "1:02:05". */
void rt_format_seconds(char *buf, size_t size, double seconds)
{
    long s = (long)(seconds + 0.5);
    if (s < 60)
        snprintf(buf, size, "%lds", s);
    else if (s < 3600)
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
    else
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* Formats the time of one step: "3ms/step", "250us/step" or "2s/step". */
static void format_step_time(char *buf, size_t size, double seconds)
{
    if (seconds >= 1.0)
        snprintf(buf, size, "%.0fs/step", seconds);
    else if (seconds >= 1e-3)
        snprintf(buf, size, "%.0fms/step", seconds * 1e3);
    else
        snprintf(buf, size, "%.0fus/step", seconds * 1e6);
}

/* Starts an epoch of `steps` batches: the live display prints its "Epoch e/E" line. */
void rt_progress_begin_epoch(rt_progress *p, int epoch, int epochs, int steps)
{
    p->epoch = epoch;
    p->epochs = epochs;
    p->steps = steps;
    p->t0 = rt_now();
    p->last_draw = 0.0;
    p->last_len = 0;
    if (p->live) {
        fprintf(p->out, "Epoch %d/%d\n", epoch, epochs);
        fflush(p->out);
    }
}

/* Writes the bar "[=====>....]" for step of steps into buf. */
static void format_bar(char *buf, int step, int steps)
{
    int done = (int)((double)BAR_WIDTH * step / steps), i;
    buf[0] = '[';
    for (i = 0; i < BAR_WIDTH; i++)
        buf[1 + i] = i < done - 1 ? '=' : i == done - 1 ? (step < steps ? '>' : '=') : '.';
    buf[1 + BAR_WIDTH] = ']';
    buf[2 + BAR_WIDTH] = '\0';
}

/* Redraws the live line after batch `step` (1-based) with the running means,
 * at most every REDRAW_SECONDS and always at the last step. */
void rt_progress_update(rt_progress *p, int step, double loss, const double *metrics)
{
    char line[1024], bar[BAR_WIDTH + 3], t[32], per[32];
    double now, elapsed;
    int n, i, width = snprintf(NULL, 0, "%d", p->steps);
    if (!p->live)
        return;
    now = rt_now();
    if (step < p->steps && now - p->last_draw < REDRAW_SECONDS)
        return;
    p->last_draw = now;
    elapsed = now - p->t0;
    format_bar(bar, step, p->steps);
    if (step < p->steps) {
        rt_format_seconds(t, sizeof t, elapsed / step * (p->steps - step));
        n = snprintf(line, sizeof line, "%*d/%d %s - ETA: %s - loss: %.4f", width, step, p->steps, bar, t, loss);
    } else {
        rt_format_seconds(t, sizeof t, elapsed);
        format_step_time(per, sizeof per, elapsed / p->steps);
        n = snprintf(line, sizeof line, "%*d/%d %s - %s %s - loss: %.4f", width, step, p->steps, bar, t, per, loss);
    }
    for (i = 0; i < p->num_metrics && n > 0 && (size_t)n < sizeof line; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, " - %s: %.4f", p->metric_names[i], metrics[i]);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    fprintf(p->out, "\r%s%*s", line, p->last_len > n ? p->last_len - n : 0, "");
    fflush(p->out);
    p->last_len = n;
}

/* Prints " - val_loss: x - val_<metric>: y" when the epoch had validation,
 * then " - lr: z" when the learning rate changed before the epoch (as
 * Keras' progress bar writes small values: 5.0000e-04). */
static void print_val(const rt_progress *p, const rt_epoch_stats *s)
{
    int i;
    if (s->has_val) {
        fprintf(p->out, " - val_loss: %.4f", s->val_loss);
        for (i = 0; i < p->num_metrics; i++)
            fprintf(p->out, " - val_%s: %.4f", p->metric_names[i], s->val_metric[i]);
    }
    if (s->lr_changed)
        fprintf(p->out, s->lr > 1e-3 ? " - lr: %.4f" : " - lr: %.4e", s->lr);
}

/* Ends an epoch: the live line gets the validation figures, verbose 2 its one line. */
void rt_progress_end_epoch(rt_progress *p, const rt_epoch_stats *s)
{
    char t[32];
    int i;
    if (p->verbose == 0)
        return;
    if (p->live) {
        print_val(p, s);
        fprintf(p->out, "\n");
    } else {
        rt_format_seconds(t, sizeof t, s->seconds);
        fprintf(p->out, "Epoch %d/%d - %s - loss: %.4f", p->epoch, p->epochs, t, s->loss);
        for (i = 0; i < p->num_metrics; i++)
            fprintf(p->out, " - %s: %.4f", p->metric_names[i], s->metric[i]);
        print_val(p, s);
        fprintf(p->out, " - %.0f samples/s\n", s->samples_per_sec);
    }
    p->last_len = 0;
    fflush(p->out);
}

/* Ends a live line that is still open, so a message can follow on its own line. */
void rt_progress_abort(rt_progress *p)
{
    if (p->live && p->last_len > 0) {
        fprintf(p->out, "\n");
        fflush(p->out);
    }
    p->last_len = 0;
}
