/* checkpoint.c: safetensors checkpoints of the parameter block.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON (padded
 * with spaces to a multiple of 8) mapping each tensor name to its dtype, shape
 * and [begin, end) byte offsets in the data that follows, plus a
 * "__metadata__" object naming the model (and, for a time series, holding
 * its scaling statistics); then the raw little-endian F32 data.
 * Writes are atomic (temporary file, fsync, rename, fsync of the folder:
 * rt_write_atomic, which the training curves of plot.c use too);
 * reads check every tensor of the model before touching the parameters.
 *
 * The temporary file of a save of NAME is NAME.tmp.PID.XXXXXX in NAME's
 * folder (PID the saving process, XXXXXX six random letters or digits),
 * created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0666 less the umask, so a
 * file or symlink planted at any name is never opened. A save killed before
 * its rename leaves that file behind; every save first removes those of
 * NAME whose PID is no longer a live process (regular files only, never
 * through a symlink; the legacy form NAME.tmp.PID too). A save still
 * running, in this process or another, keeps its file (and a stale one
 * whose PID was reused waits until that process ends). Where another
 * machine or PID namespace also writes NAME into a shared folder, its live
 * temporary file could be taken for a stale one: its save then fails at the
 * rename and the checkpoint in place stays intact. */
#include "rt_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* larger headers are not safetensors headers */
#define ST_MAX_RANK 8
#define ST_NAME 256
#define TMP_RANDOM 6  /* random characters that end a temporary file's name */
#define TMP_TRIES 100 /* names tried before a save gives up creating its temporary file */

/* ---- string builder (header text) --------------------------------------- */

/* A growable NUL-terminated string; failed is set once an allocation fails. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    int failed;
} sbuf;

/* Appends formatted text to b. */
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (b->failed)
        return;
    va_start(ap, fmt);
    k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->failed = 1;
        return;
    }
    if (!b->s || b->n + (size_t)k + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap : 256);
        char *s;
        while (cap < b->n + (size_t)k + 1)
            cap *= 2;
        s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)k;
}

