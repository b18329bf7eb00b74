/* data.c: datasets in memory: the IDX, CSV and NPY loaders (files and CSV
 * text read through csv.c, plain or gzip), the checks of a dataset against a
 * model, train/test splits, the seeded generator and the Fisher-Yates
 * shuffle. Every value a loader returns came from the file and is a finite
 * float; a header that promises more than its file can hold is refused
 * before memory is taken for it. */
#include "rt_internal.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RT_PATH_MAX 4096
#define RT_CHUNK (1u << 16)
#define RT_MAX_VALUES ((long long)1 << 34)   /* the most values one file may hold (64 GB of floats) */
#define RT_FIRST_VALUES ((size_t)1 << 22)   /* values taken for gzip data before the stream shows more */

/* ---- datasets -------------------------------------------------------------- */

/* Frees the arrays of d and zeroes it. */
void cgrt_dataset_free(cgrt_dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* Allocates x (and y if label_width > 0) for n samples; -1 with err set when out of memory. */
static int dataset_alloc(cgrt_dataset *d, int n, int features, int label_width, const char *path, cgrt_error *err)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->features = features;
    d->label_width = label_width;
    d->x = rt_alloc_array((size_t)n * (size_t)features, sizeof(float));
    if (label_width > 0)
        d->y = rt_alloc_array((size_t)n * (size_t)label_width, sizeof(float));
    if (!d->x || (label_width > 0 && !d->y)) {
        cgrt_dataset_free(d);
        return rt_fail(err, "%s: out of memory for %d samples", path, n);
    }
    return 0;
}

/* ---- values of IDX and NPY files ------------------------------------------- */

/* How the elements of a file are stored: kind ('u' unsigned, 'i' signed, 'f'
 * IEEE float) and size in bytes (little-endian when above 1). */
typedef struct elem_type {
    char kind;
    int size;
} elem_type;

/* Decodes one element. */
static double decode(const unsigned char *b, elem_type t)
{
    uint64_t u = 0;
    int i;
    if (t.size == 1)
        return (double)b[0];
    for (i = t.size - 1; i >= 0; i--)
        u = (u << 8) | b[i];
    if (t.kind == 'f' && t.size == 4) {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return (double)f;
    }
    if (t.kind == 'f') {
        double f;
        memcpy(&f, &u, 8);
        return f;
    }
    if (t.size == 4)
        return (double)(int32_t)(uint32_t)u;
    return (double)(int64_t)u;
}

/* Writes a shape as numpy prints it, "(2, 3)" or "(5,)", into buf. */
static void shape_str(const long long *dims, int rank, char *buf, size_t size)
{
    size_t len = 0;
    int i;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, size, "(");
    for (i = 0; i < rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", dims[i]);
    if (len < size)
        snprintf(buf + len, size - len, rank == 1 ? ",)" : ")");
}

/* Fails: the header of f promises count elements of `size` bytes (`what`);
 * held >= 0: the file holds that many bytes of them; -1: a gzip file of its
 * size cannot inflate to that many. */
static int promise_fail(const rt_file *f, long long count, int size, const char *what, long long held, cgrt_error *err)
{
    char head[160];
    if (size == 1)
        snprintf(head, sizeof head, "the header promises %lld bytes of %s", count, what);
    else
        snprintf(head, sizeof head, "the header promises %lld %s (%lld bytes)", count, what, count * size);
    if (held < 0)
        return rt_fail(err, "%s: truncated: %s, more than a gzip file of %lld bytes can hold", f->path, head, f->size);
    return rt_fail(err, "%s: truncated: %s, the file holds %lld%s", f->path, head, held, size == 1 ? "" : " bytes");
}

/* Reads the count elements of type t that follow the header of f into a new
 * float array, times scale. The header's promise is checked against the file
 * first; for gzip, whose size only bounds what it inflates to, the array grows
 * as the values arrive, so a false promise costs no more memory than the
 * file's true content. Float elements must be finite and fit a float; an
 * error names the sample and value (per_sample values to a sample). NULL with
 * err set on failure. */
