/* plan.c: the memory planner. For each entry point: which nodes it computes
 * (dead code is what no output needs), when each buffer is live, and where in
 * the one activation arena it lives: largest buffer first, into the lowest
 * offset that no buffer live at the same time occupies. */
#include "cgrad_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_ALIGN 16 /* floats: 64-byte aligned buffers */

/* Follows views (reshapes) to the node that owns the storage. */
int plan_storage_root(cg_graph *g, int id)
{
    while (g->nodes[id].op == OP_RESHAPE)
        id = g->nodes[id].in[0];
    return id;
}

/* True when node id's buffer is a variable's gradient (in the gradient block). */
static bool is_grad_home(cg_graph *g, int id)
{
    for (int i = 0; i < g->nvars; i++)
        if (g->vars[i].grad == id)
            return true;
    return false;
}

/* True when placeholder id is unpacked into a buffer of its own at the
 * start of an entry point (a functional model's inputs and labels, a
 * model's sample weights). */
bool plan_unpacked(cg_graph *g, int id)
{
    return g->nodes[id].op == OP_PLACEHOLDER && g->model && (g->model->functional || id == g->model->sample_weight);
}

/* True when node id gets a buffer in the arena. */
static bool in_arena(cg_graph *g, const entry *e, int id)
{
    op_kind op = g->nodes[id].op;
    if (plan_unpacked(g, id))
        return true;
    if (op_table[op].cat == CAT_LEAF || op == OP_RESHAPE)
        return false;
    return !(e->want_grads && is_grad_home(g, id));
}

typedef struct buf {
    int id;
    long *dst;       /* where its offset goes */
    long size;       /* floats, rounded up to PLAN_ALIGN */
    int first, last; /* schedule positions where it is written and last read */
    bool fixed;      /* placed already: a buffer of a forward pass shared with other entry points */
} buf;

/* What the plan of an entry point follows beyond its outputs (plan_with). */
typedef struct plan_shape {
    const bool *fwd;    /* the nodes of its forward pass, scheduled first; NULL: none */
    const bool *keep;   /* nodes live after the forward pass (another caller reads them); NULL: none */
    const entry *fixed; /* where the forward pass's buffers live (another entry's plan); NULL: anywhere */
} plan_shape;

/* Placed buffers first, then the largest; ties by id so that plans are reproducible. */
static int buf_cmp(const void *a, const void *b)
{
    const buf *x = a, *y = b;
    if (x->fixed != y->fixed)
        return x->fixed ? -1 : 1;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->id != y->id)
        return x->id - y->id;
    return x->first != y->first ? x->first - y->first : (x->last > y->last) - (x->last < y->last);
}

/* The schedule of entry e: every node its outputs (and the variables'
 * gradients, and the moving averages it updates) need, and every node of
 * its forward pass fwd (NULL: none); the forward pass's first, then the
 * others, each in id order; live[] marks them. Offsets start at -1. */
static void schedule(cg_graph *g, entry *e, bool *live, const bool *fwd)
{
    int nn = g->nnodes;
    for (int id = 0; fwd && id < nn; id++)
        live[id] = fwd[id];
    for (int k = 0; k < e->nout; k++)
        live[e->out[k]] = true;
    if (e->want_grads)
        for (int i = 0; i < g->nvars; i++)
            if (g->vars[i].grad >= 0)
                live[g->vars[i].grad] = true;
    for (int i = 0; i < e->nupd; i++)
        live[e->upd_val[i]] = live[e->upd_var[i]] = true;
    for (int id = nn - 1; id >= 0; id--)
        if (live[id])
            for (int i = 0; i < g->nodes[id].nin; i++)
                live[g->nodes[id].in[i]] = true;
    e->nsched = 0;
    for (int pass = fwd ? 0 : 1; pass < 2; pass++) /* the forward pass's nodes, then the others */
        for (int id = 0; id < nn; id++)
            if (live[id] && (!fwd || fwd[id] == (pass == 0)))
                e->sched[e->nsched++] = id;
    for (int id = 0; id < nn; id++) {
        e->offset[id] = -1;
        e->scratch[id] = -1;
        e->first[id] = e->last[id] = -1;
    }
    e->fwd_steps = 0;
    while (fwd && e->fwd_steps < e->nsched && fwd[e->sched[e->fwd_steps]])
        e->fwd_steps++;
}

