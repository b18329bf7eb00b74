/* csv_data.c: datasets from CSV files (plain or gzip), read through csv.c:
 * the layout with the labels in the last columns (cgrt_load_csv), and the
 * one whose header names the label column, which may stand anywhere and may
 * hold class names (rt_load_csv_named). Every feature is a finite float;
 * errors name the file, the line and the column. */
#include "rt_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- CSV, labels in the last columns ------------------------------------------ */

/* Growable array of floats (rt_fvec, csv.c). */
typedef rt_fvec fvec;

/* Parses the numeric cells of one data line into vals; -1 with err naming file:line and column. */
static int csv_parse_line(const char *path, int lineno, const char *s, const char *e, fvec *vals, cgrt_error *err)
{
    rt_cells it;
    const char *c, *ce;
    int col = 1;
    rt_cells_init(&it, s, e);
    while (rt_cells_next(&it, &c, &ce)) {
        float v;
        int kind = rt_csv_number(c, ce, &v);
        if (kind == RT_CELL_EMPTY)
            return rt_fail(err, "%s:%d: column %d is empty", path, lineno, col);
        if (kind != RT_CELL_NUMBER)
            return rt_fail(err, "%s:%d: column %d: \"%.*s\" %s%s", path, lineno, col, (int)(ce - c > 40 ? 40 : ce - c),
                           c, rt_csv_problem(kind), kind == RT_CELL_MISSING ? " (fill or drop it first)" : "");
        if (rt_fvec_push(vals, v) != 0)
            return rt_fail(err, "%s: out of memory", path);
        col++;
    }
    return 0;
}

/* Parses the rows of c into vals; sets *rows, *cols. The first non-blank line
 * is a header when a cell of it is text (see rt_csv_is_header); its width
 * says nothing about the rows (scikit-learn's files start "569,30,names"),
 * so the first data row sets the width the others must have. */
static int csv_parse(rt_csv *c, fvec *vals, int *rows, int *cols, cgrt_error *err)
{
    const char *s, *e;
    int ref_line = 0, first = 1, got;
    *rows = 0;
    *cols = 0;
    while ((got = rt_csv_line(c, &s, &e, err)) > 0) {
        int n;
        if (rt_csv_blank(s, e))
            continue;
        if (first) {
            first = 0;
            if (rt_csv_is_header(s, e))
                continue;
        }
        n = rt_csv_count_cells(s, e);
        if (*rows == 0) {
            *cols = n;
            ref_line = c->lineno;
        } else if (n != *cols) {
            return rt_fail(err, "%s:%d: row has %d columns, expected %d (as on line %d)", c->path, c->lineno, n, *cols,
                           ref_line);
        }
        if (csv_parse_line(c->path, c->lineno, s, e, vals, err) != 0)
            return -1;
        if (*rows == INT_MAX)
            return rt_fail(err, "%s: too many rows", c->path);
        (*rows)++;
    }
    if (got < 0)
        return -1;
    if (*rows == 0)
        return rt_fail(err, "%s: holds no data rows", c->path);
    return 0;
}

/* Loads a CSV file: features then label_width label columns per row. */
int cgrt_load_csv(const char *path, int label_width, float scale, cgrt_dataset *out, cgrt_error *err)
{
    size_t r;
    rt_csv c;
    fvec vals = {0, 0, 0};
    int rows, cols, features, j, rc;
    memset(out, 0, sizeof *out);
    if (scale == 0.0f)
        scale = 1.0f;
    if (rt_csv_open(&c, path, err) != 0)
        return -1;
    rc = csv_parse(&c, &vals, &rows, &cols, err);
    rt_csv_close(&c);
    if (rc != 0) {
        free(vals.v);
        return -1;
    }
    features = cols - label_width;
    if (features < 1) {
        free(vals.v);
        return rt_fail(err, "%s: rows have %d columns, too few for %d label column%s and at least one feature", path,
                       cols, label_width, label_width == 1 ? "" : "s");
    }
    if (rt_dataset_alloc(out, rows, features, label_width, path, err) != 0) {
        free(vals.v);
        return -1;
    }
    for (r = 0; r < (size_t)rows; r++) {
        const float *row = vals.v + r * (size_t)cols;
        for (j = 0; j < features; j++)
            out->x[r * (size_t)features + (size_t)j] = row[j] * scale;
        for (j = 0; j < label_width; j++)
            out->y[r * (size_t)label_width + (size_t)j] = row[features + j];
    }
    free(vals.v);
    return 0;
}


