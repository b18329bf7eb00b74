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

/* Returns the end of the cell starting at s on the line [s, e): the next comma
 * outside double quotes, or e. */
static const char *cell_end(const char *s, const char *e)
{
    int quoted = 0;
    for (; s < e; s++) {
        if (*s == '"')
            quoted = !quoted;
        else if (*s == ',' && !quoted)
            return s;
    }
    return e;
}

/* Counts the cells of the line [s, e) and puts cell k (0-based, trimmed) into
 * [*cs, *ce) when the line has it. */
static int line_cells(const char *s, const char *e, int k, const char **cs, const char **ce)
{
    int n = 0;
    for (;;) {
        const char *c = s, *x = cell_end(s, e);
        if (n == k) {
            *cs = c;
            *ce = x;
            rt_trim_cell(cs, ce);
        }
        n++;
        if (x == e)
            return n;
        s = x + 1;
    }
}

/* Returns 1 when the line [s, e) holds only blanks. */
static int blank_line(const char *s, const char *e)
{
    for (; s < e; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r')
            return 0;
    return 1;
}

/* Writes the header's cells, comma-separated, into buf (shortened with "..."). */
static void header_names(const char *s, const char *e, char *buf, size_t size)
{
    size_t len = 0;
    int n = line_cells(s, e, -1, NULL, NULL), k;
    buf[0] = '\0';
    for (k = 0; k < n; k++) {
        const char *cs = NULL, *ce = NULL;
        int w;
        line_cells(s, e, k, &cs, &ce);
        w = snprintf(buf + len, size - len, "%s%.*s", k ? ", " : "", (int)(ce - cs), cs);
        if (w < 0 || (size_t)w >= size - len) {
            if (size > 4)
                strcpy(buf + size - 4, "...");
            return;
        }
        len += (size_t)w;
    }
}

/* Decides from the first non-blank line [s, e) (line number lineno) which
 * column holds the series (*col) and whether the line is a header (*header);
 * label gets how messages name the column. */
static int find_column(const char *path, const cgrt_series_spec *spec, const char *s, const char *e, int lineno,
                       int *col, int *header, char *label, size_t size, cgrt_error *err)
{
    int n = line_cells(s, e, -1, NULL, NULL), k, numeric = 1;
    const char *cs = NULL, *ce = NULL;
    float v;
    for (k = 0; k < n; k++) {
        line_cells(s, e, k, &cs, &ce);
        numeric &= rt_parse_cell(cs, ce, &v);
    }
    *header = 0;
    if (n == 1 && numeric) {   /* a single unnamed column: the series, whatever the spec names */
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
        if (numeric)
            return rt_fail(err, "%s: has no header line, so no column is named \"%s\" (line %d holds numbers)", path,
                           spec->column, lineno);
        header_names(s, e, names, sizeof names);
        return rt_fail(err, "%s: no column named \"%s\"; the header (line %d) names: %s", path, spec->column, lineno,
                       names);
    }
    if (spec->column_index < 0 || spec->column_index >= n)
        return rt_fail(err, "%s:%d: no column %d (0-based): the line has %d column%s", path, lineno,
                       spec->column_index, n, n == 1 ? "" : "s");
    *col = spec->column_index;
    line_cells(s, e, *col, &cs, &ce);
    *header = cs != ce && !rt_parse_cell(cs, ce, &v);
    if (*header)
        snprintf(label, size, "column %d (\"%.*s\")", *col, (int)(ce - cs > 100 ? 100 : ce - cs), cs);
    else
        snprintf(label, size, "column %d", *col);
    return 0;
}

/* Parses the text of path: the series' column into vals. */
static int parse_column(const char *path, const cgrt_series_spec *spec, const char *text, size_t len, rt_fvec *vals,
                        cgrt_error *err)
{
    const char *p = text, *end = text + len;
    char label[160] = "";
    int lineno = 0, first = 1, col = 0, header = 0;
    for (; p < end; p++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *cs = NULL, *ce = NULL;
        int n;
        float v;
        lineno++;
        if (blank_line(p, le)) {
            p = le;
            continue;
        }
        if (first) {
            first = 0;
            if (find_column(path, spec, p, le, lineno, &col, &header, label, sizeof label, err) != 0)
                return -1;
            if (header) {
                p = le;
                continue;
            }
        }
        n = line_cells(p, le, col, &cs, &ce);
        if (n <= col)
            return rt_fail(err, "%s:%d: the row has %d column%s, so %s is missing", path, lineno, n, n == 1 ? "" : "s",
                           label);
        if (cs == ce)
            return rt_fail(err, "%s:%d: %s is empty", path, lineno, label);
        if (!rt_parse_cell(cs, ce, &v))
            return rt_fail(err, "%s:%d: %s holds \"%.*s\", which is not a number", path, lineno, label,
                           (int)(ce - cs > 40 ? 40 : ce - cs), cs);
        if (vals->n >= INT_MAX)
            return rt_fail(err, "%s: too many values", path);
        if (rt_fvec_push(vals, v) != 0)
            return rt_fail(err, "%s: out of memory", path);
        p = le;
    }
    if (vals->n == 0)
        return rt_fail(err, "%s: holds no values%s%s", path, label[0] ? " in " : "", label);
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
    size_t len;
    char *text;
    memset(s, 0, sizeof *s);
    if (spec->window < 1 || spec->horizon < 0 || spec->season < 0 || spec->window > CGRT_SERIES_MAX ||
        spec->horizon > CGRT_SERIES_MAX || spec->season > CGRT_SERIES_MAX)
        return rt_fail(err, "%s: bad series spec (window %d, horizon %d, season %d; each at most %d)", path,
                       spec->window, spec->horizon, spec->season, CGRT_SERIES_MAX);
    text = rt_read_text(path, &len, err);
    if (!text)
        return -1;
    if (parse_column(path, spec, text, len, &vals, err) != 0) {
        free(text);
        free(vals.v);
        return -1;
    }
    free(text);
    s->n = (int)vals.n;
    s->values = vals.v;
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
        return rt_fail(err, "%s: bad series spec (val_steps %d, test_steps %d; each at most %d)", path,
                       spec->val_steps, spec->test_steps, CGRT_SERIES_MAX);
    }
    if (cgrt_read_series(path, spec, s, err) != 0)
        return -1;
    need = (long long)s->window + s->horizon + spec->val_steps + spec->test_steps;
    if (s->n < need) {
        int n = s->n, h = s->horizon;
        cgrt_series_free(s);
        return rt_fail(err, "%s: holds %d values, too few for a window of %d, horizon %d, %d validation and %d test "
                            "targets: one training sample needs at least %lld values", path, n, spec->window, h,
                       spec->val_steps, spec->test_steps, need);
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
        return rt_fail(err, "model %s takes %d values per sample, but its series window is %d", m->name,
                       m->in_features, sp->window);
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
int cgrt_series_forecast(const cgrt_model *m, void *state, const cgrt_series *s, const cgrt_series_stats *st,
                         int first, int count, float *forecast, cgrt_forecast_errors *e, cgrt_error *err)
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
