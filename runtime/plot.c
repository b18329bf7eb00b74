/* plot.c: training curves as SVG, from a training history: what
 * `BIN fit --plot FILE.svg` draws after training and `cgrad plot
 * HISTORY.csv -o FILE.svg` draws from a --history file. Both read the
 * history through rt_history_line, one CSV line at a time (fit feeds it the
 * lines it writes to --history), so the same epochs give the same bytes.
 *
 * The picture: a title, then one panel per quantity (the loss, each metric,
 * and the learning rate when a schedule changed it), two panels a row. A
 * panel plots the training column and its val_ twin against the epoch:
 * points joined by lines, validation dashed, axes with ticks at round
 * values (steps of 1, 2 or 5 times a power of ten) that cover the data,
 * axis titles and a legend. An empty or non-finite value leaves a gap.
 * Coordinates are written with two decimals and names pass through one
 * escaping function, xml_put. The file is written atomically
 * (rt_write_atomic, checkpoint.c). */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PANEL_W 480 /* a panel's size in pixels */
#define PANEL_H 320
#define TITLE_H 44 /* the band of the title above the panels */
#define PLOT_X0 72 /* the plot area inside a panel */
#define PLOT_X1 460
#define PLOT_Y0 48
#define PLOT_Y1 264
#define TRAIN_COLOUR "#1f77b4"
#define VAL_COLOUR "#d95f02"
#define MAX_PANELS RT_HISTORY_MAX_COLS

/* ---- the history ------------------------------------------------------------ */

/* Starts an empty history read from path (the name messages give). */
void rt_history_init(rt_history *h, const char *path)
{
    memset(h, 0, sizeof *h);
    h->path = path;
    h->epoch_col = -1;
}

void rt_history_free(rt_history *h)
{
    free(h->v.v);
    memset(&h->v, 0, sizeof h->v);
}

/* The value of column col in row r (NaN for a gap). */
static double hist_value(const rt_history *h, int r, int col)
{
    return (double)h->v.v[(size_t)r * (size_t)h->ncols + (size_t)col];
}

/* The column named name, or -1. */
static int hist_find(const rt_history *h, const char *name)
{
    int k;
    for (k = 0; k < h->ncols; k++)
        if (strcmp(h->names[k], name) == 0)
            return k;
    return -1;
}

/* Reads the header line [s, e) into h's column names; -1 with err naming the line. */
static int hist_header(rt_history *h, const char *s, const char *e, int lineno, cgrt_error *err)
{
    rt_cells it;
    const char *cs, *ce;
    if (!rt_csv_is_header(s, e))
        return rt_fail(err, "%s:%d: expected the header of a history (epoch,loss,...), found a row of numbers", h->path,
                       lineno);
    rt_cells_init(&it, s, e);
    while (rt_cells_next(&it, &cs, &ce)) {
        int k = h->ncols;
        if (k == RT_HISTORY_MAX_COLS)
            return rt_fail(err, "%s:%d: the header names more than %d columns", h->path, lineno, RT_HISTORY_MAX_COLS);
        if (ce == cs || ce - cs >= RT_HISTORY_NAME)
            return rt_fail(err, "%s:%d: column %d of the header %s", h->path, lineno, k + 1,
                           ce == cs ? "has no name" : "has a name longer than 79 bytes");
        memcpy(h->names[k], cs, (size_t)(ce - cs));
        h->names[k][ce - cs] = '\0';
        if (hist_find(h, h->names[k]) >= 0)
            return rt_fail(err, "%s:%d: the header names \"%s\" twice", h->path, lineno, h->names[k]);
        h->ncols++;
    }
    h->epoch_col = hist_find(h, "epoch");
    if (h->epoch_col < 0)
        return rt_fail(err, "%s:%d: the header has no epoch column (a history starts epoch,loss,...)", h->path, lineno);
    h->header_line = lineno;
    return 0;
}

