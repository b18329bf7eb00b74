/* test_series.c: time series (runtime/series.c): reading one CSV column,
 * windows and their targets, the chronological split, statistics from the
 * training part only, forecast errors in original units and the
 * seasonal-naive baseline (each checked against a plain loop written here),
 * the statistics in checkpoints, and every bad-input message. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Asserts that err mentions the phrase (which names the file where it should). */
#define assert_msg(err, phrase) \
    cr_assert(strstr((err).msg, (phrase)) != NULL, "message \"%s\" lacks \"%s\"", (err).msg, (phrase))

/* A spec: column by name (or index when name is NULL), window, horizon, parts, season. */
static cgrt_series_spec spec(const char *name, int index, int window, int horizon, int val, int test, int season)
{
    cgrt_series_spec s;
    s.column = name;
    s.column_index = index;
    s.window = window;
    s.horizon = horizon;
    s.val_steps = val;
    s.test_steps = test;
    s.season = season;
    s.missing = CGRT_MISSING_ERROR;
    return s;
}

/* Writes v[0..n) as "t,v" CSV with a header and dates a0, a1, ... */
static void write_values(const char *path, const double *v, int n)
{
    FILE *f = fopen(path, "w");
    int i;
    cr_assert_not_null(f);
    fprintf(f, "t,v\n");
    for (i = 0; i < n; i++)
        fprintf(f, "a%d,%.17g\n", i, v[i]);
    fclose(f);
}

/* Mean and population standard deviation of v[0..n), by the textbook formulas. */
static void mean_std(const double *v, int n, double *mean, double *std)
{
    double s = 0.0, q = 0.0;
    int i;
    for (i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *std = sqrt(q / n);
}

/* ---- windows, parts, statistics ---- */

Test(series, windows_targets_and_parts)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "s.csv");
    double v[20], mean, std;
    cgrt_series_spec sp = spec("v", 0, 4, 2, 3, 2, 0);
    cgrt_series s;
    cgrt_dataset tr, va, te;
    cgrt_error err;
    int i, j;
    for (i = 0; i < 20; i++)
        v[i] = i * i + 1.0;
    write_values(p, v, 20);
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n, 20);
    cr_assert_eq(s.samples, 15, "20 values, window 4, horizon 2: 15 samples, got %d", s.samples);
    cr_assert_eq(s.train, 10);
    cr_assert_eq(s.val, 3);
    cr_assert_eq(s.test, 2);
    /* statistics: values 0 .. target of the last training sample (9 + 3 + 2 = 14) */
    mean_std(v, 15, &mean, &std);
    cr_assert_float_eq(s.stats.mean, mean, 1e-9, "mean %.9g, expected %.9g", s.stats.mean, mean);
    cr_assert_float_eq(s.stats.std, std, 1e-9, "std %.9g, expected %.9g", s.stats.std, std);
    cr_assert_eq(cgrt_series_parts(&s, &s.stats, &tr, &va, &te, &err), 0, "%s", err.msg);
    cr_assert_eq(tr.n, 10);
    cr_assert_eq(va.n, 3);
    cr_assert_eq(te.n, 2);
    cr_assert_eq(tr.features, 4);
    cr_assert_eq(tr.label_width, 1);
    /* every sample of every part: inputs v[i..i+3], label v[i+5], standardised */
    {
        const cgrt_dataset *parts[3] = {&tr, &va, &te};
        int first[3] = {0, 10, 13}, k;
        for (k = 0; k < 3; k++)
            for (i = 0; i < parts[k]->n; i++) {
                int smp = first[k] + i;
                for (j = 0; j < 4; j++)
                    cr_assert_float_eq(parts[k]->x[i * 4 + j], (v[smp + j] - mean) / std, 1e-6,
                                       "part %d sample %d input %d", k, i, j);
                cr_assert_float_eq(parts[k]->y[i], (v[smp + 5] - mean) / std, 1e-6, "part %d sample %d label", k, i);
                cr_assert_eq(cgrt_series_target(&s, smp), smp + 5);
            }
    }
    /* the boundaries: training targets 5..14, validation 15..17, test 18..19 (the last values) */
    cr_assert_eq(cgrt_series_target(&s, s.train - 1), 14);
    cr_assert_eq(cgrt_series_target(&s, s.train), 15);
    cr_assert_eq(cgrt_series_target(&s, s.train + s.val - 1), 17);
    cr_assert_eq(cgrt_series_target(&s, s.train + s.val), 18);
    cr_assert_eq(cgrt_series_target(&s, s.samples - 1), s.n - 1);
    /* a test window reaches back into the training period: sample 13 reads v[13..16] */
    cr_assert_float_eq(te.x[0], (v[13] - mean) / std, 1e-6);
    cgrt_dataset_free(&tr);
    cgrt_dataset_free(&va);
    cgrt_dataset_free(&te);
    cgrt_series_free(&s);
}

