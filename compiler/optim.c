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

/* Checks an optimizer: a known kind, then each hyperparameter of its row
 * (and those of every optimizer) in its range; NaN fails every range. */
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
        if (((r->options | OPTIONS_EVERY) >> k & 1) && !(v >= op->lo && v < op->hi))
            return graph_error(g, src, -1, "%s: %s%s%s %s, got %g", who, every ? "" : optim_kinds[o->kind].name,
                               every ? "" : "'s ", op->label, op->range, (double)v);
    }
    return 0;
}