static float *read_values(rt_file *f, long long count, elem_type t, float scale, long long per_sample, const char *what,
                          cgrt_error *err)
{
    size_t cap, done = 0, per = RT_CHUNK / (size_t)t.size, n = (size_t)count;
    unsigned char *buf;
    float *out;
    int exact;
    long long room = rt_file_room(f, &exact);
    if (count * t.size > room) {
        promise_fail(f, count, t.size, what, exact ? room : -1, err);
        return NULL;
    }
    cap = exact || n <= RT_FIRST_VALUES ? n : RT_FIRST_VALUES;
    out = rt_alloc_array(cap ? cap : 1, sizeof(float));
    buf = malloc(RT_CHUNK);
    if (!out || !buf) {
        rt_fail(err, "%s: out of memory for %lld %s", f->path, count, what);
        goto fail;
    }
    while (done < n) {
        size_t want = n - done < per ? n - done : per, i;
        long long got;
        if (done + want > cap) {   /* gzip: more room once the stream has shown it holds more */
            size_t grown = cap * 2 < n ? cap * 2 : n;
            float *more = realloc(out, grown * sizeof(float));
            if (!more) {
                rt_fail(err, "%s: out of memory for %lld %s", f->path, count, what);
                goto fail;
            }
            out = more;
            cap = grown;
        }
        got = rt_file_read(f, buf, want * (size_t)t.size, err);
        if (got < 0)
            goto fail;
        if ((size_t)got < want * (size_t)t.size) {
            promise_fail(f, count, t.size, what, (long long)(done * (size_t)t.size) + got, err);
            goto fail;
        }
        for (i = 0; i < want; i++) {
            double v = decode(buf + i * (size_t)t.size, t);
            long long k = (long long)(done + i);
            if (t.kind == 'f' && !isfinite(v)) {
                rt_fail(err, "%s: sample %lld, value %lld is %g, which %s", f->path, k / per_sample, k % per_sample, v,
                        rt_csv_problem(RT_CELL_INFINITE));
                goto fail;
            }
            if (t.kind == 'f' && fabs(v) > FLT_MAX) {
                rt_fail(err, "%s: sample %lld, value %lld is %g, which %s", f->path, k / per_sample, k % per_sample, v,
                        rt_csv_problem(RT_CELL_TOO_BIG));
                goto fail;
            }
            out[done + i] = (float)v * scale;
        }
        done += want;
    }
    free(buf);
    return out;
fail:
    free(out);
    free(buf);
    return NULL;
}

/* ---- IDX ----------------------------------------------------------------- */

/* Opens an IDX file into f and reads its header: rank (1..4) and dims.
 * want_images selects the check (images have rank >= 2, labels rank 1). */
static int idx_open(rt_file *f, const char *path, int want_images, int *rank, long long dims[4], cgrt_error *err)
{
    unsigned char head[4 + 16];
    long long got;
    int i;
    if (rt_file_open(f, path, err) != 0)
        return -1;
    got = rt_file_read(f, head, 4, err);
    if (got < 0)
        goto fail;
    if (got < 4) {
        rt_fail(err, "%s: truncated: too short for an IDX header (%lld bytes)", path, got);
        goto fail;
    }
    if (head[0] != 0 || head[1] != 0 || head[3] < 1 || head[3] > 4) {
        rt_fail(err, "%s: not an IDX file (magic number 0x%02x%02x%02x%02x)", path, head[0], head[1], head[2],
                head[3]);
        goto fail;
    }
    if (head[2] != 0x08) {
        rt_fail(err, "%s: IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)", path, head[2]);
        goto fail;
    }
    *rank = head[3];
    if (want_images && *rank < 2) {
        rt_fail(err, "%s: holds IDX labels (1 dimension), expected images (idx3)", path);
        goto fail;
    }
    if (!want_images && *rank != 1) {
        rt_fail(err, "%s: holds IDX images (%d dimensions), expected labels (idx1)", path, *rank);
        goto fail;
    }
    got = rt_file_read(f, head + 4, (size_t)*rank * 4, err);
    if (got < 0)
        goto fail;
    if (got < *rank * 4) {
        rt_fail(err, "%s: truncated: IDX header ends early", path);
        goto fail;
    }
    for (i = 0; i < *rank; i++) {
        const unsigned char *b = head + 4 + 4 * i;
        dims[i] = ((long long)b[0] << 24) | ((long long)b[1] << 16) | ((long long)b[2] << 8) | b[3];
        if (dims[i] > INT_MAX) {
            rt_fail(err, "%s: IDX dimension %d is %lld, more than %d", path, i + 1, dims[i], INT_MAX);
            goto fail;
        }
    }
    return 0;
fail:
    rt_file_close(f);
    return -1;
}