/* Reads one epoch's row [s, e) into h; -1 with err naming the line and column. */
static int hist_row(rt_history *h, const char *s, const char *e, int lineno, cgrt_error *err)
{
    rt_cells it;
    const char *cs, *ce;
    int n = rt_csv_count_cells(s, e), k = 0;
    if (n != h->ncols)
        return rt_fail(err, "%s:%d: row has %d columns, the header (line %d) names %d", h->path, lineno, n,
                       h->header_line, h->ncols);
    rt_cells_init(&it, s, e);
    for (k = 0; rt_cells_next(&it, &cs, &ce); k++) {
        float v = NAN;
        int kind = rt_csv_number(cs, ce, &v);
        if (kind == RT_CELL_TEXT || (k == h->epoch_col && kind != RT_CELL_NUMBER))
            return rt_fail(err, "%s:%d: column %d (\"%s\"): \"%.*s\" %s", h->path, lineno, k + 1, h->names[k],
                           (int)(ce - cs > 40 ? 40 : ce - cs), cs, rt_csv_problem(kind));
        if (kind != RT_CELL_NUMBER)
            v = NAN; /* a gap: empty, missing, infinite or beyond a float */
        if (rt_fvec_push(&h->v, v) != 0)
            return rt_fail(err, "%s: out of memory", h->path);
    }
    h->rows++;
    return 0;
}

/* Reads one line [s, e) of a history CSV, line lineno of h->path: the
 * header first, then a row per epoch; blank lines are skipped. Returns 0,
 * or -1 with err naming the file, the line and what is wrong. */
int rt_history_line(rt_history *h, const char *s, const char *e, int lineno, cgrt_error *err)
{
    if (rt_csv_blank(s, e))
        return 0;
    return h->ncols == 0 ? hist_header(h, s, e, lineno, err) : hist_row(h, s, e, lineno, err);
}

/* ---- panels and axes ---------------------------------------------------------- */

/* One panel: the quantity it plots and its two series (columns; -1: none). */
typedef struct plot_panel {
    const char *name;
    int train, val;
} plot_panel;

/* An axis: the range [lo, hi], ticks every step from lo, labels with `decimals` decimals. */
typedef struct plot_axis {
    double lo, hi, step;
    int ticks, decimals;
} plot_axis;

/* What plot_body draws. */
typedef struct plot_ctx {
    const rt_history *h;
    const char *title;
    plot_panel panels[MAX_PANELS];
    int npanels;
} plot_ctx;

/* 1 when column col holds a finite value; *lo and *hi (may be NULL) get its range. */
static int column_range(const rt_history *h, int col, double *lo, double *hi)
{
    double a = INFINITY, b = -INFINITY;
    int r;
    for (r = 0; col >= 0 && r < h->rows; r++) {
        double v = hist_value(h, r, col);
        if (isfinite(v)) {
            a = v < a ? v : a;
            b = v > b ? v : b;
        }
    }
    if (lo)
        *lo = a;
    if (hi)
        *hi = b;
    return a <= b;
}

/* 1 when name is a column a panel never plots: the epoch, timings, the
 * learning rate (its own panel) and a val_ twin of a column that exists. */
static int not_a_quantity(const rt_history *h, const char *name)
{
    return !strcmp(name, "epoch") || !strcmp(name, "seconds") || !strcmp(name, "samples_per_sec") ||
           !strcmp(name, "lr") || (!strncmp(name, "val_", 4) && hist_find(h, name + 4) >= 0);
}

/* Chooses c's panels: each quantity in the header's order (its column and
 * its val_ twin, either may be absent or empty), then lr when it varies. */
static void choose_panels(plot_ctx *c)
{
    const rt_history *h = c->h;
    double lo, hi;
    char val[RT_HISTORY_NAME + 4];
    int k, lr = hist_find(h, "lr");
    for (k = 0; k < h->ncols; k++) {
        const char *name = h->names[k];
        plot_panel p = {name, k, -1};
        if (not_a_quantity(h, name))
            continue;
        if (!strncmp(name, "val_", 4)) /* validation without its training column */
            p.name = name + 4, p.train = -1, p.val = k;
        else {
            snprintf(val, sizeof val, "val_%s", name);
            p.val = hist_find(h, val);
        }
        if (column_range(h, p.train, NULL, NULL) || column_range(h, p.val, NULL, NULL))
            c->panels[c->npanels++] = p;
    }
    if (lr >= 0 && column_range(h, lr, &lo, &hi) && hi > lo)
        c->panels[c->npanels++] = (plot_panel){"lr", lr, -1};
}

