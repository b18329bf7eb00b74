/* graph.c: the graph IR. Nodes live in one array and name their inputs by
 * index; identical nodes are made once (hash-consing), which shares the
 * common subexpressions the backward graph produces. */
#include "cgrad_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Leaves (placeholders, variables, constants): no gradient rule, no kernel, no cost. */
const op_family op_family_leaf = {"leaf", NULL, NULL, NULL, NULL, NULL};

const op_info op_table[OP_COUNT] = {
#define OP(name, arity, cat, family, args, formula) {#name, arity, CAT_##cat, &op_family_##family, args, formula},
#include "ops/ops.def"
#undef OP
};

/* Public: a new, empty graph. NULL when out of memory. */
cg_graph *cg_graph_new(const char *name)
{
    return graph_new((cg_src){0}, "graph", name);
}

/* A new, empty graph called name, which must be a valid model name (else
 * the graph is called "net" and holds the error, at src). */
cg_graph *graph_new(cg_src src, const char *what, const char *name)
{
    cg_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cur_layer = -1;
    g->max_batch = 64;
    g->name = "net";
    if (!name || !graph_check_name(g, src, what, name, 0))
        g->name = arena_strdup(&g->a, name ? name : "net");
    if (!g->name) {
        free(g);
        return NULL;
    }
    return g;
}

/* Public: frees the graph and everything made from it. */
void cg_graph_free(cg_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nentries; i++) {
        free(g->entries[i].sched);
        free(g->entries[i].offset);
        free(g->entries[i].scratch);
        free(g->entries[i].first);
        free(g->entries[i].last);
    }
    free(g->nodes);
    free(g->htab);
    free(g->vars);
    free(g->layers);
    arena_free(&g->a);
    free(g);
}

bool cg_failed(const cg_graph *g)
{
    return !g || g->failed;
}
const char *cg_error(const cg_graph *g)
{
    return !g ? "out of memory" : g->err;
}
void cg_set_max_batch(cg_graph *g, int max_batch)
{
    if (g && max_batch > 0)
        g->max_batch = max_batch;
}

/* Records the first error as "file:line: layer: message". */
int graph_error(cg_graph *g, cg_src src, int layer, const char *fmt, ...)
{
    if (g->failed)
        return -1;
    g->failed = true;
    size_t len = 0;
    const char *file = src.file ? strrchr(src.file, '/') : NULL;
    file = file ? file + 1 : (src.file ? src.file : g->name);
    len += (size_t)snprintf(g->err, sizeof g->err, "%s:%d: ", file, src.line);
    if (layer >= 0 && layer < g->nlayers)
        len += (size_t)snprintf(g->err + len, sizeof g->err - len, "%s: ", g->layers[layer].name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err + len, sizeof g->err - len, fmt, ap);
    va_end(ap);
    return -1;
}

node *graph_node(cg_graph *g, int id)
{
    return &g->nodes[id];
}

/* Hash of the fields that make two nodes the same computation. */
static unsigned node_hash(const node *n)
{
    unsigned h = 2166136261u;
#define MIX(v) (h = (h ^ (unsigned)(v)) * 16777619u)
    MIX(n->op);
    for (int i = 0; i < n->nin; i++)
        MIX(n->in[i]);
    MIX(n->axes);
    MIX(n->keepdims | n->ta << 1 | n->tb << 2 | n->sparse << 3 | n->per_n << 4);
    MIX(n->act);
    MIX(n->ract);
    MIX(n->uid);
    MIX(n->axis);
    MIX(n->begin);
    for (size_t i = 0; i < sizeof n->sp / sizeof(int); i++)
        MIX(((const int *)&n->sp)[i]);
    unsigned bits;
    memcpy(&bits, &n->alpha, sizeof bits);
    MIX(bits);
    for (int i = 0; i < n->sh.rank; i++)
        MIX(n->sh.d[i]);
#undef MIX
    return h;
}

/* True when a and b compute the same thing. */
static bool node_same(const node *a, const node *b)
{
    if (a->op != b->op || a->nin != b->nin || a->axes != b->axes || a->keepdims != b->keepdims || a->ta != b->ta ||
        a->tb != b->tb || a->sparse != b->sparse || a->per_n != b->per_n || a->act != b->act || a->alpha != b->alpha ||
        a->ract != b->ract || !shape_equal(&a->sh, &b->sh) || a->uid != b->uid || a->axis != b->axis ||
        a->begin != b->begin || memcmp(&a->sp, &b->sp, sizeof a->sp))
        return false;
    for (int i = 0; i < a->nin; i++)
        if (a->in[i] != b->in[i])
            return false;
    return true;
}

