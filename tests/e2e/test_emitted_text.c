/* test_emitted_text.c: the text of every example's emitted code, in both
 * flavours, holds nothing a template or the emitter left behind by mistake:
 * no unfilled {{KEY}}, no "ract"/"act" standing for an activation's name
 * (ract'(.), "through ract, ract, act"), no expression that multiplies a
 * literal 0 ("for (int e = 0 * 11 * 11 * 64; ..."), and no dead store: each
 * stream "rng = seed * ..." of NAME_init is read by the initialiser after it. It also
 * holds what a reader is promised: a banner per layer, the chain rule in
 * the words of the rules, and one forward pass per mode. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

/* The examples' model programs; the parameters are indices into it. */
static const char *const gens[] = {EMITTED_GENS};

/* The line number (from 1) of position p in text s. */
static int line_of(const char *s, const char *p)
{
    int line = 1;
    for (; s < p; s++)
        line += *s == '\n';
    return line;
}

/* True when word w stands alone at p (no letter, digit or _ around it). */
static bool whole_word(const char *s, const char *p, size_t len)
{
    bool start = p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
    return start && !(isalnum((unsigned char)p[len]) || p[len] == '_');
}

/* The first artefact in the text s of a file, described into why; NULL when there is none. */
static const char *artefact(const char *s, char *why, size_t size)
{
    const char *p = strstr(s, "{{");
    if (p) {
        snprintf(why, size, "line %d: an unfilled template key: %.40s", line_of(s, p), p);
        return p;
    }
    for (const char *const *w = (const char *const[]){"ract", "act", NULL}; *w; w++)
        for (p = strstr(s, *w); p; p = strstr(p + 1, *w))
            if (whole_word(s, p, strlen(*w))) {
                snprintf(why, size, "line %d: \"%s\" where an activation's name belongs: %.60s", line_of(s, p), *w, p);
                return p;
            }
    for (p = strstr(s, "0 * "); p; p = strstr(p + 1, "0 * ")) { /* a literal 0 multiplied: "= 0 * 11" */
        const char *q = p - 1;
        while (q > s && *q == ' ')
            q--;
        if (p > s && !isalnum((unsigned char)p[-1]) && p[-1] != '.' && strchr("=(+-*/,[", *q)) {
            snprintf(why, size, "line %d: an expression multiplying 0: %.60s", line_of(s, p), q);
            return p;
        }
    }
    for (p = strstr(s, "\n    rng = seed"); p; p = strstr(p + 1, "\n    rng = seed")) { /* each stream is read */
        const char *next = strstr(p + 1, "\n    rng = seed"), *end = strchr(p, '}'), *use = strstr(p, "&rng");
        p++;
        if (!use || (next && use > next) || (end && use > end)) {
            snprintf(why, size, "line %d: a dead store, the stream is never read: %.60s", line_of(s, p), p);
            return p;
        }
    }
    return NULL;
}

ParameterizedTestParameters(e2e_emitted, text)
{
    static int index[2 * sizeof gens / sizeof gens[0]];
    for (size_t i = 0; i < 2 * sizeof gens / sizeof gens[0]; i++)
        index[i] = (int)i;
    return cr_make_param_array(int, index, 2 * sizeof gens / sizeof gens[0]);
}

/* Every file an example's model program emits, in each flavour, is free of
 * artefacts; its NAME.c has layer banners and chain-rule blocks, and a
 * compiled model's has one forward pass per mode that its entry points call. */
ParameterizedTest(int *i, e2e_emitted, text)
{
    const char *gen = gens[*i / 2], *flavour = *i % 2 ? "portable" : "host";
    const char *tmp = e2e_tmpdir(), *dir = e2e_path(tmp, flavour);
    e2e_mkdir(dir);
    e2e_run g = E2E_RUN(tmp, tmp, gen, "-o", dir, "--flavour", flavour);
    cr_assert_eq(g.status, 0, "%s: exit %d: %s", gen, g.status, g.err);
    e2e_run_free(&g);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int sources = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len < 3 || (strcmp(de->d_name + len - 2, ".c") && strcmp(de->d_name + len - 2, ".h")))
            continue;
        char *s = e2e_read(e2e_path(dir, de->d_name), NULL), why[256];
        cr_assert_not_null(s);
        cr_expect_null(artefact(s, why, sizeof why), "%s (%s) %s: %s", gen, flavour, de->d_name, why);
        bool main_c = strstr(de->d_name, "_main.c") || strstr(de->d_name, "_weights.c");
        if (!strcmp(de->d_name + len - 2, ".c") && !main_c) {
            sources++;
            cr_expect_not_null(strstr(s, "/* ==== "), "%s (%s): no layer banner", gen, flavour);
            cr_expect_not_null(strstr(s, ", backward: the chain rule, in the words of each node's gradient rule"),
                               "%s (%s): no chain-rule block", gen, flavour);
            bool model = strstr(s, "_train_step(") != NULL; /* a compiled model; a tape graph's predict has no modes */
            cr_expect(!model || (strstr(s, "_forward_infer(s, n, x);") && strstr(s, "_forward_train(s, n, x);")),
                      "%s (%s): the entry points do not call one forward pass per mode", gen, flavour);
        }
        free(s);
    }
    closedir(d);
    cr_expect_eq(sources, 1, "%s (%s): %d sources", gen, flavour, sources);
}
