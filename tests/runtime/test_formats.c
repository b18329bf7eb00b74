/* test_formats.c: the data-format table (which row reads a path) and the CSV
 * format whose header names the label column: the label first, in the
 * middle or last; class names numbered in order of first appearance; the
 * errors naming the file, the line and the column; predict input with and
 * without the label column; and --label-column on the command line. */
#include "helpers.h"
#include "rt_internal.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The tiny 3-class model of 4 features with its labels in the column `label`. */
static cgrt_model named_model(const char *label)
{
    cgrt_model m = tiny_model;
    m.data.label_column = label;
    return m;
}

/* Writes text to dir/name and loads it through the table for m; returns the status. */
static int load_text(const cgrt_model *m, const char *dir, const char *name, const char *text, int role, rt_loaded *d,
                     cgrt_error *err)
{
    t_write(t_path(dir, name), text, strlen(text));
    return rt_load(m, t_path(dir, name), role, d, err);
}

/* Asserts that sample i of d has the features x0..x3 and the label y. */
static void assert_sample(const cgrt_dataset *d, int i, float x0, float x1, float x2, float x3, float y)
{
    const float *x = d->x + (size_t)i * 4;
    cr_assert_eq(d->features, 4);
    cr_assert(x[0] == x0 && x[1] == x1 && x[2] == x2 && x[3] == x3, "sample %d: features %g %g %g %g", i, (double)x[0],
              (double)x[1], (double)x[2], (double)x[3]);
    cr_assert_eq(d->y[i], y, "sample %d: label %g, expected %g", i, (double)d->y[i], (double)y);
}

/* Asserts that err names every one of the phrases. */
#define assert_says(err, ...)                                                                            \
    do {                                                                                                 \
        const char *const phrases_[] = {__VA_ARGS__, NULL};                                              \
        for (int k_ = 0; phrases_[k_]; k_++)                                                             \
            cr_assert(strstr((err).msg, phrases_[k_]) != NULL, "message \"%s\" lacks \"%s\"", (err).msg, \
                      phrases_[k_]);                                                                     \
    } while (0)

Test(csv_named, label_first_middle_or_last)
{
    static const char *const texts[] = {
        "kind,a,b,c,d\n2,1,2,3,4\n0,5,6,7,8\n",
        "a,b,kind,c,d\n1,2,2,3,4\n5,6,0,7,8\n",
        "a,b,c,d,kind\n1,2,3,4,2\n5,6,7,8,0\n",
    };
    const char *dir = t_tmpdir();
    cgrt_model m = named_model("kind");
    rt_loaded d;
    cgrt_error err;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(load_text(&m, dir, "k.csv", texts[i], RT_ROLE_DATA, &d, &err), 0, "layout %d: %s", i, err.msg);
        cr_assert_eq(d.train.n, 2, "layout %d", i);
        cr_assert_eq(d.train.label_width, 1);
        assert_sample(&d.train, 0, 1, 2, 3, 4, 2);
        assert_sample(&d.train, 1, 5, 6, 7, 8, 0);
        cr_assert_str_eq(d.note, "", "numeric labels name no classes");
        rt_loaded_free(&d);
    }
}

