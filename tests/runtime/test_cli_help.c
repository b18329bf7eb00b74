/* test_cli_help.c: what the training binary's command line says of itself.
 * COMMAND --help (or -h, or help COMMAND) at any position prints, on stdout
 * with status 0, every flag of the parser's own table with its description
 * and its default (the model's); BIN --help lists the commands; --version
 * prints cgrad's version and a hash that follows the model; every short flag
 * parses as its long form (and a fit with short flags writes the same
 * checkpoint); unknown flags fail with status 2 and the usage on stderr;
 * every environment variable the runtime reads is in the help and in the
 * manual page, which groff renders without a warning. */
#include "helpers.h"
#include "rt_internal.h"

#include <cgrad.h> /* CG_VERSION, which the runtime's CGRT_VERSION copies */

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define MAN_PAGE SOURCE_DIR "/docs/man/cgrad-model.7"

/* Runs cgrt_main on args, asserts status 0 and an empty stderr, and returns stdout. */
static char *run_ok(const cgrt_model *m, const char *dir, const char *const *args)
{
    char *out, *errs;
    int rc = t_run_cli(m, dir, &out, &errs, args);
    cr_assert_eq(rc, 0, "%s %s: status %d, stderr %s", args[0], args[1] ? args[1] : "", rc, errs);
    cr_assert_str_eq(errs, "", "%s %s wrote to stderr", args[0], args[1] ? args[1] : "");
    free(errs);
    return out;
}

/* A copy of text with every run of blanks and newlines made one space (undoes the help's line wrapping). */
static char *squeeze(const char *text)
{
    char *s = malloc(strlen(text) + 1), *p = s;
    cr_assert_not_null(s);
    for (; *text; text++) {
        if (*text == ' ' || *text == '\n') {
            if (p == s || p[-1] != ' ')
                *p++ = ' ';
        } else {
            *p++ = *text;
        }
    }
    *p = 0;
    return s;
}

/* The entry of flag fd in a command's help (its line and the wrapped lines
 * under it, squeezed), or NULL when the help has no line for it. */
static char *flag_entry(const char *help, const rt_cli_flag *fd)
{
    char head[64], *entry, *s;
    const char *p = help, *end;
    if (fd->short_name)
        snprintf(head, sizeof head, "  -%c, --%s", fd->short_name, fd->name);
    else
        snprintf(head, sizeof head, "      --%s", fd->name);
    for (;; p = strchr(p, '\n') + 1) {
        if (strncmp(p, head, strlen(head)) == 0 && (p[strlen(head)] == ' ' || p[strlen(head)] == '\n'))
            break;
        if (!strchr(p, '\n'))
            return NULL;
    }
    for (end = strchr(p, '\n') + 1; *end == ' ' && strncmp(end, "  -", 3) && strncmp(end, "      --", 8);)
        end = strchr(end, '\n') + 1; /* the wrapped lines of the description */
    s = strndup(p, (size_t)(end - p));
    entry = squeeze(s);
    free(s);
    return entry;
}

/* Asserts that help is command c's help for m: its usage line, then one entry
 * for each flag of the table that applies to c, with its description and,
 * for a flag with a value, its default; no entry for the others. */
