/* test_curves.c: training curves as SVG. `BIN fit --plot FILE.svg` draws
 * the history after training: the test reads the SVG back (well-formed
 * XML, a standalone SVG 1.1 root), recovers each panel's scale from its
 * tick labels and checks that the loss polyline's points are the history
 * CSV's values within a pixel, that the ticks are round steps covering the
 * data and that the legend names loss and val_loss. `cgrad plot` draws the
 * same bytes from the --history file; early stopping still draws; one
 * epoch draws a point; a gap in the values splits a line; a bad CSV fails
 * with one line naming the file and line. Headless Chromium (when
 * installed) renders the curves with both series' colours, and every
 * example's training binary draws its curves after two short epochs. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIGITS_DATA SOURCE_DIR "/examples/data/digits.csv.gz"
#define TRAIN_COLOUR "#1f77b4"
#define VAL_COLOUR "#d95f02"
#define MAX_ROWS 64

TestSuite(curves, .timeout = 240, .fini = e2e_cleanup);

/* ---- the history and the SVG as text ------------------------------------------------ */

/* A history CSV read back: its column names and values (NaN for an empty cell). */
typedef struct history {
    char names[40][80];
    int ncols, rows;
    double v[MAX_ROWS][40];
} history;

/* Reads the history CSV at path. */
static history read_history(const char *path)
{
    history h;
    memset(&h, 0, sizeof h);
    char *text = e2e_read(path, NULL);
    cr_assert_not_null(text, "no history %s", path);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    for (char *c = line; c && h.ncols < 40; h.ncols++) {
        size_t n = strcspn(c, ",");
        snprintf(h.names[h.ncols], sizeof h.names[0], "%.*s", (int)n, c);
        c = c[n] ? c + n + 1 : NULL;
    }
    while ((line = strtok_r(NULL, "\n", &save)) != NULL && h.rows < MAX_ROWS) {
        const char *c = line;
        for (int k = 0; k < h.ncols; k++) {
            char *end;
            double x = strtod(c, &end);
            h.v[h.rows][k] = end == c ? NAN : x;
            c = strchr(c, ',') ? strchr(c, ',') + 1 : "";
        }
        h.rows++;
    }
    free(text);
    return h;
}

/* The column named name of h; asserts it exists. */
static int column(const history *h, const char *name)
{
    for (int k = 0; k < h->ncols; k++)
        if (!strcmp(h->names[k], name))
            return k;
    cr_assert_fail("the history has no column %s", name);
    return -1;
}

/* Checks that text is well-formed XML as this writer produces it (a
 * declaration, elements, attributes in double quotes, character data with
 * entities): every tag closes in order, attributes are quoted, & starts an
 * entity, no '<' in text, one root. */
static void assert_well_formed(const char *text)
{
    const char *stack[64], *p = text;
    size_t lens[64];
    int depth = 0, roots = 0;
    if (!strncmp(p, "<?xml", 5))
        p = strstr(p, "?>") + 2;
    for (; *p; p++) {
        if (*p == '&') {
            cr_assert(!strncmp(p, "&amp;", 5) || !strncmp(p, "&lt;", 4) || !strncmp(p, "&gt;", 4) ||
                          !strncmp(p, "&quot;", 6) || !strncmp(p, "&apos;", 6),
                      "a bare & at: %.40s", p);
            continue;
        }
        if (*p != '<')
            continue;
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz-");
        cr_assert(n > 0, "no tag name at: %.40s", p);
        const char *q = name + n;
        while (*q && *q != '>' && !(*q == '/' && q[1] == '>')) {
            if (*q == '=') {
                cr_assert(q[1] == '"', "an unquoted attribute at: %.40s", q - 10);
                q = strchr(q + 2, '"');
                cr_assert_not_null(q, "an attribute that does not close");
                cr_assert(!memchr(name, '<', (size_t)(q - name)), "a '<' inside a tag");
            }
            q++;
        }
        cr_assert(*q, "a tag that does not close: %.40s", p);
        if (closing) {
            cr_assert(depth > 0 && lens[depth - 1] == n && !strncmp(stack[depth - 1], name, n), "</%.*s> closes %s",
                      (int)n, name, depth ? stack[depth - 1] : "nothing");
            depth--;
        } else if (*q != '/') {
            cr_assert_lt(depth, 64);
            roots += depth == 0;
            stack[depth] = name, lens[depth++] = n;
        }
        p = q;
    }
    cr_assert_eq(depth, 0, "%d elements left open", depth);
    cr_assert_eq(roots, 1, "%d root elements", roots);
}