/* Grows the hash table and re-inserts every node that may be shared. */
static int htab_grow(cg_graph *g)
{
    int cap = g->hcap ? g->hcap * 2 : 1024;
    int *t = malloc(sizeof(int) * (size_t)cap);
    if (!t)
        return -1;
    for (int i = 0; i < cap; i++)
        t[i] = -1;
    free(g->htab);
    g->htab = t;
    g->hcap = cap;
    for (int id = 0; id < g->nnodes; id++) {
        if (op_table[g->nodes[id].op].arity == 0 && g->nodes[id].op != OP_CONST)
            continue;
        unsigned h = node_hash(&g->nodes[id]) & (unsigned)(cap - 1);
        while (t[h] >= 0)
            h = (h + 1) & (unsigned)(cap - 1);
        t[h] = id;
    }
    return 0;
}

/* Returns a name not used by any node: base, base_2, base_3, ... */
const char *graph_unique_name(cg_graph *g, const char *base)
{
    size_t size = strlen(base) + 16; /* never cut: a cut name could repeat for ever */
    char *buf = arena_alloc(&g->a, size);
    if (!buf)
        return NULL;
    for (int k = 1; k < INT_MAX; k++) {
        if (k == 1)
            snprintf(buf, size, "%s", base);
        else
            snprintf(buf, size, "%s_%d", base, k);
        bool used = false;
        for (int i = 0; i < g->nnodes && !used; i++)
            used = g->nodes[i].name && !strcmp(g->nodes[i].name, buf);
        if (!used)
            return buf;
    }
    return NULL;
}

/* Default buffer name: layer and op, "dense_1_matmul". */
static const char *default_name(cg_graph *g, const node *n)
{
    char base[256], op[32];
    size_t i = 0;
    for (const char *p = op_table[n->op].name; *p && i + 1 < sizeof op; p++)
        op[i++] = (char)tolower((unsigned char)*p);
    op[i] = 0;
    const char *scope = g->cur_layer >= 0 ? g->layers[g->cur_layer].name : "t";
    snprintf(base, sizeof base, "%s_%s", scope, op); /* kernels add _fwd or _bwd */
    return graph_unique_name(g, base);
}

/* Adds node nd (or finds an identical one); returns its id, -1 on error. */
int graph_add(cg_graph *g, node nd)
{
    if (g->failed)
        return -1;
    bool shareable = op_table[nd.op].arity > 0 || nd.op == OP_CONST;
    unsigned slot = 0;
    if (shareable) {
        if (g->nnodes * 2 >= g->hcap && htab_grow(g))
            return graph_error(g, nd.src, g->cur_layer, "out of memory");
        unsigned h = node_hash(&nd) & (unsigned)(g->hcap - 1);
        for (; g->htab[h] >= 0; h = (h + 1) & (unsigned)(g->hcap - 1))
            if (node_same(&g->nodes[g->htab[h]], &nd))
                return g->htab[h];
        slot = h; /* filled once the node exists */
    }
    if (g->nnodes == g->cap) {
        int cap = g->cap ? g->cap * 2 : 256;
        node *nodes = realloc(g->nodes, sizeof(node) * (size_t)cap);
        if (!nodes)
            return graph_error(g, nd.src, g->cur_layer, "out of memory");
        g->nodes = nodes;
        g->cap = cap;
    }
    if (shareable)
        g->htab[slot] = g->nnodes;
    nd.layer = g->cur_layer;
    nd.backward = g->in_backward;
    if (!nd.name)
        nd.name = default_name(g, &nd);
    g->nodes[g->nnodes] = nd;
    return g->nnodes++;
}

/* Starts a layer: new nodes are named after it. Returns its index. */
int graph_begin_layer(cg_graph *g, const char *kind, const char *name, cg_src src)
{
    if (g->nlayers == g->lcap) {
        int cap = g->lcap ? g->lcap * 2 : 16;
        layer *l = realloc(g->layers, sizeof(layer) * (size_t)cap);
        if (!l)
            return graph_error(g, src, -1, "out of memory");
        g->layers = l;
        g->lcap = cap;
    }
    const char *copy = arena_strdup(&g->a, name);
    if (!copy)
        return graph_error(g, src, -1, "out of memory");
    g->layers[g->nlayers] = (layer){copy, kind, src, -1};
    g->cur_layer = g->nlayers;
    return g->nlayers++;
}

