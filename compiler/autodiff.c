/* autodiff.c: reverse-mode differentiation ahead of time. Walks the forward
 * graph from the loss back to the variables, asks each op's gradient rule
 * for the vector-Jacobian product of each input, and adds contributions that
 * arrive by several paths. The result is more graph: the backward pass. */
#include "cgrad_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The gradient rule of an op: its family's. */
static int apply_rule(cg_graph *g, int id, int dy, int dx[3])
{
    const op_family *f = op_table[g->nodes[id].op].family;
    if (!f->grad)
        return graph_error(g, g->nodes[id].src, g->nodes[id].layer, "%s: the op %s has no gradient rule",
                           g->nodes[id].name, op_table[g->nodes[id].op].name);
    return f->grad(g, id, dy, dx);
}

/* Renames backward node id "d_<base><suffix>" (unique) unless it has a d_ name already. */
static void name_backward(cg_graph *g, int id, const char *base, const char *suffix)
{
    if (!strncmp(g->nodes[id].name, "d_", 2))
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "d_%s%s", base, suffix);
    const char *name = graph_unique_name(g, buf);
    if (name)
        g->nodes[id].name = name;
}

/* How partial gradients of x name its consumer c: c's layer when c is the
 * one node of another layer that reads x; else c's own name, without its
 * layer's prefix when x is of the same layer. */
static const char *consumer_label(cg_graph *g, int x, int c)
{
    const node *cn = &g->nodes[c];
    int readers = 0;
    for (int id = 0; cn->layer >= 0 && id < g->nnodes; id++)
        for (int i = 0; !g->nodes[id].backward && g->nodes[id].layer == cn->layer && i < g->nodes[id].nin; i++)
            readers += g->nodes[id].in[i] == x;
    if (cn->layer >= 0 && cn->layer != g->nodes[x].layer && readers == 1)
        return g->layers[cn->layer].name;
    size_t len = cn->layer >= 0 ? strlen(g->layers[cn->layer].name) : 0;
    if (len && !strncmp(cn->name, g->layers[cn->layer].name, len) && cn->name[len] == '_' && cn->name[len + 1])
        return cn->name + len + 1;
    return cn->name;
}

/* True when node id has the name graph_add gives a node without one:
 * "<layer>_<op>", maybe with a number after it ("dense_1_mul_2"). */
static bool default_name(const cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    const char *scope = n->layer >= 0 ? g->layers[n->layer].name : "t", *p = n->name;
    size_t len = strlen(scope);
    if (strncmp(p, scope, len) || p[len] != '_')
        return false;
    p += len + 1;
    for (const char *op = op_table[n->op].name; *op; op++, p++)
        if (*p != tolower((unsigned char)*op))
            return false;
    if (*p == '_')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    return *p == 0;
}

/* Marks the nodes that the rule of node id made (ids first .. nnodes - 1):
 * made by id's rule, each the gradient of an input (dx[k]) or a step, and
 * names the steps "d_<input>_<op>" after the input they lead to (or after
 * id, when they lead to several or none). */
static void mark_rule(cg_graph *g, int id, int first, const int dx[3])
{
    int count = g->nnodes - first;
    unsigned *toward = calloc((size_t)(count > 0 ? count : 1), sizeof(unsigned));
    if (!toward)
        return; /* names only: the gradients stay right */
    for (int k = 2; k >= 0; k--)
        if (dx[k] >= first)
            toward[dx[k] - first] |= 1u << k;
    for (int j = g->nnodes - 1; j >= first; j--)
        for (int i = 0; i < g->nodes[j].nin; i++)
            if (g->nodes[j].in[i] >= first)
                toward[g->nodes[j].in[i] - first] |= toward[j - first];
    for (int j = first; j < g->nnodes; j++) {
        node *b = &g->nodes[j];
        b->grad_of = id;
        b->grad_role = GRAD_STEP;
        for (int k = 2; k >= 0; k--)
            if (dx[k] == j)
                b->grad_role = GRAD_DX + k;
        if (b->grad_role != GRAD_STEP || b->op == OP_CONST || !default_name(g, j))
            continue; /* a rule that names a step keeps its name ("lstm_1_h_prev") */
        unsigned t = toward[j - first];
        int k = t == 1u ? 0 : t == 2u ? 1 : t == 4u ? 2 : -1;
        char op[40] = "_";
        for (size_t c = 0; op_table[b->op].name[c] && c + 2 < sizeof op; c++)
            op[c + 1] = (char)tolower((unsigned char)op_table[b->op].name[c]), op[c + 2] = 0;
        name_backward(g, j, g->nodes[k >= 0 ? g->nodes[id].in[k] : id].name, op);
    }
    free(toward);
}

