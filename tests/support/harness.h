/* harness.h: emit a cgrad graph or model into a fresh temporary folder,
 * compile the emitted C (with a tiny generic driver) into a shared object
 * with a real compiler run, and dlopen it.
 *
 * The driver (written next to NAME.c) includes NAME.h and exports accessors
 * with fixed names, so a test can drive any emitted model through one struct:
 *
 *     hx_module mod;
 *     cr_assert(hx_build_graph(&mod, g, 2, CG_PORTABLE, "cc") == 0, "%s", mod.err);
 *     float loss = mod.gradients(mod.state, n, (const float *[]){x, y});
 *     ... mod.grads + hx_param_offset(&mod, "w") ...
 *     hx_close(&mod);
 *
 * Shared by the op tests (tests/ops/); keep it small.
 */
#ifndef CGRAD_TEST_HARNESS_H
#define CGRAD_TEST_HARNESS_H

#include <cgrad.h>

#include <stddef.h>
#include <stdint.h>

typedef struct hx_module {
    char dir[256];  /* the temporary folder with NAME.h, NAME.c, driver.c, NAME.so */
    char name[128]; /* the graph's name */
    char err[8192]; /* why hx_build_* failed: the builder error or the compiler's output */
    void *so;       /* dlopen handle */
    void *state;    /* a zeroed NAME_state, initialised with seed 1 */
    size_t state_size;
    float *params, *grads, *opt; /* into state; opt is NULL without optimizer state */
    long param_floats, trainable_floats, opt_floats;
    int ninputs; /* tape graphs: placeholders, in creation order */
    float *lr;   /* the state's learning rate */
    /* entry points, NULL when the emitted code has none */
    void (*init)(void *s, uint64_t seed);
    float (*loss)(void *s, int n, const float *const *inputs);      /* tape */
    float (*gradients)(void *s, int n, const float *const *inputs); /* tape: fills grads */
    void (*train_step)(void *s, int n, const float *x, const float *y, float *loss, float *metric);
    void (*eval_step)(void *s, int n, const float *x, const float *y, float *loss, float *metric);
    void (*predict)(void *s, int n, const float *x, float *out);
    /* the parameter table (NAME_params_info) */
    int nparams;
    const char *(*param_name)(int i);
    long (*param_offset)(int i);
    long (*param_count)(int i);
} hx_module;

/* Extra compiler flags appended after the strict ones (default ""): lets a
 * test work around a known warning in the emitted code while another test
 * pins that warning down. */
extern const char *hx_extra_cflags;

/* The compiler to use: $CGRAD_TEST_CC, else "cc". */
const char *hx_default_cc(void);
/* Makes a fresh temporary folder; returns 0 and its path in dir[size]. */
int hx_tmpdir(char *dir, size_t size);
/* Removes a folder made by hx_tmpdir and the files in it (kept when $CGRAD_KEEP_TMP is set). */
void hx_rmdir(const char *dir);
/* Reads a whole file into a malloc'd NUL-terminated buffer (NULL when it cannot). */
char *hx_read_file(const char *path, size_t *len);

/* Emits the tape graph g (ninputs placeholders), compiles and loads it.
 * Returns 0, or -1 with the reason in mod->err. Does not free g. */
int hx_build_graph(hx_module *mod, cg_graph *g, int ninputs, cg_flavour flavour, const char *cc);
/* The same for a compiled Sequential model (train_step, eval_step, predict). */
int hx_build_model(hx_module *mod, cg_model *m, cg_flavour flavour, const char *cc);
/* Unloads the module and removes its folder. */
void hx_close(hx_module *mod);

/* Runs /usr/bin/python3 script over the folders dirs[0..n) in one process
 * (importing torch takes seconds); returns its exit status (77: torch is
 * not installed; -1: it could not run), its output in log[size]. */
int hx_run_python(const char *script, const char *const *dirs, int n, char *log, size_t size);

/* Offset (in floats) of the parameter called name, -1 when there is none;
 * *count gets its size when count is not NULL. */
long hx_param(const hx_module *mod, const char *name, long *count);

#endif