/* Names the emitted code uses itself (its entry points' parameters, the C
 * library's functions it calls), and C's keywords: not for users. */
static const char *const reserved[] = {
    "s",     "n",        "out",     "batch_loss", "batch_metrics", "rng",    "cols",     "i",        "j",
    "sw",    "expf",     "logf",    "log1pf",     "sqrtf",         "powf",   "tanhf",    "erff",     "fabsf",
    "fmaxf", "fminf",    "floorf",  "memcpy",     "memset",        "auto",   "break",    "case",     "char",
    "const", "continue", "default", "do",         "double",        "else",   "enum",     "extern",   "float",
    "for",   "goto",     "if",      "inline",     "int",           "long",   "register", "restrict", "return",
    "short", "signed",   "sizeof",  "static",     "struct",        "switch", "typedef",  "union",    "unsigned",
    "void",  "volatile", "while",
};

/* What is wrong with name as a C identifier of the emitted code (flags:
 * NAME_SLASH lets '/' separate parts, which the emitter maps to '_';
 * NAME_BARE: the name is used alone, so the emitted code's own names and C's
 * keywords are refused), written into why; 0 when nothing is. */
static int name_problem(const char *name, unsigned flags, char *why, size_t size)
{
    size_t len = name ? strlen(name) : 0;
    if (!name || !len)
        return snprintf(why, size, "is empty"), -1;
    if (len > CG_MAX_NAME)
        return snprintf(why, size, "is %zu characters long, at most %d are allowed", len, CG_MAX_NAME), -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool part_start = i == 0 || name[i - 1] == '/';
        if (c == '/' && (flags & NAME_SLASH) && !part_start && name[i + 1])
            continue;
        if (!isalnum(c) && c != '_') {
            char ch[16];
            snprintf(ch, sizeof ch, c > 0x20 && c < 0x7f ? "'%c'" : "byte 0x%02x", c);
            return snprintf(why, size, "holds %s at character %zu: a name is letters, digits and _%s", ch, i + 1,
                            flags & NAME_SLASH ? " (parts joined by /)" : ""),
                   -1;
        }
        if (part_start && isdigit(c))
            return snprintf(why, size, "starts with a digit"), -1;
    }
    if (name[0] == '_' && (name[1] == '_' || isupper((unsigned char)name[1])))
        return snprintf(why, size, "starts with \"__\" or \"_\" and a capital, which C reserves"), -1;
    for (size_t i = 0; (flags & NAME_BARE) && i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(name, reserved[i]))
            return snprintf(why, size, "is a name the emitted code uses itself (or a C keyword)"), -1;
    return 0;
}

/* Checks a user's name (name_problem); records "WHAT name "..." is not
 * valid: why" at src and returns -1 when it is not valid. */
int graph_check_name(cg_graph *g, cg_src src, const char *what, const char *name, unsigned flags)
{
    char why[128];
    if (!name_problem(name, flags, why, sizeof why))
        return 0;
    return graph_error(g, src, g->cur_layer, "%s name \"%s\" %s", what, name ? arena_escaped(&g->a, name, 40) : "",
                       why);
}

/* The C identifier of a user name: '/' becomes '_'. */
static const char *c_ident(cg_graph *g, const char *name)
{
    char *s = arena_strdup(&g->a, name);
    for (char *p = s; p && *p; p++)
        if (*p == '/')
            *p = '_';
    return s;
}

/* Checks a user shape: rank 0..4, positive dims, batch only first. */
static int check_shape(cg_graph *g, cg_src src, const char *what, cg_shape s, shape *out)
{
    if (s.rank < 0 || s.rank > CG_MAX_RANK)
        return graph_error(g, src, g->cur_layer, "%s: rank %d, at most %d dimensions are supported", what, s.rank,
                           CG_MAX_RANK);
    out->rank = s.rank;
    for (int i = 0; i < s.rank; i++) {
        if (s.dims[i] <= 0 && !(i == 0 && s.dims[i] == CG_BATCH))
            return graph_error(g, src, g->cur_layer,
                               "%s: dimension %d is %d; sizes must be positive "
                               "(and only the first may be CG_BATCH)",
                               what, i, s.dims[i]);
        out->d[i] = s.dims[i];
    }
    return check_elems(g, src, g->cur_layer, what, out, 1); /* fan-in, fan-out and sizes then fit */
}