/* The buffers of entry e with their lifetimes (schedule steps, from the
 * step that writes one to the last that reads it), into bufs[]; returns how
 * many, -1 when one is too large for the emitted int indices. */
static int lifetimes(cg_graph *g, entry *e, int *last, buf *bufs, const plan_shape *ps)
{
    for (int id = 0; id < g->nnodes; id++)
        last[id] = -1;
    for (int k = 0; k < e->nsched; k++) { /* last use of each storage root; outputs live to the end */
        int id = e->sched[k];
        for (int i = 0; i < g->nodes[id].nin; i++) {
            int r = plan_storage_root(g, g->nodes[id].in[i]);
            if (last[r] < k)
                last[r] = k;
        }
    }
    for (int k = 0; k < e->nout; k++)
        last[plan_storage_root(g, e->out[k])] = e->nsched;
    for (int i = 0; i < e->nupd; i++) /* moving averages are copied after the step */
        last[plan_storage_root(g, e->upd_val[i])] = e->nsched;
    for (int id = 0; ps->keep && id < g->nnodes; id++) /* live after the forward pass */
        if (ps->keep[id] && last[plan_storage_root(g, id)] < e->fwd_steps)
            last[plan_storage_root(g, id)] = e->fwd_steps;
    int nb = 0;
    for (int k = 0; k < e->nsched; k++) {
        int id = e->sched[k];
        long scratch = conv_scratch(g, id); /* a kernel's own working memory, live while it runs */
        long elems = shape_size(&g->nodes[id].sh, g->max_batch);
        if (elems > INT_MAX || scratch > INT_MAX) { /* emitted loops count with int */
            const node *bad = &g->nodes[id];
            char sb[64];
            return graph_error(g, bad->src, bad->layer,
                               "%s %s holds %ld floats at batch %d, more than the emitted "
                               "code can index (2^31 - 1)",
                               bad->name, shape_str(&bad->sh, sb, sizeof sb), elems > scratch ? elems : scratch,
                               g->max_batch);
        }
        bool fixed = ps->fixed && k < e->fwd_steps; /* where the shared forward pass puts it */
        if (scratch > 0) {
            e->scratch[id] = fixed ? ps->fixed->scratch[id] : -1;
            bufs[nb++] = (buf){id, &e->scratch[id], (scratch + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN, k, k, fixed};
        }
        if (!in_arena(g, e, id))
            continue;
        long size = (elems + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
        /* unpacked before the first kernel runs; labels, after the forward pass */
        int first = plan_unpacked(g, id) ? (k < e->fwd_steps ? 0 : e->fwd_steps) : k;
        e->offset[id] = fixed ? ps->fixed->offset[id] : -1;
        bufs[nb++] = (buf){id, &e->offset[id], size, first, last[id] < k ? k : last[id], fixed};
        e->first[id] = first;
        e->last[id] = last[id] < k ? k : last[id];
    }
    return nb;
}

/* First fit, largest first, among the already placed buffers that overlap
 * in time; then checks that no two buffers live at once share a float.
 * Returns the arena's size in floats. */
static size_t place(cg_graph *g, buf *bufs, int nb)
{
    size_t arena = 0;
    qsort(bufs, (size_t)nb, sizeof(buf), buf_cmp);
    for (int i = 0; i < nb; i++) {
        long off = bufs[i].fixed ? *bufs[i].dst : 0;
        for (bool moved = !bufs[i].fixed; moved;) {
            moved = false;
            for (int j = 0; j < i; j++) {
                bool overlap_time = bufs[j].first <= bufs[i].last && bufs[i].first <= bufs[j].last;
                long o = *bufs[j].dst;
                if (overlap_time && off < o + bufs[j].size && o < off + bufs[i].size) {
                    off = o + bufs[j].size;
                    moved = true;
                }
            }
        }
        *bufs[i].dst = off;
        if ((size_t)(off + bufs[i].size) > arena)
            arena = (size_t)(off + bufs[i].size);
    }
    for (int i = 0; i < nb; i++)
        for (int j = i + 1; j < nb; j++) {
            long oi = *bufs[i].dst, oj = *bufs[j].dst;
            if (bufs[j].first <= bufs[i].last && bufs[i].first <= bufs[j].last && oi < oj + bufs[j].size &&
                oj < oi + bufs[i].size)
                graph_error(g, (cg_src){0}, -1, "internal: planner overlapped %s and %s", g->nodes[bufs[i].id].name,
                            g->nodes[bufs[j].id].name);
        }
    return arena;
}

/* Plans entry e: its schedule (a forward pass's nodes first), lifetimes
 * (nodes ps->keep live after the forward pass), offsets (a forward pass's
 * where ps->fixed has them). */
static int plan_with(cg_graph *g, entry *e, const plan_shape *ps)
{
    int nn = g->nnodes;
    bool *live = calloc((size_t)nn, sizeof(bool));
    int *last = malloc(sizeof(int) * (size_t)nn);
    buf *bufs = malloc(sizeof(buf) * (size_t)nn * 2);
    free(e->sched);
    free(e->offset);
    free(e->scratch);
    free(e->first);
    free(e->last);
    e->sched = malloc(sizeof(int) * (size_t)nn);
    e->offset = malloc(sizeof(long) * (size_t)nn);
    e->scratch = malloc(sizeof(long) * (size_t)nn);
    e->first = malloc(sizeof(int) * (size_t)nn);
    e->last = malloc(sizeof(int) * (size_t)nn);
    if (!live || !last || !bufs || !e->sched || !e->offset || !e->scratch || !e->first || !e->last) {
        free(live), free(last), free(bufs);
        return graph_error(g, (cg_src){0}, -1, "out of memory");
    }
    schedule(g, e, live, ps->fwd);
    int nb = lifetimes(g, e, last, bufs, ps);
    e->arena_floats = nb < 0 ? 0 : place(g, bufs, nb);
    for (int id = 0; id < nn; id++) /* views share their root's offset */
        if (live[id] && g->nodes[id].op == OP_RESHAPE)
            e->offset[id] = e->offset[plan_storage_root(g, id)];
    free(live), free(last), free(bufs);
    return g->failed ? -1 : 0;
}

int plan_entry(cg_graph *g, entry *e)
{
    return plan_with(g, e, &(plan_shape){0});
}

/* The forward pass entry e calls, named after its mode, with the model
 * outputs it computes (*outs, *nouts): predict and eval_step run the model
 * in inference mode, train_step and a model's gradients in training mode.
 * NULL for a tape's entry points. */
static const char *forward_of(const cg_graph *g, const entry *e, const int **outs, int *nouts)
{
    const cg_model *m = g->model;
    *nouts = m ? m->noutputs : 0;
    if (m && (e->kind == ENTRY_PREDICT || e->kind == ENTRY_EVAL)) {
        *outs = m->outputs_infer;
        return "forward_infer";
    }
    if (m && (e->kind == ENTRY_TRAIN || e->kind == ENTRY_GRADIENTS)) {
        *outs = m->outputs;
        return "forward_train";
    }
    return NULL;
}

/* Plans the entry points that call the forward pass `name`, computing
 * outs[0 .. nouts): fwd[] marks its nodes. One caller plans as it likes;
 * several share the forward pass's offsets: the first caller plans as it
 * likes, keeping alive what any caller reads after the forward pass, and
 * the others put their forward buffers where it did, the rest around them. */
static int plan_forward(cg_graph *g, const char *name, const int *outs, int nouts, bool *fwd, bool *keep)
{
    int nn = g->nnodes, users = 0;
    for (int id = 0; id < nn; id++)
        fwd[id] = keep[id] = false;
    for (int k = 0; k < nouts; k++)
        fwd[outs[k]] = true;
    for (int id = nn - 1; id >= 0; id--)
        for (int i = 0; fwd[id] && i < g->nodes[id].nin; i++)
            fwd[g->nodes[id].in[i]] = true;
    entry *first = NULL;
    for (int k = 0; k < g->nentries; k++) {
        entry *e = &g->entries[k];
        if (e->fwd_name != name)
            continue;
        users++;
        first = first ? first : e;
        if (plan_with(g, e, &(plan_shape){fwd, NULL, NULL})) /* to learn what it reads after the forward pass */
            return -1;
        for (int j = e->fwd_steps; j < e->nsched; j++)
            for (int i = 0; i < g->nodes[e->sched[j]].nin; i++)
                keep[plan_storage_root(g, g->nodes[e->sched[j]].in[i])] |= fwd[g->nodes[e->sched[j]].in[i]];
        for (int i = 0; i < e->nout; i++)
            keep[plan_storage_root(g, e->out[i])] |= fwd[e->out[i]];
        for (int i = 0; i < e->nupd; i++)
            keep[plan_storage_root(g, e->upd_val[i])] |= fwd[e->upd_val[i]];
    }
    if (users < 2)
        return 0; /* planned above */
    int rc = plan_with(g, first, &(plan_shape){fwd, keep, NULL});
    for (int k = 0; !rc && k < g->nentries; k++)
        if (g->entries[k].fwd_name == name && &g->entries[k] != first)
            rc = plan_with(g, &g->entries[k], &(plan_shape){fwd, NULL, first});
    return rc;
}

/* Plans every entry point; those of a model call the forward pass of their
 * mode, whose buffers have the same offsets in each of them. */
int plan_entries(cg_graph *g)
{
    bool *fwd = malloc(sizeof(bool) * (size_t)g->nnodes), *keep = malloc(sizeof(bool) * (size_t)g->nnodes);
    int rc = fwd && keep ? 0 : graph_error(g, (cg_src){0}, -1, "out of memory");
    const int *outs[8];
    int nouts[8];
    for (int k = 0; k < g->nentries && k < 8; k++)
        g->entries[k].fwd_name = forward_of(g, &g->entries[k], &outs[k], &nouts[k]);
    for (int k = 0; !rc && k < g->nentries; k++) {
        const char *name = g->entries[k].fwd_name;
        bool seen = false; /* planned with an earlier caller */
        for (int j = 0; name && j < k; j++)
            seen = seen || g->entries[j].fwd_name == name;
        if (!name)
            rc = plan_entry(g, &g->entries[k]);
        else if (!seen)
            rc = plan_forward(g, name, outs[k], nouts[k], fwd, keep);
    }
    free(fwd), free(keep);
    return rc;
}

/* One row of a printed plan: an arena buffer, or a kernel's scratch. */
typedef struct plan_row {
    char name[96];
    long bytes, offset;
    int first, last; /* schedule steps, 0-based; last == nsched: read by the caller after the step */
    bool scratch;    /* a kernel's own working memory (im2col), live while it runs */
} plan_row;

/* The rows of entry e's plan in schedule order (a buffer, then its
 * kernel's scratch), into a new array; their count into *n. NULL when out of memory. */
static plan_row *plan_rows(const cg_graph *g, const entry *e, int *n)
{
    plan_row *rows = malloc(sizeof(plan_row) * (size_t)(2 * e->nsched + 1));
    *n = 0;
    for (int k = 0; rows && k < e->nsched; k++) {
        int id = e->sched[k];
        const node *nd = &g->nodes[id];
        if (e->offset[id] >= 0 && nd->op != OP_RESHAPE) {
            plan_row *r = &rows[(*n)++];
            *r = (plan_row){.bytes = 4 * shape_size(&nd->sh, g->max_batch),
                            .offset = 4 * e->offset[id],
                            .first = e->first[id],
                            .last = e->last[id] > e->nsched ? e->nsched : e->last[id]};
            snprintf(r->name, sizeof r->name, "%s", nd->name);
        }
        if (e->scratch[id] >= 0) {
            plan_row *r = &rows[(*n)++];
            *r = (plan_row){.bytes = 4 * conv_scratch((cg_graph *)g, id),
                            .offset = 4 * e->scratch[id],
                            .first = k,
                            .last = k,
                            .scratch = true};
            snprintf(r->name, sizeof r->name, "%s_cols", nd->name);
        }
    }
    return rows;
}

/* Appends the timeline of rows[0 .. n) over the steps of entry e: a ruler
 * of step numbers, then a row per buffer, '#' where it is live. */
static void plan_timeline(const entry *e, const plan_row *rows, int n, const char *lead, text *t)
{
    int w = 34; /* the table's column, or the longest name */
    for (int i = 0; i < n; i++)
        w = (int)strlen(rows[i].name) > w ? (int)strlen(rows[i].name) : w;
    text_printf(t, "%s  timeline: a row per buffer, a column per step; # live, > read by the caller after the last\n",
                lead);
    if (e->nsched >= 10) { /* the tens of every tenth step */
        text_printf(t, "%s  %-*s ", lead, w, "");
        for (int s = 1; s <= e->nsched / 10 * 10; s++)
            text_printf(t, "%c", s % 10 ? ' ' : '0' + s / 10 % 10);
        text_puts(t, "\n");
    }
    text_printf(t, "%s  %-*s ", lead, w, "step");
    for (int s = 1; s <= e->nsched; s++)
        text_printf(t, "%c", '0' + s % 10);
    text_puts(t, "\n");
    for (int i = 0; i < n; i++) {
        text_printf(t, "%s  %-*s ", lead, w, rows[i].name);
        for (int s = 0; s < e->nsched; s++)
            text_puts(t, s >= rows[i].first && s <= rows[i].last ? "#" : ".");
        text_puts(t, rows[i].last >= e->nsched ? ">\n" : "\n");
    }
}

/* Appends the memory plan of entry e, each line after lead (" * " inside a
 * comment): a title, then a table of each arena buffer with its bytes, its
 * live range (schedule steps, from 1) and its offset; with timeline, the
 * same buffers over the steps. */
void plan_describe(const cg_graph *g, const entry *e, const char *lead, bool timeline, text *t)
{
    int n, blank = (int)strlen(lead);
    while (blank > 0 && lead[blank - 1] == ' ')
        blank--;
    text_printf(t, "%.*s\n%s%s: %zu B of arena at batch %d, %d steps\n", blank, lead, lead, e->fname,
                4 * e->arena_floats, g->max_batch, e->nsched);
    text_printf(t, "%s  %-34s %12s %13s %12s\n", lead, "buffer", "bytes", "live (steps)", "offset B");
    plan_row *rows = plan_rows(g, e, &n);
    if (!rows) {
        t->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        char range[32];
        if (rows[i].scratch)
            snprintf(range, sizeof range, "%d", rows[i].first + 1);
        else if (rows[i].last >= e->nsched) /* an output: read by the caller */
            snprintf(range, sizeof range, "%d-end", rows[i].first + 1);
        else
            snprintf(range, sizeof range, "%d-%d", rows[i].first + 1, rows[i].last + 1);
        text_printf(t, "%s  %-34s %12ld %13s %12ld\n", lead, rows[i].name, rows[i].bytes, range, rows[i].offset);
    }
    if (timeline)
        plan_timeline(e, rows, n, lead, t);
    free(rows);
}

/* Appends the memory plan of every entry point of compiled graph g, with timelines (--plan). */
void plan_report(const cg_graph *g, text *t)
{
    text_printf(t,
                "memory plan of %s: one activation arena per entry point, planned at the maximum batch %d;\n"
                "a step is a node of the schedule, in order; a buffer is reused once dead\n",
                g->name, g->max_batch);
    for (int k = 0; k < g->nentries; k++)
        plan_describe(g, &g->entries[k], "", true, t);
}