/* Checks that n samples of `features` values stay within int and memory limits. */
static int check_sizes(const char *path, long long n, long long features, cgrt_error *err)
{
    if (n < 1)
        return rt_fail(err, "%s: holds no samples", path);
    if (features < 1)
        return rt_fail(err, "%s: samples have no values", path);
    if (n > INT_MAX || features > INT_MAX || n * features > RT_MAX_VALUES)
        return rt_fail(err, "%s: sizes are absurd (%lld samples of %lld values)", path, n, features);
    return 0;
}

/* Loads an IDX images file alone into out (no labels). */
int rt_load_idx_images(const char *path, float scale, cgrt_dataset *out, cgrt_error *err)
{
    static const elem_type u8 = {'u', 1};
    long long dims[4], features = 1;
    int rank, i;
    rt_file f;
    memset(out, 0, sizeof *out);
    if (scale == 0.0f)
        scale = 1.0f;
    if (idx_open(&f, path, 1, &rank, dims, err) != 0)
        return -1;
    for (i = 1; i < rank; i++) {   /* each dimension is at most INT_MAX: stop before the product overflows */
        if (dims[i] > 0 && features > RT_MAX_VALUES / dims[i]) {
            char shape[96];
            shape_str(dims, rank, shape, sizeof shape);
            rt_file_close(&f);
            return rt_fail(err, "%s: IDX shape %s is absurd (images of more than %lld values)", path, shape,
                           RT_MAX_VALUES);
        }
        features *= dims[i];
    }
    if (check_sizes(path, dims[0], features, err) != 0) {
        rt_file_close(&f);
        return -1;
    }
    out->x = read_values(&f, dims[0] * features, u8, scale, features, "images", err);
    rt_file_close(&f);
    if (!out->x)
        return -1;
    out->n = (int)dims[0];
    out->features = (int)features;
    return 0;
}

/* Loads an IDX images file and its labels file into out (labels as floats). */
int cgrt_load_idx(const char *images, const char *labels, float scale, cgrt_dataset *out, cgrt_error *err)
{
    static const elem_type u8 = {'u', 1};
    long long dims[4];
    int rank;
    rt_file f;
    cgrt_dataset img;
    if (rt_load_idx_images(images, scale, &img, err) != 0)
        return -1;
    if (idx_open(&f, labels, 0, &rank, dims, err) != 0) {
        cgrt_dataset_free(&img);
        return -1;
    }
    if (dims[0] != img.n) {
        rt_fail(err, "%s: holds %lld labels but %s holds %d images", labels, dims[0], images, img.n);
        rt_file_close(&f);
        cgrt_dataset_free(&img);
        return -1;
    }
    img.y = read_values(&f, img.n, u8, 1.0f, 1, "labels", err);
    rt_file_close(&f);
    if (!img.y) {
        cgrt_dataset_free(&img);
        return -1;
    }
    img.label_width = 1;
    *out = img;
    return 0;
}