/* The number in attribute name="..." of the tag starting at tag (asserts it is there). */
static double attr(const char *tag, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *end = strchr(tag, '>'), *p = strstr(tag, key);
    cr_assert(p && p < end, "no %s in %.80s", name, tag);
    return strtod(p + strlen(key), NULL);
}

/* The text of panel `name`: from its <g class="panel"> to the next (or the end), malloc'd. */
static char *panel(const char *svg, const char *name)
{
    char title[128];
    snprintf(title, sizeof title, "font-weight=\"bold\">%s</text>", name);
    for (const char *p = strstr(svg, "<g class=\"panel\""); p; p = strstr(p + 1, "<g class=\"panel\"")) {
        const char *next = strstr(p + 1, "<g class=\"panel\""), *t = strstr(p, title);
        size_t n = next ? (size_t)(next - p) : strlen(p);
        if (t && t < p + n)
            return strndup(p, n);
    }
    cr_assert_fail("no panel %s", name);
    return NULL;
}

/* An axis read from its tick labels: value = a + b * pixel, and the labels. */
typedef struct scale {
    double a, b;
    double values[32];
    int n;
} scale;

/* Reads the ticks of class cls ("ytick", "xtick") of a panel: asserts at least
 * two, evenly spaced in value and pixels by a round step (1, 2 or 5 times a
 * power of ten), and returns the mapping they give. */
static scale read_ticks(const char *pan, const char *cls, const char *coord)
{
    char key[64];
    double px[32];
    scale s = {0};
    snprintf(key, sizeof key, "<text class=\"%s\"", cls);
    for (const char *p = strstr(pan, key); p && s.n < 32; p = strstr(p + 1, key)) {
        px[s.n] = attr(p, coord);
        s.values[s.n++] = strtod(strchr(p, '>') + 1, NULL);
    }
    cr_assert_geq(s.n, 2, "fewer than two %s labels", cls);
    s.b = (s.values[s.n - 1] - s.values[0]) / (px[s.n - 1] - px[0]);
    s.a = s.values[0] - s.b * px[0];
    double step = s.values[1] - s.values[0], mant = step / pow(10.0, floor(log10(step) + 1e-9));
    cr_assert(fabs(mant - 1) < 1e-6 || fabs(mant - 2) < 1e-6 || fabs(mant - 5) < 1e-6, "%s step %g is not round", cls,
              step);
    for (int i = 0; i < s.n; i++) {
        cr_assert(fabs(s.values[i] - (s.values[0] + i * step)) < step * 1e-6, "%s labels are not evenly spaced", cls);
        cr_assert(fabs(s.a + s.b * px[i] - s.values[i]) < fabs(step) * 1e-3, "%s label %g is off its place", cls,
                  s.values[i]);
        double r = s.values[i] / step;
        cr_assert(fabs(r - round(r)) < 1e-6, "%s label %g is not a multiple of its step", cls, s.values[i]);
    }
    return s;
}

/* The points of the first polyline of series `cls` ("train" or "val") of a panel, titled name, into x, y. */
static int series_points(const char *pan, const char *cls, const char *name, double *x, double *y, int max)
{
    char head[160];
    snprintf(head, sizeof head, "<g class=\"series %s\"><title>%s</title>", cls, name);
    const char *g = strstr(pan, head);
    cr_assert_not_null(g, "no %s series titled %s", cls, name);
    const char *pl = strstr(g, "<polyline"), *end = strstr(g, "</g>");
    cr_assert(pl && pl < end, "series %s has no polyline", name);
    const char *p = strstr(pl, "points=\"") + 8;
    int n = 0;
    while (*p != '"' && n < max) {
        char *e;
        x[n] = strtod(p, &e);
        cr_assert_eq(*e, ',', "bad points of %s", name);
        y[n++] = strtod(e + 1, &e);
        p = e + (*e == ' ');
    }
    return n;
}

/* Asserts that series column `name` of panel pan maps back to the history's
 * values within a pixel, at the epochs' places, and that the y ticks cover them. */