/* ---- CSV whose header names the label column --------------------------------- */

/* A cell of the CSV text: where it starts, and its length. */
typedef struct cell_text {
    const char *s;
    int n;
} cell_text;

/* A CSV file read by the names of its header. */
typedef struct named_csv {
    rt_csv c;
    const char *label;  /* the label column's name */
    const char *weight; /* the sample-weight column's name; NULL: none */
    cell_text *head;    /* the header's cells, width of them */
    int width;          /* cells per row */
    int col;            /* 0-based index of the label column; -1 when the header lacks it */
    int wcol;           /* 0-based index of the sample-weight column; -1: none */
    int header_line;
    const char *rows;     /* the text after the header line */
    int rows_line;        /* the line number before it */
    int text;             /* 1 when the label column holds class names */
    cell_text first_text; /* the first of them, and its line */
    int first_text_line;
    cell_text *classes; /* class names in order of first appearance */
    int nclasses, max_classes;
} named_csv;

/* 1 when the cell [s, e) reads exactly as t. */
static int cell_is(const char *s, const char *e, const char *t)
{
    return (size_t)(e - s) == strlen(t) && memcmp(s, t, (size_t)(e - s)) == 0;
}

/* Fails naming the place of cell k (0-based) of line lineno, its header
 * name, and what keeps it (of the given kind) from being a value. */
static int cell_fail(const named_csv *r, int lineno, int k, const char *s, const char *e, int kind, cgrt_error *err)
{
    const cell_text *h = &r->head[k];
    if (kind == RT_CELL_EMPTY)
        return rt_fail(err, "%s:%d: column %d (\"%.*s\") is empty", r->c.path, lineno, k + 1, h->n > 40 ? 40 : h->n,
                       h->s);
    return rt_fail(err, "%s:%d: column %d (\"%.*s\"): \"%.*s\" %s%s", r->c.path, lineno, k + 1, h->n > 40 ? 40 : h->n,
                   h->s, (int)(e - s > 40 ? 40 : e - s), s, rt_csv_problem(kind),
                   kind == RT_CELL_MISSING ? " (fill or drop it first)" : "");
}

/* Finds the sample-weight column r->weight among the header's cells into
 * r->wcol; fails listing the header's names [s, e) when labels are wanted
 * and it is not there, or when it is the label column. */
static int find_weight_column(named_csv *r, int want_labels, const char *s, const char *e, cgrt_error *err)
{
    char names[320];
    r->wcol = -1;
    for (int k = 0; r->weight && k < r->width; k++)
        if ((size_t)r->head[k].n == strlen(r->weight) && memcmp(r->head[k].s, r->weight, strlen(r->weight)) == 0) {
            r->wcol = k;
            break;
        }
    if (r->weight && r->wcol < 0 && want_labels) {
        rt_csv_header_names(s, e, names, sizeof names);
        return rt_fail(err, "%s: no column named \"%.100s\" for the sample weights; the header (line %d) names: %s",
                       r->c.path, r->weight, r->header_line, names);
    }
    if (r->wcol >= 0 && r->wcol == r->col)
        return rt_fail(err, "%s: \"%.100s\" cannot be both the label column and the sample-weight column", r->c.path,
                       r->weight);
    return 0;
}

/* Reads the header (the first non-blank line) into r and finds the label
 * column in it (r->col -1 when it is not there and labels are not wanted),
 * and the sample-weight column (r->wcol). */
