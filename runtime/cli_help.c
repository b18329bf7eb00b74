/* cli_help.c: what the training binary's command line says of itself: the
 * usage lines, BIN --help (the commands), BIN COMMAND --help (every flag
 * with what it does and its default, both from the flag table of
 * cli_args.c, and the environment), usage errors, and BIN --version with the
 * model's hash. docs/man/cgrad-model.7 says the same at length. */
#include "rt_internal.h"

#include <string.h>

#define WIDTH 100   /* help lines are wrapped to this many columns */
#define NBSP '\x1f' /* a space where wrap does not break a line */

/* The environment variables the runtime reads, and what they do. */
static const struct {
    const char *name, *help;
} env_vars[] = {
    {"CGRAD_THREADS", "threads of the matrix products of a host-flavour binary, a whole number (1: no thread "
                      "pool); default: the CPUs the process may run on, fewer under a cgroup CPU quota, at most 8"},
    {"CGRAD_GEMM", "openblas: every matrix product of a host-flavour binary runs on OpenBLAS, not on "
                   "cgrad's own AVX-512 kernel"},
    {"CGRAD_NO_BLAS_TUNE", "when set, OpenBLAS keeps its own choice of kernels; otherwise a binary on an AVX-512 "
                           "CPU that OpenBLAS takes for Haswell or Zen runs itself again with "
                           "OPENBLAS_CORETYPE=SkylakeX"},
    {"OPENBLAS_CORETYPE", "the kernels OpenBLAS uses (read by OpenBLAS); when set, the binary leaves the choice to it"},
};

/* Prints text from column col, breaking lines at spaces before WIDTH and
 * starting each new line with indent spaces; ends the line. NBSP joins
 * words that stay on one line (and prints as a space). */