static void assert_series_matches(const char *pan, const char *cls, const history *h, const char *name)
{
    scale ys = read_ticks(pan, "ytick", "y"), xs = read_ticks(pan, "xtick", "x");
    int col = column(h, name), ep = column(h, "epoch");
    double x[MAX_ROWS], y[MAX_ROWS];
    int n = series_points(pan, cls, name, x, y, MAX_ROWS);
    cr_assert_eq(n, h->rows, "the %s polyline has %d points, the history %d epochs", name, n, h->rows);
    for (int i = 0; i < n; i++) {
        double v = h->v[i][col], want_y = (v - ys.a) / ys.b, want_x = (h->v[i][ep] - xs.a) / xs.b;
        cr_assert(fabs(y[i] - want_y) <= 1.0, "%s epoch %d: y %.2f, the value %g is at %.2f", name, i + 1, y[i], v,
                  want_y);
        cr_assert(fabs(x[i] - want_x) <= 1.0, "%s epoch %d: x %.2f, expected %.2f", name, i + 1, x[i], want_x);
        cr_assert(v >= ys.values[0] - 1e-9 && v <= ys.values[ys.n - 1] + 1e-9, "%s value %g outside the ticks %g..%g",
                  name, v, ys.values[0], ys.values[ys.n - 1]);
    }
}

/* Runs digits_mlp fit with the extra flags (NULL-terminated) in the test's folder; asserts it succeeded. */
static void fit_digits(const char *const *extra)
{
    const char *argv[32] = {DIGITS_MLP,           "fit", "--verbose", "0",     "--data", DIGITS_DATA,
                            "--validation-split", "0.2", "--history", "h.csv", "--plot", "a.svg"};
    int k = 12;
    for (; extra && *extra && k < 31; extra++)
        argv[k++] = *extra;
    e2e_run r = e2e_exec(e2e_tmpdir(), e2e_tmpdir(), 240, argv);
    cr_assert_eq(r.status, 0, "fit: status %d\n%s%s", r.status, r.out, r.err);
    e2e_run_free(&r);
}

/* ---- fit --plot ------------------------------------------------------------------------ */

Test(curves, fit_plot_draws_the_history)
{
    const char *tmp = e2e_tmpdir();
    fit_digits((const char *const[]){"--epochs", "4", NULL});
    history h = read_history(e2e_path(tmp, "h.csv"));
    cr_assert_eq(h.rows, 4);
    char *svg = e2e_read(e2e_path(tmp, "a.svg"), NULL);
    cr_assert_not_null(svg, "fit --plot wrote no a.svg");
    assert_well_formed(svg);
    const char *root = strstr(svg, "<svg ");
    cr_assert(root && strstr(root, "xmlns=\"http://www.w3.org/2000/svg\"") && attr(root, "width") > 0 &&
                  attr(root, "height") > 0 && strstr(root, "viewBox=\"0 0 "),
              "not a standalone SVG root: %.200s", svg);
    cr_assert(strstr(svg, "digits_mlp: training curves</text>"), "no title naming the model");
    char *loss = panel(svg, "loss"), *acc = panel(svg, "accuracy");
    assert_series_matches(loss, "train", &h, "loss");
    assert_series_matches(loss, "val", &h, "val_loss");
    assert_series_matches(acc, "train", &h, "accuracy");
    assert_series_matches(acc, "val", &h, "val_accuracy");
    const char *legend = strstr(loss, "<g class=\"legend\">");
    cr_assert(legend && strstr(legend, "\">loss</text>") && strstr(legend, "\">val_loss</text>"),
              "the legend does not name loss and val_loss");
    const char *val = strstr(loss, "<g class=\"series val\">");
    cr_assert(val && strstr(val, "stroke-dasharray") < strstr(val, "</g>"), "validation is not dashed");
    cr_assert_null(strstr(svg, "seconds"), "the timings are plotted");
    cr_assert_null(strstr(svg, ">lr<"), "an lr panel without a schedule");
    if (access("/usr/bin/xmllint", X_OK) == 0) {
        e2e_run r = E2E_RUN(tmp, tmp, "xmllint", "--noout", "a.svg");
        cr_assert_eq(r.status, 0, "xmllint: %s", r.err);
        e2e_run_free(&r);
    }
    free(loss), free(acc), free(svg);
}

