/* fuzz.c: the private folder, file writing and checks shared by the fuzz targets. */
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FUZZ_MAX_FILES 8

/* zlib's gzbuffer, replaced in the fuzz targets by one that keeps zlib's
 * default buffers (8 KiB). The loaders ask for 256 KiB, which ASan maps and
 * unmaps on every open: most of a run's time, for the same bytes read (and
 * small buffers put more inputs across a buffer's edge). */
int gzbuffer(gzFile file, unsigned size)
{
    (void)file;
    (void)size;
    return 0;
}

static char folder[256];
static char paths[FUZZ_MAX_FILES][320];
static int num_paths;

/* atexit hook: removes the files handed out and the folder. */
static void remove_folder(void)
{
    int i;
    for (i = 0; i < num_paths; i++)
        unlink(paths[i]);
    rmdir(folder);
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (folder[0])
        remove_folder();
    abort();
}

/* Creates the private folder under /dev/shm, TMPDIR or /tmp, the first that works. */
static void make_folder(void)
{
    const char *roots[3];
    int i;
    roots[0] = "/dev/shm";
    roots[1] = getenv("TMPDIR");
    roots[2] = "/tmp";
    for (i = 0; i < 3; i++) {
        if (!roots[i] || !roots[i][0])
            continue;
        snprintf(folder, sizeof folder, "%s/cgrad_fuzz_XXXXXX", roots[i]);
        if (mkdtemp(folder)) {
            atexit(remove_folder);
            return;
        }
    }
    folder[0] = '\0';
    fuzz_fail("cannot create a private folder");
}

const char *fuzz_path(const char *name)
{
    int i;
    if (!folder[0])
        make_folder();
    for (i = 0; i < num_paths; i++)
        if (strcmp(strrchr(paths[i], '/') + 1, name) == 0)
            return paths[i];
    if (num_paths == FUZZ_MAX_FILES) {
        fuzz_fail("more than %d file names", FUZZ_MAX_FILES);
    }
    snprintf(paths[num_paths], sizeof paths[0], "%s/%s", folder, name);
    return paths[num_paths++];
}

void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fuzz_fail("cannot write %s", path);
    }
}

size_t fuzz_cut(const uint8_t *data, size_t size, const char *magic, size_t len)
{
    size_t i;
    for (i = size >= len ? size - len : 0; i > 0; i--)
        if (memcmp(data + i, magic, len) == 0)
            return i;
    return size;
}

void fuzz_touch(const float *v, size_t n)
{
    volatile float sink = 0.0f;
    size_t i;
    for (i = 0; i < n; i++)
        sink += v[i];
    (void)sink;
}

/* The checks of fuzz_check_error; names 1: the message must name path or path2. */
static void check_error(int rc, const cgrt_error *err, const char *path, const char *path2, int names)
{
    if (rc == 0)
        return;
    if (rc != -1 || !memchr(err->msg, '\0', sizeof err->msg) || !err->msg[0]) {
        fuzz_fail("a load returned %d without a message", rc);
    }
    char dir[512]; /* a folder of IDX or NPY files is named by the folder */
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    if (names && !strstr(err->msg, path) && !(path2 && strstr(err->msg, path2)) && !strstr(err->msg, dir)) {
        fuzz_fail("the message does not name the file %s: %s", path, err->msg);
    }
}

void fuzz_check_error(int rc, const cgrt_error *err, const char *path, const char *path2)
{
    check_error(rc, err, path, path2, 1);
}

void fuzz_check_load_data(int rc, const cgrt_error *err, const char *path, const char *path2)
{
    check_error(rc, err, path, path2, 1);
}

void fuzz_check(int rc, const cgrt_dataset *d, const cgrt_error *err, const char *path, const char *path2)
{
    fuzz_check_error(rc, err, path, path2);
    if (rc != 0)
        return;
    if (d->n < 1 || d->features < 1 || d->label_width < 0 || !d->x || (d->label_width > 0 && !d->y)) {
        fuzz_fail("a load succeeded with n %d, features %d, label_width %d", d->n, d->features, d->label_width);
    }
    fuzz_touch(d->x, (size_t)d->n * (size_t)d->features);
    if (d->label_width > 0)
        fuzz_touch(d->y, (size_t)d->n * (size_t)d->label_width);
}

void fuzz_model(cgrt_model *m, int features, int label_kind, int label_width, int num_classes, int lo, int hi)
{
    memset(m, 0, sizeof *m);
    m->name = "fuzz";
    m->max_batch = 8;
    m->in_rank = 1;
    m->in_dims[0] = features;
    m->in_features = features;
    m->out_features = label_width;
    m->label_kind = label_kind;
    m->label_width = label_width;
    m->num_classes = num_classes;
    m->data.class_range[0] = lo;
    m->data.class_range[1] = hi;
    m->data.test_split = 0.25f;
}

void fuzz_check_split(cgrt_dataset *train, cgrt_dataset *test, const char *path)
{
    cgrt_error none;
    none.msg[0] = '\0';
    fuzz_check(0, train, &none, path, NULL);
    if (test->n > 0)
        fuzz_check(0, test, &none, path, NULL);
    cgrt_dataset_free(train);
    cgrt_dataset_free(test);
}