Test(series, no_target_in_two_parts_for_many_shapes)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "s.csv");
    int w, h, val, test;
    t_write_series(p, 40, NULL);
    for (w = 1; w <= 5; w++)
        for (h = 1; h <= 3; h++)
            for (val = 0; val <= 3; val++)
                for (test = 0; test <= 3; test++) {
                    cgrt_series_spec sp = spec("value", 0, w, h, val, test, 0);
                    cgrt_series s;
                    cgrt_error err;
                    int i, owner[40];
                    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
                    cr_assert_eq(s.train + s.val + s.test, 40 - w - h + 1);
                    for (i = 0; i < 40; i++)
                        owner[i] = -1;
                    for (i = 0; i < s.samples; i++) {
                        int t = cgrt_series_target(&s, i), part = i < s.train ? 0 : i < s.train + s.val ? 1 : 2;
                        cr_assert(t >= 0 && t < 40);
                        cr_assert_eq(owner[t], -1, "value %d is the target of two samples", t);
                        owner[t] = part;
                        if (part == 0) /* every training target precedes every validation and test target */
                            cr_assert_lt(t, 40 - val - test, "w %d h %d: training target %d", w, h, t);
                    }
                    for (i = 0; i < test; i++)
                        cr_assert_eq(owner[39 - i], 2, "w %d h %d: value %d should be a test target", w, h, 39 - i);
                    for (i = 0; i < val; i++)
                        cr_assert_eq(owner[39 - test - i], 1);
                    cgrt_series_free(&s);
                }
}

Test(series, statistics_come_from_the_training_part_only)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "s.csv");
    double v[30], mean, std;
    cgrt_series_spec sp = spec("v", 0, 3, 1, 4, 5, 0);
    cgrt_series s;
    cgrt_error err;
    cgrt_series_stats before;
    int i, last_train_target;
    for (i = 0; i < 30; i++)
        v[i] = 5.0 + 0.25 * i + (i % 3);
    write_values(p, v, 30);
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    before = s.stats;
    last_train_target = cgrt_series_target(&s, s.train - 1);
    cr_assert_eq(last_train_target, 30 - 4 - 5 - 1);
    mean_std(v, last_train_target + 1, &mean, &std);
    cr_assert_float_eq(before.mean, mean, 1e-9);
    cr_assert_float_eq(before.std, std, 1e-9);
    cgrt_series_free(&s);
    /* validation and test values (however wild) do not move the statistics */
    for (i = last_train_target + 1; i < 30; i++)
        v[i] = 1e6 * (i % 2 ? 1 : -1);
    write_values(p, v, 30);
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.stats.mean, before.mean);
    cr_assert_eq(s.stats.std, before.std);
    cgrt_series_free(&s);
    /* the last training target does */
    v[last_train_target] += 10.0;
    write_values(p, v, 30);
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_neq(s.stats.mean, before.mean);
    cgrt_series_free(&s);
}

Test(series, constant_training_part_has_unit_std)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "c.csv");
    cgrt_series_spec sp = spec(NULL, 0, 2, 1, 0, 1, 0);
    cgrt_series s;
    cgrt_error err;
    t_write(p, "7\n7\n7\n7\n9\n", 10);
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.stats.mean, 7.0);
    cr_assert_eq(s.stats.std, 1.0);
    cgrt_series_free(&s);
}

/* ---- reading the column ---- */

