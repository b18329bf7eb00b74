/* ops/random.c: the dropout mask, the one op that draws random numbers in
 * the emitted code (from the state's own seeded generator). */
#include "../cgrad_int.h"

/* A mask of shape sh: 1 / (1 - rate) with probability 1 - rate, else 0. Never
 * shared with another node: each dropout layer draws its own. */
int op_dropout_mask(cg_graph *g, cg_src src, shape sh, float rate)
{
    node nd = {.op = OP_DROPOUT_MASK, .sh = sh, .alpha = rate, .src = src};
    return node_add(g, &nd);
}

/* Lowers the mask: a linear congruential step per element. */
static void lower_random(emit_ctx *e, int id)
{
    const node *n = &e->g->nodes[id];
    char count[64] = "", dim[16], rate[48], scale[48];
    size_t len = 0;
    for (int i = 0; i < n->sh.rank; i++)
        len += (size_t)snprintf(count + len, sizeof count - len, "%s%s", i ? " * " : "",
                                emit_dim(&n->sh, i, dim, sizeof dim));
    emit_float(n->alpha, rate, sizeof rate);
    emit_float(1.0f / (1.0f - n->alpha), scale, sizeof scale);
    const char *kv[] = {"COUNT", count, "RATE", rate, "SCALE", scale, NULL};
    if (text_template(e->t, "kernels/dropout_mask", kv))
        graph_error(e->g, n->src, n->layer, "internal: dropout template failed");
}

/* A mask has no inputs, so nothing to differentiate. */
static int grad_random(cg_graph *g, int id, int dy, int dx[3])
{
    (void)g, (void)id, (void)dy, (void)dx;
    return 0;
}

/* One draw per element. */
static long flops_random(cg_graph *g, int id)
{
    return shape_size(&g->nodes[id].sh, 1);
}

const op_family op_family_random = {"random", grad_random, lower_random, flops_random, NULL, NULL};
