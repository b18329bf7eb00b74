/* harness.c: emit, compile (a real compiler run) and dlopen emitted code;
 * see harness.h. */
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What host-flavour code needs besides the strict flags: the OpenBLAS and
 * GEMM-shim headers, the shim library and OpenBLAS (set by meson). */
#ifndef HX_HOST_CFLAGS
#define HX_HOST_CFLAGS ""
#endif
#ifndef HX_HOST_LIBS
#define HX_HOST_LIBS "-lopenblas"
#endif

const char *hx_extra_cflags = "";

const char *hx_default_cc(void)
{
    const char *cc = getenv("CGRAD_TEST_CC");
    return cc && *cc ? cc : "cc";
}

int hx_tmpdir(char *dir, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, size, "%s/cgrad-test-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

void hx_rmdir(const char *dir)
{
    if (!dir[0] || getenv("CGRAD_KEEP_TMP"))
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
    remove(dir);
}

char *hx_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n - 1 == 0) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* printf into mod->err; returns -1. */
static int fail(hx_module *mod, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mod->err, sizeof mod->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* Writes the driver: accessors with fixed names around the emitted NAME.h. */
static int write_driver(hx_module *mod, bool tape)
{
    char path[512], up[128];
    size_t i = 0;
    for (; mod->name[i] && i + 1 < sizeof up; i++)
        up[i] = (char)toupper((unsigned char)mod->name[i]);
    up[i] = '\0';
    snprintf(path, sizeof path, "%s/hx_driver.c", mod->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return fail(mod, "cannot write %s", path);
    const char *p = mod->name;
    /* NAME.c is included, not compiled apart: one compiler run instead of two */
    fprintf(f,
            "/* hx_driver.c: generic accessors for the test harness. */\n#include \"%s.c\"\n\n#include <stddef.h>\n\n",
            p);
    fprintf(f, "size_t hx_state_size(void) { return sizeof(%s_state); }\n", p);
    fprintf(f, "float *hx_params(void *s) { return ((%s_state *)s)->params; }\n", p);
    fprintf(f,
            "float *hx_grads(void *s)\n{\n#if %s_TRAINABLE_FLOATS > 0\n    return ((%s_state *)s)->grads;\n#else\n"
            "    (void)s;\n    return NULL;\n#endif\n}\n",
            up, p);
    fprintf(f, "float *hx_lr(void *s) { return &((%s_state *)s)->lr; }\n", p);
    fprintf(f,
            "float *hx_opt(void *s)\n{\n#if %s_OPT_FLOATS > 0\n    return ((%s_state *)s)->opt;\n#else\n"
            "    (void)s;\n    return NULL;\n#endif\n}\n",
            up, p);
    fprintf(f, "long hx_param_floats(void) { return %s_PARAM_FLOATS; }\n", up);
    fprintf(f, "long hx_trainable_floats(void) { return %s_TRAINABLE_FLOATS; }\n", up);
    fprintf(f, "long hx_opt_floats(void) { return %s_OPT_FLOATS; }\n", up);
    fprintf(f, "void hx_init(void *s, uint64_t seed) { %s_init(s, seed); }\n", p);
    fprintf(f, "int hx_nparams(void) { return %s_NUM_PARAMS; }\n", up);
    fprintf(f, "const char *hx_param_name(int i) { return %s_params_info[i].name; }\n", p);
    fprintf(f, "long hx_param_offset(int i) { return %s_params_info[i].offset; }\n", p);
    fprintf(f, "long hx_param_count(int i) { return %s_params_info[i].count; }\n", p);
    if (tape) {
        static const char *fn[] = {"loss", "gradients"};
        for (int k = 0; k < 2; k++) {
            fprintf(f, "float hx_%s(void *s, int n, const float *const *in)\n{\n    (void)in;\n    return %s_%s(s, n",
                    fn[k], p, fn[k]);
            for (int j = 0; j < mod->ninputs; j++)
                fprintf(f, ", in[%d]", j);
            fprintf(f, ");\n}\n");
        }
    } else {
        fprintf(f,
                "void hx_train_step(void *s, int n, const float *x, const float *y, float *l, float *m)"
                " { %s_train_step(s, n, x, y, l, m); }\n",
                p);
        fprintf(f,
                "void hx_eval_step(void *s, int n, const float *x, const float *y, float *l, float *m)"
                " { %s_eval_step(s, n, x, y, l, m); }\n",
                p);
        fprintf(f, "void hx_predict(void *s, int n, const float *x, float *out) { %s_predict(s, n, x, out); }\n", p);
    }
    return fclose(f) ? fail(mod, "cannot write %s", path) : 0;
}

/* Runs the compiler over the driver (which includes NAME.c) into NAME.so; its output goes to mod->err. */
static int compile(hx_module *mod, cg_flavour flavour, const char *cc)
{
    char cmd[2048];
    bool host = flavour == CG_HOST;
    snprintf(cmd, sizeof cmd,
             "%s -std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -fPIC -shared %s -I'%s' %s "
             "'%s/hx_driver.c' -o '%s/%s.so' %s -lm 2>&1",
             cc, hx_extra_cflags, mod->dir, host ? HX_HOST_CFLAGS : "", mod->dir, mod->dir, mod->name,
             host ? HX_HOST_LIBS : "");
    FILE *p = popen(cmd, "r");
    if (!p)
        return fail(mod, "cannot run: %s", cmd);
    size_t len = (size_t)snprintf(mod->err, sizeof mod->err, "%s\n", cmd);
    for (size_t got; len + 1 < sizeof mod->err && (got = fread(mod->err + len, 1, sizeof mod->err - len - 1, p)) > 0;)
        len += got;
    mod->err[len] = '\0';
    char drain[256];
    while (fread(drain, 1, sizeof drain, p) > 0)
        ;
    int rc = pclose(p);
    if (rc != 0)
        return -1; /* the command and the compiler's output are in err */
    mod->err[0] = '\0';
    return 0;
}

int hx_run_python(const char *script, const char *const *dirs, int n, char *log, size_t size)
{
    char cmd[8192];
    int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s'", script);
    for (int i = 0; i < n && len > 0 && (size_t)len < sizeof cmd; i++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " '%s'", dirs[i]);
    if (len < 0 || (size_t)len + 8 >= sizeof cmd) {
        snprintf(log, size, "the command line is too long (%d folders)", n);
        return -1;
    }
    snprintf(cmd + len, sizeof cmd - (size_t)len, " 2>&1");
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(log, size, "cannot run: %s", cmd);
        return -1;
    }
    size_t got = 0;
    for (size_t k; got + 1 < size && (k = fread(log + got, 1, size - got - 1, p)) > 0;)
        got += k;
    log[got] = '\0';
    char drain[256];
    while (fread(drain, 1, sizeof drain, p) > 0)
        ;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* dlsym into a function pointer without the object-to-function cast ISO C forbids. */
#define LOOKUP(mod, field, sym)                      \
    do {                                             \
        void *addr_ = dlsym((mod)->so, sym);         \
        memcpy(&(mod)->field, &addr_, sizeof addr_); \
    } while (0)

/* Loads NAME.so, fetches the accessors, allocates and initialises the state. */
static int load(hx_module *mod)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.so", mod->dir, mod->name);
    mod->so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!mod->so)
        return fail(mod, "dlopen %s: %s", path, dlerror());
    size_t (*state_size)(void);
    float *(*ptr)(void *);
    long (*count)(void);
    int (*nparams)(void);
    LOOKUP(mod, init, "hx_init");
    LOOKUP(mod, loss, "hx_loss");
    LOOKUP(mod, gradients, "hx_gradients");
    LOOKUP(mod, train_step, "hx_train_step");
    LOOKUP(mod, eval_step, "hx_eval_step");
    LOOKUP(mod, predict, "hx_predict");
    LOOKUP(mod, param_name, "hx_param_name");
    LOOKUP(mod, param_offset, "hx_param_offset");
    LOOKUP(mod, param_count, "hx_param_count");
    void *addr = dlsym(mod->so, "hx_state_size");
    memcpy(&state_size, &addr, sizeof addr);
    addr = dlsym(mod->so, "hx_nparams");
    memcpy(&nparams, &addr, sizeof addr);
    if (!mod->init || !state_size || !nparams || !mod->param_name)
        return fail(mod, "%s: the driver's accessors are missing", path);
    mod->state_size = state_size();
    mod->nparams = nparams();
    mod->state = calloc(1, mod->state_size);
    if (!mod->state)
        return fail(mod, "out of memory");
    mod->init(mod->state, 1);
    static const char *blocks[] = {"hx_params", "hx_grads", "hx_opt"};
    float **dst[] = {&mod->params, &mod->grads, &mod->opt};
    for (int k = 0; k < 3; k++) {
        addr = dlsym(mod->so, blocks[k]);
        memcpy(&ptr, &addr, sizeof addr);
        *dst[k] = ptr(mod->state);
    }
    addr = dlsym(mod->so, "hx_lr");
    memcpy(&ptr, &addr, sizeof addr);
    mod->lr = ptr(mod->state);
    static const char *sizes[] = {"hx_param_floats", "hx_trainable_floats", "hx_opt_floats"};
    long *sdst[] = {&mod->param_floats, &mod->trainable_floats, &mod->opt_floats};
    for (int k = 0; k < 3; k++) {
        addr = dlsym(mod->so, sizes[k]);
        memcpy(&count, &addr, sizeof addr);
        *sdst[k] = count();
    }
    return 0;
}