/* Public: an input fed by the caller. */
cg_t cg_placeholder_at(cg_src src, cg_graph *g, const char *name, cg_shape s)
{
    if (!g || g->failed)
        return (cg_t){g, -1};
    node nd = {.op = OP_PLACEHOLDER, .src = src};
    if (graph_check_name(g, src, "placeholder", name, NAME_SLASH | NAME_BARE))
        return (cg_t){g, -1};
    if (check_shape(g, src, name, s, &nd.sh))
        return (cg_t){g, -1};
    if (g->ninputs == (int)(sizeof g->inputs / sizeof g->inputs[0]))
        return (cg_t){g, graph_error(g, src, -1, "%s: too many placeholders (at most 24)", name)};
    nd.name = graph_unique_name(g, c_ident(g, name));
    nd.var = g->ninputs;
    int id = graph_add(g, nd);
    if (id >= 0)
        g->inputs[g->ninputs++] = id;
    return (cg_t){g, id};
}

/* Makes a variable node; fan_in and fan_out as Keras computes them. */
static int make_variable(cg_graph *g, cg_src src, const char *name, shape sh, cg_init init)
{
    if (g->nvars == g->vcap) {
        int cap = g->vcap ? g->vcap * 2 : 32;
        var *v = realloc(g->vars, sizeof(var) * (size_t)cap);
        if (!v)
            return graph_error(g, src, g->cur_layer, "out of memory");
        g->vars = v;
        g->vcap = cap;
    }
    for (int i = 0; i < g->nvars; i++)
        if (!strcmp(g->vars[i].name, name))
            return graph_error(g, src, g->cur_layer, "a variable named \"%s\" already exists", name);
    int fan_in = sh.rank >= 2 ? sh.d[sh.rank - 2] : (sh.rank == 1 ? sh.d[0] : 1);
    int fan_out = sh.rank >= 1 ? sh.d[sh.rank - 1] : 1;
    for (int i = 0; i + 2 < sh.rank; i++) {
        fan_in *= sh.d[i];
        fan_out *= sh.d[i];
    }
    node nd = {.op = OP_VARIABLE, .sh = sh, .src = src, .var = g->nvars};
    nd.name = graph_unique_name(g, c_ident(g, name));
    int id = graph_add(g, nd);
    if (id < 0)
        return -1;
    g->vars[g->nvars++] = (var){id, arena_strdup(&g->a, name),  init, fan_in, fan_out, true,
                                0,  (size_t)shape_size(&sh, 1), 0,    0,      -1};
    return id;
}

/* Public: a trainable variable. */
cg_t cg_variable_at(cg_src src, cg_graph *g, const char *name, cg_shape s, cg_init init)
{
    if (!g || g->failed)
        return (cg_t){g, -1};
    if (graph_check_name(g, src, "variable", name, NAME_SLASH | NAME_BARE))
        return (cg_t){g, -1};
    shape sh;
    if (check_shape(g, src, name, s, &sh))
        return (cg_t){g, -1};
    if (shape_batched(&sh))
        return (cg_t){g, graph_error(g, src, -1, "%s: a variable cannot have a batch dimension", name)};
    return (cg_t){g, make_variable(g, src, name, sh, init)};
}

/* Layers make their weights through this: name "layer/role". */
int graph_layer_variable(cg_graph *g, cg_src src, const char *role, shape sh, cg_init init)
{
    const char *lname = g->cur_layer >= 0 ? g->layers[g->cur_layer].name : g->name;
    const char *name = arena_printf(&g->a, "%s/%s", lname, role);
    for (int i = 0; i < g->nvars; i++) /* the layer applied again (other mode, shared layer): same weight */
        if (!strcmp(g->vars[i].name, name)) {
            char s1[64], s2[64];
            if (!shape_equal(&g->nodes[g->vars[i].node].sh, &sh))
                return graph_error(g, src, g->cur_layer, "weight %s has shape %s, now asked for %s", name,
                                   shape_str(&g->nodes[g->vars[i].node].sh, s1, sizeof s1),
                                   shape_str(&sh, s2, sizeof s2));
            return g->vars[i].node;
        }
    return make_variable(g, src, name, sh, init);
}

/* Public: the static shape of a tensor (batch as CG_BATCH). */
cg_shape cg_shape_of(cg_t t)
{
    cg_shape s = {0, {0}};
    if (!t.g || t.id < 0 || t.id >= t.g->nnodes)
        return s;
    const shape *sh = &t.g->nodes[t.id].sh;
    s.rank = sh->rank;
    for (int i = 0; i < sh->rank; i++)
        s.dims[i] = sh->d[i];
    return s;
}