/* ---- CSV ----------------------------------------------------------------- */

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
            return rt_fail(err, "%s:%d: row has %d columns, expected %d (as on line %d)", c->path, c->lineno, n,
                           *cols, ref_line);
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
    if (dataset_alloc(out, rows, features, label_width, path, err) != 0) {
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

/* ---- NPY ----------------------------------------------------------------- */

/* Finds 'key' (single or double quoted) in an NPY header dict and returns
 * a pointer to its value, or NULL. */
static const char *npy_find_key(const char *h, const char *key)
{
    size_t k = strlen(key);
    const char *p;
    for (p = h; (p = strstr(p, key)) != NULL; p += k) {
        const char *q = p + k;
        if (p == h || (p[-1] != '\'' && p[-1] != '"') || *q != p[-1])
            continue;
        q++;
        while (*q == ' ')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ')
            q++;
        return q;
    }
    return NULL;
}

/* Parses the NPY header dict: dtype into descr, fortran order flag, shape. */
static int npy_parse_header(const char *path, const char *h, char descr[16], int *rank, long long dims[CGRT_MAX_RANK],
                            cgrt_error *err)
{
    const char *d = npy_find_key(h, "descr"), *fo = npy_find_key(h, "fortran_order"), *sh = npy_find_key(h, "shape");
    size_t i = 0;
    if (!d || !fo || !sh)
        return rt_fail(err, "%s: NPY header lacks descr, fortran_order or shape", path);
    if (*d != '\'' && *d != '"')
        return rt_fail(err, "%s: structured NPY dtypes are not supported", path);
    for (d++; *d && *d != '\'' && *d != '"' && i < 15; d++)
        descr[i++] = *d;
    descr[i] = '\0';
    if (strncmp(fo, "True", 4) == 0)
        return rt_fail(err, "%s: fortran_order is True; only C-order arrays are supported", path);
    if (strncmp(fo, "False", 5) != 0)
        return rt_fail(err, "%s: bad fortran_order in NPY header", path);
    if (*sh != '(')
        return rt_fail(err, "%s: bad shape in NPY header", path);
    *rank = 0;
    for (sh++;;) {
        char *end;
        long long v;
        while (*sh == ' ' || *sh == ',')
            sh++;
        if (*sh == ')')
            break;
        v = strtoll(sh, &end, 10);
        if (end == sh || v < 0)
            return rt_fail(err, "%s: bad shape in NPY header", path);
        if (*rank == CGRT_MAX_RANK)
            return rt_fail(err, "%s: arrays of more than %d dimensions are not supported", path, CGRT_MAX_RANK);
        dims[(*rank)++] = v;
        sh = end;
    }
    return 0;
}

/* Returns the byte size of a supported dtype (f4 f8 u1 i4 i8, little-endian), or 0. */
static int npy_dtype_size(const char *descr)
{
    static const char *const names[] = {"<f4", "<f8", "|u1", "<u1", "=u1", "<i4", "<i8"};
    static const int sizes[] = {4, 8, 1, 1, 1, 4, 8};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(descr, names[i]) == 0)
            return sizes[i];
    return 0;
}

/* Reads and checks the NPY preamble of f; returns the header text (malloc'd) or NULL. */
static char *npy_read_header(rt_file *f, cgrt_error *err)
{
    const char *path = f->path;
    unsigned char pre[12];
    size_t hlen;
    long long got = rt_file_read(f, pre, 10, err);
    char *h;
    if (got < 0)
        return NULL;
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rt_fail(err, "%s: not an NPY file (bad magic)", path);
        return NULL;
    }
    if (pre[6] < 1 || pre[6] > 3) {
        rt_fail(err, "%s: NPY version %d.%d is not supported", path, pre[6], pre[7]);
        return NULL;
    }
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else {
        got = rt_file_read(f, pre + 10, 2, err);
        if (got != 2) {
            if (got >= 0)
                rt_fail(err, "%s: truncated NPY header", path);
            return NULL;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen > (1u << 20)) {
        rt_fail(err, "%s: NPY header length %zu is absurd", path, hlen);
        return NULL;
    }
    h = malloc(hlen + 1);
    if (!h) {
        rt_fail(err, "%s: out of memory", path);
        return NULL;
    }
    got = rt_file_read(f, h, hlen, err);
    if (got < 0 || (size_t)got != hlen) {
        if (got >= 0)
            rt_fail(err, "%s: truncated NPY header", path);
        free(h);
        return NULL;
    }
    h[hlen] = '\0';
    return h;
}

/* Loads an NPY file into floats: *data (malloc'd), its rank and dims. Float
 * data must be finite and fit a float (an error names the sample). */