/* Loads path with sp and checks it holds exactly want[0..n). */
static void expect_values(const char *path, cgrt_series_spec sp, const float *want, int n)
{
    cgrt_series s;
    cgrt_error err;
    int i;
    cr_assert_eq(cgrt_read_series(path, &sp, &s, &err), 0, "%s: %s", path, err.msg);
    cr_assert_eq(s.n, n, "%s: %d values, expected %d", path, s.n, n);
    for (i = 0; i < n; i++)
        cr_assert_eq(s.values[i], want[i], "%s: value %d is %g, expected %g", path, i, (double)s.values[i],
                     (double)want[i]);
    cgrt_series_free(&s);
}

Test(series, column_by_name_index_quoted_gzip_and_bare)
{
    const char *dir = t_tmpdir();
    static const float want[4] = {1.5f, -2.0f, 300.0f, 0.25f};
    const char *named = "date,x,value\r\nd1,9,1.5\r\nd2,9,-2\r\n\r\nd3,9,3e2\r\nd4,9, 0.25 \r\n";
    const char *quoted = "\"date\",\"a, b\",\"value\"\n\"Jan 1, 2000\",\"1,5\",\"1.5\"\n\"Feb 1, 2000\",x,-2\n"
                         "\"Mar 1, 2000\",x,300\n\"Apr 1, 2000\",x,0.25\n";
    const char *numeric = "9,1.5\n9,-2\n9,300\n9,0.25\n";
    const char *bare = "1.5\n-2\n300\n0.25\n";
    t_write(t_path(dir, "named.csv"), named, strlen(named));
    t_write_gz(t_path(dir, "named.csv.gz"), named, strlen(named));
    t_write(t_path(dir, "quoted.csv"), quoted, strlen(quoted));
    t_write(t_path(dir, "numeric.csv"), numeric, strlen(numeric));
    t_write(t_path(dir, "bare.csv"), bare, strlen(bare));
    expect_values(t_path(dir, "named.csv"), spec("value", 0, 2, 1, 0, 0, 0), want, 4);
    expect_values(t_path(dir, "named.csv.gz"), spec("value", 0, 2, 1, 0, 0, 0), want, 4);
    expect_values(t_path(dir, "named.csv"), spec(NULL, 2, 2, 1, 0, 0, 0), want, 4);
    expect_values(t_path(dir, "quoted.csv"), spec("value", 0, 2, 1, 0, 0, 0), want, 4);
    expect_values(t_path(dir, "numeric.csv"), spec(NULL, 1, 2, 1, 0, 0, 0), want, 4);
    /* one column without a header is the series whatever the spec names */
    expect_values(t_path(dir, "bare.csv"), spec("value", 0, 2, 1, 0, 0, 0), want, 4);
    expect_values(t_path(dir, "bare.csv"), spec(NULL, 3, 2, 1, 0, 0, 0), want, 4);
}

Test(series, the_example_data_file)
{
    cgrt_series_spec sp = spec("STS.M.I7.W.TOVT.NS0016.4.000", 0, 12, 1, 24, 24, 12);
    cgrt_series s;
    cgrt_error err;
    cr_assert_eq(cgrt_load_series(SOURCE_DIR "/examples/data/elec_equip.csv", &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n, 257);
    cr_assert_eq(s.values[0], 66.19f);   /* Jan-1-1995 */
    cr_assert_eq(s.values[256], 97.86f); /* May-1-2016 */
    cr_assert_eq(s.samples, 245);
    cr_assert_eq(s.train, 197);
    cgrt_series_free(&s);
}

/* ---- bad input: one message each, naming the file (and line) ---- */

/* Writes text to dir/name, loads it with sp (cgrt_load_series) and expects failure with phrase. */
static void load_fails(const char *dir, const char *name, const char *text, cgrt_series_spec sp, const char *phrase)
{
    const char *p = t_path(dir, name);
    cgrt_series s;
    cgrt_error err;
    t_write(p, text, strlen(text));
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), -1, "%s loaded", name);
    cr_assert(strstr(err.msg, p) != NULL, "message \"%s\" does not name %s", err.msg, p);
    assert_msg(err, phrase);
    cr_assert_null(strchr(err.msg, '\n'), "message \"%s\" is not one line", err.msg);
    cr_assert_null(s.values);
}

