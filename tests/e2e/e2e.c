/* e2e.c: processes, files and temporary folders for the end-to-end suites. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* ---- temporary folders ----------------------------------------------------- */

static char tmpdir_buf[64];

/* Removes path and, for a folder, everything below it. */
static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    if (!d) {
        remove(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char sub[2048];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_tree(sub);
    }
    closedir(d);
    remove(path);
}

void e2e_cleanup(void)
{
    if (tmpdir_buf[0] && !getenv("E2E_KEEP"))
        rm_tree(tmpdir_buf);
    tmpdir_buf[0] = '\0';
}

const char *e2e_tmpdir(void)
{
    if (tmpdir_buf[0]) /* one per test process: Criterion runs each test in its own */
        return tmpdir_buf;
    strcpy(tmpdir_buf, "/tmp/cgrad_e2e_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir_buf), "mkdtemp failed: %s", strerror(errno));
    atexit(e2e_cleanup);
    return tmpdir_buf;
}

const char *e2e_path(const char *dir, const char *name)
{
    static char bufs[64][1024];
    static int k;
    char *b = bufs[k++ % 64];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

void e2e_mkdir(const char *path)
{
    cr_assert(mkdir(path, 0777) == 0 || errno == EEXIST, "cannot make %s: %s", path, strerror(errno));
}

/* ---- files -------------------------------------------------------------------- */

char *e2e_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf;
    if (!f)
        return NULL;
    buf = malloc(cap + 1);
    cr_assert_not_null(buf);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap + 1);
        cr_assert_not_null(buf);
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

void e2e_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len, "cannot write %s", path);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}

void e2e_write_str(const char *path, const char *text)
{
    e2e_write(path, text, strlen(text));
}

void e2e_copy(const char *src, const char *dst, size_t limit)
{
    size_t len;
    char *data = e2e_read(src, &len);
    cr_assert_not_null(data, "cannot read %s", src);
    e2e_write(dst, data, len < limit ? len : limit);
    free(data);
}

bool e2e_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

void e2e_write_gz(const char *path, const void *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(gzwrite(f, data, (unsigned)len), (int)len, "cannot write %s", path);
    cr_assert_eq(gzclose(f), Z_OK, "cannot write %s", path);
}

/* ---- Fashion-MNIST slices -------------------------------------------------------- */

/* Copies the first `count` items of IDX file src (gzip) into dst (gzip), rewriting the header's count. */
static void idx_head(const char *src, const char *dst, int count)
{
    gzFile f = gzopen(src, "rb");
    cr_assert_not_null(f, "cannot open %s", src);
    unsigned char hdr[16];
    cr_assert_eq(gzread(f, hdr, 8), 8, "%s: short header", src);
    int rank = hdr[3], hlen = 4 + 4 * rank;
    cr_assert(rank == 1 || rank == 3, "%s: rank %d", src, rank);
    if (rank == 3)
        cr_assert_eq(gzread(f, hdr + 8, 8), 8);
    long item = 1;
    for (int d = 1; d < rank; d++)
        item *= (long)hdr[4 + 4 * d] << 24 | hdr[5 + 4 * d] << 16 | hdr[6 + 4 * d] << 8 | hdr[7 + 4 * d];
    hdr[4] = (unsigned char)(count >> 24), hdr[5] = (unsigned char)(count >> 16);
    hdr[6] = (unsigned char)(count >> 8), hdr[7] = (unsigned char)count;
    size_t bytes = (size_t)hlen + (size_t)item * (size_t)count;
    unsigned char *buf = malloc(bytes);
    cr_assert_not_null(buf);
    memcpy(buf, hdr, (size_t)hlen);
    cr_assert_eq(gzread(f, buf + hlen, (unsigned)(bytes - (size_t)hlen)), (int)(bytes - (size_t)hlen), "%s: short data",
                 src);
    gzclose(f);
    e2e_write_gz(dst, buf, bytes);
    free(buf);
}

const char *e2e_fashion_slice(const char *tmp, int ntrain, int ntest)
{
    const char *dir = e2e_path(tmp, "fashion_small");
    e2e_mkdir(dir);
    idx_head(FASHION_DATA "/train-images-idx3-ubyte.gz", e2e_path(dir, "train-images-idx3-ubyte.gz"), ntrain);
    idx_head(FASHION_DATA "/train-labels-idx1-ubyte.gz", e2e_path(dir, "train-labels-idx1-ubyte.gz"), ntrain);
    idx_head(FASHION_DATA "/t10k-images-idx3-ubyte.gz", e2e_path(dir, "t10k-images-idx3-ubyte.gz"), ntest);
    idx_head(FASHION_DATA "/t10k-labels-idx1-ubyte.gz", e2e_path(dir, "t10k-labels-idx1-ubyte.gz"), ntest);
    return dir;
}