Test(csv_named, text_labels_numbered_in_order_of_first_appearance)
{
    const char *dir = t_tmpdir();
    const char *text = "a,species,b,c,d\n"
                       "1,Gentoo,2,3,4\n"
                       "5,Adelie,6,7,8\n"
                       "9,Gentoo,1,1,1\n"
                       "0,Chinstrap,0,0,0\n"
                       "2,Adelie,2,2,2\n";
    cgrt_model m = named_model("species");
    rt_loaded d;
    cgrt_error err;
    m.data.scale = 0.5f;
    t_write_gz(t_path(dir, "p.csv.gz"), text, strlen(text));
    cr_assert_eq(rt_load(&m, t_path(dir, "p.csv.gz"), RT_ROLE_DATA, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.train.n, 5);
    assert_sample(&d.train, 0, 0.5f, 1, 1.5f, 2, 0); /* Gentoo, met first */
    assert_sample(&d.train, 1, 2.5f, 3, 3.5f, 4, 1); /* Adelie */
    assert_sample(&d.train, 2, 4.5f, 0.5f, 0.5f, 0.5f, 0);
    assert_sample(&d.train, 3, 0, 0, 0, 0, 2); /* Chinstrap */
    assert_sample(&d.train, 4, 1, 1, 1, 1, 1);
    cr_assert_str_eq(d.note, "column \"species\" names 3 classes: Gentoo=0, Adelie=1, Chinstrap=2");
    rt_loaded_free(&d);
}

Test(csv_named, more_names_than_classes_is_an_error_naming_the_file_and_the_name)
{
    const char *dir = t_tmpdir();
    const char *text = "species,a,b,c,d\nGentoo,1,2,3,4\nAdelie,1,2,3,4\nChinstrap,1,2,3,4\nGentoo,1,2,3,4\n"
                       "Emperor,1,2,3,4\n";
    cgrt_model m = named_model("species");
    rt_loaded d;
    cgrt_error err;
    cr_assert_eq(load_text(&m, dir, "birds.csv", text, RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "birds.csv:6: column \"species\" names more classes than the 3 the model has",
                "\"Emperor\" comes after Gentoo, Adelie, Chinstrap");
}

Test(csv_named, missing_or_doubled_column_and_no_header)
{
    const char *dir = t_tmpdir();
    cgrt_model m = named_model("species");
    rt_loaded d;
    cgrt_error err;
    cr_assert_eq(
        load_text(&m, dir, "a.csv", "\n  \nbill,flipper,mass,year,island\n1,2,3,4,0\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "a.csv: no column named \"species\"; the header (line 3) names: bill, flipper, mass, year, "
                     "island");
    cr_assert_eq(load_text(&m, dir, "b.csv", "species,a,b,species,c\n0,1,2,0,3\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "b.csv: the header (line 1) names \"species\" twice (columns 1 and 4)");
    cr_assert_eq(load_text(&m, dir, "c.csv", "1,2,3,4,0\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "c.csv: has no header line, so no column is named \"species\" (line 1 holds numbers)");
    cr_assert_eq(load_text(&m, dir, "d.csv", "species\nAdelie\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "d.csv: the header names only the label column \"species\"");
    cr_assert_eq(load_text(&m, dir, "e.csv", "a,b,c,d,species\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "e.csv: holds no data rows");
}

Test(csv_named, quoted_names_and_class_names_with_commas)
{
    const char *dir = t_tmpdir();
    const char *text = "\"bill length\",\"the species\",b,c,d\n"
                       "1,\"Adelie, Torgersen\",2,3,4\n"
                       " 5 , \"Gentoo\" ,6,7,8\n"
                       "9,\"Adelie, Torgersen\",1,1,1\n";
    cgrt_model m = named_model("the species");
    rt_loaded d;
    cgrt_error err;
    cr_assert_eq(load_text(&m, dir, "q.csv", text, RT_ROLE_DATA, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.train.n, 3);
    assert_sample(&d.train, 0, 1, 2, 3, 4, 0);
    assert_sample(&d.train, 1, 5, 6, 7, 8, 1);
    assert_sample(&d.train, 2, 9, 1, 1, 1, 0);
    cr_assert_str_eq(d.note, "column \"the species\" names 2 classes: Adelie, Torgersen=0, Gentoo=1");
    rt_loaded_free(&d);
}

Test(csv_named, bad_cells_name_the_line_and_the_column)
{
    const char *dir = t_tmpdir();
    cgrt_model m = named_model("kind");
    rt_loaded d;
    cgrt_error err;
    cr_assert_eq(load_text(&m, dir, "r.csv", "a,b,kind,c,d\n1,2,0,3,4\n1,2,0,3\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "r.csv:3: row has 4 columns, the header (line 1) names 5");
    cr_assert_eq(load_text(&m, dir, "f.csv", "a,b,kind,c,d\n1,2,0,3,4\n1,x,0,3,4\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "f.csv:3: column 2 (\"b\"): \"x\" is not a number");
    cr_assert_eq(load_text(&m, dir, "g.csv", "a,b,kind,c,d\n1,2,,3,4\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "g.csv:2: column 3 (\"kind\") is empty");
    cr_assert_eq(load_text(&m, dir, "h.csv", "a,b,kind,c,d\n1,2,Adelie,3,4\n1,2,NA,3,4\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "h.csv:3: column 3 (\"kind\"): \"NA\" marks a missing value");
    cr_assert_eq(load_text(&m, dir, "i.csv", "a,b,kind,c,d\n1,2,7,3,4\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "i.csv: label 7 at sample 0 is outside 0..2");
    m.label_kind = CGRT_LABEL_DENSE; /* a regression: labels are numbers, never names */
    m.num_classes = 0;
    m.loss_name = "mean_squared_error";
    cr_assert_eq(load_text(&m, dir, "j.csv", "a,b,kind,c,d\n1,2,0.5,3,4\n1,2,tall,3,4\n", RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "j.csv:3: column \"kind\" holds \"tall\", which is not a number");
}

Test(csv_named, predict_input_drops_the_label_column_when_it_has_one)
{
    const char *dir = t_tmpdir();
    cgrt_model m = named_model("species");
    rt_loaded d;
    cgrt_error err;
    cr_assert_eq(load_text(&m, dir, "in.csv", "a,species,b,c,d\n1,Adelie,2,3,4\n", RT_ROLE_INPUT, &d, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(d.train.n, 1);
    cr_assert_eq(d.train.features, 4);
    cr_assert_null(d.train.y);
    cr_assert(d.train.x[0] == 1 && d.train.x[1] == 2 && d.train.x[3] == 4);
    rt_loaded_free(&d);
    cr_assert_eq(load_text(&m, dir, "in2.csv", "a,b,c,d\n1,2,3,4\n5,6,7,8\n", RT_ROLE_INPUT, &d, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(d.train.n, 2);
    cr_assert_eq(d.train.x[7], 8.0f);
    rt_loaded_free(&d);
    cr_assert_eq(load_text(&m, dir, "in3.csv", "1,2,3,4\n", RT_ROLE_INPUT, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.train.n, 1);
    rt_loaded_free(&d);
}

/* ---- which row reads a path ---- */

Test(formats, a_named_label_column_needs_a_csv_file)
{
    const char *dir = t_tmpdir();
    cgrt_model m = named_model("species");
    rt_loaded d;
    cgrt_error err;
    t_write_blobs_npy(dir, 6, 0, 1);
    cr_assert_eq(rt_load(&m, dir, RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "the labels are the column named \"species\" of a CSV file with a header",
                "not a .csv or .csv.gz file");
    /* predict input of another format has no label column to drop */
    cr_assert_eq(rt_load(&m, t_path(dir, "x_train.npy"), RT_ROLE_INPUT, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.train.n, 6);
    rt_loaded_free(&d);
}

Test(formats, predict_input_by_magic_number_or_suffix)
{
    static const int dims[3] = {2, 2, 2};
    static const unsigned char px[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char *dir = t_tmpdir();
    cgrt_model m = tiny_model;
    rt_loaded d;
    cgrt_error err;
    size_t n;
    unsigned char *idx = t_idx(3, dims, px, &n);
    t_write_gz(t_path(dir, "images"), idx, n); /* no suffix: an IDX images file by its first bytes */
    free(idx);
    cr_assert_eq(rt_load(&m, t_path(dir, "images"), RT_ROLE_INPUT, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.train.n, 2);
    cr_assert_eq(d.train.x[7], 8.0f);
    rt_loaded_free(&d);
    t_write_blobs_npy(dir, 5, 0, 1);
    cr_assert_eq(rename(t_path(dir, "x_train.npy"), t_path(dir, "samples.bin")), 0);
    cr_assert_eq(rt_load(&m, t_path(dir, "samples.bin"), RT_ROLE_INPUT, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.train.n, 5);
    rt_loaded_free(&d);
    t_write(t_path(dir, "notes.txt"), "1,2,3,4\n", 8);
    cr_assert_eq(rt_load(&m, t_path(dir, "notes.txt"), RT_ROLE_INPUT, &d, &err), -1);
    assert_says(err, "notes.txt: not a data file this binary reads", "CSV: a .csv[.gz] file");
    cr_assert_eq(rt_load(&m, t_path(dir, "notes.txt"), RT_ROLE_DATA, &d, &err), -1);
    assert_says(err, "notes.txt: not a data file this binary reads");
}

/* ---- --label-column on the command line ---- */


Test(csv_named, label_column_flag_overrides_the_spec)
{
    const char *dir = t_tmpdir(), *csv = t_path(dir, "blobs.csv"), *ck = t_path(dir, "w.safetensors");
    const char *fit[] = {"fit", "--data", csv, "--label-column", "kind", "--epochs", "8", "--lr",
                         "0.3", "--save", ck,  "--verbose",      "2",    NULL};
    const char *ev[] = {"evaluate", "--data", csv, "--weights", ck, "--label-column", "kind", NULL};
    const char *ev_plain[] = {"evaluate", "--data", csv, "--weights", ck, NULL};
    const char *pr[] = {"predict", "--input", csv, "--weights", ck, "--label-column", "kind", NULL};
    const char *const names[3] = {"low", "mid", "high"};
    char *out, *errs;
    FILE *f = fopen(csv, "w");
    cgrt_model m = tiny_model;
    cr_assert_not_null(f);
    fprintf(f, "x0,kind,x1,x2,x3\n");
    for (int i = 0; i < 90; i++) { /* three well separated blobs; class c at (2c, -2c, c, 1) */
        int c = i % 3;
        fprintf(f, "%g,%s,%g,%g,1\n", 2.0 * c + 0.1 * (i % 5), names[c], -2.0 * c, 0.5 * c);
    }
    fclose(f);
    m.data.test_split = 0.2f;
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs, fit), 0, "stderr: %s", errs);
    cr_assert(strstr(out, "labels: column \"kind\" names 3 classes: low=0, mid=1, high=2\n") != NULL, "%s", out);
    cr_assert(strncmp(t_last_line(out), "test: loss=", 11) == 0, "%s", out);
    cr_assert_gt(atof(strstr(t_last_line(out), "accuracy=") + 9), 0.9, "%s", t_last_line(out));
    free(out);
    free(errs);
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs, ev), 0, "stderr: %s", errs);
    cr_assert_gt(atof(strstr(out, "accuracy=") + 9), 0.9, "%s", out);
    free(out);
    free(errs);
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs, ev_plain), 1, "without the flag the labels are the last column");
    cr_assert(strstr(errs, "blobs.csv:") != NULL, "%s", errs);
    free(out);
    free(errs);
    cr_assert_eq(t_run_cli(&m, dir, &out, &errs, pr), 0, "stderr: %s", errs);
    cr_assert_eq(t_count_lines(out), 90, "%s", out);
    cr_assert(strstr(out, ",0\n") && strstr(out, ",1\n") && strstr(out, ",2\n"), "every class predicted: %s", out);
    free(out);
    free(errs);
    {
        const char *bad[] = {"fit", "--data", csv, "--label-column", "kind", NULL};
        cr_assert_eq(t_run_cli(&tiny_series_model, dir, &out, &errs, bad), 2);
        cr_assert(strstr(errs, "--label-column does not apply to a time series") != NULL, "%s", errs);
        free(out);
        free(errs);
    }
}