/* Adds the gradient dx that the rule of node c gives node x to the one x
 * has already (*sum): both are then partial gradients, named
 * "d_<x>_via_<consumer>", and their sum is x's (named d_<x> once x's own
 * rule runs). */
static void add_partial(cg_graph *g, ad_rule *rules, int x, int c, int dx, int *sum)
{
    const node *old = &g->nodes[*sum];
    if (old->backward && old->grad_role == GRAD_SUM && old->grad_of == x)
        name_backward(g, *sum, g->nodes[x].name, "_partial");
    else if (old->backward && rules[x].from >= 0)
        name_backward(g, *sum, g->nodes[x].name, arena_printf(&g->a, "_via_%s", consumer_label(g, x, rules[x].from)));
    if (g->nodes[dx].backward && g->nodes[dx].grad_of == c)
        name_backward(g, dx, g->nodes[x].name, arena_printf(&g->a, "_via_%s", consumer_label(g, x, c)));
    int first = g->nnodes;
    *sum = op_binary(g, g->nodes[c].src, OP_ADD, *sum, dx);
    if (*sum >= first) {
        g->nodes[*sum].grad_of = x;
        g->nodes[*sum].grad_role = GRAD_SUM;
    }
}

/* Gives a constant gradient a buffer of the node's shape when the rule's
 * kernels read it as an array (matmul, transpose, softmax): a fill node. */
static int materialize(cg_graph *g, int id, int dy)
{
    op_kind op = g->nodes[id].op;
    bool array_reader = op_table[op].cat == CAT_CONTRACT || op_table[op].cat == CAT_CONV ||
                        op_table[op].cat == CAT_SEQ || op == OP_TRANSPOSE || op == OP_SLICE || op == OP_CONCAT ||
                        op == OP_SOFTMAX || op == OP_LOG_SOFTMAX;
    /* a broadcasting elementwise op sums its gradient back over the broadcast
     * axes: that sum must see one value per output element */
    if (op_table[op].cat == CAT_ELEMWISE)
        for (int i = 0; i < g->nodes[id].nin; i++)
            array_reader |= !shape_equal(&g->nodes[g->nodes[id].in[i]].sh, &g->nodes[id].sh);
    if (!array_reader || g->nodes[dy].op != OP_CONST)
        return dy;
    node fill = {.op = OP_BROADCAST, .nin = 1, .in = {dy}, .sh = g->nodes[id].sh, .src = g->nodes[id].src};
    int first = g->nnodes, f = graph_add(g, fill);
    if (f >= first) { /* id's gradient, as an array its rule reads */
        g->nodes[f].grad_of = id;
        g->nodes[f].grad_role = GRAD_STEP;
        name_backward(g, f, g->nodes[id].name, "");
    }
    return f;
}

/* Names the total gradient of forward node id "d_<name>" when the node was
 * made by autodiff and has no such name yet. */
static void name_gradient(cg_graph *g, int id, int grad)
{
    node *gn = &g->nodes[grad];
    if (!gn->backward || !strncmp(gn->name, "d_", 2) || gn->op == OP_CONST)
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "d_%s", g->nodes[id].name);
    gn->name = graph_unique_name(g, buf);
}

/* Makes gid the gradient of variable node v, named "d_<v>". It must own a
 * buffer in the gradient block: it is copied when it is a constant, a view,
 * a leaf or another variable's gradient (the copy is a BROADCAST to the same
 * shape; axes holds the variable index only to keep it apart from other
 * copies). Returns the gradient's node, -1 on error. */
