/* series.c: time series for forecasting, as Keras' timeseries_dataset_from_array
 * plus the usual scaling. One numeric column of a CSV file is cut into
 * samples (a window of consecutive values -> the value `horizon` steps after
 * the window), split in time order into training, validation and test parts,
 * and standardised with the statistics of the training part. Then the
 * forecasts of a model in original units, their errors, and those of the
 * seasonal-naive forecast on the same targets.
 *
 * Sample i: inputs values[i .. i+W-1], target values[i+W-1+H]. With S samples,
 * the last test_steps are the test part, the val_steps before them the
 * validation part, the rest the training part: no target belongs to two
 * parts, while a window may reach back into an earlier part. */
#include "rt_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading one column of a CSV file --------------------------------------- */

/* Counts the cells of the line [s, e) and puts cell k (0-based, trimmed and
 * unquoted) into [*cs, *ce) when the line has it. */
static int line_cells(const char *s, const char *e, int k, const char **cs, const char **ce)
{
    rt_cells it;
    const char *a, *b;
    int n = 0;
    rt_cells_init(&it, s, e);
    while (rt_cells_next(&it, &a, &b)) {
        if (n == k) {
            *cs = a;
            *ce = b;
        }
        n++;
    }
    return n;
}

/* Decides from the first non-blank line [s, e) (line number lineno) which
 * column holds the series (*col) and whether the line is a header (*header);
 * label gets how messages name the column. */
static int find_column(const char *path, const cgrt_series_spec *spec, const char *s, const char *e, int lineno,
                       int *col, int *header, char *label, size_t size, cgrt_error *err)
{
    int n = line_cells(s, e, -1, NULL, NULL), k, no_text = 1;
    const char *cs = NULL, *ce = NULL;
    float v;
    for (k = 0; k < n; k++) {
        line_cells(s, e, k, &cs, &ce);
        no_text &= rt_csv_number(cs, ce, &v) != RT_CELL_TEXT;
    }
    *header = 0;
    if (n == 1 && no_text) { /* a single unnamed column: the series, whatever the spec names */
        *col = 0;
        snprintf(label, size, "column 0");
        return 0;
    }
    if (spec->column) {
        char names[400];
        for (k = 0; k < n; k++) {
            line_cells(s, e, k, &cs, &ce);
            if ((size_t)(ce - cs) == strlen(spec->column) && memcmp(cs, spec->column, (size_t)(ce - cs)) == 0) {
                *col = k;
                *header = 1;
                snprintf(label, size, "column \"%.100s\"", spec->column);
                return 0;
            }
        }
        if (no_text)
            return rt_fail(err, "%s: has no header line, so no column is named \"%s\" (line %d holds numbers)", path,
                           spec->column, lineno);
        rt_csv_header_names(s, e, names, sizeof names);
        return rt_fail(err, "%s: no column named \"%s\"; the header (line %d) names: %s", path, spec->column, lineno,
                       names);
    }
    if (spec->column_index < 0 || spec->column_index >= n)
        return rt_fail(err, "%s:%d: no column %d (0-based): the line has %d column%s", path, lineno, spec->column_index,
                       n, n == 1 ? "" : "s");
    *col = spec->column_index;
    line_cells(s, e, *col, &cs, &ce);
    *header = rt_csv_number(cs, ce, &v) == RT_CELL_TEXT;
    if (*header)
        snprintf(label, size, "column %d (\"%.*s\")", *col, (int)(ce - cs > 100 ? 100 : ce - cs), cs);
    else
        snprintf(label, size, "column %d", *col);
    return 0;
}

/* How the column is being read: where it is, and the missing values not yet filled. */
typedef struct column_reader {
    const char *path;
    const cgrt_series_spec *spec;
    char label[160]; /* how messages name the column */
    int gap;         /* missing values since the last known one, waiting for the next (interpolation) */
    int gap_line;    /* line of the first of them */
    int filled;      /* missing values filled so far */
} column_reader;

/* The name of a policy of .series.missing, as the user wrote it. */
static const char *missing_name(int policy)
{
    return policy == CGRT_MISSING_INTERPOLATE ? "CG_MISSING_INTERPOLATE" : "CG_MISSING_PREVIOUS";
}