/* The round step (1, 2 or 5 times a power of ten) at or above raw > 0. */
static double nice_step(double raw)
{
    double p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f <= 1.0 + 1e-9 ? 1.0 : f <= 2.0 + 1e-9 ? 2.0 : f <= 5.0 + 1e-9 ? 5.0 : 10.0) * p;
}

/* Fits axis a around the data range [lo, hi]: about `target` intervals of a
 * round step (at least min_step), the range widened to whole steps. A single
 * value gets room around it: min_step, or a tenth of itself (1 for 0). */
static void axis_fit(plot_axis *a, double lo, double hi, int target, double min_step)
{
    if (hi <= lo) {
        double d = min_step > 0.0 ? min_step : lo != 0.0 ? fabs(lo) * 0.1 : 1.0;
        lo -= d, hi += d;
    }
    a->step = nice_step((hi - lo) / target);
    if (a->step < min_step)
        a->step = min_step;
    a->lo = floor(lo / a->step + 1e-9) * a->step;
    a->hi = ceil(hi / a->step - 1e-9) * a->step;
    a->ticks = (int)floor((a->hi - a->lo) / a->step + 0.5) + 1;
    a->decimals = a->step >= 1.0 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    if (a->decimals > 15)
        a->decimals = 15;
}

/* The value of tick i of a (an exact 0 where rounding would print -0). */
static double tick_value(const plot_axis *a, int i)
{
    double v = a->lo + i * a->step;
    return fabs(v) < a->step * 1e-6 ? 0.0 : v;
}

/* The horizontal pixel of epoch x, the vertical pixel of value y, in a panel. */
static double px(const plot_axis *a, double x)
{
    return PLOT_X0 + (x - a->lo) / (a->hi - a->lo) * (PLOT_X1 - PLOT_X0);
}
static double py(const plot_axis *a, double y)
{
    return PLOT_Y1 - (y - a->lo) / (a->hi - a->lo) * (PLOT_Y1 - PLOT_Y0);
}

/* ---- SVG text ------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence of two to four bytes at p, or 0. */
static int utf8_seq(const unsigned char *p)
{
    int len = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
              : p[0] >= 0xe0 && p[0] <= 0xef ? 3
              : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                             : 0;
    unsigned lo = p[0] == 0xe0   ? 0xa0
                  : p[0] == 0xf0 ? 0x90
                                 : 0x80,
             hi = p[0] == 0xed   ? 0x9f
                  : p[0] == 0xf4 ? 0x8f
                                 : 0xbf;
    int i;
    for (i = 1; i < len; i++)
        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
            return 0;
    return len;
}

/* Writes s as XML character data or attribute text: & < > " ' as
 * entities, valid UTF-8 as it is, control bytes and bytes outside UTF-8 as
 * '?'. The one function through which names reach the SVG. */
static void xml_put(FILE *f, const char *s)
{
    const unsigned char *p;
    for (p = (const unsigned char *)s; *p; p++) {
        int len = *p >= 0x80 ? utf8_seq(p) : 0;
        if (len) {
            fwrite(p, 1, (size_t)len, f);
            p += len - 1;
        } else if (strchr("&<>\"'", *p)) {
            fputs(*p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '"' ? "&quot;" : "&apos;", f);
        } else {
            fputc(*p < 0x20 || *p >= 0x7f ? '?' : *p, f);
        }
    }
}

