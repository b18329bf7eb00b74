/* data.c: the binary data files, IDX (plain or gzip) and NPY, read through
 * csv.c's file layer. Every value a loader returns came from the file and is
 * a finite float; a header that promises more than its file can hold is
 * refused before memory is taken for it. The format table (formats.c) says
 * when these loaders are used; datasets and their checks are in dataset.c. */
#include "rt_internal.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RT_CHUNK (1u << 16)
#define RT_MAX_VALUES ((long long)1 << 34) /* the most values one file may hold (64 GB of floats) */
#define RT_FIRST_VALUES ((size_t)1 << 22)  /* values taken for gzip data before the stream shows more */

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
        if (done + want > cap) { /* gzip: more room once the stream has shown it holds more */
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
        rt_fail(err, "%s: not an IDX file (magic number 0x%02x%02x%02x%02x)", path, head[0], head[1], head[2], head[3]);
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
    for (i = 1; i < rank; i++) { /* each dimension is at most INT_MAX: stop before the product overflows */
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
            return rt_fail(err, "%s: shape %s is absurd (more than %lld values, or a dimension above %d)", path, shape,
                           RT_MAX_VALUES, INT_MAX);
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
int rt_load_npy_pair(const char *xpath, const char *ypath, float scale, cgrt_dataset *out, cgrt_error *err)
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
