/* e2e.h: helpers of the end-to-end suites: temporary folders, files, and
 * running real processes (the cgrad tool, generated training binaries, the
 * C compilers) with their output captured into files.
 *
 * Paths of the build products come from meson as string defines:
 * CGRAD_TOOL, SOURCE_DIR, DIGITS_MLP, FASHION_MLP, LINEAR_REGRESSION,
 * DIGITS_MLP_GEN, FASHION_MLP_GEN, LINREG_C, FASHION_DATA, ELEC_MLP, ELEC_MLP_GEN. */
#ifndef E2E_H
#define E2E_H

#include <stdbool.h>
#include <stddef.h>

/* E2E_SANITIZED: this is a sanitizer build. `cgrad build` links model programs
 * against libcgrad, which such a build instruments while the programs it links
 * are not, so the tests that build a model with the tool skip there
 * (scripts/test.sh runs the suites under the sanitizers for everything else). */
#if defined(__SANITIZE_ADDRESS__)
#define E2E_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define E2E_SANITIZED 1
#endif
#endif

/* The outcome of one process run. */
typedef struct e2e_run {
    int status;     /* exit status; 128 + signal when killed by a signal; 127 when exec failed */
    int signal;     /* the signal that ended it, 0 when it exited */
    bool timed_out; /* killed after the time limit */
    char *out;      /* everything it wrote to stdout (NUL-terminated; never NULL) */
    char *err;      /* everything it wrote to stderr */
} e2e_run;

/* Runs argv (argv[0] is a path or a name looked up in PATH) in folder cwd
 * (NULL: the current folder), stdin from /dev/null, stdout and stderr into
 * files under tmp; kills it after timeout_s seconds. */
e2e_run e2e_exec(const char *tmp, const char *cwd, int timeout_s, const char *const *argv);
#define E2E_RUN(tmp, cwd, ...) e2e_exec(tmp, cwd, 240, (const char *const[]){__VA_ARGS__, NULL})
void e2e_run_free(e2e_run *r);

/* A fresh folder under /tmp (the same one for every call within a test), removed by e2e_cleanup (every suite's .fini) or at exit;
 * E2E_KEEP=1 in the environment keeps it for a post-mortem. */
const char *e2e_tmpdir(void);
void e2e_cleanup(void);
/* "dir/name" in one of many rotating static buffers. */
const char *e2e_path(const char *dir, const char *name);
/* Makes folder path (its parent must exist). */
void e2e_mkdir(const char *path);

/* Whole file into a NUL-terminated malloc'd buffer (NULL when unreadable); *len gets the size. */
char *e2e_read(const char *path, size_t *len);
void e2e_write(const char *path, const void *data, size_t len);
void e2e_write_str(const char *path, const char *text);
/* Copies at most limit bytes (all when limit is (size_t)-1) of src to dst. */
void e2e_copy(const char *src, const char *dst, size_t limit);
bool e2e_exists(const char *path);

/* Number of lines of s (a last line without '\n' counts). */
int e2e_count_lines(const char *s);
/* The last non-empty line of s, without its newline, in a static buffer. */
const char *e2e_last_line(const char *s);
/* Line k (0-based) of s without its newline, in a static buffer; "" past the end. */
const char *e2e_line(const char *s, int k);

/* Parses "PREFIXloss=<x> accuracy=<y>" (the whole line); true on success. */
bool e2e_parse_figures(const char *line, const char *prefix, double *loss, double *accuracy);

/* Runs `bin fit --verbose 0` in tmp, asserts it succeeded and that its last
 * line is "test: loss=<x> accuracy=<y>", and returns the accuracy. */
double e2e_fit_accuracy(const char *tmp, const char *bin);

/* Writes a gzip file holding data (compressed, finished stream). */
void e2e_write_gz(const char *path, const void *data, size_t len);

/* A folder tmp/fashion_small with the first ntrain training and ntest test
 * images of Fashion-MNIST (FASHION_DATA), gzip'd IDX files whose headers
 * count what they hold: full epochs are slow on a loaded machine. */
const char *e2e_fashion_slice(const char *tmp, int ntrain, int ntest);

/* Calls each(bin, name, arg) for every example's training binary under
 * examples_dir (each folder's NAME beside its NAME_main.c; asserted to be
 * executable) and returns how many there were. */
int e2e_each_example_binary(const char *examples_dir, void (*each)(const char *bin, const char *name, void *arg),
                            void *arg);

/* Decodes an 8-bit RGB or RGBA PNG without interlacing (what Chromium's
 * --screenshot writes) into malloc'd RGB triples, *w by *h; NULL when it is not one. */
unsigned char *e2e_png_rgb(const unsigned char *png, size_t len, int *w, int *h);

/* Asserts the run failed cleanly: exited (no signal, no timeout) with
 * `status`, wrote exactly one line to stderr, and that line contains every
 * one of the (NULL-terminated) phrases. */
void e2e_assert_clean_failure(const e2e_run *r, int status, const char *const *phrases);
#define E2E_ASSERT_FAILS(r, status, ...) \
    e2e_assert_clean_failure(&(r), status, (const char *const[]){__VA_ARGS__, NULL})

#endif
