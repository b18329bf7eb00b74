/* test_golden.c: the emitted code of two tiny graphs, in both flavours,
 * byte for byte against the files checked in under tests/ops/golden/, so any
 * change to the output shows up as a diff in review.
 *
 *   tiny_mlp:  Sequential 4 -> Dense(3, relu) -> Dense(2), SGD with momentum,
 *              categorical cross-entropy from logits, accuracy
 *   tiny_tape: y = tanh(x w + b), loss = mean((y - t)^2), gradients of w, b
 *
 * To accept a change in the emitted code, regenerate the files and review
 * the diff:
 *
 *     CGRAD_UPDATE_GOLDEN=1 meson test -C build ops-golden
 *     git diff tests/ops/golden/
 *
 * Also checked: emitting the same graph twice, and a freshly built copy,
 * gives byte-identical files (no timestamps, no addresses, no hash order).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#ifndef OPS_SOURCE_DIR
#define OPS_SOURCE_DIR "."
#endif

static cg_model *tiny_mlp(void)
{
    cg_model *m = cg_sequential("tiny_mlp", CG_SHAPE(4));
    cg_model_add(m, cg_dense(3, .activation = CG_RELU));
    cg_model_add(m, cg_dense(2));
    /* one line: gcc and clang give a multi-line macro call different __LINE__s, and the line is in the output */
    cg_compile(m, .optimizer = cg_sgd(0.05f, 0.9f, false), .loss = CG_CATEGORICAL_CROSSENTROPY, .from_logits = true,
               .metric = CG_ACCURACY, .batch_size = 8);
    return m;
}

static cg_graph *tiny_tape(void)
{
    cg_graph *g = cg_graph_new("tiny_tape");
    cg_set_max_batch(g, 16);
    cg_t x = cg_placeholder(g, "x", CG_SHAPE(CG_BATCH, 3));
    cg_t t = cg_placeholder(g, "t", CG_SHAPE(CG_BATCH, 2));
    cg_t w = cg_variable(g, "w", CG_SHAPE(3, 2), cg_glorot_uniform());
    cg_t b = cg_variable(g, "b", CG_SHAPE(2), cg_zeros());
    cg_t y = cg_tanh(cg_add(cg_matmul(x, w), b));
    cg_gradients(g, cg_mean(cg_square(cg_sub(y, t))), w, b);
    return g;
}

/* Emits a fresh copy of the named graph into dir; returns cgrad's status. */
static int emit(const char *name, const char *dir, cg_flavour flavour)
{
    int rc;
    if (!strcmp(name, "tiny_mlp")) {
        cg_model *m = tiny_mlp();
        rc = cg_emit_model(m, dir, flavour);
        cr_expect(rc == 0, "%s: %s", name, cg_error(cg_model_graph(m)));
        cg_model_free(m);
    } else {
        cg_graph *g = tiny_tape();
        rc = cg_emit_graph(g, dir, flavour);
        cr_expect(rc == 0, "%s: %s", name, cg_error(g));
        cg_graph_free(g);
    }
    return rc;
}

/* Compares text got with want; on a difference, describes the first differing line into msg. */
static bool same_text(const char *got, const char *want, char *msg, size_t size)
{
    if (!strcmp(got, want))
        return true;
    int line = 1;
    const char *g = got, *w = want;
    while (*g && *g == *w) {
        if (*g == '\n') {
            line++;
            got = g + 1, want = w + 1;
        }
        g++, w++;
    }
    int gl = (int)strcspn(got, "\n"), wl = (int)strcspn(want, "\n");
    snprintf(msg, size, "first difference at line %d:\n  emitted: %.*s\n  golden:  %.*s", line, gl, got, wl, want);
    return false;
}