Test(curves, cgrad_plot_draws_the_same_bytes)
{
    const char *tmp = e2e_tmpdir();
    fit_digits((const char *const[]){"--epochs", "3", NULL});
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "plot", "h.csv", "-o", "b.svg", "--title", "digits_mlp");
    cr_assert_eq(r.status, 0, "cgrad plot: %d %s", r.status, r.err);
    cr_assert_str_empty(r.out);
    e2e_run_free(&r);
    size_t la, lb;
    char *a = e2e_read(e2e_path(tmp, "a.svg"), &la), *b = e2e_read(e2e_path(tmp, "b.svg"), &lb);
    cr_assert(a && b && la == lb && !memcmp(a, b, la), "cgrad plot's SVG (%zu bytes) differs from fit --plot's (%zu)",
              lb, la);
    free(a), free(b);
    /* without --title the CSV's name titles the picture; nothing else moves */
    r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "plot", "h.csv", "-o", "c.svg");
    cr_assert_eq(r.status, 0, "%s", r.err);
    e2e_run_free(&r);
    char *c = e2e_read(e2e_path(tmp, "c.svg"), NULL);
    cr_assert(strstr(c, ">h.csv: training curves</text>"), "%.300s", c);
    free(c);
}

Test(curves, early_stopping_draws_the_epochs_run)
{
    const char *tmp = e2e_tmpdir();
    /* no epoch improves on the first by 100: stopped after the second */
    fit_digits((const char *const[]){"--epochs", "10", "--patience", "1", "--min-delta", "100", NULL});
    history h = read_history(e2e_path(tmp, "h.csv"));
    cr_assert_eq(h.rows, 2, "early stopping ran %d epochs", h.rows);
    char *svg = e2e_read(e2e_path(tmp, "a.svg"), NULL), *loss = panel(svg, "loss");
    assert_series_matches(loss, "train", &h, "loss");
    free(loss), free(svg);
}

Test(curves, lr_schedule_gets_a_panel)
{
    const char *tmp = e2e_tmpdir();
    fit_digits((const char *const[]){"--epochs", "4", "--reduce-lr-factor", "0.5", "--reduce-lr-patience", "0",
                                     "--reduce-lr-min-delta", "100", NULL});
    history h = read_history(e2e_path(tmp, "h.csv"));
    int lr = column(&h, "lr");
    cr_assert_neq(h.v[0][lr], h.v[3][lr], "the rate did not change");
    char *svg = e2e_read(e2e_path(tmp, "a.svg"), NULL), *pan = panel(svg, "lr");
    assert_series_matches(pan, "train", &h, "lr");
    free(pan), free(svg);
}

/* ---- cgrad plot on hand-written histories -------------------------------------------------- */

/* Runs cgrad plot on CSV text in the test's folder; the run. */
static e2e_run plot_text(const char *csv)
{
    const char *tmp = e2e_tmpdir();
    e2e_write_str(e2e_path(tmp, "in.csv"), csv);
    return E2E_RUN(tmp, tmp, CGRAD_TOOL, "plot", "in.csv", "-o", "out.svg", "--title", "m<&>\"'");
}

Test(curves, one_epoch_is_a_point_and_gaps_split_lines)
{
    e2e_run r = plot_text("epoch,loss,val_loss,seconds\n1,0.5,,1.0\n");
    cr_assert_eq(r.status, 0, "%s", r.err);
    e2e_run_free(&r);
    char *svg = e2e_read(e2e_path(e2e_tmpdir(), "out.svg"), NULL);
    assert_well_formed(svg);
    cr_assert(strstr(svg, "m&lt;&amp;&gt;&quot;&apos;: training curves</title>"), "title not escaped: %.300s", svg);
    cr_assert_null(strstr(svg, "<polyline"), "a line through one point");
    cr_assert_not_null(strstr(svg, "<circle"), "no point for the one epoch");
    cr_assert_null(strstr(svg, "val_loss"), "an empty validation column is drawn");
    char *pan = panel(svg, "loss");
    scale ys = read_ticks(pan, "ytick", "y");
    cr_assert(ys.values[0] < 0.5 && ys.values[ys.n - 1] > 0.5, "ticks %g..%g around 0.5", ys.values[0],
              ys.values[ys.n - 1]);
    free(pan), free(svg);

    r = plot_text("epoch,loss\n1,0.9\n2,0.8\n3,nan\n4,inf\n5,0.5\n6,0.4\n7,0.35\n");
    cr_assert_eq(r.status, 0, "%s", r.err);
    e2e_run_free(&r);
    svg = e2e_read(e2e_path(e2e_tmpdir(), "out.svg"), NULL);
    int lines = 0, points = 0;
    for (const char *p = strstr(svg, "<polyline"); p; p = strstr(p + 1, "<polyline"))
        lines++;
    for (const char *p = strstr(svg, "<circle"); p; p = strstr(p + 1, "<circle"))
        points++;
    cr_assert_eq(lines, 2, "nan and inf should split the line in two, got %d lines", lines);
    cr_assert_eq(points, 5, "%d points for 5 finite values", points);
    cr_assert_null(strstr(svg, "nan"));
    cr_assert_null(strstr(svg, "inf"));
    free(svg);
}

