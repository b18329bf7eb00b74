/* util.c: the arena every graph allocates from, growable text for the
 * emitter, template expansion, and the builders' guards (checked sizes,
 * options, operands). */
#include "cgrad_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---------------------------------------------------------------- */

struct arena_chunk {
    arena_chunk *next;
    size_t used, cap;
    size_t pad_;   /* keeps data 16-byte aligned on LP64 */
    unsigned char data[];
};

/* Returns size zeroed bytes, 16-byte aligned, or NULL when out of memory. */
void *arena_alloc(arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    arena_chunk *c = a->head;
    if (!c || c->used + size > c->cap) {
        size_t cap = size > 65536 ? size : 65536;
        c = calloc(1, sizeof(arena_chunk) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

/* Copies s into the arena. */
char *arena_strdup(arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* printf into a new arena string. */
char *arena_printf(arena *a, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return arena_strdup(a, buf);
}

/* Frees every chunk at once. */
void arena_free(arena *a) {
    for (arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}

/* ---- text ----------------------------------------------------------------- */

/* Makes room for n more bytes; sets oom on failure. */
static bool text_reserve(text *t, size_t n) {
    if (t->oom)
        return false;
    if (t->len + n + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + n + 1)
        cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s) {
        t->oom = true;
        return false;
    }
    t->s = s;
    t->cap = cap;
    return true;
}

/* Appends formatted text. */
void text_printf(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !text_reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Appends s as it is. */
void text_puts(text *t, const char *s) {
    size_t n = strlen(s);
    if (!text_reserve(t, n))
        return;
    memcpy(t->s + t->len, s, n + 1);
    t->len += n;
}

/* Appends the first n bytes of s so that they are safe both between the
 * quotes of a C string literal and inside a C comment: '"', '\\' and every
 * '?' (no trigraph can form) are escaped; newlines, tabs, other control bytes
 * and non-ASCII bytes become escapes; a '/' next to a '*' becomes \057, so
 * neither a comment's end nor a nested opener can appear. */
static void escape_n(text *t, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool by_star = (i > 0 && s[i - 1] == '*') || s[i + 1] == '*';
        if (c == '"' || c == '\\' || c == '?')
            text_printf(t, "\\%c", c);
        else if (c == '\n')
            text_puts(t, "\\n");
        else if (c == '\t')
            text_puts(t, "\\t");
        else if (c < 0x20 || c >= 0x7f || (c == '/' && by_star))
            text_printf(t, "\\%03o", c);
        else
            text_printf(t, "%c", c);
    }
}

/* Appends s escaped (escape_n): the one function through which user strings
 * (paths, file names, column names) reach emitted text. */
void text_escaped(text *t, const char *s) {
    if (s)
        escape_n(t, s, strlen(s));
}

/* s escaped as by text_escaped, cut after max_len bytes (then "..."), as an
 * arena string; for user strings in emitted comments and in messages. */
const char *arena_escaped(arena *a, const char *s, size_t max_len) {
    text t = {0};
    size_t len = s ? strlen(s) : 0;
    escape_n(&t, s ? s : "", len < max_len ? len : max_len);
    if (len > max_len)
        text_puts(&t, "...");
    const char *r = t.oom ? NULL : arena_strdup(a, t.s ? t.s : "");
    text_free(&t);
    return r ? r : "?";
}

void text_free(text *t) {
    free(t->s);
    *t = (text){0};
}

/* Appends template `name`, replacing each {{KEY}} by its value in kv
 * (key, value, key, value, ..., NULL). */
int text_template(text *t, const char *name, const char *const *kv) {
    const char *p = template_find(name);
    if (!p)
        return -1;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            text_puts(t, p);
            break;
        }
        const char *close = strstr(open, "}}");
        if (!close)
            return -1;
        text_printf(t, "%.*s", (int)(open - p), p);
        size_t klen = (size_t)(close - open - 2);
        const char *val = NULL;
        for (int i = 0; kv[i]; i += 2)
            if (strlen(kv[i]) == klen && !memcmp(kv[i], open + 2, klen))
                val = kv[i + 1];
        if (!val)
            return -1;
        text_puts(t, val);
        p = close + 2;
    }
    return t->oom ? -1 : 0;
}

/* ---- the builders' guards --------------------------------------------------- */

/* Checked int arithmetic for sizes. GCC's and Clang's overflow builtins
 * compute the exact result and say whether it fits, without the undefined
 * behaviour of a signed overflow; every size a shape rule derives from the
 * user's numbers (a dilated window, padding, a concatenation, gates times
 * units) goes through these. */
bool int_mul(int a, int b, int *out) {
    int r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

bool int_add(int a, int b, int *out) {
    int r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* Elements of s with the batch dimension as `batch`: counted in int, since
 * nothing past ELEMS_MAX (INT_MAX) is valid; -1 past it or for a size below 1. */
long shape_elems(const shape *s, int batch) {
    int n = 1;
    for (int i = 0; i < s->rank; i++) {
        int d = s->d[i] == CG_BATCH ? batch : s->d[i];
        if (d < 1 || !int_mul(n, d, &n))
            return -1;
    }
    return n;
}

/* Records why `what` (shape s) does not fit the emitted code at `batch`
 * samples; 0 when it fits. */
int check_elems(cg_graph *g, cg_src src, int layer, const char *what, const shape *s, int batch) {
    if (shape_elems(s, batch) >= 0)
        return 0;
    char sb[64];
    for (int i = 0; i < s->rank; i++)
        if (s->d[i] < 1 && !(i == 0 && s->d[i] == CG_BATCH))
            return graph_error(g, src, layer, "%s has shape %s: sizes must be positive", what,
                               shape_str(s, sb, sizeof sb));
    if (!shape_batched(s))
        return graph_error(g, src, layer, "%s has shape %s: more than %ld elements, past the int indices of the "
                           "emitted code", what, shape_str(s, sb, sizeof sb), ELEMS_MAX);
    if (batch == 1)
        return graph_error(g, src, layer, "%s has shape %s: more than %ld elements per sample, past the int indices "
                           "of the emitted code", what, shape_str(s, sb, sizeof sb), ELEMS_MAX);
    return graph_error(g, src, layer, "%s has shape %s: more than %ld elements at the maximum batch %d, past the int "
                       "indices of the emitted code (lower max_batch)", what, shape_str(s, sb, sizeof sb), ELEMS_MAX,
                       batch);
}

/* graph_add for the shape rules: the node's elements per sample checked
 * first (the verify pass checks them again at the maximum batch). */
int node_add(cg_graph *g, const node *nd) {
    if (g->failed)
        return -1;
    if (shape_elems(&nd->sh, 1) < 0) {
        char what[64];
        snprintf(what, sizeof what, "the result of %s", op_table[nd->op].name);
        return check_elems(g, nd->src, g->cur_layer, what, &nd->sh, 1);
    }
    return graph_add(g, *nd);
}

/* Checks an initializer: a known kind with finite parameters in range. */
int check_init(cg_graph *g, cg_src src, int layer, const char *what, cg_init in) {
    switch (in.kind) {
    case CG_INIT_DEFAULT: case CG_INIT_ZEROS: case CG_INIT_ONES: case CG_INIT_GLOROT_UNIFORM: case CG_INIT_HE_NORMAL:
    case CG_INIT_ORTHOGONAL:
        return 0;
    case CG_INIT_CONSTANT:
        if (isfinite(in.a))
            return 0;
        return graph_error(g, src, layer, "%s: the constant initializer's value %g is not a finite number", what,
                           (double)in.a);
    case CG_INIT_NORMAL:
        if (isfinite(in.a) && isfinite(in.b) && in.b >= 0.0f)
            return 0;
        return graph_error(g, src, layer, "%s: normal initializer of mean %g and standard deviation %g: both must "
                           "be finite, the deviation at least 0", what, (double)in.a, (double)in.b);
    case CG_INIT_UNIFORM:
        if (isfinite(in.a) && isfinite(in.b) && in.a <= in.b)
            return 0;
        return graph_error(g, src, layer, "%s: uniform initializer over [%g, %g): both ends must be finite, the "
                           "low one at most the high one", what, (double)in.a, (double)in.b);
    }
    return graph_error(g, src, layer, "%s: unknown initializer kind %d", what, (int)in.kind);
}

/* A weight of the current layer: its initializer and size checked, then
 * made (or found, when the layer is applied again). */
int weight_add(cg_graph *g, cg_src src, const char *role, const shape *sh, cg_init init) {
    if (g->failed)
        return -1;
    char what[2 * CG_MAX_NAME + 64];
    snprintf(what, sizeof what, "weight %s/%s", g->cur_layer >= 0 ? g->layers[g->cur_layer].name : g->name, role);
    if (check_init(g, src, g->cur_layer, what, init) || check_elems(g, src, g->cur_layer, what, sh, 1))
        return -1;
    return graph_layer_variable(g, src, role, *sh, init);
}

/* ---- optimizers: the table of optimizers.def -------------------------------- */

/* Each kind's enum member and its name in messages. */
static const struct {
    const char *member, *name;
} optim_kinds[] = {
#define CG_OPTIMIZER_KIND(member, name) [member] = {#member, name},
#include "optimizers.def"
};
#define OPTIM_KINDS (sizeof optim_kinds / sizeof optim_kinds[0])

const optim_option optim_options[OPTION_COUNT] = {
#define CG_OPTIMIZER_OPTION(id, field, key, label, lo, hi, range) \
    [OPTION_BIT_##id] = {offsetof(cg_optimizer, field), key, label, lo, hi, range},
#include "optimizers.def"
};

enum {
#define CG_OPTIMIZER(id, ...) OPTIM_##id,
#include "optimizers.def"
};

#define OPTIM_LIST_(...) __VA_ARGS__
static const optim_row optim_rows[] = {
#define CG_OPTIMIZER(id, kind, when, slots, portable, host, options, keys, update, step, words)              \
    [OPTIM_##id] = {#id, kind, slots, {[CG_HOST] = host, [CG_PORTABLE] = portable}, options,                \
                    (const char *const[]){OPTIM_LIST_ keys}, update, step, words},
#include "optimizers.def"
};

/* The first row of o's kind whose condition holds for o; NULL for an unknown kind. */
const optim_row *optim_row_of(const cg_optimizer *o) {
#define CG_OPTIMIZER(id, kind_, when, ...) \
    if (o->kind == kind_ && (when))       \
        return &optim_rows[OPTIM_##id];
#include "optimizers.def"
    return NULL;
}

/* The value of hyperparameter `option` of o. */
float optim_value(const cg_optimizer *o, int option) {
    float v;
    memcpy(&v, (const char *)o + optim_options[option].offset, sizeof v);
    return v;
}

/* Floats of optimizer state per trainable float: the row's slots. */
size_t optim_slots(const cg_graph *g) {
    const optim_row *r = g->has_opt ? optim_row_of(&g->opt) : NULL;
    return r ? (size_t)r->slots : 0;
}

/* Checks an optimizer: a known kind, then each hyperparameter of its row
 * (and those of every optimizer) in its range; NaN fails every range. */
int check_optimizer(cg_graph *g, cg_src src, const char *who, const cg_optimizer *o) {
    const optim_row *r = optim_row_of(o);
    if (!r) {
        char kinds[256] = "";   /* "CG_SGD, CG_ADAM or CG_RMSPROP" */
        for (size_t k = 0, len = 0; k < OPTIM_KINDS && len < sizeof kinds; k++)
            len += (size_t)snprintf(kinds + len, sizeof kinds - len, "%s%s",
                                    k == 0 ? "" : k + 1 < OPTIM_KINDS ? ", " : " or ", optim_kinds[k].member);
        return graph_error(g, src, -1, "%s: unknown optimizer kind %d (%s)", who, (int)o->kind, kinds);
    }
    for (int k = 0; k < OPTION_COUNT; k++) {
        const optim_option *op = &optim_options[k];
        float v = optim_value(o, k);
        bool every = OPTIONS_EVERY >> k & 1;
        if (((r->options | OPTIONS_EVERY) >> k & 1) && !(v >= op->lo && v < op->hi))
            return graph_error(g, src, -1, "%s: %s%s%s %s, got %g", who, every ? "" : optim_kinds[o->kind].name,
                               every ? "" : "'s ", op->label, op->range, (double)v);
    }
    return 0;
}

/* Finds the graph of a public op's operands, recording what is wrong with
 * them in every graph they name. */
cg_graph *operands_graph(cg_src src, const char *what, const cg_t *ts, int n) {
    cg_graph *g = NULL;
    for (int i = 0; i < n && !g; i++)
        g = ts[i].g;
    if (!g)
        return NULL;
    for (int i = 0; i < n; i++) {
        const cg_t *t = &ts[i];
        if (t->g == g && t->id >= 0 && t->id < g->nnodes)
            continue;
        for (int j = 0; j < n; j++) {   /* each graph named once, the first operand's first */
            cg_graph *h = ts[j].g;
            bool seen = !h;
            for (int k = 0; k < j && !seen; k++)
                seen = ts[k].g == h;
            if (seen)
                continue;
            if (!t->g)
                graph_error(h, src, h->cur_layer, "%s: operand %d is not a tensor of any graph", what, i + 1);
            else if (t->g != g)
                graph_error(h, src, h->cur_layer, "%s: the operands belong to different graphs", what);
            else
                graph_error(h, src, h->cur_layer, "%s: operand %d is not a tensor of this graph (id %d)", what, i + 1,
                            t->id);
        }
        return NULL;
    }
    return g->failed ? NULL : g;
}

/* Checks every node's size at `batch` samples and every variable's initializer. */
int check_nodes(cg_graph *g, int batch) {
    for (int id = 0; id < g->nnodes; id++) {
        const node *n = &g->nodes[id];
        bool big = shape_elems(&n->sh, batch) < 0;
        if (!big && n->op != OP_VARIABLE)
            continue;
        char what[CG_MAX_NAME + 64];
        snprintf(what, sizeof what, "%s %s",
                 n->op == OP_VARIABLE ? "variable" : n->op == OP_PLACEHOLDER ? "input" : "tensor", n->name);
        if ((big && check_elems(g, n->src, n->layer, what, &n->sh, batch)) ||
            (n->op == OP_VARIABLE && check_init(g, n->src, n->layer, what, g->vars[n->var].init)))
            return -1;
    }
    return 0;
}