static void assert_command_help(const char *help, const rt_cli_cmd *c)
{
    char usage[128];
    int i;
    snprintf(usage, sizeof usage, "usage: tiny_bin %s ", c->name);
    cr_assert(strncmp(help, usage, strlen(usage)) == 0, "%s --help starts: %.80s", c->name, help);
    cr_assert(strstr(help, "\nENVIRONMENT\n") != NULL, "%s --help has no ENVIRONMENT section:\n%s", c->name, help);
    for (i = 0; i < rt_cli_num_flags; i++) {
        const rt_cli_flag *fd = &rt_cli_flags[i];
        char *entry = flag_entry(help, fd);
        int valued = fd->kind == RT_FLAG_STRING || fd->kind == RT_FLAG_INT || fd->kind == RT_FLAG_NUMBER ||
                     fd->kind == RT_FLAG_UINT64;
        if (!(fd->cmds & c->bit)) {
            cr_assert_null(entry, "%s --help lists --%s, which does not apply to it", c->name, fd->name);
            continue;
        }
        cr_assert_not_null(entry, "%s --help has no line for --%s:\n%s", c->name, fd->name, help);
        cr_assert_gt(strlen(fd->help), 10, "--%s has no description in the flag table", fd->name);
        cr_assert(strstr(entry, fd->help) != NULL, "--%s: \"%s\" lacks its description", fd->name, entry);
        if (valued && !(fd->needs & c->bit)) /* a required flag has no default */
            cr_assert(strstr(entry, "[default: ") != NULL, "%s --help: --%s shows no default: %s", c->name, fd->name,
                      entry);
        free(entry);
    }
}

Test(cli_help, command_help_anywhere_lists_every_flag_of_the_table)
{
    const char *dir = t_tmpdir();
    int i, k;
    for (i = 0; i < rt_cli_num_cmds; i++) {
        const char *cmd = rt_cli_cmds[i].name;
        const char *flag = rt_cli_cmds[i].bit == RT_CMD_BENCH ? "--iters" : "--label-column";
        const char *const forms[][5] = {{cmd, "--help", NULL},
                                        {cmd, "-h", NULL},
                                        {"help", cmd, NULL},
                                        {cmd, flag, "4", "--help", NULL},
                                        {cmd, flag, "4", "-h", NULL}};
        char *first = NULL;
        for (k = 0; k < 5; k++) {
            const char *const *args = forms[k];
            char *out;
            out = run_ok(&tiny_model, dir, args);
            if (!first) {
                assert_command_help(out, &rt_cli_cmds[i]);
                first = out;
            } else {
                cr_assert_str_eq(out, first, "form %d of %s --help differs", k, cmd);
                free(out);
            }
        }
        free(first);
    }
}

/* The entry of the flag named name in a command's help (squeezed), or NULL. */
static char *entry_named(const char *help, const char *name)
{
    int i;
    for (i = 0; i < rt_cli_num_flags; i++)
        if (!strcmp(rt_cli_flags[i].name, name))
            return flag_entry(help, &rt_cli_flags[i]);
    cr_assert_fail("no flag --%s in the table", name);
    return NULL;
}

Test(cli_help, defaults_come_from_the_model)
{
    static const char *const want[][2] = {
        {"epochs", "[default: 17]"},          {"batch-size", "[default: 12]"},        {"lr", "[default: 0.375]"},
        {"data", "[default: some/data.csv]"}, {"label-column", "[default: species]"}, {"seed", "[default: 42]"}};
    const char *dir = t_tmpdir();
    cgrt_model m = tiny_model;
    char *out, *bench;
    size_t i;
    m.default_epochs = 17;
    m.default_batch = 12;
    m.default_lr = 0.375f;
    m.data.path = "some/data.csv";
    m.data.label_column = "species";
    out = run_ok(&m, dir, (const char *const[]){"fit", "-e", "2", "--help", NULL});
    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *e = entry_named(out, want[i][0]);
        cr_assert(e && strstr(e, want[i][1]) != NULL, "--%s: %s lacks %s", want[i][0], e, want[i][1]);
        free(e);
    }
    /* bench's own batch: the model's largest, at most 64 */
    bench = run_ok(&m, dir, (const char *const[]){"bench", "--help", NULL});
    free(out);
    out = entry_named(bench, "batch-size");
    cr_assert(strstr(out, "[default: 16]") != NULL, "%s", out);
    free(out), free(bench);
}