/* Takes one missing value of the column at line lineno (`what` says how the
 * file writes it): refused as spec->missing says, or filled: the last value
 * carried forward, or a gap that the next known value closes by
 * interpolation. */
static int take_missing(column_reader *r, int lineno, const char *what, rt_fvec *vals, cgrt_error *err)
{
    int policy = r->spec->missing;
    if (policy == CGRT_MISSING_ERROR)
        return rt_fail(err,
                       "%s:%d: %s %s, a missing value; compile with .series.missing = CG_MISSING_INTERPOLATE "
                       "or CG_MISSING_PREVIOUS to fill it",
                       r->path, lineno, r->label, what);
    if (vals->n == 0)
        return rt_fail(err,
                       "%s:%d: %s %s before the first value, which .series.missing = %s cannot fill (no value "
                       "before it); trim the start of the file",
                       r->path, lineno, r->label, what, missing_name(policy));
    if (vals->n >= INT_MAX)
        return rt_fail(err, "%s: too many values", r->path);
    if (policy == CGRT_MISSING_INTERPOLATE && r->gap++ == 0)
        r->gap_line = lineno;
    r->filled++;
    if (rt_fvec_push(vals, policy == CGRT_MISSING_PREVIOUS ? vals->v[vals->n - 1] : NAN) != 0)
        return rt_fail(err, "%s: out of memory", r->path);
    return 0;
}

/* Appends the known value v, first filling the gap before it (if any) on the
 * straight line from the value before the gap to v. */
static int take_value(column_reader *r, float v, rt_fvec *vals, cgrt_error *err)
{
    if (r->gap > 0) {
        size_t last = vals->n - (size_t)r->gap - 1, k; /* the known value before the gap */
        double a = (double)vals->v[last], step = ((double)v - a) / (r->gap + 1);
        for (k = 1; k <= (size_t)r->gap; k++)
            vals->v[last + k] = (float)(a + step * (double)k);
        r->gap = 0;
    }
    if (vals->n >= INT_MAX)
        return rt_fail(err, "%s: too many values", r->path);
    if (rt_fvec_push(vals, v) != 0)
        return rt_fail(err, "%s: out of memory", r->path);
    return 0;
}

/* Reads the series' column of the CSV text c into vals; *filled gets how
 * many missing values were filled. In a file of one column, an empty line
 * between two values is a missing value (other empty lines are skipped). */
static int parse_column(rt_csv *c, const cgrt_series_spec *spec, rt_fvec *vals, int *filled, cgrt_error *err)
{
    column_reader r;
    const char *s, *e;
    int first = 1, col = 0, header = 0, single = 0, blanks = 0, blank_line = 0, got;
    memset(&r, 0, sizeof r);
    r.path = c->path;
    r.spec = spec;
    while ((got = rt_csv_line(c, &s, &e, err)) > 0) {
        const char *cs = NULL, *ce = NULL;
        int n, kind;
        float v;
        if (rt_csv_blank(s, e)) {
            if (single && vals->n > 0 && blanks++ == 0)
                blank_line = c->lineno;
            continue;
        }
        if (first) {
            first = 0;
            if (find_column(c->path, spec, s, e, c->lineno, &col, &header, r.label, sizeof r.label, err) != 0)
                return -1;
            single = line_cells(s, e, -1, NULL, NULL) == 1;
            if (header)
                continue;
        }
        for (; blanks > 0; blanks--)
            if (take_missing(&r, blank_line, "is empty (an empty line)", vals, err) != 0)
                return -1;
        n = line_cells(s, e, col, &cs, &ce);
        if (n <= col)
            return rt_fail(err, "%s:%d: the row has %d column%s, so %s is missing", c->path, c->lineno, n,
                           n == 1 ? "" : "s", r.label);
        kind = rt_csv_number(cs, ce, &v);
        if (kind == RT_CELL_EMPTY || kind == RT_CELL_MISSING) {
            char what[64];
            if (kind == RT_CELL_EMPTY)
                snprintf(what, sizeof what, "is empty");
            else
                snprintf(what, sizeof what, "holds \"%.*s\"", (int)(ce - cs > 20 ? 20 : ce - cs), cs);
            if (take_missing(&r, c->lineno, what, vals, err) != 0)
                return -1;
            continue;
        }
        if (kind != RT_CELL_NUMBER)
            return rt_fail(err, "%s:%d: %s holds \"%.*s\", which %s", c->path, c->lineno, r.label,
                           (int)(ce - cs > 40 ? 40 : ce - cs), cs, rt_csv_problem(kind));
        if (take_value(&r, v, vals, err) != 0)
            return -1;
    }
    if (got < 0)
        return -1;
    if (r.gap > 0)
        return rt_fail(err,
                       "%s:%d: %s: %d missing value%s from here to the end, which .series.missing = "
                       "CG_MISSING_INTERPOLATE cannot fill (no value after them); trim the end of the file",
                       c->path, r.gap_line, r.label, r.gap, r.gap == 1 ? "" : "s");
    if (vals->n == 0)
        return rt_fail(err, "%s: holds no values%s%s", c->path, r.label[0] ? " in " : "", r.label);
    *filled = r.filled;
    return 0;
}

