/* csv.c: reading data files, and the one CSV reader of the runtime, shared by
 * the dataset loaders (data.c) and the time-series loader (series.c).
 *
 * Files: only regular files are read (a device such as /dev/zero, a FIFO or a
 * folder is refused before a byte is read), through zlib, which passes plain
 * files through. A gzip stream inflates to at most RT_GZIP_RATIO times its
 * compressed size, which bounds what a header inside it can truthfully
 * promise.
 *
 * CSV text: a UTF-8 byte-order mark is dropped (UTF-16 is refused), lines end
 * in \n, \r\n or \r, cells are separated by commas outside double quotes (a
 * quoted cell may hold commas, not line breaks), and a cell is a number only
 * when it is finite and fits a 32-bit float. */
#include "rt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- files ------------------------------------------------------------------ */

/* Opens path read-only and returns its descriptor (size in *size) when it
 * is a regular file; -1 with err set otherwise. `what` completes the message
 * for a device or FIFO ("give a data file"). */
int rt_open_regular(const char *path, const char *what, long long *size, cgrt_error *err)
{
    struct stat st;
    int fd, flags;
    /* O_NONBLOCK: opening a FIFO without a writer would wait forever */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return rt_fail(err, "%s: is a directory, expected a file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return rt_fail(err, "%s: not a regular file (a device, FIFO or socket); give %s", path, what);
    }
    flags = fcntl(fd, F_GETFL);
    if (flags != -1)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    *size = (long long)st.st_size;
    return fd;
}

/* Opens path for reading (gzip or plain) into f; -1 with err set when it
 * cannot be opened or is not a regular file. */
int rt_file_open(rt_file *f, const char *path, cgrt_error *err)
{
    int fd;
    memset(f, 0, sizeof *f);
    f->path = path;
    fd = rt_open_regular(path, "a data file", &f->size, err);
    if (fd < 0)
        return -1;
    errno = 0;
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        rt_fail(err, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        close(fd);
        return -1;
    }
    gzbuffer(f->gz, 1u << 18);
    return 0;
}

/* Closes f (which may be closed already). */
void rt_file_close(rt_file *f)
{
    if (f->gz)
        gzclose(f->gz);
    f->gz = NULL;
}

/* Reads up to n bytes; returns the count read (short at the end of the file),
 * or -1 with err set when the stream is corrupt or unreadable. */
long long rt_file_read(rt_file *f, void *buf, size_t n, cgrt_error *err)
{
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        int got = gzread(f->gz, p + done, (unsigned)want);
        if (got < 0) {
            int code;
            const char *msg = gzerror(f->gz, &code);
            size_t k = strlen(f->path);
            if (strncmp(msg, f->path, k) == 0 && msg[k] == ':') /* zlib prefixes the path */
                msg += k + 1 + (msg[k + 1] == ' ');
            if (code == Z_ERRNO)
                rt_fail(err, "%s: cannot read: %s", f->path, strerror(errno));
            else
                rt_fail(err, "%s: corrupt gzip data (%s)", f->path, msg);
            return -1;
        }
        if (got == 0) {
            int code;
            gzerror(f->gz, &code);
            if (code == Z_BUF_ERROR) { /* zlib's "unexpected end of file": the stream was cut short */
                rt_fail(err, "%s: truncated gzip data (the stream ends early)", f->path);
                return -1;
            }
            break;
        }
        done += (size_t)got;
        f->consumed += got;
    }
    return (long long)done;
}

/* The most bytes the rest of f can hold after what was read so far: exact
 * for a plain file; for gzip, what deflate can expand the compressed bytes
 * to. *exact says which. */
long long rt_file_room(const rt_file *f, int *exact)
{
    *exact = gzdirect(f->gz) != 0;
    if (*exact)
        return f->size > f->consumed ? f->size - f->consumed : 0;
    return (f->size + 1) * RT_GZIP_RATIO;
}

