/* data.c: datasets in memory: the IDX, CSV and NPY loaders (plain or gzip,
 * all read through zlib, which passes plain files through), the checks of a
 * dataset against a model, train/test splits, the seeded generator and the
 * Fisher-Yates shuffle. */
#include "rt_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define RT_PATH_MAX 4096
#define RT_CHUNK (1u << 16)

/* ---- reading through zlib ------------------------------------------------ */

/* Opens path for reading (gzip or plain); NULL with err set on failure. */
static gzFile gz_open(const char *path, cgrt_error *err)
{
    struct stat st;
    gzFile f;
    if (stat(path, &st) != 0) {
        rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        rt_fail(err, "%s: is a directory, expected a file", path);
        return NULL;
    }
    errno = 0;
    f = gzopen(path, "rb");
    if (!f) {
        rt_fail(err, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(f, 1u << 18);
    return f;
}

/* Reads up to n bytes; returns the count read (short at end of file), or -1
 * with err set when the stream is corrupt or unreadable. */
static long long gz_read_all(gzFile f, const char *path, void *buf, size_t n, cgrt_error *err)
{
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        int got = gzread(f, p + done, (unsigned)want);
        if (got < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            size_t k = strlen(path);
            if (strncmp(msg, path, k) == 0 && msg[k] == ':') /* zlib prefixes the path */
                msg += k + 1 + (msg[k + 1] == ' ');
            if (code == Z_ERRNO)
                rt_fail(err, "%s: cannot read: %s", path, strerror(errno));
            else
                rt_fail(err, "%s: corrupt gzip data (%s)", path, msg);
            return -1;
        }
        if (got == 0) {
            int code;
            gzerror(f, &code);
            if (code == Z_BUF_ERROR) {   /* zlib's "unexpected end of file": the stream was cut short */
                rt_fail(err, "%s: truncated gzip data (the stream ends early)", path);
                return -1;
            }
            break;
        }
        done += (size_t)got;
    }
    return (long long)done;
}

/* Reads a whole file (decompressed) into a NUL-terminated buffer; *len gets its length. */
static char *gz_slurp(const char *path, size_t *len, cgrt_error *err)
{
    gzFile f = gz_open(path, err);
    size_t cap = 1u << 16, n = 0;
    char *buf;
    if (!f)
        return NULL;
    buf = malloc(cap + 1);
    for (;;) {
        long long got;
        if (!buf) {
            gzclose(f);
            rt_fail(err, "%s: out of memory", path);
            return NULL;
        }
        got = gz_read_all(f, path, buf + n, cap - n, err);
        if (got < 0) {
            free(buf);
            gzclose(f);
            return NULL;
        }
        n += (size_t)got;
        if (n < cap)
            break;
        if (cap > ((size_t)1 << 40)) {
            free(buf);
            gzclose(f);
            rt_fail(err, "%s: file too large", path);
            return NULL;
        }
        cap *= 2;
        {
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    gzclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

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

/* ---- IDX ----------------------------------------------------------------- */

/* Opens an IDX file and reads its header: rank (1..4) and dims. want_images
 * selects the check (images have rank >= 2, labels rank 1). */
static gzFile idx_open(const char *path, int want_images, int *rank, long long dims[4], cgrt_error *err)
{
    unsigned char head[4 + 16];
    long long got;
    int i;
    gzFile f = gz_open(path, err);
    if (!f)
        return NULL;
    got = gz_read_all(f, path, head, 4, err);
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
    got = gz_read_all(f, path, head + 4, (size_t)*rank * 4, err);
    if (got < 0)
        goto fail;
    if (got < *rank * 4) {
        rt_fail(err, "%s: truncated: IDX header ends early", path);
        goto fail;
    }
    for (i = 0; i < *rank; i++) {
        const unsigned char *b = head + 4 + 4 * i;
        dims[i] = ((long long)b[0] << 24) | ((long long)b[1] << 16) | ((long long)b[2] << 8) | b[3];
    }
    return f;
fail:
    gzclose(f);
    return NULL;
}

/* Reads n*width bytes of IDX data from f into out as floats times scale. */
static int idx_read_values(gzFile f, const char *path, size_t count, float scale, float *out, const char *what,
                           cgrt_error *err)
{
    unsigned char *buf = malloc(RT_CHUNK);
    size_t done = 0;
    if (!buf)
        return rt_fail(err, "%s: out of memory", path);
    while (done < count) {
        size_t want = count - done < RT_CHUNK ? count - done : RT_CHUNK, i;
        long long got = gz_read_all(f, path, buf, want, err);
        if (got < 0) {
            free(buf);
            return -1;
        }
        for (i = 0; i < (size_t)got; i++)
            out[done + i] = (float)buf[i] * scale;
        done += (size_t)got;
        if ((size_t)got < want) {
            free(buf);
            return rt_fail(err, "%s: truncated: header promises %zu bytes of %s, the file holds %zu", path, count,
                           what, done);
        }
    }
    free(buf);
    return 0;
}

/* Checks that n samples of `features` values stay within int and memory limits. */
static int check_sizes(const char *path, long long n, long long features, cgrt_error *err)
{
    if (n < 1)
        return rt_fail(err, "%s: holds no samples", path);
    if (features < 1)
        return rt_fail(err, "%s: samples have no values", path);
    if (n > INT_MAX || features > INT_MAX || n * features > (long long)1 << 34)
        return rt_fail(err, "%s: sizes are absurd (%lld samples of %lld values)", path, n, features);
    return 0;
}

/* Loads an IDX images file alone into out (no labels). */
int rt_load_idx_images(const char *path, float scale, cgrt_dataset *out, cgrt_error *err)
{
    long long dims[4], features = 1;
    int rank, i;
    gzFile f;
    memset(out, 0, sizeof *out);
    if (scale == 0.0f)
        scale = 1.0f;
    f = idx_open(path, 1, &rank, dims, err);
    if (!f)
        return -1;
    for (i = 1; i < rank; i++) {
        if (dims[i] > INT_MAX || features > INT_MAX)
            break;
        features *= dims[i];
    }
    if (check_sizes(path, dims[0], features, err) != 0 ||
        dataset_alloc(out, (int)dims[0], (int)features, 0, path, err) != 0 ||
        idx_read_values(f, path, (size_t)dims[0] * (size_t)features, scale, out->x, "images", err) != 0) {
        gzclose(f);
        cgrt_dataset_free(out);
        return -1;
    }
    gzclose(f);
    return 0;
}

/* Loads an IDX images file and its labels file into out (labels as floats). */
int cgrt_load_idx(const char *images, const char *labels, float scale, cgrt_dataset *out, cgrt_error *err)
{
    long long dims[4];
    int rank;
    gzFile f;
    cgrt_dataset img;
    if (rt_load_idx_images(images, scale, &img, err) != 0)
        return -1;
    f = idx_open(labels, 0, &rank, dims, err);
    if (!f) {
        cgrt_dataset_free(&img);
        return -1;
    }
    if (dims[0] != img.n) {
        rt_fail(err, "%s: holds %lld labels but %s holds %d images", labels, dims[0], images, img.n);
        gzclose(f);
        cgrt_dataset_free(&img);
        return -1;
    }
    img.label_width = 1;
    img.y = rt_alloc_array((size_t)img.n, sizeof(float));
    if (!img.y || idx_read_values(f, labels, (size_t)img.n, 1.0f, img.y, "labels", err) != 0) {
        if (!img.y)
            rt_fail(err, "%s: out of memory", labels);
        gzclose(f);
        cgrt_dataset_free(&img);
        return -1;
    }
    gzclose(f);
    *out = img;
    return 0;
}

/* ---- CSV ----------------------------------------------------------------- */

/* Growable array of floats (rt_fvec, shared with series.c). */
typedef rt_fvec fvec;

/* Appends x to a; -1 when out of memory. */
int rt_fvec_push(rt_fvec *a, float x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4096;
        float *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Trims blanks (and one pair of double quotes) from the cell [*s, *e). */
static void trim_cell(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
    if (*e - *s >= 2 && **s == '"' && (*e)[-1] == '"') {
        (*s)++;
        (*e)--;
    }
}

/* Parses the cell [s, e) as a finite number; returns 1 on success. */
static int parse_cell(const char *s, const char *e, float *out)
{
    char *end;
    double v;
    if (s == e || *s == ' ' || *s == '\n')
        return 0;
    v = strtod(s, &end);
    if (end != e || !isfinite(v))
        return 0;
    *out = (float)v;
    return 1;
}

/* The reader and the cell parsers, for the time-series loader (series.c). */
char *rt_read_text(const char *path, size_t *len, cgrt_error *err)
{
    return gz_slurp(path, len, err);
}

void rt_trim_cell(const char **s, const char **e)
{
    trim_cell(s, e);
}

int rt_parse_cell(const char *s, const char *e, float *out)
{
    return parse_cell(s, e, out);
}

/* Counts the cells of the line [s, e). */
static int count_cells(const char *s, const char *e)
{
    int n = 1;
    for (; s < e; s++)
        n += *s == ',';
    return n;
}

/* Returns 1 when every cell of the line [s, e) is a number. */
static int line_is_numeric(const char *s, const char *e)
{
    while (s <= e) {
        const char *c = s, *ce = memchr(s, ',', (size_t)(e - s));
        float v;
        if (!ce)
            ce = e;
        s = ce + 1;
        trim_cell(&c, &ce);
        if (!parse_cell(c, ce, &v))
            return 0;
    }
    return 1;
}

/* Returns 1 when the line [s, e) holds only blanks. */
static int line_is_blank(const char *s, const char *e)
{
    for (; s < e; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r')
            return 0;
    return 1;
}

/* Parses the numeric cells of one data line into vals; -1 with err naming file:line and column. */
static int csv_parse_line(const char *path, int lineno, const char *s, const char *e, fvec *vals, cgrt_error *err)
{
    int col = 1;
    while (s <= e) {
        const char *c = s, *ce = memchr(s, ',', (size_t)(e - s));
        float v;
        if (!ce)
            ce = e;
        s = ce + 1;
        trim_cell(&c, &ce);
        if (c == ce)
            return rt_fail(err, "%s:%d: column %d is empty", path, lineno, col);
        if (!parse_cell(c, ce, &v))
            return rt_fail(err, "%s:%d: column %d: \"%.*s\" is not a number", path, lineno, col,
                           (int)(ce - c > 40 ? 40 : ce - c), c);
        if (rt_fvec_push(vals, v) != 0)
            return rt_fail(err, "%s: out of memory", path);
        col++;
    }
    return 0;
}

/* Parses the CSV text into vals; sets *rows, *cols. */
static int csv_parse(const char *path, const char *text, size_t len, fvec *vals, int *rows, int *cols,
                     cgrt_error *err)
{
    const char *p = text, *end = text + len;
    int lineno = 0, ref_line = 0, first = 1;
    *rows = 0;
    *cols = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        int n;
        lineno++;
        if (line_is_blank(p, le)) {
            p = le + 1;
            continue;
        }
        n = count_cells(p, le);
        if (first) {
            first = 0;
            *cols = n;
            ref_line = lineno;
            if (!line_is_numeric(p, le)) { /* a header: skip it */
                p = le + 1;
                continue;
            }
        } else if (n != *cols) {
            return rt_fail(err, "%s:%d: row has %d columns, expected %d (as on line %d)", path, lineno, n, *cols,
                           ref_line);
        }
        if (csv_parse_line(path, lineno, p, le, vals, err) != 0)
            return -1;
        if (*rows == INT_MAX)
            return rt_fail(err, "%s: too many rows", path);
        (*rows)++;
        p = le + 1;
    }
    if (*rows == 0)
        return rt_fail(err, "%s: holds no data rows", path);
    return 0;
}

/* Loads a CSV file: features then label_width label columns per row. */
int cgrt_load_csv(const char *path, int label_width, float scale, cgrt_dataset *out, cgrt_error *err)
{
    size_t len, r;
    char *text;
    fvec vals = {0, 0, 0};
    int rows, cols, features, j;
    memset(out, 0, sizeof *out);
    if (scale == 0.0f)
        scale = 1.0f;
    text = gz_slurp(path, &len, err);
    if (!text)
        return -1;
    if (csv_parse(path, text, len, &vals, &rows, &cols, err) != 0) {
        free(text);
        free(vals.v);
        return -1;
    }
    free(text);
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

/* Decodes one little-endian element of the given dtype kind ('f', 'u', 'i') and size. */
static float npy_decode(const unsigned char *b, char kind, int size)
{
    uint64_t u = 0;
    int i;
    if (size == 1)
        return (float)b[0];
    for (i = size - 1; i >= 0; i--)
        u = (u << 8) | b[i];
    if (kind == 'f' && size == 4) {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    if (kind == 'f') {
        double f;
        memcpy(&f, &u, 8);
        return (float)f;
    }
    if (size == 4)
        return (float)(int32_t)(uint32_t)u;
    return (float)(int64_t)u;
}

/* Reads and checks the NPY preamble; returns the header text (malloc'd) or NULL. */
static char *npy_read_header(gzFile f, const char *path, cgrt_error *err)
{
    unsigned char pre[12];
    size_t hlen;
    long long got = gz_read_all(f, path, pre, 10, err);
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
        if (gz_read_all(f, path, pre + 10, 2, err) != 2) {
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
    got = gz_read_all(f, path, h, hlen, err);
    if (got < 0 || (size_t)got != hlen) {
        if (got >= 0)
            rt_fail(err, "%s: truncated NPY header", path);
        free(h);
        return NULL;
    }
    h[hlen] = '\0';
    return h;
}

/* Reads count elements of the dtype from f into a new float array. */
static float *npy_read_values(gzFile f, const char *path, size_t count, const char *descr, int size, cgrt_error *err)
{
    float *out = rt_alloc_array(count ? count : 1, sizeof(float));
    unsigned char *buf = malloc(RT_CHUNK);
    size_t per = RT_CHUNK / (size_t)size, done = 0;
    if (!out || !buf) {
        free(out);
        free(buf);
        rt_fail(err, "%s: out of memory", path);
        return NULL;
    }
    while (done < count) {
        size_t want = count - done < per ? count - done : per, i;
        long long got = gz_read_all(f, path, buf, want * (size_t)size, err);
        if (got < 0)
            goto fail;
        if ((size_t)got < want * (size_t)size) {
            rt_fail(err, "%s: truncated: the header promises %zu values, the file holds %zu", path, count,
                    done + (size_t)got / (size_t)size);
            goto fail;
        }
        for (i = 0; i < want; i++)
            out[done + i] = npy_decode(buf + i * (size_t)size, descr[1], size);
        done += want;
    }
    free(buf);
    return out;
fail:
    free(out);
    free(buf);
    return NULL;
}

/* Loads an NPY file into floats: *data (malloc'd), its rank and dims. */
int cgrt_load_npy(const char *path, float **data, int *rank, int dims[CGRT_MAX_RANK], cgrt_error *err)
{
    char descr[16], *h;
    long long ldims[CGRT_MAX_RANK], count = 1;
    int size, i;
    gzFile f;
    *data = NULL;
    *rank = 0;
    f = gz_open(path, err);
    if (!f)
        return -1;
    h = npy_read_header(f, path, err);
    if (!h || npy_parse_header(path, h, descr, rank, ldims, err) != 0) {
        free(h);
        gzclose(f);
        return -1;
    }
    free(h);
    size = npy_dtype_size(descr);
    if (!size) {
        gzclose(f);
        return rt_fail(err, "%s: dtype '%s' is not supported (use <f4, <f8, |u1, <i4 or <i8)", path, descr);
    }
    for (i = 0; i < *rank; i++) {
        if (ldims[i] > INT_MAX || (ldims[i] > 0 && count > ((long long)1 << 34) / ldims[i])) {
            gzclose(f);
            return rt_fail(err, "%s: shape is absurd", path);
        }
        count *= ldims[i];
        dims[i] = (int)ldims[i];
    }
    *data = npy_read_values(f, path, (size_t)count, descr, size, err);
    gzclose(f);
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
        cgrt_dataset_free(&lab);
        cgrt_dataset_free(out);
        return rt_fail(err, "%s: holds %d labels but %s holds %d samples", ypath, lab.n, xpath, out->n);
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
