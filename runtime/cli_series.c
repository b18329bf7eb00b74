/* cli_series.c: the time-series side of the command line (cli.c): the
 * series lines of the usage text, what fit says of the series, and evaluate
 * and predict of a forecaster, which report and write in original units
 * with the scaling statistics saved in the checkpoint. */
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Prints the time-series part of the usage text. */
void rt_cli_usage_series(FILE *f, const char *bin, const cgrt_model *m)
{
    const cgrt_series_spec *sp = &m->data.series;
    if (sp->column)
        fprintf(f, "time series: column \"%s\"", sp->column);
    else
        fprintf(f, "time series: column %d", sp->column_index);
    fprintf(f,
            ", window %d, horizon %d, %d validation and %d test targets, season %d\n"
            "       %s predict  --weights FILE [--data PATH] [--output FILE]   forecasts the test part\n"
            "       (--input FILE: forecasts from every window of a CSV of raw values)\n",
            sp->window, sp->horizon > 0 ? sp->horizon : 1, sp->val_steps, sp->test_steps, sp->season, bin);
}

/* Prints how fit cut the series (and how many missing values it filled), and its training statistics. */
void rt_cli_print_series_parts(const cgrt_model *m, const cgrt_series *s)
{
    printf("series: %d values", s->n);
    if (s->filled > 0)
        printf(" (%d missing, filled %s)", s->filled,
               m->data.series.missing == CGRT_MISSING_PREVIOUS ? "with the value before" : "by linear interpolation");
    printf("; %d training, %d validation, %d test samples; training mean %.6g, std %.6g\n", s->train, s->val, s->test,
           s->stats.mean, s->stats.std);
    fflush(stdout);
}

/* Prints, after prefix, the forecast errors in original units over samples
 * [first, first + count) and those of the seasonal-naive forecast. */
int rt_cli_print_forecast_errors(const cgrt_model *m, void *state, const cgrt_series *s, const cgrt_series_stats *st,
                                 int first, int count, const char *prefix, cgrt_error *err)
{
    cgrt_forecast_errors e;
    char what[64], naive[64];
    int w;
    if (cgrt_series_forecast(m, state, s, st, first, count, NULL, &e, err) != 0)
        return -1;
    if (first == s->train + s->val && count == s->test)
        snprintf(what, sizeof what, "original units (%d test targets):", e.count);
    else
        snprintf(what, sizeof what, "original units (%d targets):", e.count);
    snprintf(naive, sizeof naive, "seasonal naive (season %d):", s->season);
    w = (int)(strlen(what) > strlen(naive) ? strlen(what) : strlen(naive));
    printf("%s%-*s rmse=%.4f mae=%.4f\n", prefix, w, what, e.rmse, e.mae);
    if (s->season > 0 && e.has_naive)
        printf("%s%-*s rmse=%.4f mae=%.4f\n", prefix, w, naive, e.naive_rmse, e.naive_mae);
    else if (s->season > 0)
        printf("%s%s none: a target has no value %d steps before it in the series\n", prefix, naive,
               (s->horizon + s->season - 1) / s->season * s->season);
    fflush(stdout);
    return 0;
}

/* evaluate of a time series: loss and metric (standardised) on the test part
 * (all samples without one), then the errors in original units. */
int rt_cli_evaluate_series(const cgrt_model *m, const rt_cli_opts *o, void *state, cgrt_error *err)
{
    rt_loaded ld;
    const cgrt_series *s = &ld.series;
    cgrt_series_stats st;
    cgrt_dataset d;
    double loss, metrics[CGRT_MAX_METRICS];
    int first, count, rc;
    if (cgrt_load_series_stats(o->weights, &st, err) != 0 || cgrt_check_series_model(m, err) != 0 ||
        cgrt_check_series_checkpoint(m, o->weights, err) != 0 || rt_load(m, o->data, RT_ROLE_DATA, &ld, err) != 0)
        return -1;
    first = s->test > 0 ? s->train + s->val : 0;
    count = s->test > 0 ? s->test : s->samples;
    if (cgrt_series_windows(s, first, count, &st, &d, err) != 0) {
        rt_loaded_free(&ld);
        return -1;
    }
    rt_evaluate(m, state, &d, &loss, metrics);
    rt_cli_print_figures(m, "", loss, metrics);
    rc = rt_cli_print_forecast_errors(m, state, s, &st, first, count, "", err);
    cgrt_dataset_free(&d);
    rt_loaded_free(&ld);
    return rc;
}