static int own_gradient(cg_graph *g, int v, int gid)
{
    bool shared = false;
    for (int j = 0; j < g->nvars; j++)
        shared = shared || (g->vars[j].grad == gid && j != g->nodes[v].var);
    op_category cat = op_table[g->nodes[gid].op].cat;
    if (shared || cat == CAT_LEAF || g->nodes[gid].op == OP_RESHAPE || !g->nodes[gid].backward) {
        node cp = {.op = OP_BROADCAST,
                   .nin = 1,
                   .in = {gid},
                   .sh = g->nodes[v].sh,
                   .axes = (unsigned)g->nodes[v].var + 1,
                   .src = g->nodes[v].src};
        g->in_backward = true;
        gid = graph_add(g, cp);
        g->in_backward = false;
        if (gid < 0)
            return -1;
        int c = g->ad_rules[v].from; /* the copy is the gradient the rule of v's consumer gives v */
        g->nodes[gid].grad_of = c;
        for (int k = c >= 0 ? g->nodes[c].nin - 1 : -1; k >= 0; k--)
            if (g->nodes[c].in[k] == v)
                g->nodes[gid].grad_role = GRAD_DX + k;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "d_%s", g->nodes[v].name);
    if (strcmp(g->nodes[gid].name, buf))
        g->nodes[gid].name = graph_unique_name(g, buf);
    g->vars[g->nodes[v].var].grad = gid;
    return gid;
}

/* Builds the gradients of `loss` for vars[] (node ids of variables); the
 * request (ad_request) checked the loss and the leaves. */
static int ad_gradients(cg_graph *g, int loss, const int *vars, int nvars)
{
    if (g->failed || loss < 0)
        return -1;
    node ln = g->nodes[loss];
    int count = loss + 1;
    bool *needs = calloc((size_t)count, sizeof(bool)); /* depends on a wanted variable */
    int *grad = malloc(sizeof(int) * (size_t)count);
    if (!needs || !grad) {
        free(needs);
        free(grad);
        return graph_error(g, ln.src, -1, "out of memory");
    }
    ad_rule *rules = arena_alloc(&g->a, sizeof(ad_rule) * (size_t)count);
    if (!rules) {
        free(needs);
        free(grad);
        return graph_error(g, ln.src, -1, "out of memory");
    }
    for (int i = 0; i < count; i++) {
        grad[i] = -1;
        rules[i] = (ad_rule){-1, -1, 0};
    }
    g->ad_rules = rules;
    g->ad_nrules = count;
    for (int k = 0; k < nvars; k++)
        if (vars[k] < count)
            needs[vars[k]] = true;
    for (int id = 0; id < count; id++)
        for (int i = 0; i < g->nodes[id].nin; i++)
            needs[id] = needs[id] || needs[g->nodes[id].in[i]];

    int saved_layer = g->cur_layer;
    g->in_backward = true;
    grad[loss] = op_const(g, 1.0f, false);
    for (int id = loss; id >= 0 && !g->failed; id--) {
        if (grad[id] < 0 || !needs[id] || op_table[g->nodes[id].op].cat == CAT_LEAF)
            continue;
        name_gradient(g, id, grad[id]);
        node n = g->nodes[id];
        g->cur_layer = n.layer;
        int dx[3] = {-1, -1, -1};
        grad[id] = materialize(g, id, grad[id]);
        rules[id].dy = grad[id];
        int first = g->nnodes;
        if (grad[id] < 0 || apply_rule(g, id, grad[id], dx))
            break;
        mark_rule(g, id, first, dx);
        for (int i = 0; i < n.nin; i++) {
            int in = n.in[i];
            if (dx[i] < 0 || !needs[in])
                continue;
            rules[id].inputs |= 1u << i;
            if (grad[in] < 0) {
                grad[in] = dx[i];
                rules[in].from = id;
            } else
                add_partial(g, rules, in, id, dx[i], &grad[in]);
        }
    }
    g->in_backward = false;
    g->cur_layer = saved_layer;

    for (int k = 0; k < nvars && !g->failed; k++) {
        int v = vars[k];
        var *vr = &g->vars[g->nodes[v].var];
        if (v >= count || grad[v] < 0) {
            graph_error(g, g->nodes[v].src, g->nodes[v].layer, "variable %s is not reachable from the loss", vr->name);
            break;
        }
        if (own_gradient(g, v, grad[v]) < 0)
            break;
    }
    free(needs);
    free(grad);
    return g->failed ? -1 : 0;
}