int cgrt_load_npy(const char *path, float **data, int *rank, int dims[CGRT_MAX_RANK], cgrt_error *err)
{
    char descr[16], *h;
    long long ldims[CGRT_MAX_RANK], count = 1;
    int i, zero = 0;
    elem_type t;
    rt_file f;
    *data = NULL;
    *rank = 0;
    if (rt_file_open(&f, path, err) != 0)
        return -1;
    h = npy_read_header(&f, err);
    if (!h || npy_parse_header(path, h, descr, rank, ldims, err) != 0) {
        free(h);
        rt_file_close(&f);
        return -1;
    }
    free(h);
    t.kind = descr[1];
    t.size = npy_dtype_size(descr);
    if (!t.size) {
        rt_file_close(&f);
        return rt_fail(err, "%s: dtype '%s' is not supported (use <f4, <f8, |u1, <i4 or <i8)", path, descr);
    }
    /* the product of the other dimensions is bounded even when one is 0, so
     * that no later product of them (features per sample) can overflow */
    for (i = 0; i < *rank; i++) {
        if (ldims[i] > INT_MAX || (ldims[i] > 0 && count > RT_MAX_VALUES / ldims[i])) {
            char shape[96];
            shape_str(ldims, *rank, shape, sizeof shape);
            rt_file_close(&f);
            return rt_fail(err, "%s: shape %s is absurd (more than %lld values, or a dimension above %d)", path,
                           shape, RT_MAX_VALUES, INT_MAX);
        }
        if (ldims[i] == 0)
            zero = 1;
        else
            count *= ldims[i];
        dims[i] = (int)ldims[i];
    }
    if (zero)
        count = 0;
    *data = read_values(&f, count, t, 1.0f, *rank > 1 && dims[0] > 0 ? count / dims[0] : 1, "values", err);
    rt_file_close(&f);
    return *data ? 0 : -1;
}

/* Loads an NPY file as samples: the first dimension counts samples, the rest are flattened. */
int rt_load_npy_samples(const char *path, float scale, cgrt_dataset *out, cgrt_error *err)
{
    int rank, dims[CGRT_MAX_RANK], i;
    long long features = 1;
    float *data;
    size_t k, count;
    memset(out, 0, sizeof *out);
    if (scale == 0.0f)
        scale = 1.0f;
    if (cgrt_load_npy(path, &data, &rank, dims, err) != 0)
        return -1;
    if (rank < 1) {
        free(data);
        return rt_fail(err, "%s: holds a scalar, expected an array of samples", path);
    }
    for (i = 1; i < rank; i++)
        features *= dims[i];
    if (check_sizes(path, dims[0], features, err) != 0) {
        free(data);
        return -1;
    }
    count = (size_t)dims[0] * (size_t)features;
    if (scale != 1.0f)
        for (k = 0; k < count; k++)
            data[k] *= scale;
    out->n = dims[0];
    out->features = (int)features;
    out->x = data;
    return 0;
}

/* Loads an NPY pair x (inputs, scaled) and y (labels) into out. */
static int load_npy_pair(const char *xpath, const char *ypath, float scale, cgrt_dataset *out, cgrt_error *err)
{
    cgrt_dataset lab;
    if (rt_load_npy_samples(xpath, scale, out, err) != 0)
        return -1;
    if (rt_load_npy_samples(ypath, 1.0f, &lab, err) != 0) {
        cgrt_dataset_free(out);
        return -1;
    }
    if (lab.n != out->n) {
        rt_fail(err, "%s: holds %d labels but %s holds %d samples", ypath, lab.n, xpath, out->n);
        cgrt_dataset_free(&lab);
        cgrt_dataset_free(out);
        return -1;
    }
    out->label_width = lab.features;
    out->y = lab.x;
    return 0;
}

/* ---- checks against the model ---------------------------------------------- */

/* Expands class-index labels into one-hot rows of width w (for dense-label models). */
static int one_hot(cgrt_dataset *d, int w, const char *path, cgrt_error *err)
{
    float *y = rt_alloc_array((size_t)d->n * (size_t)w, sizeof(float));
    int i;
    if (!y)
        return rt_fail(err, "%s: out of memory", path);
    memset(y, 0, (size_t)d->n * (size_t)w * sizeof(float));
    for (i = 0; i < d->n; i++)
        y[(size_t)i * (size_t)w + (size_t)d->y[i]] = 1.0f;
    free(d->y);
    d->y = y;
    d->label_width = w;
    return 0;
}