/* Appends s as a JSON string literal. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c < 0x20)
            sb_printf(b, "\\u%04x", c);
        else
            sb_printf(b, "%c", c);
    }
    sb_printf(b, "\"");
}

/* Writes "[d0,d1,...]" for the dims into buf (for messages). */
static void format_shape(char *buf, size_t size, int rank, const long long *dims)
{
    size_t n = 0;
    int i;
    n += (size_t)snprintf(buf, size, "[");
    for (i = 0; i < rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "", dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

/* ---- writer ----------------------------------------------------------------- */

/* Appends the time series' entries of the metadata: its statistics (17
 * significant digits, so they read back exactly) and its spec. */
static void series_metadata(sbuf *b, const cgrt_model *m, const cgrt_series_stats *st)
{
    const cgrt_series_spec *sp = &m->data.series;
    sb_printf(b, ",\"series_mean\":\"%.17g\",\"series_std\":\"%.17g\",\"series_column\":", st->mean, st->std);
    if (sp->column) {
        sb_json_string(b, sp->column);
    } else {
        sb_printf(b, "\"%d\"", sp->column_index);
    }
    sb_printf(b, ",\"series_window\":\"%d\",\"series_horizon\":\"%d\"", sp->window, sp->horizon > 0 ? sp->horizon : 1);
}

/* Builds the JSON header (padded to a multiple of 8) for the model's tensors
 * (with the series statistics st in the metadata when not NULL). */
static int build_header(const cgrt_model *m, const cgrt_series_stats *st, sbuf *b, cgrt_error *err)
{
    uint64_t off = 0;
    int i, j;
    sb_printf(b, "{\"__metadata__\":{\"format\":\"pt\",\"model\":");
    sb_json_string(b, m->name ? m->name : "");
    if (st)
        series_metadata(b, m, st);
    sb_printf(b, "}");
    for (i = 0; i < m->num_params; i++) {
        const cgrt_param *p = &m->params[i];
        size_t count = 1;
        for (j = 0; j < p->rank; j++)
            count *= (size_t)p->dims[j];
        if (count != p->count || p->rank < 0 || p->rank > CGRT_MAX_RANK)
            return rt_fail(err, "model %s: tensor \"%s\" holds %zu floats, which does not match its shape", m->name,
                           p->name, p->count);
        sb_printf(b, ",");
        sb_json_string(b, p->name);
        sb_printf(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (j = 0; j < p->rank; j++)
            sb_printf(b, "%s%d", j ? "," : "", p->dims[j]);
        sb_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + 4 * (uint64_t)count));
        off += 4 * (uint64_t)count;
    }
    sb_printf(b, "}");
    while (!b->failed && b->n % 8 != 0)
        sb_printf(b, " ");
    if (b->failed)
        return rt_fail(err, "model %s: out of memory for the checkpoint header", m->name);
    return 0;
}

/* Writes the header length, header and little-endian float data to f; 0 or -1 (errno set). */
static int write_body(FILE *f, const cgrt_model *m, const float *params, const sbuf *h)
{
    unsigned char len[8], buf[4096];
    uint64_t n = h->n;
    int i, k;
    for (k = 0; k < 8; k++)
        len[k] = (unsigned char)(n >> (8 * k));
    if (fwrite(len, 1, 8, f) != 8 || fwrite(h->s, 1, h->n, f) != h->n)
        return -1;
    for (i = 0; i < m->num_params; i++) {
        const float *src = params + m->params[i].offset;
        size_t left = m->params[i].count;
        while (left > 0) {
            size_t chunk = left < sizeof buf / 4 ? left : sizeof buf / 4, j;
            for (j = 0; j < chunk; j++) {
                uint32_t w;
                memcpy(&w, &src[j], 4);
                for (k = 0; k < 4; k++)
                    buf[4 * j + (size_t)k] = (unsigned char)(w >> (8 * k));
            }
            if (fwrite(buf, 4, chunk, f) != chunk)
                return -1;
            src += chunk;
            left -= chunk;
        }
    }
    return 0;
}

/* Returns the folder holding path, malloc'd ("." for a bare name), or NULL
 * when out of memory; *base gets the name within it (a pointer into path). */
static char *parent_dir(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    char *dir = malloc(n + 1);
    *base = slash ? slash + 1 : path;
    if (!dir)
        return NULL;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    return dir;
}

/* Fsyncs the folder dir so a rename into it is durable; errors are ignored. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static const char tmp_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* A 64-bit number no other process can guess: /dev/urandom when it can be
 * read, mixed (splitmix64) with the clock, the process id and attempt. */
static uint64_t temp_random(int attempt)
{
    uint64_t x = 0, z;
    struct timespec ts;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &x, sizeof x) != (ssize_t)sizeof x)
            x = 0;
        close(fd);
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    z = x ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 40) ^
        ((uint64_t)(attempt + 1) * 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Creates the temporary file of a save of path under a fresh name written
 * into tmp (room for strlen(path) + 40 bytes): never through a symlink, never
 * over an existing file. Returns the open descriptor, or -1 (errno set). */
static int create_temp(const char *path, char *tmp)
{
    int attempt, k, n, fd;
    for (attempt = 0; attempt < TMP_TRIES; attempt++) {
        uint64_t r = temp_random(attempt);
        n = sprintf(tmp, "%s.tmp.%ld.", path, (long)getpid());
        for (k = 0; k < TMP_RANDOM; k++, r /= sizeof tmp_chars - 1)
            tmp[n + k] = tmp_chars[r % (sizeof tmp_chars - 1)];
        tmp[n + TMP_RANDOM] = '\0';
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* 1 when name is a temporary file of a save of base: base.tmp.PID.XXXXXX
 * (or the legacy base.tmp.PID); *pid gets PID. */
static int is_temp_name(const char *name, const char *base, long *pid)
{
    size_t n = strlen(base);
    int digits = 0, k;
    if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp.", 5) != 0)
        return 0;
    name += n + 5;
    *pid = 0;
    for (; *name >= '0' && *name <= '9'; name++, digits++)
        *pid = *pid * 10 + (*name - '0');
    if (digits == 0 || digits > 9 || *pid <= 0)
        return 0;
    if (*name == '\0')
        return 1;
    if (*name++ != '.')
        return 0;
    for (k = 0; k < TMP_RANDOM; k++)
        if (!name[k] || !strchr(tmp_chars, name[k]))
            return 0;
    return name[TMP_RANDOM] == '\0';
}

/* Removes from dir the temporary files of saves of base whose process is no
 * longer alive (killed before their rename): regular files only, examined and
 * removed without following symlinks. Errors are ignored. */
static void remove_stale_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        long pid;
        if (!is_temp_name(e->d_name, base, &pid) || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) /* alive (EPERM: someone else's live process) */
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* Writes path atomically: body(f, ctx) fills a new temporary file in path's
 * folder (its stale ones removed first), which is flushed, fsynced and
 * renamed over path. what names the file in messages ("checkpoint").
 * Returns 0, or -1 with err set (the temporary file removed). */
int rt_write_atomic(const char *path, const char *what, int (*body)(FILE *f, void *ctx), void *ctx, cgrt_error *err)
{
    const char *base;
    char *tmp = malloc(strlen(path) + 40), *dir = parent_dir(path, &base);
    FILE *f;
    int e, fd;
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        return rt_fail(err, "%s: out of memory", path);
    }
    remove_stale_temps(dir, base);
    fd = create_temp(path, tmp);
    f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        e = errno;
        if (fd >= 0) {
            close(fd);
            remove(tmp);
        }
        rt_fail(err, "%s: cannot create %s: %s", path, tmp, strerror(e));
        free(tmp);
        free(dir);
        return -1;
    }
    if (body(f, ctx) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        e = errno;
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        e = errno;
        goto fail;
    }
    sync_dir(dir);
    free(tmp);
    free(dir);
    return 0;
fail:
    remove(tmp);
    free(tmp);
    free(dir);
    return rt_fail(err, "%s: cannot write %s: %s", path, what, strerror(e));
}

/* Writes the parameter block as a safetensors file, atomically. */
int cgrt_save_checkpoint(const cgrt_model *m, const float *params, const char *path, cgrt_error *err)
{
    return cgrt_save_checkpoint_series(m, params, NULL, path, err);
}

/* What a checkpoint's body writes: the model, its parameters and the header text. */
typedef struct ckpt_body {
    const cgrt_model *m;
    const float *params;
    const sbuf *h;
} ckpt_body;

/* rt_write_atomic's body of a checkpoint: write_body on ctx (a ckpt_body). */
static int ckpt_write(FILE *f, void *ctx)
{
    const ckpt_body *c = ctx;
    return write_body(f, c->m, c->params, c->h);
}

/* Writes the parameter block (and the series statistics st, when not NULL) as a safetensors file, atomically. */
int cgrt_save_checkpoint_series(const cgrt_model *m, const float *params, const cgrt_series_stats *st, const char *path,
                                cgrt_error *err)
{
    sbuf h = {NULL, 0, 0, 0};
    ckpt_body c = {m, params, &h};
    int rc = build_header(m, st, &h, err) != 0 ? -1 : rt_write_atomic(path, "checkpoint", ckpt_write, &c, err);
    free(h.s);
    return rc;
}

/* ---- minimal JSON reader ------------------------------------------------------ */

/* Parser state over the header text [s, e). */
typedef struct jp {
    const char *s, *p, *e;
    const char *what; /* first error, NULL while all is well */
} jp;

/* One tensor entry of the header. */
typedef struct st_entry {
    char name[ST_NAME];
    char dtype[16];
    int rank;
    long long shape[ST_MAX_RANK];
    long long off[2];
    int have_dtype, have_shape, have_off;
} st_entry;

/* Records the first error of the parser; returns -1. */
static int jp_error(jp *j, const char *what)
{
    if (!j->what)
        j->what = what;
    return -1;
}

/* Skips blanks. */
static void jp_ws(jp *j)
{
    while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Consumes character c after blanks; -1 if it is not next. */
static int jp_expect(jp *j, char c)
{
    jp_ws(j);
    if (j->p >= j->e || *j->p != c) {
        static char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return jp_error(j, msg);
    }
    j->p++;
    return 0;
}

/* Appends code point u to out as UTF-8 (within cap). */
static void put_utf8(char *out, size_t cap, size_t *n, unsigned u)
{
    unsigned char b[3];
    size_t k = 0, i;
    if (u < 0x80) {
        b[k++] = (unsigned char)u;
    } else if (u < 0x800) {
        b[k++] = (unsigned char)(0xC0 | (u >> 6));
        b[k++] = (unsigned char)(0x80 | (u & 0x3F));
    } else {
        b[k++] = (unsigned char)(0xE0 | (u >> 12));
        b[k++] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
        b[k++] = (unsigned char)(0x80 | (u & 0x3F));
    }
    for (i = 0; i < k; i++, (*n)++)
        if (*n + 1 < cap)
            out[*n] = (char)b[i];
}

/* Parses a JSON string into out (truncated to cap-1 bytes; NULL out discards it). */
static int jp_string(jp *j, char *out, size_t cap)
{
    size_t n = 0;
    char tmp[1];
    if (!out) {
        out = tmp;
        cap = 1;
    }
    if (jp_expect(j, '"') != 0)
        return -1;
    while (j->p < j->e && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            if (j->p >= j->e)
                break;
            c = *j->p++;
            if (c == 'u') {
                unsigned u = 0;
                int i;
                for (i = 0; i < 4; i++, j->p++) {
                    char h = j->p < j->e ? *j->p : 'x';
                    if (h >= '0' && h <= '9')
                        u = u * 16 + (unsigned)(h - '0');
                    else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
                        u = u * 16 + (unsigned)((h | 0x20) - 'a' + 10);
                    else
                        return jp_error(j, "bad \\u escape");
                }
                put_utf8(out, cap, &n, u);
                continue;
            }
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : c;
        }
        if (n + 1 < cap)
            out[n] = c;
        n++;
    }
    if (j->p >= j->e)
        return jp_error(j, "unterminated string");
    j->p++;
    out[n + 1 < cap ? n : cap - 1] = '\0';
    return 0;
}

/* Parses an array of non-negative integers into v (at most max); *count gets their number. */
static int jp_int_array(jp *j, long long *v, int max, int *count)
{
    *count = 0;
    if (jp_expect(j, '[') != 0)
        return -1;
    jp_ws(j);
    if (j->p < j->e && *j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        long long x = 0;
        jp_ws(j);
        if (j->p >= j->e || *j->p < '0' || *j->p > '9')
            return jp_error(j, "expected a non-negative integer");
        while (j->p < j->e && *j->p >= '0' && *j->p <= '9') {
            if (x > (1LL << 50))
                return jp_error(j, "integer too large");
            x = x * 10 + (*j->p++ - '0');
        }
        if (*count == max)
            return jp_error(j, "too many dimensions");
        v[(*count)++] = x;
        jp_ws(j);
        if (j->p < j->e && *j->p == ',') {
            j->p++;
            continue;
        }
        return jp_expect(j, ']');
    }
}

/* Skips any JSON value (depth-limited). */
static int jp_skip(jp *j, int depth)
{
    jp_ws(j);
    if (depth > 32)
        return jp_error(j, "nesting too deep");
    if (j->p >= j->e)
        return jp_error(j, "unexpected end");
    if (*j->p == '"')
        return jp_string(j, NULL, 0);
    if (*j->p == '{' || *j->p == '[') {
        char close = *j->p == '{' ? '}' : ']';
        int obj = close == '}';
        j->p++;
        jp_ws(j);
        if (j->p < j->e && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (obj && (jp_string(j, NULL, 0) != 0 || jp_expect(j, ':') != 0))
                return -1;
            if (jp_skip(j, depth + 1) != 0)
                return -1;
            jp_ws(j);
            if (j->p < j->e && *j->p == ',') {
                j->p++;
                continue;
            }
            return jp_expect(j, close);
        }
    }
    while (j->p < j->e && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') || (*j->p >= 'a' && *j->p <= 'z')))
        j->p++;
    return 0;
}

/* Parses the object of one tensor: dtype, shape, data_offsets. */
static int jp_tensor(jp *j, st_entry *t)
{
    if (jp_expect(j, '{') != 0)
        return -1;
    jp_ws(j);
    if (j->p < j->e && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        char key[32];
        int n;
        if (jp_string(j, key, sizeof key) != 0 || jp_expect(j, ':') != 0)
            return -1;
        if (strcmp(key, "dtype") == 0) {
            if (jp_string(j, t->dtype, sizeof t->dtype) != 0)
                return -1;
            t->have_dtype = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (jp_int_array(j, t->shape, ST_MAX_RANK, &t->rank) != 0)
                return -1;
            t->have_shape = 1;
        } else if (strcmp(key, "data_offsets") == 0) {
            if (jp_int_array(j, t->off, 2, &n) != 0)
                return -1;
            if (n != 2)
                return jp_error(j, "data_offsets needs two integers");
            t->have_off = 1;
        } else if (jp_skip(j, 1) != 0) {
            return -1;
        }
        jp_ws(j);
        if (j->p < j->e && *j->p == ',') {
            j->p++;
            continue;
        }
        return jp_expect(j, '}');
    }
}

/* What the reader keeps of the metadata. */
typedef struct st_meta {
    char model[128];                           /* "model": the model's name */
    char mean[64], std[64];                    /* "series_mean", "series_std"; "" when absent */
    char column[128], window[16], horizon[16]; /* "series_column", "_window", "_horizon"; "" when absent */
} st_meta;

/* Parses the metadata object into meta. */
static int jp_metadata(jp *j, st_meta *meta)
{
    const struct {
        const char *key;
        char *dst;
        size_t cap;
    } fields[] = {
        {"model", meta->model, sizeof meta->model},           {"series_mean", meta->mean, sizeof meta->mean},
        {"series_std", meta->std, sizeof meta->std},          {"series_column", meta->column, sizeof meta->column},
        {"series_window", meta->window, sizeof meta->window}, {"series_horizon", meta->horizon, sizeof meta->horizon},
    };
    if (jp_expect(j, '{') != 0)
        return -1;
    jp_ws(j);
    if (j->p < j->e && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        char key[32], *dst = NULL;
        size_t cap = 0, k;
        if (jp_string(j, key, sizeof key) != 0 || jp_expect(j, ':') != 0)
            return -1;
        jp_ws(j);
        for (k = 0; k < sizeof fields / sizeof fields[0]; k++)
            if (strcmp(key, fields[k].key) == 0 && j->p < j->e && *j->p == '"') {
                dst = fields[k].dst;
                cap = fields[k].cap;
            }
        if (dst) {
            if (jp_string(j, dst, cap) != 0)
                return -1;
        } else if (jp_skip(j, 1) != 0) {
            return -1;
        }
        jp_ws(j);
        if (j->p < j->e && *j->p == ',') {
            j->p++;
            continue;
        }
        return jp_expect(j, '}');
    }
}

/* Parses the whole header into a malloc'd entry array (*count entries) and the metadata. */
static st_entry *jp_header(jp *j, int *count, st_meta *meta)
{
    st_entry *v = NULL;
    int n = 0, size = 0;
    *count = 0;
    if (jp_expect(j, '{') != 0)
        return NULL;
    jp_ws(j);
    if (j->p < j->e && *j->p == '}') {
        j->p++;
        return calloc(1, sizeof *v);
    }
    for (;;) {
        char name[ST_NAME];
        if (jp_string(j, name, sizeof name) != 0 || jp_expect(j, ':') != 0)
            goto fail;
        if (strcmp(name, "__metadata__") == 0) {
            if (jp_metadata(j, meta) != 0)
                goto fail;
        } else {
            if (n == size) {
                st_entry *nv;
                size = size ? 2 * size : 16;
                nv = realloc(v, (size_t)size * sizeof *v);
                if (!nv) {
                    jp_error(j, "out of memory");
                    goto fail;
                }
                v = nv;
            }
            memset(&v[n], 0, sizeof v[n]);
            strcpy(v[n].name, name);
            if (jp_tensor(j, &v[n]) != 0)
                goto fail;
            n++;
        }
        jp_ws(j);
        if (j->p < j->e && *j->p == ',') {
            j->p++;
            continue;
        }
        if (jp_expect(j, '}') != 0)
            goto fail;
        break;
    }
    *count = n;
    return v ? v : calloc(1, sizeof *v);
fail:
    free(v);
    return NULL;
}

/* ---- reader --------------------------------------------------------------------- */

/* Checks one model tensor against its header entry; data_size is the byte count after the header. */
static int check_entry(const cgrt_model *m, const cgrt_param *p, const st_entry *t, const char *path,
                       long long data_size, cgrt_error *err)
{
    long long want[CGRT_MAX_RANK];
    char fs[128], ms[128];
    int i, same;
    if (!t->have_dtype || !t->have_shape || !t->have_off)
        return rt_fail(err, "%s: tensor \"%s\" lacks dtype, shape or data_offsets", path, p->name);
    if (strcmp(t->dtype, "F32") != 0)
        return rt_fail(err, "%s: tensor \"%s\" has dtype %s, expected F32", path, p->name, t->dtype);
    for (i = 0; i < p->rank; i++)
        want[i] = p->dims[i];
    same = t->rank == p->rank;
    for (i = 0; same && i < p->rank; i++)
        same = t->shape[i] == want[i];
    if (!same) {
        format_shape(fs, sizeof fs, t->rank, t->shape);
        format_shape(ms, sizeof ms, p->rank, want);
        return rt_fail(err, "%s: tensor \"%s\" has shape %s in file but model %s expects %s", path, p->name, fs,
                       m->name, ms);
    }
    if (t->off[0] > t->off[1] || t->off[1] > data_size)
        return rt_fail(err,
                       "%s: truncated or corrupt: tensor \"%s\" data offsets [%lld,%lld] are out of range "
                       "(the file holds %lld data bytes)",
                       path, p->name, t->off[0], t->off[1], data_size);
    if ((unsigned long long)(t->off[1] - t->off[0]) != 4 * (unsigned long long)p->count)
        return rt_fail(err, "%s: tensor \"%s\" data offsets [%lld,%lld] do not hold its %zu floats", path, p->name,
                       t->off[0], t->off[1], p->count);
    return 0;
}

/* Finds the entry named name, or NULL. */
static const st_entry *find_entry(const st_entry *v, int n, const char *name)
{
    int i;
    for (i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* Reads count little-endian floats at byte offset off of f into dst. */
static int read_floats(FILE *f, long off, float *dst, size_t count)
{
    unsigned char buf[4096];
    if (fseek(f, off, SEEK_SET) != 0)
        return -1;
    while (count > 0) {
        size_t chunk = count < sizeof buf / 4 ? count : sizeof buf / 4, j;
        if (fread(buf, 4, chunk, f) != chunk)
            return -1;
        for (j = 0; j < chunk; j++) {
            uint32_t w = (uint32_t)buf[4 * j] | (uint32_t)buf[4 * j + 1] << 8 | (uint32_t)buf[4 * j + 2] << 16 |
                         (uint32_t)buf[4 * j + 3] << 24;
            memcpy(&dst[j], &w, 4);
        }
        dst += chunk;
        count -= chunk;
    }
    return 0;
}

/* Reads the header length and header text of an open file; returns the text or NULL. */
static char *read_header(FILE *f, const char *path, long size, uint64_t *hlen, cgrt_error *err)
{
    unsigned char len[8];
    char *h;
    int k;
    if (size < 8 || fread(len, 1, 8, f) != 8) {
        rt_fail(err, "%s: not a safetensors file (only %ld bytes)", path, size);
        return NULL;
    }
    *hlen = 0;
    for (k = 7; k >= 0; k--)
        *hlen = (*hlen << 8) | len[k];
    if (*hlen > ST_MAX_HEADER || *hlen < 2) {
        rt_fail(err, "%s: not a safetensors file (header length %llu is absurd)", path, (unsigned long long)*hlen);
        return NULL;
    }
    if (*hlen > (uint64_t)(size - 8)) {
        rt_fail(err, "%s: truncated: the header needs %llu bytes, the file holds %ld after the length", path,
                (unsigned long long)*hlen, size - 8);
        return NULL;
    }
    h = malloc((size_t)*hlen + 1);
    if (!h || fread(h, 1, (size_t)*hlen, f) != (size_t)*hlen) {
        free(h);
        rt_fail(err, "%s: cannot read the header", path);
        return NULL;
    }
    h[*hlen] = '\0';
    if (h[0] != '{') {
        free(h);
        rt_fail(err, "%s: not a safetensors file (the header is not a JSON object)", path);
        return NULL;
    }
    return h;
}

/* Appends name to the comma-separated list buf (", ..." once it is full). */
static void list_add(char *buf, size_t size, const char *name)
{
    size_t len = strlen(buf);
    if (len + strlen(name) + 8 >= size) {
        if (len + 6 < size && (len < 5 || strcmp(buf + len - 5, ", ...") != 0))
            strcat(buf, ", ...");
        return;
    }
    if (len)
        strcat(buf, ", ");
    strcat(buf, name);
}

/* Checks every model tensor against the header, then reads them all into
 * params. by_name: only the tensors the file has are read (rep says which). */
static int load_tensors(const cgrt_model *m, float *params, FILE *f, const char *path, const st_entry *v, int n,
                        const char *model, long data_start, long long data_size, cgrt_load_report *rep, cgrt_error *err)
{
    int i;
    for (i = 0; i < m->num_params; i++) {
        const cgrt_param *p = &m->params[i];
        const st_entry *t = find_entry(v, n, p->name);
        if (!t && rep) {
            rep->kept++;
            list_add(rep->kept_names, sizeof rep->kept_names, p->name);
            continue;
        }
        if (!t) {
            if (model[0] && strcmp(model, m->name) != 0)
                return rt_fail(err, "%s: tensor \"%s\" is missing (the checkpoint seems to be from model %s, not %s)",
                               path, p->name, model, m->name);
            return rt_fail(err, "%s: tensor \"%s\" of model %s is missing", path, p->name, m->name);
        }
        if (check_entry(m, p, t, path, data_size, err) != 0)
            return -1;
    }
    for (i = 0; i < m->num_params; i++) {
        const cgrt_param *p = &m->params[i];
        const st_entry *t = find_entry(v, n, p->name);
        if (!t)
            continue;
        if (read_floats(f, data_start + (long)t->off[0], params + p->offset, p->count) != 0)
            return rt_fail(err, "%s: cannot read tensor \"%s\"", path, p->name);
        if (rep) {
            rep->loaded++;
            list_add(rep->loaded_names, sizeof rep->loaded_names, p->name);
        }
    }
    for (i = 0; rep && i < n; i++) { /* the file's tensors this model has no use for */
        int j, used = 0;
        for (j = 0; j < m->num_params && !used; j++)
            used = strcmp(m->params[j].name, v[i].name) == 0;
        if (!used) {
            rep->unused++;
            list_add(rep->unused_names, sizeof rep->unused_names, v[i].name);
        }
    }
    return 0;
}

/* Opens path and parses its header: *f (open, for the data), the entries
 * (*v, *n), the metadata, the data's start and size. -1 with err set. */
static int open_checkpoint(const char *path, FILE **fp, st_entry **v, int *n, st_meta *meta, long *data_start,
                           long long *data_size, cgrt_error *err)
{
    long long bytes;
    int fd = rt_open_regular(path, "a checkpoint file", &bytes, err); /* a FIFO would block fopen */
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    char *h;
    uint64_t hlen;
    long size;
    jp j;
    memset(meta, 0, sizeof *meta);
    if (fd < 0)
        return -1;
    if (!f) {
        close(fd);
        return rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return rt_fail(err, "%s: cannot read: not a regular file", path);
    }
    h = read_header(f, path, size, &hlen, err);
    if (!h) {
        fclose(f);
        return -1;
    }
    j.s = j.p = h;
    j.e = h + hlen;
    j.what = NULL;
    *v = jp_header(&j, n, meta);
    if (!*v) {
        rt_fail(err, "%s: not a safetensors file (bad JSON header: %s at byte %ld)", path,
                j.what ? j.what : "out of memory", (long)(j.p - j.s));
        free(h);
        fclose(f);
        return -1;
    }
    free(h);
    *fp = f;
    *data_start = 8 + (long)hlen;
    *data_size = (long long)size - 8 - (long long)hlen;
    return 0;
}

/* Reads a checkpoint: every tensor (rep NULL) or those with matching names. */
static int load_checkpoint(const cgrt_model *m, float *params, const char *path, cgrt_load_report *rep, cgrt_error *err)
{
    FILE *f;
    st_entry *v;
    st_meta meta;
    long data_start;
    long long data_size;
    int n, rc;
    if (open_checkpoint(path, &f, &v, &n, &meta, &data_start, &data_size, err) != 0)
        return -1;
    rc = load_tensors(m, params, f, path, v, n, meta.model, data_start, data_size, rep, err);
    free(v);
    fclose(f);
    return rc;
}

/* Reads a safetensors checkpoint into params after checking every tensor. */
int cgrt_load_checkpoint(const cgrt_model *m, float *params, const char *path, cgrt_error *err)
{
    return load_checkpoint(m, params, path, NULL, err);
}

/* Reads the tensors of a checkpoint whose names the model has (transfer learning). */
int cgrt_load_checkpoint_by_name(const cgrt_model *m, float *params, const char *path, cgrt_load_report *rep,
                                 cgrt_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (load_checkpoint(m, params, path, rep, err) != 0)
        return -1;
    if (!rep->loaded)
        return rt_fail(err, "%s: no tensor of the file has a name of model %s (the file holds %s)", path, m->name,
                       rep->unused_names[0] ? rep->unused_names : "none");
    return 0;
}

/* Parses the metadata string text (key name) as a finite number into *x. */
static int meta_number(const char *path, const char *name, const char *text, double *x, cgrt_error *err)
{
    char *end;
    if (!text[0])
        return rt_fail(err,
                       "%s: holds no time-series statistics (no \"%s\" in __metadata__); it was not saved by "
                       "fit of a time-series model",
                       path, name);
    *x = strtod(text, &end);
    if (end == text || *end || !isfinite(*x))
        return rt_fail(err, "%s: \"%s\" in __metadata__ is \"%s\", not a number", path, name, text);
    return 0;
}

/* Reads only the __metadata__ of the checkpoint at path. */
static int read_metadata(const char *path, st_meta *meta, cgrt_error *err)
{
    FILE *f;
    st_entry *v;
    long data_start;
    long long data_size;
    int n;
    if (open_checkpoint(path, &f, &v, &n, meta, &data_start, &data_size, err) != 0)
        return -1;
    free(v);
    fclose(f);
    return 0;
}

/* Checks that the series a checkpoint was trained on (its metadata's column,
 * window and horizon) is the one model m reads. */
int cgrt_check_series_checkpoint(const cgrt_model *m, const char *path, cgrt_error *err)
{
    const cgrt_series_spec *sp = &m->data.series;
    char column[128], window[16], horizon[16];
    st_meta meta;
    if (read_metadata(path, &meta, err) != 0)
        return -1;
    if (sp->column)
        snprintf(column, sizeof column, "%s", sp->column);
    else
        snprintf(column, sizeof column, "%d", sp->column_index);
    snprintf(window, sizeof window, "%d", sp->window);
    snprintf(horizon, sizeof horizon, "%d", sp->horizon > 0 ? sp->horizon : 1);
    if ((meta.column[0] && strcmp(meta.column, column) != 0) || (meta.window[0] && strcmp(meta.window, window) != 0) ||
        (meta.horizon[0] && strcmp(meta.horizon, horizon) != 0))
        return rt_fail(err,
                       "%s: trained on column %s, window %s, horizon %s; model %s reads column %s, window %s, "
                       "horizon %s",
                       path, meta.column, meta.window, meta.horizon, m->name, column, window, horizon);
    return 0;
}

/* Reads the time series' statistics from the checkpoint's metadata. */
int cgrt_load_series_stats(const char *path, cgrt_series_stats *stats, cgrt_error *err)
{
    st_meta meta;
    if (read_metadata(path, &meta, err) != 0)
        return -1;
    if (meta_number(path, "series_mean", meta.mean, &stats->mean, err) != 0 ||
        meta_number(path, "series_std", meta.std, &stats->std, err) != 0)
        return -1;
    if (!(stats->std > 0.0))
        return rt_fail(err, "%s: \"series_std\" in __metadata__ is %s; a standard deviation must be positive", path,
                       meta.std);
    return 0;
}