Test(series, bad_input_messages)
{
    const char *dir = t_tmpdir();
    const char *good = "t,v\na,1\nb,2\nc,3\nd,4\ne,5\nf,6\n";
    load_fails(dir, "word.csv", "t,v\na,1\nb,2\nc,abc\nd,4\n", spec("v", 0, 2, 1, 0, 0, 0),
               "word.csv:4: column \"v\" holds \"abc\", which is not a number");
    load_fails(dir, "date.csv", good, spec(NULL, 0, 2, 1, 0, 0, 0),
               "date.csv:2: column 0 (\"t\") holds \"a\", which is not a number");
    load_fails(dir, "empty.csv", "t,v\na,1\nb,\nc,3\n", spec("v", 0, 2, 1, 0, 0, 0),
               "empty.csv:3: column \"v\" is empty");
    load_fails(dir, "short_row.csv", "t,v\na,1\nb\nc,3\n", spec("v", 0, 2, 1, 0, 0, 0),
               "short_row.csv:3: the row has 1 column, so column \"v\" is missing");
    load_fails(dir, "name.csv", good, spec("value", 0, 2, 1, 0, 0, 0),
               "name.csv: no column named \"value\"; the header (line 1) names: t, v");
    load_fails(dir, "noheader.csv", "1,2\n3,4\n", spec("v", 0, 1, 1, 0, 0, 0),
               "noheader.csv: has no header line, so no column is named \"v\"");
    load_fails(dir, "index.csv", good, spec(NULL, 5, 2, 1, 0, 0, 0),
               "index.csv:1: no column 5 (0-based): the line has 2 columns");
    load_fails(dir, "nothing.csv", "t,v\n\n", spec("v", 0, 2, 1, 0, 0, 0), "nothing.csv: holds no values");
    /* 6 values: window 2 + horizon 1 + 2 validation + 2 test targets need 7 */
    load_fails(dir, "short.csv", good, spec("v", 0, 2, 1, 2, 2, 0),
               "short.csv: holds 6 values, too few for a window of 2, horizon 1, 2 validation and 2 test targets: "
               "one training sample needs at least 7 values");
    load_fails(dir, "window.csv", good, spec("v", 0, 7, 1, 0, 0, 0),
               "window.csv: holds 6 values, fewer than the window of 7 values");
    load_fails(dir, "horizon.csv", good, spec("v", 0, 3, 4, 0, 0, 0),
               "horizon.csv: holds 6 values, too few for a window of 3, horizon 4");
    {
        cgrt_series s;
        cgrt_error err;
        cgrt_series_spec sp = spec("v", 0, 2, 1, 0, 0, 0);
        cr_assert_eq(cgrt_load_series(t_path(dir, "missing.csv"), &sp, &s, &err), -1);
        assert_msg(err, "missing.csv: cannot open");
        /* exactly enough values: one training sample */
        t_write(t_path(dir, "enough.csv"), good, strlen(good));
        sp = spec("v", 0, 2, 1, 1, 2, 0);
        cr_assert_eq(cgrt_load_series(t_path(dir, "enough.csv"), &sp, &s, &err), 0, "%s", err.msg);
        cr_assert_eq(s.train, 1);
        cgrt_series_free(&s);
    }
}

/* ---- encodings, line ends, missing values ---- */

Test(series, byte_order_mark_and_carriage_returns)
{
    const char *dir = t_tmpdir();
    static const float want[4] = {1.5f, -2.0f, 300.0f, 0.25f};
    const char *named = "\xEF\xBB\xBF"
                        "value,date\n1.5,d1\n-2,d2\n300,d3\n0.25,d4\n";
    const char *bare = "\xEF\xBB\xBF"
                       "1.5\n-2\n300\n0.25\n";
    const char *cr = "date,value\rd1,1.5\rd2,-2\r\rd3,300\rd4,0.25";
    t_write(t_path(dir, "named.csv"), named, strlen(named));
    t_write(t_path(dir, "bare.csv"), bare, strlen(bare));
    t_write(t_path(dir, "cr.csv"), cr, strlen(cr));
    expect_values(t_path(dir, "named.csv"), spec("value", 0, 2, 1, 0, 0, 0), want, 4);
    expect_values(t_path(dir, "bare.csv"), spec(NULL, 0, 2, 1, 0, 0, 0), want, 4);
    expect_values(t_path(dir, "cr.csv"), spec("value", 0, 2, 1, 0, 0, 0), want, 4);
}