/* Checks that label column col of every sample is a class index in [0, k);
 * names the first that is not (and the output, when given). */
static int check_class_column(const cgrt_dataset *d, int col, const char *output, int k, const char *path,
                              cgrt_error *err)
{
    int i;
    for (i = 0; i < d->n; i++) {
        float v = d->y[(size_t)i * (size_t)d->label_width + (size_t)col];
        if (!(v >= 0.0f && v < (float)k))
            return rt_fail(err, "%s: label %g at sample %d%s%s is outside 0..%d", path, (double)v, i,
                           output ? " for output " : "", output ? output : "", k - 1);
        if (v != floorf(v))
            return rt_fail(err, "%s: label %g at sample %d%s%s is not a class index (an integer in 0..%d)", path,
                           (double)v, i, output ? " for output " : "", output ? output : "", k - 1);
    }
    return 0;
}

/* Checks that every label of d lies in [0, 1], as binary cross-entropy needs
 * (it would train silently towards a label of 2); names the first that does not. */
static int check_probabilities(const cgrt_dataset *d, const char *path, cgrt_error *err)
{
    size_t i, w = (size_t)d->label_width, n = (size_t)d->n * w;
    char col[48] = "";
    for (i = 0; i < n; i++) {
        float v = d->y[i];
        if (v >= 0.0f && v <= 1.0f)
            continue;
        if (w > 1)
            snprintf(col, sizeof col, " (label column %zu)", i % w);
        return rt_fail(err, "%s: label %g at sample %zu%s is outside 0..1 (binary cross-entropy takes probabilities)",
                       path, (double)v, i / w, col);
    }
    return 0;
}

/* Checks that every label of d is a class index in [0, k); names the first that is not. */
static int check_class_indices(const cgrt_dataset *d, int k, const char *path, cgrt_error *err)
{
    return check_class_column(d, 0, NULL, k, path, err);
}

/* Keeps the samples whose class index lies in [lo, hi], relabelled 0..hi-lo
 * (the data spec's class_range: a model trained on some of the classes). */
static int keep_classes(cgrt_dataset *d, int lo, int hi, const char *path, cgrt_error *err)
{
    int i, k = 0;
    size_t f = (size_t)d->features;
    if (!d->y || d->label_width != 1)
        return rt_fail(err, "%s: a class range needs one class index per sample, the labels have %d values", path,
                       d->label_width);
    for (i = 0; i < d->n; i++) {
        float v = d->y[i];
        if (!(v >= (float)lo && v <= (float)hi))
            continue;
        memmove(d->x + (size_t)k * f, d->x + (size_t)i * f, f * sizeof(float));
        d->y[k++] = v - (float)lo;
    }
    if (k == 0)
        return rt_fail(err, "%s: no sample has a class in %d..%d", path, lo, hi);
    d->n = k;
    return 0;
}

/* Checks features and labels of d against the model (converting class
 * indices to one-hot rows for dense-label classifiers). */
static int check_dataset(const cgrt_model *m, cgrt_dataset *d, const char *xpath, const char *ypath, cgrt_error *err)
{
    if (m->data.class_range[1] > 0 && d->y &&
        keep_classes(d, m->data.class_range[0], m->data.class_range[1], ypath, err) != 0)
        return -1;
    if (d->features != m->in_features)
        return rt_fail(err, "%s: samples have %d features, model %s expects %d", xpath, d->features, m->name,
                       m->in_features);
    if (m->label_kind == CGRT_LABEL_SPARSE) {
        if (d->label_width != 1)
            return rt_fail(err, "%s: labels have %d values per sample, model %s expects 1 class index", ypath,
                           d->label_width, m->name);
        return check_class_indices(d, m->num_classes, ypath, err);
    }
    if (d->label_width == 1 && m->label_width > 1 && m->num_classes == m->label_width) {
        if (check_class_indices(d, m->num_classes, ypath, err) != 0)
            return -1;
        return one_hot(d, m->label_width, ypath, err);
    }
    if (d->label_width != m->label_width)
        return rt_fail(err, "%s: labels have %d values per sample, model %s expects %d", ypath, d->label_width,
                       m->name, m->label_width);
    if (m->loss_name && strcmp(m->loss_name, "binary_crossentropy") == 0)
        return check_probabilities(d, ypath, err);
    if (m->num_outputs > 1) {   /* several outputs: each class-index column in its range */
        int k, col = 0;
        for (k = 0; k < m->num_outputs; k++) {
            if (m->outputs[k].num_classes > 0 &&
                check_class_column(d, col, m->outputs[k].name, m->outputs[k].num_classes, ypath, err) != 0)
                return -1;
            col += m->outputs[k].label_width;
        }
    }
    return 0;
}