/* Writes one CSV line per forecast: the target's index in the series, the
 * forecast, the actual value and the seasonal-naive forecast (empty when unknown). */
static void write_forecasts(FILE *f, const cgrt_series *s, int first, int count, const float *fc)
{
    int i;
    fprintf(f, "index,forecast,actual,seasonal_naive\n");
    for (i = 0; i < count; i++) {
        int t = cgrt_series_target(s, first + i);
        float v;
        fprintf(f, "%d,%.6g,", t, (double)fc[i]);
        if (t < s->n)
            fprintf(f, "%.6g", (double)s->values[t]);
        fputc(',', f);
        if (cgrt_series_naive(s, t, &v))
            fprintf(f, "%.6g", (double)v);
        fputc('\n', f);
    }
}

/* predict of a time series: forecasts, in original units, of the test part of
 * --data (all samples without one), or of every window of --input. */
int rt_cli_predict_series(const cgrt_model *m, const rt_cli_opts *o, const char *bin)
{
    rt_loaded ld;
    const cgrt_series *s = &ld.series;
    cgrt_series_stats st;
    cgrt_forecast_errors e;
    cgrt_error err;
    FILE *f = stdout;
    float *fc = NULL;
    void *state;
    int first, count, rc = 1;
    if (!o->weights)
        return rt_cli_usage_error(bin, "predict", "predict needs --weights FILE");
    if (!o->input && !o->data)
        return rt_cli_usage_error(bin, "predict",
                                  "predict needs --input FILE or --data PATH (the model has no default dataset)");
    memset(&ld, 0, sizeof ld);
    state = rt_cli_state_from_checkpoint(m, o->weights, &err);
    if (!state)
        return rt_cli_report(bin, 1, err.msg);
    if (cgrt_load_series_stats(o->weights, &st, &err) != 0 || cgrt_check_series_model(m, &err) != 0 ||
        cgrt_check_series_checkpoint(m, o->weights, &err) != 0 ||
        rt_load(m, o->input ? o->input : o->data, o->input ? RT_ROLE_INPUT : RT_ROLE_DATA, &ld, &err) != 0)
        goto done;
    first = o->input || s->test == 0 ? 0 : s->train + s->val;
    count = o->input ? s->n - s->window + 1 : s->test > 0 ? s->test : s->samples;
    fc = rt_alloc_array((size_t)count, sizeof(float));
    if (!fc) {
        rt_fail(&err, "out of memory for %d forecasts", count);
        goto done;
    }
    if (cgrt_series_forecast(m, state, s, &st, first, count, fc, &e, &err) != 0)
        goto done;
    if (o->output && !(f = fopen(o->output, "w"))) {
        rt_fail(&err, "%s: cannot write: %s", o->output, strerror(errno));
        goto done;
    }
    write_forecasts(f, s, first, count, fc);
    rc = 0;
    if ((fflush(f) != 0 || ferror(f)) && rc == 0) {
        rt_fail(&err, "%s: cannot write: %s", o->output ? o->output : "stdout", strerror(errno));
        rc = 1;
    }
    if (f != stdout && fclose(f) != 0 && rc == 0) {
        rt_fail(&err, "%s: cannot write: %s", o->output, strerror(errno));
        rc = 1;
    }
done:
    free(fc);
    free(state);
    rt_loaded_free(&ld);
    return rc ? rt_cli_report(bin, 1, err.msg) : 0;
}