/* The axes of a panel: grid lines, ticks and their labels, the axis lines and titles (yname on the vertical). */
static void svg_axes(FILE *f, const plot_axis *xa, const plot_axis *ya, const char *yname)
{
    int i;
    for (i = 0; i < ya->ticks; i++) {
        double v = tick_value(ya, i), y = py(ya, v);
        fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#e4e4e4\"/>\n", PLOT_X0,
                y, PLOT_X1, y);
        fprintf(f, "<text class=\"ytick\" x=\"%d\" y=\"%.2f\" dy=\"0.32em\" text-anchor=\"end\">%.*f</text>\n",
                PLOT_X0 - 6, y, ya->decimals, v);
    }
    for (i = 0; i < xa->ticks; i++) {
        double v = tick_value(xa, i), x = px(xa, v);
        fprintf(f, "<line class=\"xtickmark\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#444444\"/>\n", x,
                PLOT_Y1, x, PLOT_Y1 + 5);
        fprintf(f, "<text class=\"xtick\" x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%.*f</text>\n", x, PLOT_Y1 + 18,
                xa->decimals, v);
    }
    fprintf(f, "<path class=\"axes\" d=\"M%d %dV%dH%d\" fill=\"none\" stroke=\"#444444\"/>\n", PLOT_X0, PLOT_Y0,
            PLOT_Y1, PLOT_X1);
    fprintf(f, "<text class=\"xtitle\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n",
            (PLOT_X0 + PLOT_X1) / 2, PLOT_Y1 + 40);
    fprintf(f, "<text class=\"ytitle\" transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\">",
            (PLOT_Y0 + PLOT_Y1) / 2);
    xml_put(f, yname);
    fputs("</text>\n", f);
}

/* One series (column col; val: the dashed validation style): a polyline per
 * run of two or more finite values, and a point at every finite value. */
static void svg_series(FILE *f, const rt_history *h, int col, int val, const plot_axis *xa, const plot_axis *ya)
{
    const char *colour = val ? VAL_COLOUR : TRAIN_COLOUR;
    int r, start;
    fprintf(f, "<g class=\"series %s\"><title>", val ? "val" : "train");
    xml_put(f, h->names[col]);
    fputs("</title>\n", f);
    for (start = 0; start < h->rows; start = r + 1) {
        for (r = start; r < h->rows && isfinite(hist_value(h, r, col)); r++)
            ;
        if (r - start < 2)
            continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour,
                val ? " stroke-dasharray=\"6,4\"" : "");
        for (int i = start; i < r; i++)
            fprintf(f, "%s%.2f,%.2f", i > start ? " " : "", px(xa, hist_value(h, i, h->epoch_col)),
                    py(ya, hist_value(h, i, col)));
        fputs("\"/>\n", f);
    }
    for (r = 0; r < h->rows; r++)
        if (isfinite(hist_value(h, r, col)))
            fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"%s\"/>\n",
                    px(xa, hist_value(h, r, h->epoch_col)), py(ya, hist_value(h, r, col)), colour);
    fputs("</g>\n", f);
}

/* The legend of panel p above its plot area: a sample line and the column's name for each series it shows. */
static void svg_legend(FILE *f, const rt_history *h, const plot_panel *p)
{
    int cols[2] = {p->train, p->val}, k, x = PLOT_X0 + 150;
    fputs("<g class=\"legend\">\n", f);
    for (k = 0; k < 2; k++) {
        if (!column_range(h, cols[k], NULL, NULL))
            continue;
        fprintf(f, "<line x1=\"%d\" y1=\"22\" x2=\"%d\" y2=\"22\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", x, x + 24,
                k ? VAL_COLOUR : TRAIN_COLOUR, k ? " stroke-dasharray=\"6,4\"" : "");
        fprintf(f, "<text class=\"legend-entry\" x=\"%d\" y=\"26\">", x + 30);
        xml_put(f, h->names[cols[k]]);
        fputs("</text>\n", f);
        x += 120;
    }
    fputs("</g>\n", f);
}