/* sp with the given .missing policy. */
static cgrt_series_spec with_missing(cgrt_series_spec sp, int missing)
{
    sp.missing = missing;
    return sp;
}

/* Gaps of every kind: values 1, _, _, 4, _, 8 (an empty cell, NA, nan). */
static const char gaps[] = "t,v\na,1\nb,\nc,NA\nd,4\ne,nan\nf,8\n";

Test(series, missing_values_are_refused_by_default_naming_the_option)
{
    const char *dir = t_tmpdir();
    cgrt_series_spec sp = spec("v", 0, 2, 1, 0, 0, 0);
    load_fails(dir, "gaps.csv", gaps, sp,
               "gaps.csv:3: column \"v\" is empty, a missing value; compile with .series.missing = "
               "CG_MISSING_INTERPOLATE or CG_MISSING_PREVIOUS to fill it");
    load_fails(dir, "na.csv", "t,v\na,1\nb,NA\nc,3\n", sp, "na.csv:3: column \"v\" holds \"NA\", a missing value");
    load_fails(dir, "nan.csv", "t,v\na,1\nb,2\nc,NaN\n", sp, "nan.csv:4: column \"v\" holds \"NaN\", a missing value");
    load_fails(dir, "blank.csv", "1\n2\n\n4\n", sp, "blank.csv:3: column 0 is empty (an empty line), a missing value");
    /* infinities and values beyond a float are never taken for missing ones */
    sp = with_missing(sp, CGRT_MISSING_INTERPOLATE);
    load_fails(dir, "inf.csv", "t,v\na,1\nb,-inf\nc,3\n", sp,
               "inf.csv:3: column \"v\" holds \"-inf\", which is not finite");
    load_fails(dir, "big.csv", "t,v\na,1\nb,2e38\nc,4e38\n", sp,
               "big.csv:4: column \"v\" holds \"4e38\", which does not fit a 32-bit float");
    /* an unknown policy */
    sp.missing = 3;
    load_fails(dir, "bad.csv", gaps, sp, "bad.csv: bad series spec (missing 3 is none of CG_MISSING_ERROR");
}

Test(series, missing_values_interpolated)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "gaps.csv");
    static const float want[6] = {1, 2, 3, 4, 6, 8}, blank[5] = {1, 2, 2.5f, 3, 5};
    cgrt_series_spec sp = with_missing(spec("v", 0, 2, 1, 0, 0, 0), CGRT_MISSING_INTERPOLATE);
    cgrt_series s;
    cgrt_error err;
    t_write(p, gaps, strlen(gaps));
    expect_values(p, sp, want, 6);
    cr_assert_eq(cgrt_read_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.filled, 3);
    cgrt_series_free(&s);
    /* in a file of one column an empty line between two values is a gap; empty lines at the end are not */
    t_write(t_path(dir, "blank.csv"), "\n1\n2\n\n3\n5\n\n\n", 12);
    expect_values(t_path(dir, "blank.csv"), sp, blank, 5);
    /* nothing to interpolate from at the start, nor towards at the end */
    load_fails(dir, "lead.csv", "t,v\na,\nb,2\nc,3\n", sp,
               "lead.csv:2: column \"v\" is empty before the first value, which .series.missing = "
               "CG_MISSING_INTERPOLATE cannot fill");
    load_fails(dir, "tail.csv", "t,v\na,1\nb,2\nc,NA\nd,\n", sp,
               "tail.csv:4: column \"v\": 2 missing values from here to the end, which .series.missing = "
               "CG_MISSING_INTERPOLATE cannot fill");
}