static void wrap(FILE *f, int col, int indent, const char *text)
{
    int first = 1;
    while (*text) {
        size_t i, word = strcspn(text, " ");
        if (!first && col + 1 + (int)word > WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (!first) {
            fputc(' ', f);
            col++;
        }
        for (i = 0; i < word; i++)
            fputc(text[i] == NBSP ? ' ' : text[i], f);
        col += (int)word;
        first = 0;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

/* 1 when flag fd is printed in usage lines: it has a value or sets one. */
static int in_synopsis(const rt_cli_flag *fd, const rt_cli_cmd *c)
{
    return (fd->cmds & c->bit) && fd->kind != RT_FLAG_HELP && fd->kind != RT_FLAG_VERSION;
}

/* Prints lead, then the flags of command c ("--weights FILE" when
 * required, "[--epochs N]" otherwise) wrapped under the first of them. */
static void synopsis(FILE *f, const char *lead, const rt_cli_cmd *c)
{
    char buf[2048];
    size_t len = 0;
    int i;
    buf[0] = 0;
    for (i = 0; i < rt_cli_num_flags && len < sizeof buf - 128; i++) {
        const rt_cli_flag *fd = &rt_cli_flags[i];
        int req = (fd->needs & c->bit) != 0;
        if (in_synopsis(fd, c))
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s--%s%s%s%s", len ? " " : "", req ? "" : "[",
                                    fd->name, fd->meta[0] ? (char[2]){NBSP, 0} : "", fd->meta, req ? "" : "]");
    }
    fputs(lead, f);
    wrap(f, (int)strlen(lead), (int)strlen(lead), buf);
}

/* The usage lines of every command, the model's defaults and the data formats. */
void rt_cli_usage(FILE *f, const char *bin, const cgrt_model *m)
{
    char lead[256];
    int i;
    for (i = 0; i < rt_cli_num_cmds; i++) {
        snprintf(lead, sizeof lead, "%s %s %-8s ", i ? "      " : "usage:", bin, rt_cli_cmds[i].name);
        synopsis(f, lead, &rt_cli_cmds[i]);
    }
    fprintf(f, "       %s --help | help [COMMAND] | COMMAND --help | --version\n", bin);
    fprintf(f, "model %s: data %s, epochs %d, batch size %d (at most %d), lr %g, seed 42\n", m->name,
            m->data.path ? m->data.path : "(none)", m->default_epochs, m->default_batch, m->max_batch,
            (double)m->default_lr);
    if (m->data.label_column)
        fprintf(f, "labels: the CSV column named \"%s\"\n", m->data.label_column);
    if (m->data.series.window > 0)
        rt_cli_usage_series(f, bin, m);
    rt_formats_usage(f);
}

/* The ENVIRONMENT section. */
static void environment(FILE *f)
{
    size_t i;
    fprintf(f, "\nENVIRONMENT\n");
    for (i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++) {
        fprintf(f, "  %-20s", env_vars[i].name);
        wrap(f, 22, 22, env_vars[i].help);
    }
}

/* BIN --help: the usage, the commands, where each command's help is, and the environment. */
void rt_cli_help(FILE *f, const char *bin, const cgrt_model *m)
{
    int i;
    rt_cli_usage(f, bin, m);
    fprintf(f, "\ncommands:\n");
    for (i = 0; i < rt_cli_num_cmds; i++) {
        fprintf(f, "  %-10s", rt_cli_cmds[i].name);
        wrap(f, 12, 12, rt_cli_cmds[i].help);
    }
    fprintf(f, "  %-10s%s\n  %-10s%s\n", "help", "this help; help COMMAND: the flags of COMMAND", "version",
            "cgrad's version and the model's hash");
    fprintf(f, "\n'%s COMMAND --help' lists the flags of COMMAND, with short forms and defaults.\n", bin);
    environment(f);
}

/* Writes into buf the default of flag fd in o, the defaults; "" when it shows none. */
static void flag_default(const rt_cli_flag *fd, const rt_cli_opts *o, char *buf, size_t size)
{
    const char *base = (const char *)o + fd->offset;
    const char *s;
    long l;
    double d;
    uint64_t u;
    buf[0] = 0;
    switch (fd->kind) {
    case RT_FLAG_STRING:
        memcpy(&s, base, sizeof s);
        snprintf(buf, size, "%s", s ? s : fd->none ? fd->none : "");
        break;
    case RT_FLAG_INT:
        memcpy(&l, base, sizeof l);
        if (l == 0 && fd->none)
            snprintf(buf, size, "%s", fd->none);
        else
            snprintf(buf, size, "%ld", l);
        break;
    case RT_FLAG_NUMBER:
        memcpy(&d, base, sizeof d);
        if (d == 0.0 && fd->none)
            snprintf(buf, size, "%s", fd->none);
        else
            snprintf(buf, size, "%g", d);
        break;
    case RT_FLAG_UINT64:
        memcpy(&u, base, sizeof u);
        snprintf(buf, size, "%llu", (unsigned long long)u);
        break;
    default: break;
    }
}

/* BIN COMMAND --help: the usage line, every flag of the command with what it
 * does and its default for m, the data formats, and the environment. */
void rt_cli_help_cmd(FILE *f, const char *bin, const cgrt_model *m, const rt_cli_cmd *c)
{
    char lead[256], left[64], def[512], text[1024];
    rt_cli_opts o;
    int i, w = 0;
    rt_cli_defaults(m, c, &o);
    snprintf(lead, sizeof lead, "usage: %s %s ", bin, c->name);
    synopsis(f, lead, c);
    snprintf(text, sizeof text, "%s %s: %s", bin, c->name, c->help);
    wrap(f, 0, 2, text);
    fprintf(f, "\nflags (defaults of model %s):\n", m->name);
    for (i = 0; i < rt_cli_num_flags; i++) {
        const rt_cli_flag *fd = &rt_cli_flags[i];
        int n = (int)strlen(fd->name) + (int)strlen(fd->meta) + 9; /* "-x, --name META" and two spaces */
        if ((fd->cmds & c->bit) && n > w)
            w = n;
    }
    for (i = 0; i < rt_cli_num_flags; i++) {
        const rt_cli_flag *fd = &rt_cli_flags[i];
        if (!(fd->cmds & c->bit))
            continue;
        snprintf(left, sizeof left, "%c%c%c --%s%s%s", fd->short_name ? '-' : ' ',
                 fd->short_name ? fd->short_name : ' ', fd->short_name ? ',' : ' ', fd->name, fd->meta[0] ? " " : "",
                 fd->meta);
        flag_default(fd, &o, def, sizeof def);
        if (fd->needs & c->bit) /* required here: no default */
            def[0] = 0;
        snprintf(text, sizeof text, "%s%s%s%s", fd->help, def[0] ? " [default: " : "", def, def[0] ? "]" : "");
        fprintf(f, "  %-*s", w, left);
        wrap(f, w + 2, w + 2, text);
    }
    if (c->bit != RT_CMD_BENCH) {
        fputc('\n', f);
        rt_formats_usage(f);
    }
    environment(f);
}

/* A usage error on one line; returns 2. */
int rt_cli_usage_error(const char *bin, const char *cmd, const char *msg)
{
    if (cmd)
        fprintf(stderr, "%s: %s (usage: %s %s [FLAG]...; try '%s %s --help')\n", bin, msg, bin, cmd, bin, cmd);
    else
        fprintf(stderr, "%s: %s (usage: %s COMMAND [FLAG]...; try '%s --help')\n", bin, msg, bin, bin);
    return 2;
}

/* Adds the bytes of s and a terminating 0 to the FNV-1a hash h. */
static uint64_t hash_str(uint64_t h, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    do {
        h ^= *p;
        h *= 1099511628211ULL;
    } while (*p++);
    return h;
}

/* Adds the decimal text of v to the hash h. */
static uint64_t hash_num(uint64_t h, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return hash_str(h, buf);
}

/* The FNV-1a hash of what defines m for its checkpoints. */
uint64_t rt_model_hash(const cgrt_model *m)
{
    uint64_t h = 14695981039346656037ULL;
    int i, k;
    h = hash_str(h, m->name);
    h = hash_num(h, m->max_batch);
    h = hash_num(h, m->in_rank);
    for (k = 0; k < m->in_rank && k < CGRT_MAX_RANK; k++)
        h = hash_num(h, m->in_dims[k]);
    h = hash_num(h, m->in_features), h = hash_num(h, m->out_features), h = hash_num(h, m->label_kind);
    h = hash_num(h, m->label_width), h = hash_num(h, m->num_classes), h = hash_str(h, m->loss_name);
    for (i = 0; i < m->num_metrics && m->metric_names; i++)
        h = hash_str(h, m->metric_names[i]);
    for (i = 0; i < m->num_outputs && m->outputs; i++) {
        const cgrt_output *o = &m->outputs[i];
        h = hash_str(h, o->name), h = hash_num(h, o->features);
        h = hash_num(h, o->label_width), h = hash_num(h, o->num_classes);
    }
    h = hash_num(h, (long long)m->param_floats);
    for (i = 0; i < m->num_params && m->params; i++) {
        const cgrt_param *p = &m->params[i];
        h = hash_str(h, p->name), h = hash_num(h, p->rank);
        for (k = 0; k < p->rank && k < CGRT_MAX_RANK; k++)
            h = hash_num(h, p->dims[k]);
        h = hash_num(h, (long long)p->offset), h = hash_num(h, (long long)p->count), h = hash_num(h, p->trainable);
    }
    return h;
}

/* BIN --version: cgrad's version and the model's name and hash. */
void rt_cli_version(FILE *f, const cgrt_model *m)
{
    fprintf(f, "cgrad %s\nmodel %s, hash %016llx\n", CGRT_VERSION, m->name, (unsigned long long)rt_model_hash(m));
}