Test(curves, bad_csv_names_the_file_and_line)
{
    e2e_run r = plot_text("");
    E2E_ASSERT_FAILS(r, 1, "cgrad: in.csv:1: ", "empty");
    e2e_run_free(&r);
    r = plot_text("epoch,loss\n1,0.5\n2,abc\n");
    E2E_ASSERT_FAILS(r, 1, "in.csv:3: ", "\"loss\"", "\"abc\" is not a number");
    e2e_run_free(&r);
    r = plot_text("epoch,loss\n1,0.5\n\n2,0.4,7\n");
    E2E_ASSERT_FAILS(r, 1, "in.csv:4: ", "row has 3 columns, the header (line 1) names 2");
    e2e_run_free(&r);
    r = plot_text("loss,accuracy\n0.5,0.9\n");
    E2E_ASSERT_FAILS(r, 1, "in.csv:1: ", "no epoch column");
    e2e_run_free(&r);
    r = plot_text("epoch,loss\n");
    E2E_ASSERT_FAILS(r, 1, "in.csv:1: ", "no epoch after the header");
    e2e_run_free(&r);
    r = plot_text("epoch,loss\nx,0.5\n");
    E2E_ASSERT_FAILS(r, 1, "in.csv:2: ", "\"epoch\"");
    e2e_run_free(&r);
    cr_assert(!e2e_exists(e2e_path(e2e_tmpdir(), "out.svg")), "a failed plot left an SVG");
    r = E2E_RUN(e2e_tmpdir(), e2e_tmpdir(), CGRAD_TOOL, "plot", "missing.csv", "-o", "out.svg");
    E2E_ASSERT_FAILS(r, 1, "missing.csv");
    e2e_run_free(&r);
    r = E2E_RUN(e2e_tmpdir(), e2e_tmpdir(), CGRAD_TOOL, "plot", "in.csv");
    cr_assert_eq(r.status, 2, "no -o: status %d", r.status);
    e2e_run_free(&r);
    r = E2E_RUN(e2e_tmpdir(), e2e_tmpdir(), DIGITS_MLP, "fit", "--epochs", "0", "--plot", "x.svg");
    E2E_ASSERT_FAILS(r, 2, "--plot");
    e2e_run_free(&r);
}

/* ---- in a browser ------------------------------------------------------------------------- */

/* Pixels of the box [x0, x1) x [y0, y1) of rgb (w wide) within 3 of "#rrggbb",
 * or (hex NULL) not white. */
static long count_pixels(const unsigned char *rgb, int w, int x0, int y0, int x1, int y1, const char *hex)
{
    unsigned v = hex ? (unsigned)strtoul(hex + 1, NULL, 16) : 0xffffff;
    int want[3] = {(int)(v >> 16), (int)(v >> 8 & 255), (int)(v & 255)};
    long n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const unsigned char *p = rgb + 3 * ((size_t)y * (size_t)w + (size_t)x);
            int near = abs(p[0] - want[0]) <= 3 && abs(p[1] - want[1]) <= 3 && abs(p[2] - want[2]) <= 3;
            n += hex ? near : !near;
        }
    return n;
}