/* Panel k at (ox, oy): its title, legend, axes and series. */
static void svg_panel(FILE *f, const plot_ctx *c, int k, int ox, int oy)
{
    const rt_history *h = c->h;
    const plot_panel *p = &c->panels[k];
    plot_axis xa, ya;
    double lo, hi, lo2, hi2;
    column_range(h, h->epoch_col, &lo, &hi);
    axis_fit(&xa, lo, hi, 8, 1.0);
    if (!column_range(h, p->train, &lo, &hi))
        lo = INFINITY, hi = -INFINITY;
    if (column_range(h, p->val, &lo2, &hi2))
        lo = lo2 < lo ? lo2 : lo, hi = hi2 > hi ? hi2 : hi;
    axis_fit(&ya, lo, hi, 5, 0.0);
    fprintf(f, "<g class=\"panel\" transform=\"translate(%d,%d)\">\n", ox, oy);
    fputs("<text class=\"panel-title\" x=\"72\" y=\"26\" font-weight=\"bold\">", f);
    xml_put(f, p->name);
    fputs("</text>\n", f);
    svg_legend(f, h, p);
    svg_axes(f, &xa, &ya, p->name);
    if (column_range(h, p->train, NULL, NULL))
        svg_series(f, h, p->train, 0, &xa, &ya);
    if (column_range(h, p->val, NULL, NULL))
        svg_series(f, h, p->val, 1, &xa, &ya);
    fputs("</g>\n", f);
}

/* rt_write_atomic's body: the whole SVG document of ctx (a plot_ctx); -1 when writing failed. */
static int plot_body(FILE *f, void *ctx)
{
    const plot_ctx *c = ctx;
    int cols = c->npanels > 1 ? 2 : 1, rows = (c->npanels + 1) / 2, w = cols * PANEL_W, hgt = TITLE_H + rows * PANEL_H;
    int k;
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">\n",
            w, hgt, w, hgt);
    fputs("<title>", f);
    xml_put(f, c->title);
    fputs(": training curves</title>\n", f);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, hgt);
    fprintf(f, "<text class=\"title\" x=\"%d\" y=\"30\" text-anchor=\"middle\" font-size=\"18\">", w / 2);
    xml_put(f, c->title);
    fputs(": training curves</text>\n", f);
    for (k = 0; k < c->npanels; k++)
        svg_panel(f, c, k, (k % 2) * PANEL_W, TITLE_H + (k / 2) * PANEL_H);
    fputs("</svg>\n", f);
    return ferror(f) ? -1 : 0;
}

/* Draws the curves of history h (one row or more) as an SVG document titled
 * `title` (the model's name) into path, atomically. Returns 0, or -1 with
 * err naming the file. */
int rt_plot_svg(const rt_history *h, const char *title, const char *path, cgrt_error *err)
{
    plot_ctx c;
    memset(&c, 0, sizeof c);
    c.h = h;
    c.title = title;
    if (h->ncols == 0)
        return rt_fail(err, "%s:1: the file is empty; a history starts with its header line (epoch,loss,...)", h->path);
    if (h->rows == 0)
        return rt_fail(err, "%s:%d: no epoch after the header", h->path, h->header_line);
    choose_panels(&c);
    if (c.npanels == 0)
        return rt_fail(err, "%s: no column holds a finite value to plot", h->path);
    return rt_write_atomic(path, "plot", plot_body, &c, err);
}

/* Draws the history CSV at csv_path (as fit --history writes it) into an
 * SVG at svg_path, atomically, titled title (NULL: the CSV's file name). */
int cgrt_plot_history(const char *csv_path, const char *svg_path, const char *title, cgrt_error *err)
{
    rt_csv c;
    rt_history h;
    const char *s, *e;
    int rc = 0, got;
    if (rt_csv_open(&c, csv_path, err) != 0)
        return -1;
    rt_history_init(&h, csv_path);
    while (rc == 0 && (got = rt_csv_line(&c, &s, &e, err)) != 0)
        rc = got < 0 ? -1 : rt_history_line(&h, s, e, c.lineno, err);
    if (rc == 0 && !title) {
        const char *slash = strrchr(csv_path, '/');
        title = slash ? slash + 1 : csv_path;
    }
    if (rc == 0)
        rc = rt_plot_svg(&h, title, svg_path, err);
    rt_history_free(&h);
    rt_csv_close(&c);
    return rc;
}
