/* callbacks.c: the decisions of fit's callbacks, made by Keras' rules:
 * EarlyStopping (min_delta, patience, restore_best_weights), the
 * improvement test of ModelCheckpoint(save_best_only), ReduceLROnPlateau
 * (factor, patience, min_delta, cooldown, min_lr), the file names of
 * checkpoints with format fields ({epoch:02d}, {val_loss:.4f}), and the
 * resolution of fit's flags into them. The training loop (fit.c) feeds
 * them every epoch's figures; nothing here prints. */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- history columns and the improvement test ----------------------------------- */

/* Finds the history column named name[0..len) of m into *col; 0, or -1 when m has none. */
int rt_find_column(const cgrt_model *m, const char *name, size_t len, rt_column *col)
{
    int k;
    col->val = len > 4 && strncmp(name, "val_", 4) == 0;
    col->metric = -1;
    if (col->val)
        name += 4, len -= 4;
    if (len == 4 && strncmp(name, "loss", 4) == 0)
        return 0;
    for (k = 0; k < m->num_metrics; k++)
        if (strlen(m->metric_names[k]) == len && strncmp(name, m->metric_names[k], len) == 0) {
            col->metric = k;
            return 0;
        }
    return -1;
}

/* The value of column col in the figures of one epoch. */
double rt_column_value(const rt_epoch_stats *s, rt_column col)
{
    if (col.val)
        return col.metric < 0 ? s->val_loss : s->val_metric[col.metric];
    return col.metric < 0 ? s->loss : s->metric[col.metric];
}

/* 1 when name ends with suffix. */
static int ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && strcmp(name + n - k, suffix) == 0;
}

/* 1 when a quantity named name improves upwards under mode: Keras' auto
 * mode takes names ending in "accuracy", "acc" or "auc" for such. */
int rt_mode_is_max(int mode, const char *name)
{
    if (mode != CGRT_MODE_AUTO)
        return mode == CGRT_MODE_MAX;
    return ends_with(name, "accuracy") || ends_with(name, "acc") || ends_with(name, "auc");
}

/* Keras' rule: current improves on best when it is lower than best - min_delta
 * (min mode) or higher than best + min_delta (max mode); NaN never does. */
int rt_improves(int max_mode, double min_delta, double current, double best)
{
    return max_mode ? current - min_delta > best : current + min_delta < best;
}

/* ---- EarlyStopping ---------------------------------------------------------------- */

/* Starts early stopping with no best value yet. */
void rt_early_stop_init(rt_early_stop *es, int max_mode, double min_delta, int patience)
{
    memset(es, 0, sizeof *es);
    es->max_mode = max_mode;
    es->min_delta = min_delta;
    es->patience = patience;
    es->best = max_mode ? -INFINITY : INFINITY;
}

/* Keras' on_epoch_end: the wait grows by one, an improvement makes the epoch
 * the best and the wait 0; patience exhausted after the first epoch stops.
 * The first epoch is the best until one improves (Keras keeps its weights
 * even when its value is NaN). Returns RT_ES_* bits. */
int rt_early_stop_update(rt_early_stop *es, int epoch, double current)
{
    int first = es->best_epoch == 0;
    es->wait++;
    if (rt_improves(es->max_mode, es->min_delta, current, es->best)) {
        es->best = current;
        es->best_epoch = epoch;
        es->wait = 0;
        return RT_ES_BEST;
    }
    if (first)
        es->best_epoch = epoch;
    if (es->patience > 0 && es->wait >= es->patience && epoch > 1)
        return RT_ES_STOP | (first ? RT_ES_BEST : 0);
    return first ? RT_ES_BEST : 0;
}

/* ---- ReduceLROnPlateau ------------------------------------------------------------ */

/* Starts the schedule with no best value yet and no cooldown. */
void rt_plateau_init(rt_plateau *p, int max_mode, double factor, int patience, double min_delta, int cooldown,
                     double min_lr)
{
    memset(p, 0, sizeof *p);
    p->max_mode = max_mode;
    p->factor = factor;
    p->patience = patience;
    p->min_delta = min_delta;
    p->cooldown = cooldown;
    p->min_lr = min_lr;
    p->best = max_mode ? -INFINITY : INFINITY;
}

/* Keras' on_epoch_end: a cooldown epoch counts the cooldown down and clears
 * the wait; an improvement becomes the best and clears the wait; otherwise,
 * outside a cooldown, the wait grows, and at patience the rate (when above
 * min_lr) becomes max(lr * factor, min_lr) in float32 arithmetic, as Keras
 * computes it, and the cooldown starts. Returns the next epoch's rate. */
float rt_plateau_update(rt_plateau *p, double current, float lr)
{
    if (p->cooldown_counter > 0) {
        p->cooldown_counter--;
        p->wait = 0;
    }
    if (rt_improves(p->max_mode, p->min_delta, current, p->best)) {
        p->best = current;
        p->wait = 0;
    } else if (p->cooldown_counter == 0 && ++p->wait >= p->patience && lr > (float)p->min_lr) {
        float next = lr * (float)p->factor;
        p->cooldown_counter = p->cooldown;
        p->wait = 0;
        return next > (float)p->min_lr ? next : (float)p->min_lr;
    }
    return lr;
}

