/* test_optimizers.c: the optimizers.
 *
 *   golden     what each optimizer puts into the emitted code (the header's
 *              optimizer lines, the update function, the update call, the
 *              tape's NAME_apply_gradients), both flavours, against
 *              tests/ops/golden/optimizers/; CGRAD_UPDATE_GOLDEN=1 rewrites
 *              them. Other changes to the emitted code (kernels, entry
 *              points) do not show here: tests/ops/golden/ has those.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#ifndef OPS_SOURCE_DIR
#define OPS_SOURCE_DIR "."
#endif

/* ---- golden: the optimizer's part of the emitted code ------------------------------------- */

/* One model per optimizer: 3 -> Dense(2), MSE; or a tape graph with cg_apply_gradients. */
typedef struct golden_case {
    const char *name;
    cg_optimizer opt;
    bool tape;
} golden_case;

static const golden_case golden_cases[] = {
    {"sgd", {.kind = CG_SGD, .lr = 0.1f}, false},
    {"momentum", {.kind = CG_SGD, .lr = 0.1f, .momentum = 0.9f}, false},
    {"nesterov", {.kind = CG_SGD, .lr = 0.1f, .momentum = 0.8f, .nesterov = true}, false},
    {"adam", {.kind = CG_ADAM, .lr = 1e-3f, .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f}, false},
    {"rmsprop", {.kind = CG_RMSPROP, .lr = 1e-3f, .momentum = 0.5f, .rho = 0.9f, .epsilon = 1e-7f}, false},
    {"tape_adam", {.kind = CG_ADAM, .lr = 0.01f, .beta_1 = 0.8f, .beta_2 = 0.99f, .epsilon = 1e-6f}, true},
};

/* Emits golden case c into dir; returns cgrad's status. */
static int emit_case(const golden_case *c, const char *dir, cg_flavour flavour) {
    int rc;
    if (c->tape) {
        cg_graph *g = cg_graph_new(c->name);
        cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
        cg_t w = cg_variable(g, "w", CG_SHAPE(3, 2), cg_glorot_uniform());
        cg_gradients(g, cg_mean(cg_square(cg_matmul(x, w))), w);
        cg_apply_gradients(g, c->opt);
        rc = cg_emit_graph(g, dir, flavour);
        cr_expect(rc == 0, "%s: %s", c->name, cg_error(g));
        cg_graph_free(g);
    } else {
        cg_model *m = cg_sequential(c->name, CG_SHAPE(3));
        cg_model_add(m, cg_dense(2));
        cg_compile(m, .optimizer = c->opt, .loss = CG_MSE, .batch_size = 4);
        rc = cg_emit_model(m, dir, flavour);
        cr_expect(rc == 0, "%s: %s", c->name, cg_error(cg_model_graph(m)));
        cg_model_free(m);
    }
    return rc;
}

/* True when the n bytes at p hold s. */
static bool line_has(const char *p, size_t n, const char *s) {
    for (size_t k = strlen(s), i = 0; i + k <= n; i++)
        if (!memcmp(p + i, s, k))
            return true;
    return false;
}

/* Writes to f the lines of text from the first that starts with `from` up to the first (after it)
 * that starts with `to` (excluded), or, when `to` is NULL, that contains `last` (included). */
static void take_lines(FILE *f, const char *text, const char *from, const char *to, const char *last) {
    bool in = false;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');
        if (!in && !strncmp(p, from, strlen(from)))
            in = true;
        else if (in && to && !strncmp(p, to, strlen(to)))
            in = false;
        if (in)
            fwrite(p, 1, n, f);
        if (in && !to && line_has(p, n, last))
            in = false;
        p += n;
    }
}

/* The optimizer's part of the emitted files of case c: the header's lines naming optimizer
 * state, the update function, the update call (and the tape's NAME_apply_gradients). */
static char *optimizer_text(const golden_case *c, const char *dir) {
    char path[512], *h, *src, *out = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s.h", dir, c->name);
    cr_assert((h = hx_read_file(path, NULL)) != NULL, "no %s", path);
    snprintf(path, sizeof path, "%s/%s.c", dir, c->name);
    cr_assert((src = hx_read_file(path, NULL)) != NULL, "no %s", path);
    FILE *f = open_memstream(&out, &len);
    cr_assert(f);
    fprintf(f, "== %s.h\n", c->name);
    for (const char *p = h; *p;) {
        size_t n = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');
        if (line_has(p, n, "_OPT_") || line_has(p, n, "opt[") || line_has(p, n, "Memory:") || line_has(p, n, "apply_gradients"))
            fwrite(p, 1, n, f);
        p += n;
    }
    fprintf(f, "== %s.c\n", c->name);
    take_lines(f, src, "/* ---- optimizer", "/* ---- ", NULL);
    take_lines(f, src, "    /* optimizer: one flat loop", NULL, "_update(");
    if (c->tape)
        take_lines(f, src, "/* Applies the optimizer", NULL, "}");
    cr_assert(fclose(f) == 0);
    free(h);
    free(src);
    return out;
}

/* Compares case c in flavour with golden/optimizers/<flavour>/<name>.txt (or writes it). */
static void check_optimizer_golden(const golden_case *c, cg_flavour flavour) {
    const char *fl = flavour == CG_HOST ? "host" : "portable";
    char dir[256], gpath[512];
    cr_assert(hx_tmpdir(dir, sizeof dir) == 0);
    cr_assert(emit_case(c, dir, flavour) == 0);
    char *got = optimizer_text(c, dir);
    snprintf(gpath, sizeof gpath, "%s/golden/optimizers/%s/%s.txt", OPS_SOURCE_DIR, fl, c->name);
    if (getenv("CGRAD_UPDATE_GOLDEN") && !strcmp(getenv("CGRAD_UPDATE_GOLDEN"), "1")) {
        char path[512];
        snprintf(path, sizeof path, "%s/golden/optimizers", OPS_SOURCE_DIR);
        mkdir(path, 0777);
        snprintf(path, sizeof path, "%s/golden/optimizers/%s", OPS_SOURCE_DIR, fl);
        mkdir(path, 0777);
        FILE *f = fopen(gpath, "w");
        cr_assert(f && fputs(got, f) >= 0 && fclose(f) == 0, "cannot write %s", gpath);
    } else {
        char *want = hx_read_file(gpath, NULL);
        cr_expect(want != NULL, "%s is missing: run CGRAD_UPDATE_GOLDEN=1 meson test ops-optimizers", gpath);
        if (want && strcmp(got, want)) {
            int line = 1;
            size_t i = 0, start = 0;
            for (; got[i] && got[i] == want[i]; i++)
                if (got[i] == '\n')
                    line++, start = i + 1;
            cr_expect(false, "%s (%s) differs from %s at line %d:\n  emitted: %.*s\n  golden:  %.*s", c->name, fl,
                      gpath, line, (int)strcspn(got + start, "\n"), got + start, (int)strcspn(want + start, "\n"),
                      want + start);
        }
        free(want);
    }
    free(got);
    hx_rmdir(dir);
}

Test(optimizers, golden) {
    for (size_t i = 0; i < sizeof golden_cases / sizeof golden_cases[0]; i++) {
        check_optimizer_golden(&golden_cases[i], CG_PORTABLE);
        check_optimizer_golden(&golden_cases[i], CG_HOST);
    }
}