Test(series, missing_values_carry_the_previous_one_forward)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "gaps.csv"), *q = t_path(dir, "tail.csv");
    static const float want[6] = {1, 1, 1, 4, 4, 8}, tail[4] = {1, 2, 2, 2};
    cgrt_series_spec sp = with_missing(spec("v", 0, 2, 1, 0, 0, 0), CGRT_MISSING_PREVIOUS);
    t_write(p, gaps, strlen(gaps));
    expect_values(p, sp, want, 6);
    t_write(q, "t,v\na,1\nb,2\nc,NA\nd,\n", 20);
    expect_values(q, sp, tail, 4);
    load_fails(dir, "lead.csv", "t,v\na,nan\nb,2\nc,3\n", sp,
               "lead.csv:2: column \"v\" holds \"nan\" before the first value, which .series.missing = "
               "CG_MISSING_PREVIOUS cannot fill");
}

Test(series, missing_policy_of_the_model_reaches_the_loader)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "s.csv");
    cgrt_model m = tiny_series_model;
    cgrt_dataset tr, te;
    cgrt_error err;
    double v[40];
    char *text, *cell;
    t_write_series(p, 40, v);
    text = t_read(p, NULL); /* blank the value of d10 */
    cell = strstr(text, "\nd10,") + 5;
    memmove(cell, strchr(cell, '\n'), strlen(strchr(cell, '\n')) + 1);
    t_write(p, text, strlen(text));
    free(text);
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), -1);
    assert_msg(err, "s.csv:12: column \"value\" is empty, a missing value");
    m.data.series.missing = CGRT_MISSING_INTERPOLATE;
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), 0, "%s", err.msg);
    cr_assert_eq(tr.n + te.n, 40 - 4 - 2 + 1 - 6);
    cgrt_dataset_free(&tr);
    cgrt_dataset_free(&te);
}

Test(series, predict_input_shorter_than_the_window)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "in.csv");
    cgrt_series_spec sp = spec("value", 0, 4, 2, 6, 8, 6);
    cgrt_series s;
    cgrt_error err;
    t_write(p, "1\n2\n3\n", 6);
    cr_assert_eq(cgrt_read_series(p, &sp, &s, &err), -1);
    assert_msg(err, "in.csv: holds 3 values, fewer than the window of 4 values");
    /* as long as the window: one forecast, past the end, no target */
    t_write(p, "1\n2\n3\n4\n", 8);
    cr_assert_eq(cgrt_read_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n, 4);
    cr_assert_eq(s.samples, 0);
    cgrt_series_free(&s);
}

/* ---- forecasts, errors in original units, seasonal naive ---- */