/* ---- loading and splitting ---------------------------------------------------- */

/* Frees the values of s and zeroes it. */
void cgrt_series_free(cgrt_series *s)
{
    if (!s)
        return;
    free(s->values);
    memset(s, 0, sizeof *s);
}

/* Reads the spec's column of path into s (no parts, no statistics). */
int cgrt_read_series(const char *path, const cgrt_series_spec *spec, cgrt_series *s, cgrt_error *err)
{
    rt_fvec vals = {NULL, 0, 0};
    rt_csv c;
    int filled = 0, rc;
    memset(s, 0, sizeof *s);
    if (spec->window < 1 || spec->horizon < 0 || spec->season < 0 || spec->window > CGRT_SERIES_MAX ||
        spec->horizon > CGRT_SERIES_MAX || spec->season > CGRT_SERIES_MAX)
        return rt_fail(err, "%s: bad series spec (window %d, horizon %d, season %d; each at most %d)", path,
                       spec->window, spec->horizon, spec->season, CGRT_SERIES_MAX);
    if (spec->missing != CGRT_MISSING_ERROR && spec->missing != CGRT_MISSING_INTERPOLATE &&
        spec->missing != CGRT_MISSING_PREVIOUS)
        return rt_fail(err,
                       "%s: bad series spec (missing %d is none of CG_MISSING_ERROR, CG_MISSING_INTERPOLATE "
                       "and CG_MISSING_PREVIOUS)",
                       path, spec->missing);
    if (rt_csv_open(&c, path, err) != 0)
        return -1;
    rc = parse_column(&c, spec, &vals, &filled, err);
    rt_csv_close(&c);
    if (rc != 0) {
        free(vals.v);
        return -1;
    }
    s->n = (int)vals.n;
    s->values = vals.v;
    s->filled = filled;
    s->window = spec->window;
    s->horizon = spec->horizon > 0 ? spec->horizon : 1;
    s->season = spec->season;
    if (s->n < s->window) {
        int n = s->n;
        cgrt_series_free(s);
        return rt_fail(err, "%s: holds %d value%s, fewer than the window of %d values the model forecasts from", path,
                       n, n == 1 ? "" : "s", spec->window);
    }
    s->samples = s->n - s->window - s->horizon + 1 > 0 ? s->n - s->window - s->horizon + 1 : 0;
    return 0;
}

/* Mean and population standard deviation of v[0..n) (std 1 when they are all equal). */
static cgrt_series_stats stats_of(const float *v, int n)
{
    cgrt_series_stats st = {0.0, 1.0};
    double sum = 0.0, sq = 0.0;
    int i;
    for (i = 0; i < n; i++)
        sum += (double)v[i];
    st.mean = sum / n;
    for (i = 0; i < n; i++)
        sq += ((double)v[i] - st.mean) * ((double)v[i] - st.mean);
    st.std = sqrt(sq / n);
    if (!(st.std > 0.0) || !isfinite(st.std))
        st.std = 1.0;
    return st;
}