static int read_header(named_csv *r, int want_labels, cgrt_error *err)
{
    const char *s, *e, *cs, *ce;
    char names[320];
    rt_cells it;
    int got, k = 0;
    r->col = -1;
    r->wcol = -1;
    while ((got = rt_csv_line(&r->c, &s, &e, err)) > 0 && rt_csv_blank(s, e))
        ;
    if (got < 0)
        return -1;
    if (got == 0)
        return rt_fail(err, "%s: holds no data rows", r->c.path);
    r->header_line = r->c.lineno;
    r->rows = r->c.p;
    r->rows_line = r->c.lineno;
    if (!rt_csv_is_header(s, e)) {
        if (!want_labels)
            return 0;
        return rt_fail(err, "%s: has no header line, so no column is named \"%.100s\" (line %d holds numbers)",
                       r->c.path, r->label, r->header_line);
    }
    r->width = rt_csv_count_cells(s, e);
    r->head = rt_alloc_array((size_t)r->width, sizeof *r->head);
    if (!r->head)
        return rt_fail(err, "%s: out of memory", r->c.path);
    rt_cells_init(&it, s, e);
    for (; rt_cells_next(&it, &cs, &ce); k++) {
        r->head[k].s = cs;
        r->head[k].n = (int)(ce - cs);
        if (!cell_is(cs, ce, r->label))
            continue;
        if (r->col >= 0)
            return rt_fail(err, "%s: the header (line %d) names \"%.100s\" twice (columns %d and %d)", r->c.path,
                           r->header_line, r->label, r->col + 1, k + 1);
        r->col = k;
    }
    if (r->col < 0 && want_labels) {
        rt_csv_header_names(s, e, names, sizeof names);
        return rt_fail(err, "%s: no column named \"%.100s\"; the header (line %d) names: %s", r->c.path, r->label,
                       r->header_line, names);
    }
    if (find_weight_column(r, want_labels, s, e, err) != 0)
        return -1;
    if (r->width - (r->col >= 0) - (r->wcol >= 0) < 1)
        return rt_fail(err,
                       "%s: the header names only the label column \"%.100s\"%s; samples need at least one "
                       "feature column",
                       r->c.path, r->label, r->wcol >= 0 ? " and the sample weights" : "");
    return 0;
}

/* Walks the data rows once: counts them into *rows, checks that each has
 * the header's width, and finds whether the label column holds text. */
static int scan_rows(named_csv *r, int *rows, cgrt_error *err)
{
    const char *s, *e;
    int got;
    *rows = 0;
    while ((got = rt_csv_line(&r->c, &s, &e, err)) > 0) {
        rt_cells it;
        const char *cs = NULL, *ce = NULL;
        int n = 0;
        float v;
        if (rt_csv_blank(s, e))
            continue;
        rt_cells_init(&it, s, e);
        while (rt_cells_next(&it, &cs, &ce) && n++ != r->col)
            ;
        n = rt_csv_count_cells(s, e);
        if (n != r->width)
            return rt_fail(err, "%s:%d: row has %d columns, the header (line %d) names %d", r->c.path, r->c.lineno, n,
                           r->header_line, r->width);
        if (!r->text && rt_csv_number(cs, ce, &v) == RT_CELL_TEXT) {
            r->text = 1;
            r->first_text.s = cs;
            r->first_text.n = (int)(ce - cs);
            r->first_text_line = r->c.lineno;
        }
        if (*rows == INT_MAX)
            return rt_fail(err, "%s: too many rows", r->c.path);
        (*rows)++;
    }
    if (got < 0)
        return -1;
    if (*rows == 0)
        return rt_fail(err, "%s: holds no data rows", r->c.path);
    return 0;
}

/* The index of class name [s, e) of line lineno into *v: the one it got when
 * first met, or the next one; fails past r->max_classes. */
static int class_index(named_csv *r, int lineno, const char *s, const char *e, float *v, cgrt_error *err)
{
    char known[320] = "";
    size_t len = 0;
    int k;
    for (k = 0; k < r->nclasses; k++)
        if (r->classes[k].n == (int)(e - s) && memcmp(r->classes[k].s, s, (size_t)(e - s)) == 0) {
            *v = (float)k;
            return 0;
        }
    if (r->nclasses == r->max_classes) {
        for (k = 0; k < r->nclasses && len < sizeof known; k++)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%.*s", k ? ", " : "", r->classes[k].n,
                                    r->classes[k].s);
        return rt_fail(err,
                       "%s:%d: column \"%.100s\" names more classes than the %d the model has: \"%.*s\" comes "
                       "after %s",
                       r->c.path, lineno, r->label, r->max_classes, (int)(e - s > 40 ? 40 : e - s), s, known);
    }
    r->classes[r->nclasses].s = s;
    r->classes[r->nclasses].n = (int)(e - s);
    *v = (float)r->nclasses++;
    return 0;
}

/* Reads the data rows (the second walk) into out: the features times scale,
 * and, when want_labels, the label column's numbers or class indices. */