/* Appends entry e's memory plan and its schedule (node ids in order). */
static void dump_entry(cg_graph *g, const entry *e, text *t)
{
    plan_describe(g, e, "", false, t);
    text_printf(t, "  schedule of %s:", e->fname);
    for (int k = 0; k < e->nsched; k++)
        text_printf(t, " %%%d", e->sched[k]);
    text_puts(t, "\n");
}

/* Writes one line per node: id, name, op, inputs, shape, attributes, layer;
 * once planned, each entry point's schedule and memory plan. */
void graph_dump(cg_graph *g, text *t)
{
    text_printf(t, "graph %s\n", g->name);
    for (int id = 0; id < g->nnodes; id++) {
        node *n = &g->nodes[id];
        char sb[64];
        text_printf(t, "%%%d %s = %s", id, n->name, op_table[n->op].name);
        for (int i = 0; i < n->nin; i++)
            text_printf(t, "%s%%%d", i ? ", " : " ", n->in[i]);
        text_printf(t, " : %s", shape_str(&n->sh, sb, sizeof sb));
        if (n->op == OP_CONST)
            text_printf(t, " value=%g%s", (double)n->alpha, n->per_n ? "/n" : "");
        if (op_table[n->op].cat == CAT_REDUCE)
            text_printf(t, " axes=0x%x%s", n->axes, n->keepdims ? " keepdims" : "");
        if (n->op == OP_SLICE || n->op == OP_UNSLICE || n->op == OP_CONCAT)
            text_printf(t, " axis=%d begin=%d", n->axis, n->begin);
        if (n->op == OP_MATMUL || n->op == OP_DENSE)
            text_printf(t, "%s%s", n->ta ? " ta" : "", n->tb ? " tb" : "");
        if (n->op == OP_DENSE || n->op == OP_ACT_BWD || n->op == OP_ACT || n->op == OP_ACT_BWD_X ||
            (n->op == OP_MAX_POOL_BWD && n->act != CG_LINEAR))
            text_printf(t, " act=%s", emit_act_name(n->act));
        if (op_table[n->op].cat == CAT_SEQ && n->op != OP_EMBEDDING && n->op != OP_EMBEDDING_BWD)
            text_printf(t, " act=%s ract=%s", emit_act_name(n->act), emit_act_name(n->ract));
        if (n->layer >= 0 && n->layer < g->nlayers)
            text_printf(t, " layer=%s", g->layers[n->layer].name);
        if (n->backward && n->op != OP_CONST && n->grad_of >= 0 && n->grad_of < id && !g->nodes[n->grad_of].backward)
            text_printf(t, " grad_of=%%%d", n->grad_of);
        if (n->backward)
            text_puts(t, " [bwd]");
        text_puts(t, "\n");
    }
    for (int k = 0; k < g->nentries; k++) /* planned: after the plan pass */
        if (g->entries[k].sched)
            dump_entry(g, &g->entries[k], t);
}

/* Elements of s with the batch dimension as `batch`: counted in int, since
 * nothing past ELEMS_MAX (INT_MAX) is valid; -1 past it or for a size below 1. */
long shape_elems(const shape *s, int batch)
{
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
int check_elems(cg_graph *g, cg_src src, int layer, const char *what, const shape *s, int batch)
{
    if (shape_elems(s, batch) >= 0)
        return 0;
    char sb[64];
    for (int i = 0; i < s->rank; i++)
        if (s->d[i] < 1 && !(i == 0 && s->d[i] == CG_BATCH))
            return graph_error(g, src, layer, "%s has shape %s: sizes must be positive", what,
                               shape_str(s, sb, sizeof sb));
    if (!shape_batched(s))
        return graph_error(g, src, layer,
                           "%s has shape %s: more than %ld elements, past the int indices of the "
                           "emitted code",
                           what, shape_str(s, sb, sizeof sb), ELEMS_MAX);
    if (batch == 1)
        return graph_error(g, src, layer,
                           "%s has shape %s: more than %ld elements per sample, past the int indices "
                           "of the emitted code",
                           what, shape_str(s, sb, sizeof sb), ELEMS_MAX);
    return graph_error(g, src, layer,
                       "%s has shape %s: more than %ld elements at the maximum batch %d, past the int "
                       "indices of the emitted code (lower max_batch)",
                       what, shape_str(s, sb, sizeof sb), ELEMS_MAX, batch);
}