/* Reads the series at path, splits it into parts and computes the training statistics. */
int cgrt_load_series(const char *path, const cgrt_series_spec *spec, cgrt_series *s, cgrt_error *err)
{
    long long need;
    if (spec->val_steps < 0 || spec->test_steps < 0 || spec->val_steps > CGRT_SERIES_MAX ||
        spec->test_steps > CGRT_SERIES_MAX) {
        memset(s, 0, sizeof *s);
        return rt_fail(err, "%s: bad series spec (val_steps %d, test_steps %d; each at most %d)", path, spec->val_steps,
                       spec->test_steps, CGRT_SERIES_MAX);
    }
    if (cgrt_read_series(path, spec, s, err) != 0)
        return -1;
    need = (long long)s->window + s->horizon + spec->val_steps + spec->test_steps;
    if (s->n < need) {
        int n = s->n, h = s->horizon;
        cgrt_series_free(s);
        return rt_fail(err,
                       "%s: holds %d values, too few for a window of %d, horizon %d, %d validation and %d test "
                       "targets: one training sample needs at least %lld values",
                       path, n, spec->window, h, spec->val_steps, spec->test_steps, need);
    }
    s->test = spec->test_steps;
    s->val = spec->val_steps;
    s->train = s->samples - s->val - s->test;
    s->stats = stats_of(s->values, s->train + s->window + s->horizon - 1);
    return 0;
}

/* Index of the target of sample i. */
int cgrt_series_target(const cgrt_series *s, int i)
{
    return i + s->window - 1 + s->horizon;
}

/* The seasonal-naive forecast of value t: the value k * season steps before,
 * k = ceil(horizon / season). */
int cgrt_series_naive(const cgrt_series *s, int t, float *v)
{
    long long back, j;
    if (s->season <= 0)
        return 0;
    back = (long long)((s->horizon + s->season - 1) / s->season) * s->season;
    j = (long long)t - back;
    if (j < 0 || j >= s->n)
        return 0;
    *v = s->values[j];
    return 1;
}

/* Samples [first, first + count) as a standardised dataset. */
int cgrt_series_windows(const cgrt_series *s, int first, int count, const cgrt_series_stats *st, cgrt_dataset *out,
                        cgrt_error *err)
{
    int i, j, labelled;
    memset(out, 0, sizeof *out);
    out->features = s->window;
    if (first < 0 || count < 0 || (long long)first + count > (long long)s->n - s->window + 1)
        return rt_fail(err, "samples %d..%d are outside the %d windows of the series", first, first + count - 1,
                       s->n - s->window + 1);
    if (count == 0)
        return 0;
    labelled = first + count <= s->samples;
    out->x = rt_alloc_array((size_t)count * (size_t)s->window, sizeof(float));
    if (labelled)
        out->y = rt_alloc_array((size_t)count, sizeof(float));
    if (!out->x || (labelled && !out->y)) {
        cgrt_dataset_free(out);
        return rt_fail(err, "out of memory for %d windows of %d values", count, s->window);
    }
    out->n = count;
    out->label_width = labelled;
    for (i = 0; i < count; i++) {
        const float *w = s->values + first + i;
        for (j = 0; j < s->window; j++)
            out->x[(size_t)i * (size_t)s->window + (size_t)j] = (float)(((double)w[j] - st->mean) / st->std);
        if (labelled)
            out->y[i] = (float)(((double)s->values[cgrt_series_target(s, first + i)] - st->mean) / st->std);
    }
    return 0;
}

/* The training, validation and test parts of s as standardised datasets. */
int cgrt_series_parts(const cgrt_series *s, const cgrt_series_stats *st, cgrt_dataset *train, cgrt_dataset *val,
                      cgrt_dataset *test, cgrt_error *err)
{
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    if (cgrt_series_windows(s, 0, s->train, st, train, err) != 0)
        return -1;
    if (cgrt_series_windows(s, s->train, s->val, st, val, err) != 0 ||
        cgrt_series_windows(s, s->train + s->val, s->test, st, test, err) != 0) {
        cgrt_dataset_free(train);
        cgrt_dataset_free(val);
        return -1;
    }
    return 0;
}

/* ---- the model ---------------------------------------------------------------- */