/* The fuse pass made node `fused` of the product mm, the bias addition add
 * and, when fused != add, an activation: the backward nodes their rules made
 * become the fused node's (X, W, b: the product's gradients of X and W, the
 * addition's of the bias; the activation's gradient is dZ), and so do the
 * inputs that were wanted. */
void ad_fused(cg_graph *g, int fused, int add, int mm)
{
    for (int id = 0; id < g->nnodes; id++) {
        node *b = &g->nodes[id];
        if (!b->backward)
            continue;
        if (b->grad_of == fused && fused != add && b->grad_role == GRAD_DX)
            b->grad_role = GRAD_DZ;
        else if (b->grad_of == add && b->grad_role == GRAD_DX + 1)
            b->grad_of = fused, b->grad_role = GRAD_DX + 2;
        else if (b->grad_of == mm || b->grad_of == add)
            b->grad_of = fused;
    }
    if (fused < g->ad_nrules && add < g->ad_nrules && mm < g->ad_nrules)
        g->ad_rules[fused].inputs = (g->ad_rules[mm].inputs & 3u) | (g->ad_rules[add].inputs & 2u) << 1;
}

/* The fuse pass folded max pooling's gradient pool_bwd into the activation
 * gradient id, which is now the pooling's rule's gradient of its input. */
void ad_fused_pool(cg_graph *g, int id, int pool_bwd)
{
    g->nodes[id].grad_of = g->nodes[pool_bwd].grad_of;
    g->nodes[id].grad_role = g->nodes[pool_bwd].grad_role;
}

/* Records the gradients the autodiff pass must build. */
int ad_request(cg_graph *g, int loss, const int *vars, int nvars)
{
    if (check_nodes(g, 1)) /* leaves made by cg_placeholder and cg_variable were not checked */
        return -1;
    const node *ln = &g->nodes[loss];
    char sb[64];
    if (shape_size(&ln->sh, 1) != 1 || (ln->sh.rank > 0 && shape_batched(&ln->sh)))
        return graph_error(g, ln->src, ln->layer, "the loss must be a scalar, got shape %s",
                           shape_str(&ln->sh, sb, sizeof sb));
    bool *feeds = calloc((size_t)loss + 1, sizeof(bool)); /* the loss reads it, directly or not */
    if (!feeds)
        return graph_error(g, ln->src, -1, "out of memory");
    feeds[loss] = true;
    for (int id = loss; id >= 0; id--)
        for (int i = 0; feeds[id] && i < g->nodes[id].nin; i++)
            feeds[g->nodes[id].in[i]] = true;
    for (int k = 0; k < nvars; k++)
        if (vars[k] > loss || !feeds[vars[k]]) {
            const node *v = &g->nodes[vars[k]];
            graph_error(g, v->src, v->layer, "variable %s is not reachable from the loss", g->vars[v->var].name);
            break;
        }
    free(feeds);
    if (g->failed)
        return -1;
    int *copy = arena_alloc(&g->a, sizeof(int) * (size_t)(nvars > 0 ? nvars : 1));
    if (!copy)
        return graph_error(g, (cg_src){0}, -1, "out of memory");
    memcpy(copy, vars, sizeof(int) * (size_t)nvars);
    g->ad_loss = loss;
    g->ad_vars = copy;
    g->ad_nvars = nvars;
    g->ad_pending = true;
    return 0;
}

/* The autodiff pass: builds the backward graph that was asked for, once
 * (a graph compiled again for the other flavour keeps it). */
int pass_autodiff(cg_graph *g)
{
    if (!g->ad_pending)
        return 0;
    g->ad_pending = false;
    return ad_gradients(g, g->ad_loss, g->ad_vars, g->ad_nvars);
}

