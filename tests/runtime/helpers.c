/* helpers.c: temporary folders and test files for the runtime tests. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

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
        char sub[1024];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_tree(sub);
    }
    closedir(d);
    remove(path);
}

/* atexit hook: removes the test's temporary folder. */
static void rm_tmpdir(void)
{
    if (tmpdir_buf[0])
        rm_tree(tmpdir_buf);
}

/* Creates a fresh temporary folder under /tmp (removed at exit) and returns its path. */
const char *t_tmpdir(void)
{
    strcpy(tmpdir_buf, "/tmp/cgrt_test_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir_buf), "mkdtemp failed");
    atexit(rm_tmpdir);
    return tmpdir_buf;
}

/* Returns "dir/name" in one of 256 rotating static buffers (a test makes far fewer). */
const char *t_path(const char *dir, const char *name)
{
    static char bufs[256][512];
    static int k;
    char *b = bufs[k++ % 256];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* Writes len bytes to path. */
void t_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Writes len bytes gzip-compressed to path. */
void t_write_gz(const char *path, const void *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(gzwrite(f, data, (unsigned)len), (int)len);
    gzclose(f);
}

/* Reads a whole file into a NUL-terminated buffer. */
char *t_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Builds an IDX file of unsigned bytes in memory. */
unsigned char *t_idx(int rank, const int *dims, const unsigned char *data, size_t *len)
{
    size_t count = 1, i;
    unsigned char *b;
    int k;
    for (k = 0; k < rank; k++)
        count *= (size_t)dims[k];
    *len = 4 + 4 * (size_t)rank + count;
    b = malloc(*len);
    b[0] = 0;
    b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)rank;
    for (k = 0; k < rank; k++) {
        b[4 + 4 * k] = (unsigned char)(dims[k] >> 24);
        b[5 + 4 * k] = (unsigned char)(dims[k] >> 16);
        b[6 + 4 * k] = (unsigned char)(dims[k] >> 8);
        b[7 + 4 * k] = (unsigned char)dims[k];
    }
    for (i = 0; i < count; i++)
        b[4 + 4 * (size_t)rank + i] = data[i];
    return b;
}

/* Writes an NPY version 1 file. */
void t_write_npy(const char *path, const char *descr, int fortran, const char *shape, const void *data, size_t nbytes)
{
    char head[256];
    int n = snprintf(head, sizeof head, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
                     fortran ? "True" : "False", shape);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64, i;
    FILE *f = fopen(path, "wb");
    unsigned short hl = (unsigned short)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    cr_assert_not_null(f);
    pre[8] = (unsigned char)(hl & 0xff);
    pre[9] = (unsigned char)(hl >> 8);
    fwrite(pre, 1, 10, f);
    fwrite(head, 1, (size_t)n, f);
    for (i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, nbytes, f);
    fclose(f);
}

/* Returns the last non-empty line of text. */
const char *t_last_line(const char *text)
{
    static char buf[512];
    size_t n = strlen(text);
    const char *e, *s;
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    e = text + n;
    s = e;
    while (s > text && s[-1] != '\n' && s[-1] != '\r')
        s--;
    snprintf(buf, sizeof buf, "%.*s", (int)(e - s), s);
    return buf;
}

/* Counts newline-terminated lines. */
int t_count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* Counts entries of dir whose name contains needle. */
int t_count_entries(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, needle))
            n++;
    closedir(d);
    return n;
}

/* Writes 3 Gaussian-ish blobs in 4 dimensions as NPY files (x <f4, y <i8). */
void t_write_blobs_npy(const char *dir, int n_train, int n_test, unsigned seed)
{
    int n = n_train + n_test, i, j;
    float *x = malloc((size_t)n * 4 * sizeof(float));
    long long *y = malloc((size_t)n * sizeof(long long));
    cgrt_rng r;
    char shape[64];
    r.s = seed;
    for (i = 0; i < n; i++) {
        int c = (int)(cgrt_rng_next(&r) % 3);
        y[i] = c;
        for (j = 0; j < 4; j++) {
            double u = (double)(cgrt_rng_next(&r) >> 11) / 9007199254740992.0 - 0.5;
            x[i * 4 + j] = (float)((j == c ? 2.0 : 0.0) + (j == 3 ? -c : 0) + u);
        }
    }
    snprintf(shape, sizeof shape, "(%d, 4)", n_train);
    t_write_npy(t_path(dir, "x_train.npy"), "<f4", 0, shape, x, (size_t)n_train * 16);
    snprintf(shape, sizeof shape, "(%d,)", n_train);
    t_write_npy(t_path(dir, "y_train.npy"), "<i8", 0, shape, y, (size_t)n_train * 8);
    if (n_test > 0) {
        snprintf(shape, sizeof shape, "(%d, 4)", n_test);
        t_write_npy(t_path(dir, "x_test.npy"), "<f4", 0, shape, x + n_train * 4, (size_t)n_test * 16);
        snprintf(shape, sizeof shape, "(%d,)", n_test);
        t_write_npy(t_path(dir, "y_test.npy"), "<i8", 0, shape, y + n_train, (size_t)n_test * 8);
    }
    free(x);
    free(y);
}

/* Writes a seasonal series of n values (trend, period 6, a little ripple) as
 * CSV with the header "date,value" and dates d0, d1, ...; v gets the values as
 * written (4 decimals), when not NULL. */
void t_write_series(const char *path, int n, double *v)
{
    FILE *f = fopen(path, "w");
    int i;
    cr_assert_not_null(f, "cannot write %s", path);
    fprintf(f, "date,value\n");
    for (i = 0; i < n; i++) {
        double x = 10.0 + 0.5 * i + 3.0 * sin(2.0 * 3.14159265358979 * i / 6.0) + 0.3 * (i % 5);
        char cell[32];
        snprintf(cell, sizeof cell, "%.4f", x);
        fprintf(f, "d%d,%s\n", i, cell);
        if (v)
            v[i] = atof(cell);
    }
    fclose(f);
}

/* Runs cgrt_main on the NULL-terminated argument list with stdout and stderr
 * sent to files in dir; returns the status, *out and *errs get their text. */
int t_run_cli(const cgrt_model *m, const char *dir, char **out, char **errs, const char *const *args)
{
    char *argv[64];
    int argc = 0, rc;
    argv[argc++] = (char *)"tiny_bin";
    while (*args)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    cr_assert_not_null(freopen(t_path(dir, "stdout.txt"), "w", stdout));
    cr_assert_not_null(freopen(t_path(dir, "stderr.txt"), "w", stderr));
    rc = cgrt_main(argc, argv, m);
    fflush(stdout);
    fflush(stderr);
    *out = t_read(t_path(dir, "stdout.txt"), NULL);
    *errs = t_read(t_path(dir, "stderr.txt"), NULL);
    return rc;
}