/* ---- checkpoint names --------------------------------------------------------------- */

/* Writes v as Python's str() of a float writes it: the shortest decimal that
 * reads back as v, fixed-point with at least one decimal for exponents -4 to
 * 15, else scientific ("0.25", "1200.0", "1e-05"). */
static void python_repr(char *buf, size_t size, double v)
{
    char e[40];
    int p, x;
    if (!isfinite(v)) {
        snprintf(buf, size, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    for (p = 1; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    x = atoi(strchr(e, 'e') + 1);
    if (x < -4 || x >= 16)
        snprintf(buf, size, "%s", e);
    else
        snprintf(buf, size, "%.*f", p - 1 - x > 1 ? p - 1 - x : 1, v);
}

/* Formats v by the Python format spec [spec, end): [0][width][.precision][type],
 * type d (integers only), f, e, g or none (an integer's digits, a float's
 * str()). is_int: v is the epoch. Returns 0, or -1 for a spec outside that. */
static int format_spec(char *buf, size_t size, const char *spec, const char *end, double v, int is_int)
{
    int zero = 0, width = 0, prec = -1;
    char type = 0, fmt[16], tmp[64];
    if (spec < end && *spec == '0')
        zero = 1, spec++;
    while (spec < end && *spec >= '0' && *spec <= '9' && width < 1000)
        width = width * 10 + (*spec++ - '0');
    if (spec < end && *spec == '.') {
        for (prec = 0, spec++; spec < end && *spec >= '0' && *spec <= '9' && prec < 100; spec++)
            prec = prec * 10 + (*spec - '0');
        if (spec[-1] == '.')
            return -1;
    }
    if (spec < end && strchr("dfeg", *spec))
        type = *spec++;
    if (spec != end || (type == 'd' && !is_int) || (is_int && !type && prec >= 0))
        return -1;
    if (is_int && (!type || type == 'd')) {
        snprintf(buf, size, zero ? "%0*ld" : "%*ld", width, (long)v);
        return 0;
    }
    if (!type && prec < 0) { /* str(v), padded with spaces, or with zeros after the sign */
        size_t k = 0, len;
        int neg = zero && v < 0;
        python_repr(tmp, sizeof tmp, v);
        if (neg)
            buf[k++] = '-';
        for (len = strlen(tmp); (int)len < width && k + 1 < size; len++)
            buf[k++] = zero ? '0' : ' ';
        snprintf(buf + k, size - k, "%s", tmp + neg);
        return 0;
    }
    snprintf(fmt, sizeof fmt, "%%%s*.*%c", zero ? "0" : "", type ? type : 'g');
    snprintf(buf, size, fmt, width, prec < 0 ? 6 : prec, v);
    return 0;
}

/* Lists the fields a checkpoint name may hold for m into buf. */
static void list_fields(const cgrt_model *m, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "epoch, loss");
    int k, val;
    for (val = 0; val < 2; val++) {
        if (val && n < size)
            n += (size_t)snprintf(buf + n, size - n, ", val_loss");
        for (k = 0; k < m->num_metrics && n < size; k++)
            n += (size_t)snprintf(buf + n, size - n, ", %s%s", val ? "val_" : "", m->metric_names[k]);
    }
    if (n < size)
        snprintf(buf + n, size - n, ", lr");
}

/* The value of field name[0..len) into *v: 1 for the epoch (an integer), 0
 * for a figure, or -1 with err set when there is none. */
static int field_value(const char *pattern, const cgrt_model *m, const char *name, size_t len, int epoch,
                       const rt_epoch_stats *s, double *v, cgrt_error *err)
{
    rt_column col;
    char list[512];
    if (len == 5 && strncmp(name, "epoch", 5) == 0) {
        *v = epoch;
        return 1;
    }
    if (len == 2 && strncmp(name, "lr", 2) == 0 && s) {
        *v = s->lr;
        return 0;
    }
    if (!(len == 2 && strncmp(name, "lr", 2) == 0) && rt_find_column(m, name, len, &col) != 0) {
        list_fields(m, list, sizeof list);
        return rt_fail(err, "--save %s: {%.*s} is not a field of a checkpoint name (%s)", pattern, (int)len, name,
                       list);
    }
    if (!s)
        return rt_fail(err, "--save %s: {%.*s} has no value before the first epoch (--epochs 0)", pattern, (int)len,
                       name);
    if (col.val && !s->has_val)
        return rt_fail(err, "--save %s: {%.*s} has no value without validation data", pattern, (int)len, name);
    *v = rt_column_value(s, col);
    return 0;
}

/* Writes the checkpoint name of pattern for epoch with figures s into out. */
int rt_checkpoint_name(const char *pattern, const cgrt_model *m, int epoch, const rt_epoch_stats *s, char *out,
                       size_t size, cgrt_error *err)
{
    const char *p = pattern;
    size_t n = 0;
    char piece[256];
    while (*p) {
        const char *close, *colon;
        double v = 0.0;
        int kind;
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            snprintf(piece, sizeof piece, "%c", p[0]);
            p += 2;
        } else if (*p == '}') {
            return rt_fail(err, "--save %s: a '}' without its '{' (write }} for a brace)", pattern);
        } else if (*p != '{') {
            snprintf(piece, sizeof piece, "%c", *p++);
        } else {
            if (!(close = strchr(p, '}')))
                return rt_fail(err, "--save %s: a '{' without its '}' (write {{ for a brace)", pattern);
            colon = memchr(p, ':', (size_t)(close - p));
            if ((kind = field_value(pattern, m, p + 1, (size_t)((colon ? colon : close) - p - 1), epoch, s, &v, err)) <
                0)
                return -1;
            if (format_spec(piece, sizeof piece, colon ? colon + 1 : close, close, v, kind) != 0)
                return rt_fail(err,
                               "--save %s: '%.*s' is not a format this runtime knows "
                               "([0][width][.precision][d|f|e|g], d for the epoch only)",
                               pattern, (int)(close - p + 1), p);
            p = close + 1;
        }
        if (n + strlen(piece) >= size)
            return rt_fail(err, "--save %s: the name is longer than %zu bytes", pattern, size - 1);
        memcpy(out + n, piece, strlen(piece) + 1);
        n += strlen(piece);
    }
    if (n == 0)
        return rt_fail(err, "--save: the name is empty");
    out[n] = 0;
    return 0;
}

/* ---- fit's flags -------------------------------------------------------------------- */

/* Lists the history columns of m ("loss, accuracy, val_loss, val_accuracy") into buf. */
static void list_columns(const cgrt_model *m, char *buf, size_t size)
{
    list_fields(m, buf, size);
    memmove(buf, buf + 7, strlen(buf + 7) + 1); /* without "epoch, " */
    *strrchr(buf, ',') = 0;                     /* nor ", lr" */
}

/* Resolves fit's callback flags for m into cb. */
int rt_callbacks_resolve(const cgrt_model *m, const rt_cli_opts *o, int has_val, rt_callback_opts *cb, cgrt_error *err)
{
    const char *name = o->monitor ? o->monitor : "val_loss";
    int given = o->monitor && o->monitor != m->callbacks.monitor, mode;
    char list[512];
    memset(cb, 0, sizeof *cb);
    if (!o->mode || strcmp(o->mode, "auto") == 0)
        mode = CGRT_MODE_AUTO;
    else if (strcmp(o->mode, "min") == 0)
        mode = CGRT_MODE_MIN;
    else if (strcmp(o->mode, "max") == 0)
        mode = CGRT_MODE_MAX;
    else
        return rt_fail(err, "--mode: '%.100s' is not auto, min or max", o->mode);
    if (o->shuffle && strcmp(o->shuffle, "true") != 0 && strcmp(o->shuffle, "false") != 0)
        return rt_fail(err, "--shuffle: '%.100s' is not true or false", o->shuffle);
    cb->shuffle = !o->shuffle || strcmp(o->shuffle, "true") == 0;
    if (m->learning_rate && o->reduce_lr_factor > 0.0) /* Keras refuses ReduceLROnPlateau on a schedule too */
        return rt_fail(err,
                       "--reduce-lr-factor: the learning rate of %s follows its schedule (%s) at every step; "
                       "ReduceLROnPlateau cannot change it",
                       m->name, m->lr_schedule ? m->lr_schedule : "compiled in");
    if (m->learning_rate && o->lr != (double)m->default_lr)
        return rt_fail(err, "--lr: the learning rate of %s follows its schedule (%s), which sets it at every step",
                       m->name, m->lr_schedule ? m->lr_schedule : "compiled in");
    if (rt_find_column(m, name, strlen(name), &cb->monitor) != 0) {
        list_columns(m, list, sizeof list);
        return rt_fail(err, "--monitor: '%.100s' is not a column of the history (%s)", name, list);
    }
    if (cb->monitor.val && !has_val) {
        if (given)
            return rt_fail(err, "--monitor %.100s needs validation data (--validation-split or --validation-data)",
                           name);
        cb->monitor.val = 0; /* the default: the training figure, as fit without validation always did */
        name += 4;
    }
    snprintf(cb->monitor_name, sizeof cb->monitor_name, "%s", name);
    cb->max_mode = rt_mode_is_max(mode, name);
    cb->min_delta = o->min_delta;
    cb->patience = (int)o->patience;
    cb->restore_best_weights = o->restore_best_weights != 0;
    cb->save_best_only = o->save_best_only != 0;
    cb->reduce_lr_factor = o->reduce_lr_factor;
    cb->reduce_lr_patience = (int)o->reduce_lr_patience;
    cb->reduce_lr_cooldown = (int)o->reduce_lr_cooldown;
    cb->reduce_lr_min_delta = o->reduce_lr_min_delta;
    cb->min_lr = o->min_lr;
    return 0;
}