/* ---- CSV text ---------------------------------------------------------------- */

/* Reads the whole of path (decompressed) into c; -1 with err set on failure. */
int rt_csv_open(rt_csv *c, const char *path, cgrt_error *err)
{
    rt_file f;
    size_t cap = 1u << 16, n = 0;
    memset(c, 0, sizeof *c);
    c->path = path;
    if (rt_file_open(&f, path, err) != 0)
        return -1;
    c->text = malloc(cap + 1);
    for (;;) {
        long long got;
        if (!c->text) {
            rt_file_close(&f);
            return rt_fail(err, "%s: out of memory", path);
        }
        got = rt_file_read(&f, c->text + n, cap - n, err);
        if (got < 0) {
            rt_file_close(&f);
            rt_csv_close(c);
            return -1;
        }
        n += (size_t)got;
        if (n < cap)
            break;
        if (cap > ((size_t)1 << 40)) {
            rt_file_close(&f);
            rt_csv_close(c);
            return rt_fail(err, "%s: file too large", path);
        }
        cap *= 2;
        {
            char *nb = realloc(c->text, cap + 1);
            if (!nb)
                free(c->text);
            c->text = nb;
        }
    }
    rt_file_close(&f);
    c->text[n] = '\0';
    c->p = c->text;
    c->end = c->text + n;
    if (n >= 2 && ((c->p[0] == '\xFF' && c->p[1] == '\xFE') || (c->p[0] == '\xFE' && c->p[1] == '\xFF'))) {
        rt_csv_close(c);
        return rt_fail(err, "%s: is UTF-16 text; save it as UTF-8 (or ASCII)", path);
    }
    if (n >= 3 && memcmp(c->p, "\xEF\xBB\xBF", 3) == 0) /* a UTF-8 byte-order mark (Excel writes one) */
        c->p += 3;
    return 0;
}

/* Frees the text of c. */
void rt_csv_close(rt_csv *c)
{
    free(c->text);
    c->text = NULL;
    c->p = c->end = NULL;
}

/* Puts the next line of c, without its end (\n, \r\n or \r), into [*s, *e)
 * and counts it in c->lineno; returns 1, 0 at the end of the text, or -1
 * with err set when a double quote opened on the line is not closed on it. */
int rt_csv_line(rt_csv *c, const char **s, const char **e, cgrt_error *err)
{
    const char *p = c->p;
    int quotes = 0;
    if (p >= c->end)
        return 0;
    for (; p < c->end && *p != '\n' && *p != '\r'; p++)
        quotes += *p == '"';
    *s = c->p;
    *e = p;
    if (p < c->end && *p == '\r' && p + 1 < c->end && p[1] == '\n')
        p++;
    c->p = p < c->end ? p + 1 : p;
    c->lineno++;
    if (quotes % 2)
        return rt_fail(err, "%s:%d: a double quote opens a cell that does not close on its line", c->path, c->lineno);
    return 1;
}

/* Returns 1 when the line [s, e) holds only blanks. */
int rt_csv_blank(const char *s, const char *e)
{
    for (; s < e; s++)
        if (*s != ' ' && *s != '\t')
            return 0;
    return 1;
}

/* Starts a walk over the cells of the line [s, e). */
void rt_cells_init(rt_cells *it, const char *s, const char *e)
{
    it->p = s;
    it->e = e;
    it->done = 0;
}

/* Puts the next cell of the walk into [*cs, *ce), blanks trimmed and one pair
 * of enclosing double quotes removed; returns 0 after the last cell. */