/* Checks that m forecasts one value from a window of its series. */
int cgrt_check_series_model(const cgrt_model *m, cgrt_error *err)
{
    const cgrt_series_spec *sp = &m->data.series;
    if (sp->window < 1)
        return rt_fail(err, "model %s is not a time-series model (it has no series window)", m->name);
    if (m->in_features != sp->window)
        return rt_fail(err, "model %s takes %d values per sample, but its series window is %d", m->name, m->in_features,
                       sp->window);
    if (m->out_features != 1 || m->label_kind != CGRT_LABEL_DENSE || m->label_width != 1)
        return rt_fail(err, "model %s has %d outputs and %d label values per sample; a forecaster has one of each",
                       m->name, m->out_features, m->label_width);
    return 0;
}

/* Loads the series at path for m and cuts it into standardised parts. */
int rt_load_series_data(const cgrt_model *m, const char *path, cgrt_dataset *train, cgrt_dataset *val,
                        cgrt_dataset *test, cgrt_series *ser, cgrt_error *err)
{
    cgrt_series s;
    cgrt_dataset v;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (val)
        memset(val, 0, sizeof *val);
    if (ser)
        memset(ser, 0, sizeof *ser);
    if (cgrt_check_series_model(m, err) != 0 || cgrt_load_series(path, &m->data.series, &s, err) != 0)
        return -1;
    if (cgrt_series_parts(&s, &s.stats, train, val ? val : &v, test, err) != 0) {
        cgrt_series_free(&s);
        return -1;
    }
    if (!val)
        cgrt_dataset_free(&v);
    if (ser)
        *ser = s;
    else
        cgrt_series_free(&s);
    return 0;
}

/* Forecasts samples [first, first + count) in original units and measures them. */
int cgrt_series_forecast(const cgrt_model *m, void *state, const cgrt_series *s, const cgrt_series_stats *st, int first,
                         int count, float *forecast, cgrt_forecast_errors *e, cgrt_error *err)
{
    double se = 0.0, ae = 0.0, nse = 0.0, nae = 0.0;
    int i, b, j, naive_all = 1;
    float *x, *out;
    memset(e, 0, sizeof *e);
    if (cgrt_check_series_model(m, err) != 0)
        return -1;
    if (first < 0 || count < 0 || (long long)first + count > (long long)s->n - s->window + 1)
        return rt_fail(err, "samples %d..%d are outside the %d windows of the series", first, first + count - 1,
                       s->n - s->window + 1);
    x = rt_alloc_array((size_t)m->max_batch * (size_t)s->window, sizeof(float));
    out = rt_alloc_array((size_t)m->max_batch, sizeof(float));
    if (!x || !out) {
        free(x);
        free(out);
        return rt_fail(err, "out of memory for the forecasts");
    }
    for (i = 0; i < count; i += b) {
        b = count - i < m->max_batch ? count - i : m->max_batch;
        for (j = 0; j < b; j++) {
            const float *w = s->values + first + i + j;
            int k;
            for (k = 0; k < s->window; k++)
                x[(size_t)j * (size_t)s->window + (size_t)k] = (float)(((double)w[k] - st->mean) / st->std);
        }
        m->predict(state, b, x, out);
        for (j = 0; j < b; j++) {
            int t = cgrt_series_target(s, first + i + j);
            double f = (double)out[j] * st->std + st->mean, d;
            float nv;
            if (forecast)
                forecast[i + j] = (float)f;
            if (t >= s->n)
                continue;
            d = f - (double)s->values[t];
            se += d * d;
            ae += fabs(d);
            e->count++;
            if (cgrt_series_naive(s, t, &nv)) {
                d = (double)nv - (double)s->values[t];
                nse += d * d;
                nae += fabs(d);
            } else {
                naive_all = 0;
            }
        }
    }
    free(x);
    free(out);
    if (e->count > 0) {
        e->rmse = sqrt(se / e->count);
        e->mae = ae / e->count;
        e->has_naive = naive_all && s->season > 0;
        if (e->has_naive) {
            e->naive_rmse = sqrt(nse / e->count);
            e->naive_mae = nae / e->count;
        }
    }
    return 0;
}