/* ---- cgrt_load_data ---------------------------------------------------------- */

/* Writes DIR/NAME or DIR/NAME.gz into buf if that regular file exists; returns 1 if found. */
static int find_in_dir(const char *dir, const char *name, char *buf, size_t size)
{
    static const char *const ext[] = {"", ".gz"};
    size_t i;
    for (i = 0; i < 2; i++) {
        struct stat st;
        int n = snprintf(buf, size, "%s/%s%s", dir, name, ext[i]);
        if (n > 0 && (size_t)n < size && stat(buf, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

/* Loads one labelled split from a pair of files of the given kind ('i' IDX, 'n' NPY) and checks it. */
static int load_pair(const cgrt_model *m, char kind, const char *xp, const char *yp, float scale, cgrt_dataset *d,
                     cgrt_error *err)
{
    int rc = kind == 'i' ? cgrt_load_idx(xp, yp, scale, d, err) : load_npy_pair(xp, yp, scale, d, err);
    if (rc != 0)
        return -1;
    if (check_dataset(m, d, xp, yp, err) != 0) {
        cgrt_dataset_free(d);
        return -1;
    }
    return 0;
}

/* Loads a directory of IDX or NPY files into train (and test when present). */
static int load_dir(const cgrt_model *m, const char *dir, float scale, cgrt_dataset *train, cgrt_dataset *test,
                    cgrt_error *err)
{
    char xp[RT_PATH_MAX], yp[RT_PATH_MAX];
    char kind;
    if (find_in_dir(dir, "train-images-idx3-ubyte", xp, sizeof xp) &&
        find_in_dir(dir, "train-labels-idx1-ubyte", yp, sizeof yp))
        kind = 'i';
    else if (find_in_dir(dir, "x_train.npy", xp, sizeof xp) && find_in_dir(dir, "y_train.npy", yp, sizeof yp))
        kind = 'n';
    else
        return rt_fail(err, "%s: directory holds neither train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] "
                            "nor x_train.npy + y_train.npy", dir);
    if (load_pair(m, kind, xp, yp, scale, train, err) != 0)
        return -1;
    if (kind == 'i' ? find_in_dir(dir, "t10k-images-idx3-ubyte", xp, sizeof xp) &&
                          find_in_dir(dir, "t10k-labels-idx1-ubyte", yp, sizeof yp)
                    : find_in_dir(dir, "x_test.npy", xp, sizeof xp) && find_in_dir(dir, "y_test.npy", yp, sizeof yp)) {
        if (load_pair(m, kind, xp, yp, scale, test, err) != 0) {
            cgrt_dataset_free(train);
            return -1;
        }
    }
    return 0;
}

/* Loads the data at path for m; hold_out 1 splits a test part off data without one. */
int rt_load_data(const cgrt_model *m, const char *path, int hold_out, cgrt_dataset *train, cgrt_dataset *test,
                 cgrt_error *err)
{
    float scale = m->data.scale == 0.0f ? 1.0f : m->data.scale;
    struct stat st;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (m->data.series.window > 0)
        return rt_load_series_data(m, path, train, NULL, test, NULL, err);
    if (stat(path, &st) != 0)
        return rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (load_dir(m, path, scale, train, test, err) != 0)
            return -1;
    } else if (rt_ends_with(path, ".csv") || rt_ends_with(path, ".csv.gz")) {
        int lw = m->label_kind == CGRT_LABEL_SPARSE ? 1 : m->label_width;
        if (cgrt_load_csv(path, lw, scale, train, err) != 0)
            return -1;
        if (check_dataset(m, train, path, path, err) != 0) {
            cgrt_dataset_free(train);
            return -1;
        }
    } else {
        return rt_fail(err, "%s: not a directory of IDX or NPY files, nor a .csv or .csv.gz file", path);
    }
    if (hold_out && test->n == 0 && m->data.test_split > 0.0f) {
        /* Files are often ordered (by writer, by class): the test part is a
         * seeded random sample, the same on every run whatever --seed says. */
        if (rt_permute_rows(train, 20240601u, err) != 0 || cgrt_split_tail(train, m->data.test_split, test, err) != 0) {
            cgrt_dataset_free(train);
            return -1;
        }
    }
    return 0;
}

/* Reorders the samples of d by a Fisher-Yates permutation drawn from seed. */
int rt_permute_rows(cgrt_dataset *d, uint64_t seed, cgrt_error *err)
{
    int *idx = rt_alloc_array((size_t)d->n, sizeof(int));
    float *x = rt_alloc_array((size_t)d->n * (size_t)d->features, sizeof(float));
    float *y = d->y ? rt_alloc_array((size_t)d->n * (size_t)d->label_width, sizeof(float)) : NULL;
    if (!idx || !x || (d->y && !y)) {
        free(idx), free(x), free(y);
        return rt_fail(err, "out of memory shuffling %d samples", d->n);
    }
    cgrt_rng rng = {seed};
    for (int i = 0; i < d->n; i++)
        idx[i] = i;
    cgrt_shuffle(idx, d->n, &rng);
    for (int i = 0; i < d->n; i++) {
        memcpy(x + (size_t)i * (size_t)d->features, d->x + (size_t)idx[i] * (size_t)d->features,
               sizeof(float) * (size_t)d->features);
        if (y)
            memcpy(y + (size_t)i * (size_t)d->label_width, d->y + (size_t)idx[i] * (size_t)d->label_width,
                   sizeof(float) * (size_t)d->label_width);
    }
    free(idx);
    free(d->x);
    d->x = x;
    if (y) {
        free(d->y);
        d->y = y;
    }
    return 0;
}

/* Loads the training data at path for m, and its test split when it has one. */
int cgrt_load_data(const cgrt_model *m, const char *path, cgrt_dataset *train, cgrt_dataset *test, cgrt_error *err)
{
    return rt_load_data(m, path, 1, train, test, err);
}

/* ---- splits, generator, shuffle --------------------------------------------- */

/* Moves a copy of the last `fraction` of d into val and shrinks d. */
int cgrt_split_tail(cgrt_dataset *d, float fraction, cgrt_dataset *val, cgrt_error *err)
{
    int keep, k;
    memset(val, 0, sizeof *val);
    if (!(fraction > 0.0f && fraction < 1.0f))
        return rt_fail(err, "split fraction %g is not between 0 and 1", (double)fraction);
    k = (int)((double)d->n * (double)fraction + 0.5);
    keep = d->n - k;
    if (k < 1 || keep < 1)
        return rt_fail(err, "a split of %g of %d samples leaves one part empty", (double)fraction, d->n);
    if (dataset_alloc(val, k, d->features, d->y ? d->label_width : 0, "split", err) != 0)
        return -1;
    val->label_width = d->label_width;
    memcpy(val->x, d->x + (size_t)keep * (size_t)d->features, (size_t)k * (size_t)d->features * sizeof(float));
    if (d->y)
        memcpy(val->y, d->y + (size_t)keep * (size_t)d->label_width,
               (size_t)k * (size_t)d->label_width * sizeof(float));
    d->n = keep;
    return 0;
}

/* Returns the next 64 random bits (splitmix64). */
uint64_t cgrt_rng_next(cgrt_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Shuffles idx[0..n) in place (Fisher-Yates). */
void cgrt_shuffle(int *idx, int n, cgrt_rng *r)
{
    int i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)(((cgrt_rng_next(r) >> 32) * (uint64_t)(i + 1)) >> 32);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