int rt_cells_next(rt_cells *it, const char **cs, const char **ce)
{
    const char *s = it->p, *x;
    int quoted = 0;
    if (it->done)
        return 0;
    for (x = s; x < it->e; x++) {
        if (*x == '"')
            quoted = !quoted;
        else if (*x == ',' && !quoted)
            break;
    }
    if (x < it->e)
        it->p = x + 1;
    else
        it->done = 1;
    while (s < x && (*s == ' ' || *s == '\t'))
        s++;
    while (x > s && (x[-1] == ' ' || x[-1] == '\t'))
        x--;
    if (x - s >= 2 && *s == '"' && x[-1] == '"') {
        s++;
        x--;
        while (s < x && (*s == ' ' || *s == '\t'))
            s++;
        while (x > s && (x[-1] == ' ' || x[-1] == '\t'))
            x--;
    }
    *cs = s;
    *ce = x;
    return 1;
}

/* Counts the cells of the line [s, e). */
int rt_csv_count_cells(const char *s, const char *e)
{
    rt_cells it;
    const char *cs, *ce;
    int n = 0;
    rt_cells_init(&it, s, e);
    while (rt_cells_next(&it, &cs, &ce))
        n++;
    return n;
}

/* Reads the cell [s, e) (trimmed) as a number into *out; returns its kind:
 * RT_CELL_NUMBER, or what keeps it from being one. */
int rt_csv_number(const char *s, const char *e, float *out)
{
    char *end;
    double v;
    if (s == e)
        return RT_CELL_EMPTY;
    if (e - s == 2 && strncasecmp(s, "NA", 2) == 0)
        return RT_CELL_MISSING;
    if (*s == ' ' || *s == '\t')
        return RT_CELL_TEXT;
    /* strtod stops at the cell's end: what follows a trimmed cell (a comma,
     * blank, quote, line end or the text's NUL) never continues a number */
    errno = 0;
    v = strtod(s, &end);
    if (end != e)
        return RT_CELL_TEXT;
    if (isnan(v))
        return RT_CELL_MISSING;
    if (isinf(v))
        return errno == ERANGE ? RT_CELL_TOO_BIG : RT_CELL_INFINITE;
    if (fabs(v) > FLT_MAX)
        return RT_CELL_TOO_BIG;
    *out = (float)v;
    return RT_CELL_NUMBER;
}

/* What keeps a cell of the given kind from being a number, as a phrase that
 * follows the cell ("\"1e39\" does not fit a 32-bit float ..."). */
const char *rt_csv_problem(int kind)
{
    switch (kind) {
    case RT_CELL_EMPTY: return "is empty";
    case RT_CELL_MISSING: return "marks a missing value";
    case RT_CELL_INFINITE: return "is not finite";
    case RT_CELL_TOO_BIG: return "does not fit a 32-bit float (whose largest magnitude is 3.4e38)";
    default: return "is not a number";
    }
}

/* Returns 1 when some cell of the line [s, e) is text (not a number, not
 * empty, not a missing-value mark, not a number out of range): a header. A
 * first data row with a gap or a bad value is therefore read as data, and
 * its error reported, rather than dropped as a header. */
int rt_csv_is_header(const char *s, const char *e)
{
    rt_cells it;
    const char *cs, *ce;
    float v;
    rt_cells_init(&it, s, e);
    while (rt_cells_next(&it, &cs, &ce))
        if (rt_csv_number(cs, ce, &v) == RT_CELL_TEXT)
            return 1;
    return 0;
}

/* Writes the cells of the line [s, e), comma-separated, into buf; a list
 * that does not fit ends in "...". */
void rt_csv_header_names(const char *s, const char *e, char *buf, size_t size)
{
    rt_cells it;
    const char *cs, *ce;
    size_t len = 0;
    int k = 0;
    buf[0] = '\0';
    rt_cells_init(&it, s, e);
    while (rt_cells_next(&it, &cs, &ce)) {
        int w = snprintf(buf + len, size - len, "%s%.*s", k++ ? ", " : "", (int)(ce - cs), cs);
        if (w < 0 || (size_t)w >= size - len) {
            if (size > 4)
                strcpy(buf + size - 4, "...");
            return;
        }
        len += (size_t)w;
    }
}

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
