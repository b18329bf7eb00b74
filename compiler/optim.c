/* optim.c: the optimizers, one row each in optimizers.def: their kinds,
 * hyperparameters and the checks of them, the state they keep, how they are
 * emitted. */
#include "cgrad_int.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

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
/* clang-format off */
static const optim_row optim_rows[] = {
#define CG_OPTIMIZER(id, kind, when, slots, portable, host, options, keys, update, step, words)              \
    [OPTIM_##id] = {#id, kind, slots, {[CG_HOST] = host, [CG_PORTABLE] = portable}, options,                \
                    (const char *const[]){OPTIM_LIST_ keys}, update, step, words},
#include "optimizers.def"
};
/* clang-format on */

/* The first row of o's kind whose condition holds for o; NULL for an unknown kind. */
const optim_row *optim_row_of(const cg_optimizer *o)
{
#define CG_OPTIMIZER(id, kind_, when, ...) \
    if (o->kind == kind_ && (when))        \
        return &optim_rows[OPTIM_##id];
#include "optimizers.def"
    return NULL;
}

/* The value of hyperparameter `option` of o. */
float optim_value(const cg_optimizer *o, int option)
{
    float v;
    memcpy(&v, (const char *)o + optim_options[option].offset, sizeof v);
    return v;
}

/* Floats of optimizer state per trainable float: the row's slots. */
size_t optim_slots(const cg_graph *g)
{
    const optim_row *r = g->has_opt ? optim_row_of(&g->opt) : NULL;
    return r ? (size_t)r->slots : 0;
}

/* The learning rate of the first step: the schedule's, or the constant lr. */
float optim_initial_lr(const cg_optimizer *o)
{
    const cg_schedule *s = &o->schedule;
    if (s->kind == CG_PIECEWISE_CONSTANT)
        return s->values[0];
    return s->kind == CG_SCHEDULE_NONE ? o->lr : s->initial_lr;
}

/* "ExponentialDecay", ...: Keras' name of schedule kind k; NULL for an unknown kind. */
const char *optim_schedule_name(cg_schedule_kind k)
{
    static const char *const names[] = {[CG_EXPONENTIAL_DECAY] = "ExponentialDecay",
                                        [CG_COSINE_DECAY] = "CosineDecay",
                                        [CG_PIECEWISE_CONSTANT] = "PiecewiseConstantDecay"};
    return k > CG_SCHEDULE_NONE && k <= CG_PIECEWISE_CONSTANT ? names[k] : NULL;
}

/* A piecewise schedule's problem, as text, or NULL when its boundaries and values are right. */
static const char *piecewise_problem(const cg_schedule *s, char *buf, size_t size)
{
    if (s->nboundaries < 1 || s->nboundaries > CG_MAX_BOUNDARIES)
        snprintf(buf, size, "takes 1 to %d boundaries, got %d", CG_MAX_BOUNDARIES, s->nboundaries);
    else if (s->nvalues != s->nboundaries + 1)
        snprintf(buf, size, "needs one value more than boundaries: %d boundaries, %d values", s->nboundaries,
                 s->nvalues);
    else {
        for (int i = 0; i < s->nboundaries; i++)
            if (s->boundaries[i] < 0 || (i > 0 && s->boundaries[i] <= s->boundaries[i - 1])) {
                snprintf(buf, size, "boundaries must be steps >= 0 in increasing order, got %d after %d",
                         s->boundaries[i], i ? s->boundaries[i - 1] : 0);
                return buf;
            }
        for (int i = 0; i < s->nvalues; i++)
            if (!(s->values[i] >= 0.0f && s->values[i] < INFINITY)) {
                snprintf(buf, size, "values must be finite and at least 0, got %g", (double)s->values[i]);
                return buf;
            }
        return NULL;
    }
    return buf;
}

/* The problem of schedule s, as text ("decay_steps must be positive, got
 * 0"), or NULL when it is right. */
static const char *schedule_problem(const cg_schedule *s, char *buf, size_t size)
{
    bool cosine = s->kind == CG_COSINE_DECAY, warmup = cosine && s->warmup_target != 0.0f;
    if (s->kind == CG_PIECEWISE_CONSTANT)
        return piecewise_problem(s, buf, size);
    if (!(s->initial_lr >= (warmup ? 0.0f : 0x1p-149f) && s->initial_lr < INFINITY))
        snprintf(buf, size, "initial_lr must be %s and finite, got %g", warmup ? "at least 0" : "positive",
                 (double)s->initial_lr);
    else if (s->decay_steps <= 0)
        snprintf(buf, size, "decay_steps must be positive, got %d", s->decay_steps);
    else if (!cosine && !(s->decay_rate > 0.0f && s->decay_rate < INFINITY))
        snprintf(buf, size, "decay_rate must be positive and finite, got %g", (double)s->decay_rate);
    else if (cosine && !(s->alpha >= 0.0f && s->alpha <= 1.0f))
        snprintf(buf, size, "alpha must lie in [0, 1], got %g", (double)s->alpha);
    else if (cosine && !(s->warmup_target >= 0.0f && s->warmup_target < INFINITY))
        snprintf(buf, size, "warmup_target must be finite and at least 0 (0: no warm-up), got %g",
                 (double)s->warmup_target);
    else if (cosine && (s->warmup_steps < 0 || (!warmup && s->warmup_steps > 0)))
        snprintf(buf, size, "warmup_steps must be %s, got %d",
                 warmup ? "at least 0" : "0 without a warmup_target (it warms up to warmup_target)", s->warmup_steps);
    else
        return NULL;
    return buf;
}

/* Checks the gradient clipping (at most one kind, as Keras) and the
 * learning-rate schedule of o. */
static int check_clip_schedule(cg_graph *g, cg_src src, const char *who, const cg_optimizer *o)
{
    char buf[160];
    if ((o->clipnorm > 0.0f) + (o->clipvalue > 0.0f) + (o->global_clipnorm > 0.0f) > 1)
        return graph_error(g, src, -1, "%s: set only one of clipnorm, clipvalue and global_clipnorm", who);
    if (o->schedule.kind == CG_SCHEDULE_NONE)
        return 0;
    const char *name = optim_schedule_name(o->schedule.kind), *problem;
    if (!name)
        return graph_error(g, src, -1,
                           "%s: unknown schedule kind %d (CG_EXPONENTIAL_DECAY, CG_COSINE_DECAY or "
                           "CG_PIECEWISE_CONSTANT)",
                           who, (int)o->schedule.kind);
    if ((problem = schedule_problem(&o->schedule, buf, sizeof buf)))
        return graph_error(g, src, -1, "%s: %s's %s", who, name, problem);
    return 0;
}

/* Checks an optimizer: a known kind, then each hyperparameter of its row
 * (and those of every optimizer; not lr when a schedule sets it) in its
 * range, NaN failing every range; then its clipping and schedule. */
int check_optimizer(cg_graph *g, cg_src src, const char *who, const cg_optimizer *o)
{
    const optim_row *r = optim_row_of(o);
    if (!r) {
        char kinds[256] = ""; /* "CG_SGD, CG_ADAM or CG_RMSPROP" */
        for (size_t k = 0, len = 0; k < OPTIM_KINDS && len < sizeof kinds; k++)
            len += (size_t)snprintf(kinds + len, sizeof kinds - len, "%s%s",
                                    k == 0                ? ""
                                    : k + 1 < OPTIM_KINDS ? ", "
                                                          : " or ",
                                    optim_kinds[k].member);
        return graph_error(g, src, -1, "%s: unknown optimizer kind %d (%s)", who, (int)o->kind, kinds);
    }
    for (int k = 0; k < OPTION_COUNT; k++) {
        const optim_option *op = &optim_options[k];
        float v = optim_value(o, k);
        bool every = OPTIONS_EVERY >> k & 1;
        if (k == OPTION_BIT_LR && o->schedule.kind != CG_SCHEDULE_NONE)
            continue; /* the schedule's learning rates are checked below */
        if (((r->options | OPTIONS_EVERY) >> k & 1) && !(v >= op->lo && v < op->hi))
            return graph_error(g, src, -1, "%s: %s%s%s %s, got %g", who, every ? "" : optim_kinds[o->kind].name,
                               every ? "" : "'s ", op->label, op->range, (double)v);
    }
    return check_clip_schedule(g, src, who, o);
}