/* Emits (through emit, which returns cgrad's status), writes the driver, compiles, loads. */
static int build(hx_module *mod, cg_graph *g, bool tape, int rc_emit, cg_flavour flavour, const char *cc)
{
    if (rc_emit)
        return fail(mod, "emit failed: %s", cg_error(g));
    /* the graph's name is not public: read it back from the emitted header, NAME.h */
    DIR *d = opendir(mod->dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 2 && !strcmp(e->d_name + len - 2, ".h") && len - 2 < sizeof mod->name)
            snprintf(mod->name, sizeof mod->name, "%.*s", (int)(len - 2), e->d_name);
    }
    if (d)
        closedir(d);
    if (!strcmp(mod->name, "?"))
        return fail(mod, "no header was emitted into %s", mod->dir);
    if (write_driver(mod, tape) || compile(mod, flavour, cc ? cc : hx_default_cc()) || load(mod))
        return -1;
    return 0;
}

/* Resets mod and makes its folder. */
static int start(hx_module *mod, const char *name)
{
    memset(mod, 0, sizeof *mod);
    snprintf(mod->name, sizeof mod->name, "%s", name);
    if (hx_tmpdir(mod->dir, sizeof mod->dir))
        return fail(mod, "cannot make a temporary folder");
    return 0;
}