Test(curves, curves_in_a_browser)
{
    e2e_run r = E2E_RUN(e2e_tmpdir(), NULL, "chromium", "--version");
    bool have = r.status == 0;
    e2e_run_free(&r);
    if (!have)
        cr_skip_test("chromium is not installed (scripts/setup.sh --torch installs it)");
    const char *tmp = e2e_tmpdir();
    fit_digits((const char *const[]){"--epochs", "5", NULL});
    char url[512];
    snprintf(url, sizeof url, "file://%s/a.svg", tmp);
    r = E2E_RUN(tmp, tmp, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--user-data-dir=profile", "--window-size=960,364", "--screenshot=shot.png", url);
    cr_assert_eq(r.status, 0, "chromium --screenshot: status %d\n%s", r.status, r.err);
    e2e_run_free(&r);
    size_t len = 0;
    unsigned char *png = (unsigned char *)e2e_read(e2e_path(tmp, "shot.png"), &len);
    cr_assert_not_null(png, "no screenshot");
    int w = 0, h = 0;
    unsigned char *rgb = e2e_png_rgb(png, len, &w, &h);
    cr_assert_not_null(rgb, "the screenshot is no 8-bit RGB(A) PNG");
    cr_assert(w >= 480 && h >= 364, "a %dx%d screenshot", w, h);
    /* the loss panel's plot area: panel at (0, 44), area (72..460, 48..264) */
    int x0 = 74, y0 = 44 + 50, x1 = 458, y1 = 44 + 262;
    long ink = count_pixels(rgb, w, x0, y0, x1, y1, NULL);
    long train = count_pixels(rgb, w, x0, y0, x1, y1, TRAIN_COLOUR);
    long val = count_pixels(rgb, w, x0, y0, x1, y1, VAL_COLOUR);
    cr_expect_gt(ink, 1000, "%ld drawn pixels in the loss panel's plot area", ink);
    cr_expect_gt(train, 100, "%ld pixels of the training colour in the loss panel", train);
    cr_expect_gt(val, 50, "%ld pixels of the validation colour in the loss panel", val);
    free(rgb), free(png);
}

/* ---- every example -------------------------------------------------------------------------- */

/* Fits bin (an example's training binary named name) for two epochs with
 * --plot and --history (Fashion-MNIST's models on a slice) and checks its
 * curves: well-formed, the loss drawn through both epochs, and `cgrad plot`
 * of its history giving the same bytes. */
static void check_example(const char *tmp, const char *bin, const char *name, const char *fashion)
{
    const char *argv[16] = {bin, "fit", "--epochs", "2", "--verbose", "0", "--history", "h.csv", "--plot", "a.svg"};
    int k = 10;
    if (!strncmp(name, "fashion_", 8)) {
        argv[k++] = "--data";
        argv[k++] = fashion;
    }
    remove(e2e_path(tmp, "a.svg"));
    e2e_run r = e2e_exec(tmp, tmp, 240, argv);
    cr_assert_eq(r.status, 0, "%s fit: status %d\n%s%s", name, r.status, r.out, r.err);
    e2e_run_free(&r);
    char *svg = e2e_read(e2e_path(tmp, "a.svg"), NULL);
    cr_assert_not_null(svg, "%s: no curves", name);
    assert_well_formed(svg);
    history h = read_history(e2e_path(tmp, "h.csv"));
    char *loss = panel(svg, "loss");
    assert_series_matches(loss, "train", &h, "loss");
    r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "plot", "h.csv", "-o", "b.svg", "--title", name);
    cr_assert_eq(r.status, 0, "%s: cgrad plot: %s", name, r.err);
    e2e_run_free(&r);
    size_t la = strlen(svg), lb;
    char *b = e2e_read(e2e_path(tmp, "b.svg"), &lb);
    cr_assert(b && lb == la && !memcmp(svg, b, la), "%s: cgrad plot differs from fit --plot", name);
    free(b), free(loss), free(svg);
}

/* The arguments of check_example that stay the same for every example. */
typedef struct curves_ctx {
    const char *tmp, *fashion;
} curves_ctx;

/* check_example, in the form e2e_each_example_binary calls. */
static void check_each(const char *bin, const char *name, void *arg)
{
    const curves_ctx *c = arg;
    check_example(c->tmp, bin, name, c->fashion);
}

Test(curves, every_example_draws_its_curves)
{
    curves_ctx c = {e2e_tmpdir(), NULL};
    c.fashion = e2e_fashion_slice(c.tmp, 1024, 256);
    int binaries = e2e_each_example_binary(EXAMPLES_BUILD_DIR, check_each, &c);
    cr_assert_geq(binaries, 12, "only %d training binaries under %s", binaries, EXAMPLES_BUILD_DIR);
}