/* ---- screenshots ------------------------------------------------------------------ */

/* Decodes an 8-bit RGB or RGBA PNG without interlacing (what Chromium
 * writes) into RGB triples; NULL when it is not one. */
unsigned char *e2e_png_rgb(const unsigned char *png, size_t len, int *w, int *h)
{
    if (len < 33 || memcmp(png, "\x89PNG\r\n\x1a\n", 8))
        return NULL;
    size_t at = 8, zlen = 0;
    unsigned char *z = malloc(len), type = 0;
    for (; z && at + 12 <= len;) {
        size_t n = (size_t)png[at] << 24 | (size_t)png[at + 1] << 16 | (size_t)png[at + 2] << 8 | png[at + 3];
        const unsigned char *c = png + at + 8;
        if (at + 12 + n > len)
            break;
        if (!memcmp(png + at + 4, "IHDR", 4)) {
            *w = c[0] << 24 | c[1] << 16 | c[2] << 8 | c[3];
            *h = c[4] << 24 | c[5] << 16 | c[6] << 8 | c[7];
            type = c[8] == 8 && !c[12] ? c[9] : 0;
        } else if (!memcmp(png + at + 4, "IDAT", 4)) {
            memcpy(z + zlen, c, n);
            zlen += n;
        }
        at += 12 + n;
    }
    int bpp = type == 6 ? 4 : type == 2 ? 3 : 0;
    if (!bpp || *w <= 0 || *h <= 0 || *w > 20000 || *h > 20000) {
        free(z);
        return NULL;
    }
    size_t stride = (size_t)*w * (size_t)bpp;
    uLongf raw_len = (uLongf)((stride + 1) * (size_t)*h);
    unsigned char *raw = malloc(raw_len), *rgb = malloc((size_t)*w * (size_t)*h * 3);
    if (!raw || !rgb || uncompress(raw, &raw_len, z, (uLong)zlen) != Z_OK || raw_len != (stride + 1) * (size_t)*h) {
        free(z), free(raw), free(rgb);
        return NULL;
    }
    for (int y = 0; y < *h; y++) { /* undo each row's filter in place */
        unsigned char *row = raw + (size_t)y * (stride + 1) + 1, *up = y ? row - stride - 1 : NULL;
        for (size_t x = 0; x < stride; x++) {
            int a = x >= (size_t)bpp ? row[x - (size_t)bpp] : 0, b = up ? up[x] : 0;
            int c = up && x >= (size_t)bpp ? up[x - (size_t)bpp] : 0, p = a + b - c;
            int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
            int pred[5] = {0, a, b, (a + b) / 2, pa <= pb && pa <= pc ? a : pb <= pc ? b : c};
            row[x] = (unsigned char)(row[x] + (row[-1] <= 4 ? pred[row[-1]] : 0));
        }
        for (int x = 0; x < *w; x++)
            memcpy(rgb + ((size_t)y * (size_t)*w + (size_t)x) * 3, row + (size_t)x * (size_t)bpp, 3);
    }
    free(z), free(raw);
    return rgb;
}

/* ---- text ------------------------------------------------------------------------ */

int e2e_count_lines(const char *s)
{
    int n = 0;
    for (const char *p = s; *p; p++)
        if (*p == '\n' || p[1] == '\0')
            n++;
    return n;
}

const char *e2e_line(const char *s, int k)
{
    static char buf[4096];
    const char *p = s;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    buf[0] = '\0';
    if (p) {
        size_t n = strcspn(p, "\n");
        if (n >= sizeof buf)
            n = sizeof buf - 1;
        memcpy(buf, p, n);
        buf[n] = '\0';
    }
    return buf;
}

const char *e2e_last_line(const char *s)
{
    static char buf[4096];
    size_t end = strlen(s), start;
    while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    if (end - start >= sizeof buf)
        start = end - (sizeof buf - 1);
    memcpy(buf, s + start, end - start);
    buf[end - start] = '\0';
    return buf;
}

/* Parses a decimal number at *p, advancing it; false when there is none. */
static bool parse_num(const char **p, double *v)
{
    char *end;
    *v = strtod(*p, &end);
    if (end == *p)
        return false;
    *p = end;
    return true;
}