Test(series, forecast_errors_and_seasonal_naive_against_a_loop)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "s.csv");
    double v[60], mean, std, se = 0, ae = 0, nse = 0, nae = 0;
    cgrt_series_spec sp = tiny_series_model.data.series; /* window 4, horizon 2, 6 val, 8 test, season 6 */
    cgrt_series s;
    cgrt_forecast_errors e;
    cgrt_error err;
    tiny_state st;
    float fc[8];
    int i;
    t_write_series(p, 60, v);
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    mean_std(v, s.train + 4 + 2 - 1, &mean, &std);
    tiny_series_model.init(&st, 1);
    st.params[0] = 0.25f; /* forecast: the window's last value + 0.25 std */
    cr_assert_eq(cgrt_series_forecast(&tiny_series_model, &st, &s, &s.stats, s.train + s.val, s.test, fc, &e, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(e.count, 8);
    for (i = 0; i < 8; i++) {
        int t = 60 - 8 + i;               /* the test targets are the last 8 values */
        double f = v[t - 2] + 0.25 * std; /* horizon 2: the window ends 2 steps before */
        double naive = v[t - 6];          /* season 6 */
        cr_assert_float_eq(fc[i], f, 1e-4, "forecast %d: %g, expected %g", i, (double)fc[i], f);
        se += (f - v[t]) * (f - v[t]);
        ae += fabs(f - v[t]);
        nse += (naive - v[t]) * (naive - v[t]);
        nae += fabs(naive - v[t]);
    }
    cr_assert_float_eq(e.rmse, sqrt(se / 8), 1e-4, "rmse %g, expected %g", e.rmse, sqrt(se / 8));
    cr_assert_float_eq(e.mae, ae / 8, 1e-4, "mae %g, expected %g", e.mae, ae / 8);
    cr_assert(e.has_naive);
    cr_assert_float_eq(e.naive_rmse, sqrt(nse / 8), 1e-5, "naive rmse %g, expected %g", e.naive_rmse, sqrt(nse / 8));
    cr_assert_float_eq(e.naive_mae, nae / 8, 1e-5);
    cr_assert_gt(fabs(e.rmse - e.naive_rmse), 1e-3, "the model and the baseline should differ here");
    cgrt_series_free(&s);
}

Test(series, seasonal_naive_edges)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "s.csv");
    double v[60];
    cgrt_series_spec sp = tiny_series_model.data.series;
    cgrt_series s;
    cgrt_forecast_errors e;
    cgrt_error err;
    tiny_state st;
    float x;
    t_write_series(p, 60, v);
    tiny_series_model.init(&st, 1);
    /* horizon 2 beyond a season of 1: the latest value known when the window ends, 2 back */
    sp.season = 1;
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert(cgrt_series_naive(&s, 10, &x));
    cr_assert_eq((double)x, (double)(float)v[8]);
    cr_assert(!cgrt_series_naive(&s, 1, &x));
    cgrt_series_free(&s);
    /* a season longer than the history of some targets: no baseline */
    sp.season = 55;
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_series_forecast(&tiny_series_model, &st, &s, &s.stats, s.train + s.val, s.test, NULL, &e, &err),
                 0, "%s", err.msg);
    cr_assert_not(e.has_naive, "targets 52..53 have no value 55 steps back");
    cgrt_series_free(&s);
    /* season 0: none */
    sp.season = 0;
    cr_assert_eq(cgrt_load_series(p, &sp, &s, &err), 0, "%s", err.msg);
    cr_assert_not(cgrt_series_naive(&s, 30, &x));
    cr_assert_eq(cgrt_series_forecast(&tiny_series_model, &st, &s, &s.stats, 0, s.samples, NULL, &e, &err), 0);
    cr_assert_not(e.has_naive);
    cr_assert_eq(e.count, s.samples);
    /* windows past the last target (predict input) are forecast but not measured */
    cr_assert_eq(cgrt_series_forecast(&tiny_series_model, &st, &s, &s.stats, 0, 60 - 4 + 1, NULL, &e, &err), 0);
    cr_assert_eq(e.count, s.samples);
    cr_assert_eq(cgrt_series_forecast(&tiny_series_model, &st, &s, &s.stats, 0, 60 - 4 + 2, NULL, &e, &err), -1);
    assert_msg(err, "outside the 57 windows");
    cgrt_series_free(&s);
}

/* ---- checkpoints ---- */