Test(cli_help, generic_help_lists_the_commands)
{
    const char *dir = t_tmpdir();
    const char *const forms[][2] = {{"--help", NULL}, {"-h", NULL}, {"help", NULL}};
    char *first = NULL, *s, *out, *errs;
    int i;
    for (i = 0; i < 3; i++) {
        char *o = run_ok(&tiny_model, dir, forms[i]);
        if (first) {
            cr_assert_str_eq(o, first, "%s differs from --help", forms[i][0]);
            free(o);
        } else {
            first = o;
        }
    }
    cr_assert(strncmp(first, "usage: tiny_bin fit ", 20) == 0, "%.80s", first);
    s = squeeze(first);
    for (i = 0; i < rt_cli_num_cmds; i++) {
        char line[256];
        snprintf(line, sizeof line, " %s %s", rt_cli_cmds[i].name, rt_cli_cmds[i].help);
        cr_assert(strstr(s, line) != NULL, "--help does not list \"%s\":\n%s", line, first);
    }
    cr_assert(strstr(first, "'tiny_bin COMMAND --help'") != NULL, "%s", first);
    cr_assert(strstr(first, "\nENVIRONMENT\n") != NULL, "%s", first);
    free(s);
    /* without a command: the usage on stderr, status 2 */
    cr_assert_eq(t_run_cli(&tiny_model, dir, &out, &errs, (const char *const[]){NULL}), 2);
    cr_assert_str_eq(out, "");
    cr_assert(strncmp(errs, "usage: tiny_bin fit ", 20) == 0, "%s", errs);
    free(out), free(errs), free(first);
}

/* The hash that --version prints for m. */
static unsigned long long version_hash(const cgrt_model *m, const char *dir, const char *const *args)
{
    char *out = run_ok(m, dir, args), line[128];
    unsigned long long h = 0;
    snprintf(line, sizeof line, "cgrad %s\nmodel %s, hash ", CG_VERSION, m->name);
    cr_assert(strncmp(out, line, strlen(line)) == 0, "%s prints \"%s\", expected it to start \"%s\"", args[0], out,
              line);
    cr_assert_eq(sscanf(out + strlen(line), "%16llx", &h), 1, "%s", out);
    cr_assert_eq(strlen(out + strlen(line)), 17, "a hash of 16 hex digits and a newline: %s", out);
    free(out);
    return h;
}

Test(cli_help, version_and_model_hash)
{
    const char *dir = t_tmpdir();
    const char *const ver[] = {"--version", NULL}, *const word[] = {"version", NULL};
    const char *const late[] = {"fit", "-e", "3", "--version", NULL};
    cgrt_param renamed[2];
    cgrt_model other = tiny_model, same = tiny_model;
    unsigned long long h = version_hash(&tiny_model, dir, ver);
    cr_assert_str_eq(CGRT_VERSION, CG_VERSION, "the runtime's version copy differs from cgrad.h's");
    cr_assert_eq(h, rt_model_hash(&tiny_model));
    cr_assert_eq(version_hash(&tiny_model, dir, word), h);
    cr_assert_eq(version_hash(&tiny_model, dir, late), h);
    cr_assert_neq(version_hash(&tiny5_model, dir, ver), h, "another input size, the same hash");
    cr_assert_neq(rt_model_hash(&tiny_extra_model), h, "another tensor, the same hash");
    cr_assert_eq(tiny_model.num_params, 2);
    memcpy(renamed, tiny_model.params, sizeof renamed);
    renamed[1].name = "dense/b";
    other.params = renamed;
    cr_assert_neq(rt_model_hash(&other), h, "a renamed tensor, the same hash");
    renamed[1] = tiny_model.params[1];
    renamed[1].trainable = !renamed[1].trainable;
    cr_assert_neq(rt_model_hash(&other), h, "a frozen tensor, the same hash");
    other = tiny_model;
    other.loss_name = "mean_squared_error";
    cr_assert_neq(rt_model_hash(&other), h, "another loss, the same hash");
    /* training defaults are not the model: the same hash */
    same.default_epochs = 99;
    same.default_lr = 0.5f;
    cr_assert_eq(rt_model_hash(&same), h);
}