int hx_build_graph(hx_module *mod, cg_graph *g, int ninputs, cg_flavour flavour, const char *cc)
{
    if (start(mod, "?"))
        return -1;
    if (!g || cg_failed(g))
        return fail(mod, "the graph failed: %s", g ? cg_error(g) : "out of memory");
    mod->ninputs = ninputs;
    int rc = cg_emit_graph(g, mod->dir, flavour);
    return build(mod, g, true, rc, flavour, cc);
}

int hx_build_model(hx_module *mod, cg_model *m, cg_flavour flavour, const char *cc)
{
    if (start(mod, "?"))
        return -1;
    cg_graph *g = cg_model_graph(m);
    if (!g || cg_failed(g))
        return fail(mod, "the model failed: %s", g ? cg_error(g) : "out of memory");
    int rc = cg_emit_model(m, mod->dir, flavour);
    return build(mod, g, false, rc, flavour, cc);
}

void hx_close(hx_module *mod)
{
    /* No dlclose: host code's GEMM shim keeps worker threads (spinning, then
     * sleeping) inside the object; unmapping it under them would crash. The
     * test process is short-lived, so the handle just stays open. */
    free(mod->state);
    hx_rmdir(mod->dir);
    memset(mod, 0, sizeof *mod);
}

long hx_param(const hx_module *mod, const char *name, long *count)
{
    for (int i = 0; i < mod->nparams; i++)
        if (!strcmp(mod->param_name(i), name)) {
            if (count)
                *count = mod->param_count(i);
            return mod->param_offset(i);
        }
    return -1;
}