bool e2e_parse_figures(const char *line, const char *prefix, double *loss, double *accuracy)
{
    const char *p = line;
    size_t k = strlen(prefix);
    if (strncmp(p, prefix, k) != 0)
        return false;
    p += k;
    if (strncmp(p, "loss=", 5) != 0)
        return false;
    p += 5;
    if (!parse_num(&p, loss))
        return false;
    if (strncmp(p, " accuracy=", 10) != 0)
        return false;
    p += 10;
    if (!parse_num(&p, accuracy))
        return false;
    return *p == '\0';
}

double e2e_fit_accuracy(const char *tmp, const char *bin)
{
    double loss = 0, acc = 0;
    e2e_run r = E2E_RUN(tmp, tmp, bin, "fit", "--verbose", "0");
    cr_assert_eq(r.status, 0, "%s fit exited %d: %s%s", bin, r.status, r.out, r.err);
    cr_assert(e2e_parse_figures(e2e_last_line(r.out), "test: ", &loss, &acc), "%s: bad last line: %s", bin, r.out);
    e2e_run_free(&r);
    return acc;
}

/* ---- processes ------------------------------------------------------------------ */

e2e_run e2e_exec(const char *tmp, const char *cwd, int timeout_s, const char *const *argv)
{
    static int seq;
    char out_path[1024], err_path[1024];
    e2e_run r;
    pid_t pid;
    int ws = 0;
    struct timespec start, now;
    memset(&r, 0, sizeof r);
    snprintf(out_path, sizeof out_path, "%s/.run%d.out", tmp, seq);
    snprintf(err_path, sizeof err_path, "%s/.run%d.err", tmp, seq);
    seq++;
    fflush(NULL);
    pid = fork();
    cr_assert_neq(pid, -1, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(126);
        close(in);
        close(out);
        close(err);
        if (cwd && chdir(cwd) != 0)
            _exit(126);
        setpgid(0, 0); /* its own process group, so a timeout kills the compilers it runs too */
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t w = waitpid(pid, &ws, WNOHANG);
        cr_assert_neq(w, -1, "waitpid failed: %s", strerror(errno));
        if (w == pid)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > timeout_s && !r.timed_out) {
            r.timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
        {
            struct timespec nap = {0, 2000000};
            nanosleep(&nap, NULL);
        }
    }
    if (WIFEXITED(ws)) {
        r.status = WEXITSTATUS(ws);
    } else if (WIFSIGNALED(ws)) {
        r.signal = WTERMSIG(ws);
        r.status = 128 + r.signal;
    }
    r.out = e2e_read(out_path, NULL);
    r.err = e2e_read(err_path, NULL);
    if (!r.out)
        r.out = calloc(1, 1);
    if (!r.err)
        r.err = calloc(1, 1);
    return r;
}

void e2e_run_free(e2e_run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

void e2e_assert_clean_failure(const e2e_run *r, int status, const char *const *phrases)
{
    size_t n = strlen(r->err);
    cr_assert(!r->timed_out, "timed out; stderr: %s", r->err);
    cr_assert_eq(r->signal, 0, "killed by signal %d; stderr: %s", r->signal, r->err);
    cr_assert_eq(r->status, status, "exit status %d, expected %d; stderr: %s", r->status, status, r->err);
    cr_assert(n > 0 && r->err[n - 1] == '\n' && strchr(r->err, '\n') == r->err + n - 1,
              "stderr is not exactly one line: [%s]", r->err);
    for (const char *const *p = phrases; *p; p++)
        cr_assert_not_null(strstr(r->err, *p), "stderr does not contain \"%s\": %s", *p, r->err);
}

int e2e_each_example_binary(const char *examples_dir, void (*each)(const char *bin, const char *name, void *arg),
                            void *arg)
{
    DIR *top = opendir(examples_dir);
    struct dirent *e;
    int binaries = 0;
    cr_assert_not_null(top, "cannot list %s", examples_dir);
    while ((e = readdir(top)) != NULL) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", examples_dir, e->d_name);
        DIR *sub = e->d_name[0] != '.' ? opendir(dir) : NULL;
        struct dirent *f;
        while (sub && (f = readdir(sub)) != NULL) {
            size_t len = strlen(f->d_name);
            if (len <= 7 || strcmp(f->d_name + len - 7, "_main.c"))
                continue;
            char bin[1280], name[256];
            snprintf(name, sizeof name, "%.*s", (int)(len - 7), f->d_name);
            snprintf(bin, sizeof bin, "%s/%s", dir, name);
            cr_assert(access(bin, X_OK) == 0, "%s has no binary %s", f->d_name, bin);
            each(bin, name, arg);
            binaries++;
        }
        if (sub)
            closedir(sub);
    }
    closedir(top);
    return binaries;
}