/* A value for flag fd that differs from its default for the tiny model. */
static const char *sample_value(const rt_cli_flag *fd)
{
    switch (fd->kind) {
    case RT_FLAG_STRING: return "some/file";
    case RT_FLAG_INT: return fd->hi <= 2 ? "2" : "7";
    case RT_FLAG_UINT64: return "9";
    case RT_FLAG_NUMBER: return "0.25";
    default: return NULL;
    }
}

/* 1 when a and b hold the same options: the same numbers, equal strings. */
static int same_opts(const rt_cli_opts *a, const rt_cli_opts *b)
{
    int i;
    for (i = 0; i < rt_cli_num_flags; i++) {
        const rt_cli_flag *fd = &rt_cli_flags[i];
        const char *pa = (const char *)a + fd->offset, *pb = (const char *)b + fd->offset, *sa, *sb;
        if (fd->kind == RT_FLAG_HELP || fd->kind == RT_FLAG_VERSION)
            continue;
        if (fd->kind != RT_FLAG_STRING) {
            size_t size = fd->kind == RT_FLAG_NUMBER ? sizeof(double) : fd->kind == RT_FLAG_UINT64 ? 8 : sizeof(long);
            if (memcmp(pa, pb, size) != 0)
                return 0;
            continue;
        }
        memcpy(&sa, pa, sizeof sa);
        memcpy(&sb, pb, sizeof sb);
        if ((sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0))
            return 0;
    }
    return 1;
}

/* Parses args for command c from its defaults into o; returns rt_cli_parse's status. */
static int parse(const rt_cli_cmd *c, const char *const *args, rt_cli_opts *o)
{
    char *argv[8];
    int argc = 0;
    cgrt_error err;
    rt_cli_defaults(&tiny_model, c, o);
    argv[argc++] = (char *)"tiny_bin";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    err.msg[0] = 0;
    int rc = rt_cli_parse(argc, argv, 2, c, o, &err);
    cr_assert_geq(rc, 0, "%s %s: %s", argv[1], argv[2], err.msg);
    return rc;
}

Test(cli_help, short_flags_parse_as_their_long_forms)
{
    int i, j, checked = 0;
    for (i = 0; i < rt_cli_num_cmds; i++) {
        const rt_cli_cmd *c = &rt_cli_cmds[i];
        for (j = 0; j < rt_cli_num_flags; j++) {
            const rt_cli_flag *fd = &rt_cli_flags[j];
            const char *v = sample_value(fd);
            char lng[64], shrt[4] = {'-', fd->short_name, 0, 0}, glued[64];
            rt_cli_opts want, got, def;
            if (!fd->short_name || !(fd->cmds & c->bit))
                continue;
            snprintf(lng, sizeof lng, "--%s", fd->name);
            snprintf(glued, sizeof glued, "-%c%s", fd->short_name, v ? v : "");
            rt_cli_defaults(&tiny_model, c, &def);
            int rc = parse(c, (const char *const[]){c->name, lng, v, NULL}, &want);
            cr_assert_eq(parse(c, (const char *const[]){c->name, shrt, v, NULL}, &got), rc, "%s %s", c->name, shrt);
            cr_assert(same_opts(&got, &want), "%s: %s %s parses unlike %s %s", c->name, shrt, v ? v : "", lng,
                      v ? v : "");
            if (rc == RT_CLI_RUN)
                cr_assert(!same_opts(&got, &def), "%s %s changed nothing", c->name, shrt);
            else
                cr_assert_eq(rc, RT_CLI_HELP, "%s %s", c->name, shrt);
            cr_assert_eq(parse(c, (const char *const[]){c->name, glued, NULL}, &got), rc, "%s %s", c->name, glued);
            cr_assert(same_opts(&got, &want), "%s: %s parses unlike %s", c->name, glued, lng);
            checked++;
        }
    }
    cr_assert_geq(checked, 10, "only %d short flags checked", checked);
}