/* Emits name in flavour and compares every emitted file with golden/<flavour>/. */
static void check_golden(const char *name, cg_flavour flavour)
{
    const char *fl = flavour == CG_HOST ? "host" : "portable";
    static const char *suffixes[] = {".h", ".c", "_main.c"};
    bool update = getenv("CGRAD_UPDATE_GOLDEN") && !strcmp(getenv("CGRAD_UPDATE_GOLDEN"), "1");
    char dir[256], dir2[256], path[512], gpath[512], msg[1024];
    cr_assert(hx_tmpdir(dir, sizeof dir) == 0 && hx_tmpdir(dir2, sizeof dir2) == 0);
    cr_assert(emit(name, dir, flavour) == 0);
    cr_assert(emit(name, dir2, flavour) == 0);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, name, suffixes[i]);
        snprintf(gpath, sizeof gpath, "%s/golden/%s/%s%s", OPS_SOURCE_DIR, fl, name, suffixes[i]);
        char *got = hx_read_file(path, NULL);
        if (!got) /* tape graphs have no NAME_main.c */
            continue;
        snprintf(path, sizeof path, "%s/%s%s", dir2, name, suffixes[i]);
        char *again = hx_read_file(path, NULL);
        cr_expect(again && same_text(again, got, msg, sizeof msg), "%s%s (%s): emitting twice differs: %s", name,
                  suffixes[i], fl, again ? msg : "missing");
        free(again);
        if (update) {
            snprintf(path, sizeof path, "%s/golden", OPS_SOURCE_DIR);
            mkdir(path, 0777);
            snprintf(path, sizeof path, "%s/golden/%s", OPS_SOURCE_DIR, fl);
            mkdir(path, 0777);
            FILE *f = fopen(gpath, "w");
            cr_assert(f && fputs(got, f) >= 0 && fclose(f) == 0, "cannot write %s", gpath);
        } else {
            char *want = hx_read_file(gpath, NULL);
            cr_expect(want != NULL, "%s is missing: run CGRAD_UPDATE_GOLDEN=1 meson test ops-golden", gpath);
            if (want)
                cr_expect(same_text(got, want, msg, sizeof msg), "%s%s (%s) differs from %s: %s", name, suffixes[i], fl,
                          gpath, msg);
            free(want);
        }
        free(got);
    }
    hx_rmdir(dir);
    hx_rmdir(dir2);
}

Test(golden, tiny_mlp_portable)
{
    check_golden("tiny_mlp", CG_PORTABLE);
}
Test(golden, tiny_mlp_host)
{
    check_golden("tiny_mlp", CG_HOST);
}
Test(golden, tiny_tape_portable)
{
    check_golden("tiny_tape", CG_PORTABLE);
}
Test(golden, tiny_tape_host)
{
    check_golden("tiny_tape", CG_HOST);
}

/* Emitting one graph object twice (the second call reuses the compiled graph) gives the same files. */
Test(golden, emit_same_graph_twice)
{
    char dir[256], dir2[256], path[512], msg[1024];
    cr_assert(hx_tmpdir(dir, sizeof dir) == 0 && hx_tmpdir(dir2, sizeof dir2) == 0);
    cg_model *m = tiny_mlp();
    cr_assert(cg_emit_model(m, dir, CG_PORTABLE) == 0, "%s", cg_error(cg_model_graph(m)));
    cr_assert(cg_emit_model(m, dir2, CG_PORTABLE) == 0, "%s", cg_error(cg_model_graph(m)));
    static const char *files[] = {"tiny_mlp.h", "tiny_mlp.c", "tiny_mlp_main.c"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        char *a = hx_read_file(path, NULL);
        snprintf(path, sizeof path, "%s/%s", dir2, files[i]);
        char *b = hx_read_file(path, NULL);
        cr_expect(a && b && same_text(b, a, msg, sizeof msg), "%s: the second emission differs: %s", files[i],
                  a && b ? msg : "missing");
        free(a);
        free(b);
    }
    cg_model_free(m);
    hx_rmdir(dir);
    hx_rmdir(dir2);
}
