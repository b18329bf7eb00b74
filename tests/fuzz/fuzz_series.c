/* fuzz_series.c: libFuzzer target of the time-series loader. An input is a
 * CSV file; it goes through rt_load_series_data for a forecaster of the
 * column "value" (window 3, horizon 2, 2 validation and 2 test targets,
 * season 4, missing values interpolated), whose forecasts and seasonal-naive
 * errors are then measured over every window, and through cgrt_read_series
 * for column 1 (window 2, missing values carried forward), cut into every
 * window as predict input. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The forecaster's predict: the last value of each window. */
static void last_value(void *state, int n, const float *x, float *out)
{
    int i;
    (void)state;
    for (i = 0; i < n; i++)
        out[i] = x[i * 3 + 2];
}

/* Checks and frees one part of a series (which may be empty). */
static void check_part(cgrt_dataset *d, const char *path)
{
    cgrt_error none;
    none.msg[0] = '\0';
    if (d->n > 0)
        fuzz_check(0, d, &none, path, NULL);
    cgrt_dataset_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("series.csv");
    cgrt_series_spec by_index;
    cgrt_dataset train, val, test, d;
    cgrt_forecast_errors fe;
    cgrt_series s;
    cgrt_model m;
    cgrt_error err;
    float *forecast;
    int rc, windows;
    fuzz_write(path, data, size);
    fuzz_model(&m, 3, CGRT_LABEL_DENSE, 1, 0, 0, 0);
    m.out_features = 1;
    m.predict = last_value;
    m.data.series.column = "value";
    m.data.series.window = 3;
    m.data.series.horizon = 2;
    m.data.series.val_steps = 2;
    m.data.series.test_steps = 2;
    m.data.series.season = 4;
    m.data.series.missing = CGRT_MISSING_INTERPOLATE;
    memset(&by_index, 0, sizeof by_index);
    by_index.column_index = 1;
    by_index.window = 2;
    by_index.missing = CGRT_MISSING_PREVIOUS;
    memset(&err, 0, sizeof err);
    rc = rt_load_series_data(&m, path, &train, &val, &test, &s, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == 0) {
        check_part(&train, path);
        check_part(&val, path);
        check_part(&test, path);
        windows = s.n - s.window + 1;
        forecast = malloc((size_t)windows * sizeof *forecast);
        if (!forecast || cgrt_series_forecast(&m, NULL, &s, &s.stats, 0, windows, forecast, &fe, &err) != 0)
            fuzz_fail("forecasting every window of a series that loaded: %s", forecast ? err.msg : "no memory");
        free(forecast);
        cgrt_series_free(&s);
    }
    memset(&err, 0, sizeof err);
    rc = cgrt_read_series(path, &by_index, &s, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == 0) {
        cgrt_series_stats st = {0.0, 1.0};
        if (cgrt_series_windows(&s, 0, s.n - s.window + 1, &st, &d, &err) != 0)
            fuzz_fail("cutting every window of a series that loaded: %s", err.msg);
        check_part(&d, path);
        cgrt_series_free(&s);
    }
    return 0;
}