/* Public: the gradient tape. Records what to emit: NAME_loss and NAME_gradients. */
int cg_gradients_at(cg_src src, cg_graph *g, cg_t loss, const cg_t *vars, int nvars)
{
    if (!g || g->failed)
        return -1;
    if (loss.g != g || loss.id < 0 || loss.id >= g->nnodes)
        return graph_error(g, src, -1, "cg_gradients: the loss is not a tensor of this graph");
    int ids[64];
    if (nvars < 1 || !vars)
        return graph_error(g, src, -1, "cg_gradients: name at least one variable");
    if (nvars > 64)
        return graph_error(g, src, -1, "cg_gradients: at most 64 variables");
    for (int i = 0; i < nvars; i++) {
        if (vars[i].g != g || vars[i].id < 0 || vars[i].id >= g->nnodes || g->nodes[vars[i].id].op != OP_VARIABLE)
            return graph_error(g, src, -1, "cg_gradients: argument %d is not a variable of this graph", i + 2);
        ids[i] = vars[i].id;
    }
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].kind == ENTRY_GRADIENTS)
            return graph_error(g, src, -1, "cg_gradients: gradients were already asked for");
    if (ad_request(g, loss.id, ids, nvars))
        return -1;
    g->entries[g->nentries++] = (entry){.kind = ENTRY_LOSS, .fname = "loss", .out = {loss.id}, .nout = 1};
    g->entries[g->nentries++] = (entry){
        .kind = ENTRY_GRADIENTS, .fname = "gradients", .out = {loss.id}, .nout = 1, .want_grads = true};
    return 0;
}

/* True when a and b are the same name but for the case of letters (the
 * header's NAME_<NAME>_FLOATS would be one macro). */
static bool same_upper(const char *a, const char *b)
{
    while (*a && toupper((unsigned char)*a) == toupper((unsigned char)*b))
        a++, b++;
    return *a == *b;
}

/* The tape's predict entry point, made by the first cg_output; NULL when
 * there is none yet and no room for it. */
static entry *tape_predict(cg_graph *g)
{
    for (int k = 0; k < g->nentries; k++)
        if (g->entries[k].kind == ENTRY_PREDICT)
            return &g->entries[k];
    if (g->nentries == (int)(sizeof g->entries / sizeof g->entries[0]))
        return NULL;
    g->entries[g->nentries] = (entry){.kind = ENTRY_PREDICT, .fname = "predict"};
    return &g->entries[g->nentries++];
}

/* Public: names t an output of the tape graph: NAME_predict computes it. */
int cg_output_at(cg_src src, cg_graph *g, const char *name, cg_t t)
{
    if (!g || g->failed)
        return -1;
    if (g->model)
        return graph_error(g, src, -1, "cg_output: %s is a model: its outputs are the model's (cg_set_outputs)",
                           g->name);
    if (t.g != g || t.id < 0 || t.id >= g->nnodes)
        return graph_error(g, src, -1, "cg_output: the tensor of \"%s\" is not a tensor of this graph",
                           name ? name : "");
    if (graph_check_name(g, src, "output", name, NAME_BARE))
        return -1;
    for (int id = 0; id < g->nnodes; id++) /* the output's array and the buffers share the function's names */
        if (g->nodes[id].name && same_upper(g->nodes[id].name, name))
            return graph_error(g, src, -1, "cg_output: output name \"%s\" is taken by a tensor of the graph", name);
    entry *e = tape_predict(g);
    for (int i = 0; e && i < e->nout; i++)
        if (same_upper(e->out_names[i], name))
            return graph_error(g, src, -1, "cg_output: output name \"%s\" is given twice", name);
    if (!e || e->nout == CG_MAX_OUTPUTS)
        return graph_error(g, src, -1, "cg_output: at most %d outputs", CG_MAX_OUTPUTS);
    const char *copy = arena_strdup(&g->a, name);
    if (!copy)
        return graph_error(g, src, -1, "cg_output: out of memory");
    e->out_names[e->nout] = copy;
    e->out[e->nout++] = t.id;
    return 0;
}

/* Public: the optimizer of NAME_apply_gradients. */
int cg_apply_gradients_at(cg_src src, cg_graph *g, cg_optimizer opt)
{
    if (!g || g->failed)
        return -1;
    bool grads = false;
    for (int k = 0; k < g->nentries; k++)
        grads = grads || g->entries[k].kind == ENTRY_GRADIENTS;
    if (g->model || !grads)
        return graph_error(g, src, -1, "cg_apply_gradients: ask for gradients with cg_gradients first");
    if (g->has_opt)
        return graph_error(g, src, -1, "cg_apply_gradients: an optimizer was given already");
    if (check_optimizer(g, src, "cg_apply_gradients", &opt))
        return -1;
    g->has_opt = true;
    g->opt = opt;
    return 0;
}