static int read_rows(named_csv *r, cgrt_dataset *out, int want_labels, float scale, cgrt_error *err)
{
    const char *s, *e;
    int i = 0, got;
    r->c.p = r->rows;
    r->c.lineno = r->rows_line;
    while ((got = rt_csv_line(&r->c, &s, &e, err)) > 0) {
        rt_cells it;
        const char *cs, *ce;
        float *x = out->x + (size_t)i * (size_t)out->features;
        int k = 0;
        if (rt_csv_blank(s, e))
            continue;
        rt_cells_init(&it, s, e);
        for (; rt_cells_next(&it, &cs, &ce); k++) {
            float v = 0.0f;
            int kind = rt_csv_number(cs, ce, &v);
            if (k == r->col && !want_labels)
                continue;
            if (k == r->col && r->text && kind != RT_CELL_EMPTY && kind != RT_CELL_MISSING) {
                if (class_index(r, r->c.lineno, cs, ce, &out->y[i], err) != 0)
                    return -1;
                continue;
            }
            if (kind != RT_CELL_NUMBER)
                return cell_fail(r, r->c.lineno, k, cs, ce, kind, err);
            if (k == r->col)
                out->y[i] = v;
            else if (k == r->wcol && out->w)
                out->w[i] = v;
            else if (k != r->wcol)
                *x++ = v * scale;
        }
        if (out->w && out->w[i] < 0.0f) /* a number already: only its sign can be wrong */
            return rt_fail(err, "%s:%d: column %d (\"%.60s\"): sample weight %g is negative", r->c.path, r->c.lineno,
                           r->wcol + 1, r->weight, (double)out->w[i]);
        i++;
    }
    return got < 0 ? -1 : 0;
}

/* Writes "column "species" names 3 classes: Adelie=0, ..." into note. */
static void classes_note(const named_csv *r, char *note, size_t size)
{
    size_t len;
    int k;
    len = (size_t)snprintf(note, size, "column \"%.60s\" names %d class%s:", r->label, r->nclasses,
                           r->nclasses == 1 ? "" : "es");
    for (k = 0; k < r->nclasses && len < size; k++)
        len += (size_t)snprintf(note + len, size - len, " %.*s=%d%s", r->classes[k].n > 40 ? 40 : r->classes[k].n,
                                r->classes[k].s, k, k + 1 < r->nclasses ? "," : "");
    if (len >= size && size > 4)
        strcpy(note + size - 4, "...");
}

/* Loads a CSV file whose header names the label column (and the sample-weight column). */
int rt_load_csv_named(const char *path, const char *label, const char *weight, int max_classes, int want_labels,
                      float scale, cgrt_dataset *out, char *note, size_t note_size, cgrt_error *err)
{
    named_csv r;
    int rows, rc = -1;
    memset(out, 0, sizeof *out);
    memset(&r, 0, sizeof r);
    if (note && note_size)
        note[0] = '\0';
    if (scale == 0.0f)
        scale = 1.0f;
    r.label = label;
    r.weight = weight;
    r.max_classes = max_classes;
    if (rt_csv_open(&r.c, path, err) != 0)
        return -1;
    if (read_header(&r, want_labels, err) != 0)
        goto done;
    if (r.col < 0 && r.wcol < 0) { /* predict input without the label column: every column is a feature */
        rt_csv_close(&r.c);
        free(r.head);
        return cgrt_load_csv(path, 0, scale, out, err);
    }
    if (scan_rows(&r, &rows, err) != 0)
        goto done;
    if (want_labels && r.text && max_classes < 1) {
        rt_fail(err,
                "%s:%d: column \"%.100s\" holds \"%.*s\", which is not a number; class names need a "
                "classifier, and this model's labels are numbers",
                path, r.first_text_line, label, r.first_text.n > 40 ? 40 : r.first_text.n, r.first_text.s);
        goto done;
    }
    if (r.text && want_labels && !(r.classes = rt_alloc_array((size_t)max_classes, sizeof *r.classes))) {
        rt_fail(err, "%s: out of memory", path);
        goto done;
    }
    if (rt_dataset_alloc(out, rows, r.width - (r.col >= 0) - (r.wcol >= 0), want_labels, path, err) != 0)
        goto done;
    if (want_labels && r.wcol >= 0 && !(out->w = rt_alloc_array((size_t)rows, sizeof(float)))) {
        rt_fail(err, "%s: out of memory for %d sample weights", path, rows);
        goto done;
    }
    rc = read_rows(&r, out, want_labels, scale, err);
    if (rc != 0)
        cgrt_dataset_free(out);
    else if (r.text && want_labels && note && note_size)
        classes_note(&r, note, note_size);
done:
    rt_csv_close(&r.c);
    free(r.head);
    free(r.classes);
    return rc;
}