Test(cli_help, fit_with_short_flags_trains_as_with_long_ones)
{
    const char *dir = t_tmpdir(), *a = t_path(dir, "a.safetensors"), *b = t_path(dir, "b.safetensors");
    const char *lng[] = {"fit",    "--data", dir,         "--epochs", "3", "--batch-size", "8", "--seed", "9",
                         "--save", a,        "--verbose", "0",        NULL};
    const char *shrt[] = {"fit", "-d", dir, "-e3", "-b", "8", "-s", "9", "-qo", b, NULL};
    char *out1, *out2, *ca, *cb;
    size_t na, nb;
    t_write_blobs_npy(dir, 80, 20, 3);
    out1 = run_ok(&tiny_model, dir, lng);
    out2 = run_ok(&tiny_model, dir, shrt);
    cr_assert_str_eq(out2, out1);
    cr_assert(strncmp(out1, "test: loss=", 11) == 0, "%s", out1);
    ca = t_read(a, &na);
    cb = t_read(b, &nb);
    cr_assert(na == nb && memcmp(ca, cb, na) == 0, "the checkpoints differ");
    free(out1), free(out2), free(ca), free(cb);
}

/* One command line with a bad flag and what stderr must name. */
typedef struct bad_flag {
    const char *args[5];
    const char *msg;
} bad_flag;

Test(cli_help, unknown_flags_name_themselves_with_the_usage_on_stderr)
{
    static const bad_flag cases[] = {
        {{"fit", "--bogus", "1", NULL}, "tiny_bin: unknown flag --bogus (usage: tiny_bin fit "},
        {{"fit", "--epoch", "3", NULL}, "tiny_bin: unknown flag --epoch (usage: tiny_bin fit "},
        {{"fit", "--batch=3", NULL}, "tiny_bin: unknown flag --batch (usage: tiny_bin fit "},
        {{"fit", "-e", "2", "-x", NULL}, "tiny_bin: unknown flag -x (usage: tiny_bin fit "},
        {{"evaluate", "-o", "x", NULL}, "tiny_bin: flag -o does not apply to evaluate (usage: tiny_bin evaluate "},
        {{"bench", "--save", "x", NULL}, "tiny_bin: flag --save does not apply to bench (usage: tiny_bin bench "},
        {{"fit", "-e", NULL}, "tiny_bin: -e needs a value (usage: tiny_bin fit "},
        {{"fit", "--quiet=1", NULL}, "tiny_bin: --quiet takes no value (usage: tiny_bin fit "},
        {{"predict", "--help", "x", NULL}, NULL}, /* help wins over what follows */
        {{"frob", "--help", NULL}, "tiny_bin: unknown command 'frob'"},
        {{"help", "frob", NULL}, "tiny_bin: help: unknown command 'frob'"},
    };
    const char *dir = t_tmpdir();
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *errs;
        int rc = t_run_cli(&tiny_model, dir, &out, &errs, cases[i].args);
        if (!cases[i].msg) {
            cr_assert_eq(rc, 0, "case %zu: %s", i, errs);
        } else {
            cr_assert_eq(rc, 2, "case %zu: status %d, stderr %s", i, rc, errs);
            cr_assert_str_eq(out, "", "case %zu", i);
            cr_assert(strncmp(errs, cases[i].msg, strlen(cases[i].msg)) == 0, "case %zu: \"%s\", expected \"%s...\"", i,
                      errs, cases[i].msg);
            cr_assert(strstr(errs, "usage: tiny_bin ") != NULL, "case %zu: no usage: %s", i, errs);
            cr_assert_eq(t_count_lines(errs), 1, "case %zu: %s", i, errs);
        }
        free(out), free(errs);
    }
}

/* Collects into names (up to max) the variables that the .c files of runtime/ read with
 * getenv("NAME"); returns their count. */