/* A checkpoint trained on another column, window or horizon is refused for this model. */
Test(series, checkpoint_of_another_series_is_refused)
{
    const char *dir = t_tmpdir(), *ck = t_path(dir, "w.safetensors");
    cgrt_series_stats st = {1.0, 2.0};
    float params[1] = {0.5f};
    cgrt_error err;
    cr_assert_eq(cgrt_save_checkpoint_series(&tiny_series_model, params, &st, ck, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_check_series_checkpoint(&tiny_series_model, ck, &err), 0, "%s", err.msg);
    cgrt_model other = tiny_series_model;
    other.data.series.horizon = 3;
    cr_assert_eq(cgrt_check_series_checkpoint(&other, ck, &err), -1);
    cr_expect(strstr(err.msg, "w.safetensors: trained on column value, window 4, horizon 2; model tiny_series reads "
                              "column value, window 4, horizon 3") != NULL,
              "%s", err.msg);
    other = tiny_series_model;
    other.data.series.column = "other";
    cr_assert_eq(cgrt_check_series_checkpoint(&other, ck, &err), -1);
    cr_expect(strstr(err.msg, "reads column other") != NULL, "%s", err.msg);
}

Test(series, checkpoint_keeps_the_statistics)
{
    const char *dir = t_tmpdir(), *ck = t_path(dir, "w.safetensors"), *plain = t_path(dir, "p.safetensors");
    cgrt_series_stats st = {1.0 / 3.0, 2.0 / 7.0}, back;
    float params[1] = {0.75f}, got[1] = {0};
    cgrt_error err;
    char *text;
    cr_assert_eq(cgrt_save_checkpoint_series(&tiny_series_model, params, &st, ck, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_load_series_stats(ck, &back, &err), 0, "%s", err.msg);
    cr_assert_eq(back.mean, st.mean, "mean %.17g, expected %.17g", back.mean, st.mean);
    cr_assert_eq(back.std, st.std);
    cr_assert_eq(cgrt_load_checkpoint(&tiny_series_model, got, ck, &err), 0, "%s", err.msg);
    cr_assert_eq(got[0], 0.75f);
    text = t_read(ck, NULL);
    cr_assert(strstr(text + 8, "\"series_column\":\"value\",\"series_window\":\"4\",\"series_horizon\":\"2\"") != NULL,
              "%s", text + 8);
    free(text);
    /* a checkpoint without them */
    cr_assert_eq(cgrt_save_checkpoint(&tiny_series_model, params, plain, &err), 0, "%s", err.msg);
    cr_assert_eq(cgrt_load_series_stats(plain, &back, &err), -1);
    assert_msg(err, "p.safetensors: holds no time-series statistics (no \"series_mean\" in __metadata__)");
}

/* Writes a safetensors file holding one float and the given metadata entries. */
static void write_with_metadata(const char *path, const char *meta)
{
    char head[512];
    unsigned char buf[600];
    size_t n;
    int k;
    snprintf(head, sizeof head,
             "{\"__metadata__\":{%s},\"dense/bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", meta);
    n = strlen(head);
    for (k = 0; k < 8; k++)
        buf[k] = (unsigned char)((uint64_t)n >> (8 * k));
    memcpy(buf + 8, head, n);
    memset(buf + 8 + n, 0, 4);
    t_write(path, buf, 8 + n + 4);
}

Test(series, checkpoint_statistics_that_are_not_numbers)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "m.safetensors");
    cgrt_series_stats st;
    cgrt_error err;
    write_with_metadata(p, "\"series_mean\":\"abc\",\"series_std\":\"1\"");
    cr_assert_eq(cgrt_load_series_stats(p, &st, &err), -1);
    assert_msg(err, "m.safetensors: \"series_mean\" in __metadata__ is \"abc\", not a number");
    write_with_metadata(p, "\"series_mean\":\"2\",\"series_std\":\"0\"");
    cr_assert_eq(cgrt_load_series_stats(p, &st, &err), -1);
    assert_msg(err, "m.safetensors: \"series_std\" in __metadata__ is 0; a standard deviation must be positive");
    write_with_metadata(p, "\"series_mean\":\"2\"");
    cr_assert_eq(cgrt_load_series_stats(p, &st, &err), -1);
    assert_msg(err, "no \"series_std\"");
    write_with_metadata(p, "\"format\":\"pt\",\"series_mean\":\"-2.5\",\"series_std\":\"4e1\"");
    cr_assert_eq(cgrt_load_series_stats(p, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.mean, -2.5);
    cr_assert_eq(st.std, 40.0);
}

/* ---- the model and cgrt_load_data ---- */

Test(series, load_data_and_model_checks)
{
    const char *dir = t_tmpdir(), *p = t_path(dir, "s.csv");
    cgrt_model m = tiny_series_model;
    cgrt_dataset tr, te;
    cgrt_error err;
    t_write_series(p, 60, NULL);
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), 0, "%s", err.msg);
    cr_assert_eq(tr.n, 60 - 4 - 2 + 1 - 6 - 8);
    cr_assert_eq(te.n, 8);
    cr_assert_eq(tr.features, 4);
    cr_assert_eq(te.label_width, 1);
    cgrt_dataset_free(&tr);
    cgrt_dataset_free(&te);
    m.data.series.window = 5;
    cr_assert_eq(cgrt_load_data(&m, p, &tr, &te, &err), -1);
    assert_msg(err, "model tiny_series takes 4 values per sample, but its series window is 5");
    m = tiny_series_model;
    m.out_features = 2;
    cr_assert_eq(cgrt_check_series_model(&m, &err), -1);
    assert_msg(err, "has 2 outputs and 1 label values per sample; a forecaster has one of each");
    cr_assert_eq(cgrt_check_series_model(&tiny_model, &err), -1);
    assert_msg(err, "model tiny is not a time-series model");
}