static int runtime_getenvs(char names[][64], int max)
{
    DIR *d = opendir(SOURCE_DIR "/runtime");
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char *text, *p;
        if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
            continue;
        text = t_read(t_path(SOURCE_DIR "/runtime", e->d_name), NULL);
        for (p = text; (p = strstr(p, "getenv(\"")) != NULL && n < max; p += 8) {
            size_t k = strcspn(p + 8, "\"");
            int seen = 0;
            for (int j = 0; j < n; j++)
                seen |= strlen(names[j]) == k && !strncmp(names[j], p + 8, k);
            if (!seen && k < 64)
                snprintf(names[n++], 64, "%.*s", (int)k, p + 8);
        }
        free(text);
    }
    closedir(d);
    return n;
}

Test(cli_help, every_environment_variable_is_documented)
{
    const char *dir = t_tmpdir();
    char names[32][64], *help = run_ok(&tiny_model, dir, (const char *const[]){"fit", "--help", NULL});
    char *man = t_read(MAN_PAGE, NULL), *env = strstr(help, "\nENVIRONMENT\n");
    int i, n = runtime_getenvs(names, 32);
    cr_assert_geq(n, 3, "found only %d getenv calls in runtime/", n);
    cr_assert_not_null(env);
    for (i = 0; i < n; i++) {
        char line[128];
        snprintf(line, sizeof line, "\n  %.64s ", names[i]);
        cr_assert(strstr(env, line) != NULL, "%s is read by the runtime but not in fit --help:\n%s", names[i], env);
        snprintf(line, sizeof line, ".B %.64s\n", names[i]);
        cr_assert(strstr(man, line) != NULL, "%s is read by the runtime but not in %s", names[i], MAN_PAGE);
    }
    free(help), free(man);
}

/* 1 when the program is on PATH. */
static int have(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

/* Writes into buf the roff source of the flag text s: every '-' as "\\-". */
static void roff_dashes(char *buf, size_t size, const char *s)
{
    size_t n = 0;
    for (; *s && n + 3 < size; s++) {
        if (*s == '-')
            buf[n++] = '\\';
        buf[n++] = *s;
    }
    buf[n] = 0;
}

Test(cli_help, man_page_renders_without_warnings_and_has_every_flag)
{
    char *man = t_read(MAN_PAGE, NULL), buf[4096];
    size_t len = 0, k;
    int i, st;
    FILE *p;
    for (i = 0; i < rt_cli_num_flags; i++) {
        char flag[80], want[160];
        snprintf(flag, sizeof flag, "--%s", rt_cli_flags[i].name);
        roff_dashes(want, sizeof want, flag);
        cr_assert(strstr(man, want) != NULL, "%s does not mention %s (as %s)", MAN_PAGE, flag, want);
        snprintf(flag, sizeof flag, "-%c, --%s", rt_cli_flags[i].short_name, rt_cli_flags[i].name);
        roff_dashes(want, sizeof want, flag);
        cr_assert(!rt_cli_flags[i].short_name || strstr(man, want) != NULL, "%s lacks \"%s\"", MAN_PAGE, want);
    }
    for (i = 0; i < rt_cli_num_cmds; i++) {
        char want[80];
        snprintf(want, sizeof want, ".B %s\n", rt_cli_cmds[i].name);
        cr_assert(strstr(man, want) != NULL, "%s does not describe %s", MAN_PAGE, rt_cli_cmds[i].name);
    }
    free(man);
    if (!have("groff"))
        cr_skip_test("groff is not installed");
    p = popen("groff -man -Tutf8 -ww -z " MAN_PAGE " 2>&1", "r");
    cr_assert_not_null(p);
    while ((k = fread(buf + len, 1, sizeof buf - 1 - len, p)) > 0)
        len += k;
    buf[len] = 0;
    st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "groff failed: %s", buf);
    cr_assert_str_eq(buf, "", "groff warns about %s", MAN_PAGE);
}
