/* ops/recurrent.c: the recurrences. SimpleRNN, LSTM and GRU recurrences run
 * their whole loop over the T steps in one kernel, and their backward op runs
 * the loop back from t = T - 1 to 0 (backpropagation through time, derived
 * ahead of time: the emitted code has one loop each way, whatever T is).
 *
 * A recurrent op reads XW = x W + b (n, T, k U), the input projection of all
 * steps, which the layer computes before it with one matmul (a DENSE after
 * the fuse pass: one GEMM in the host flavour), the recurrent kernel R
 * (U, k U), and the initial state H0 (Keras' initial_state): (n, U) [h0],
 * LSTM's (n, 2 U) [h0 | c0], or a constant 0 (zeros). Three inputs, the IR's
 * limit, so GRU's recurrent bias rb (k U), when the layer has one, is packed
 * into R as its last row: R (U + 1, k U) = [R ; rb] (a CONCAT before the op,
 * whose gradient [dR ; drb] the concat's rule splits back); the per-step
 * product reads only the first U rows, the gates read rb as R[U k U + j].
 * The op's output is the saved sequence S (n, T, width): per sample and
 * step, the gates after their activations and the states that backward
 * needs. The layer takes h (every step, or the last) out of S with SLICE.
 *
 * The backward op reads S, R and dS (the gradient of S: nonzero at the h and
 * c slots the layer sliced) and writes, per sample and step, the gradient of
 * the gates' pre-activations dG (which is the gradient of XW) and the
 * gradients that flow to step t - 1 (dh_{t-1}, and dc_{t-1} for LSTM; at
 * t = 0 they are the gradients of the initial state: the rule slices them
 * out of step 0 as H0's gradient, [dh0 | dc0] in H0's layout). The weight
 * gradients are then ordinary ops: dR = H_prev^T dG, one matmul over all
 * samples and steps with the h_{t-1} column of S; the bias and kernel
 * gradients come from the DENSE of XW.
 *
 * Layouts (U units, per sample and step):
 *   SIMPLE_RNN  S [h_{t-1} | h_t]                               2U
 *               dS-> [dG | dh_{t-1}]                            2U
 *   LSTM        S [i f g o | c_{t-1} | c_t | h_{t-1} | h_t]     8U
 *               -> [dG_i dG_f dG_g dG_o | dh_{t-1} | dc_{t-1}]  6U
 *   GRU         S [z r hh | rec_z rec_r rec_h | h_{t-1} | h_t]  8U  (rec = h_{t-1} R + rb)
 *               -> [dGx (3U) | dGh (3U) | dh_{t-1}]             7U  (dGh: of h_{t-1} R + rb)
 * GRU is Keras' reset_after form: hh = act(XW_h + r (h_{t-1} R_h + rb_h)), so
 * the input side and the recurrent side of the h gate have different
 * gradients (dGh_h = r dGx_h); for the z and r gates they are equal.
 * The states of step t - 1 are copied into step t's row (H0 at t = 0), so
 * the gate loops read everything at the same index without a condition:
 * the host compiler vectorises them.
 *
 * Inference (predict, eval_step) runs no backward, so a layer applied in
 * inference mode uses the op's inference form (SIMPLE_RNN_INFER, LSTM_INFER,
 * GRU_INFER) instead: the same XW and R, one sample at a time, its state h
 * (and c) and the gates of one step held in the kernel's locals and updated
 * in place; Y is h of every step (n, T, U) or of the last (n, U), and nothing
 * (n, T, width) is kept. Each gate is summed in the order of the training
 * forward's portable loops, so outputs agree with it to the bit. GRU reads
 * rb in place, from row 1 of the layer's bias B (2, 3 U), instead of packing
 * it under R: R is not copied. That takes the third operand, so a GRU given
 * an initial state keeps the training form in inference too. */
#include "../cgrad_int.h"

/* Gates per unit: k in the (F, k U) kernels. */
static int gates_of(op_kind op)
{
    return op == OP_LSTM ? 4 : op == OP_GRU ? 3 : 1;
}

int rnn_width(op_kind op, int u)
{
    return op == OP_SIMPLE_RNN ? 2 * u : 8 * u;
}
int rnn_h_offset(op_kind op, int u)
{
    return op == OP_SIMPLE_RNN ? u : 7 * u;
}
int rnn_hprev_offset(op_kind op, int u)
{
    return op == OP_SIMPLE_RNN ? 0 : 6 * u;
}
int rnn_c_offset(int u)
{
    return 5 * u;
}

/* Floats per sample and step of the backward op's output. */
static int bwd_width(op_kind op, int u)
{
    return op == OP_LSTM ? 6 * u : op == OP_GRU ? 7 * u : 2 * u;
}

/* The backward op of a recurrent op. */
static op_kind bwd_of(op_kind op)
{
    return op == OP_LSTM ? OP_LSTM_BWD : op == OP_GRU ? OP_GRU_BWD : OP_SIMPLE_RNN_BWD;
}

/* The forward op of a recurrent op, of its backward op or of its inference form. */
static op_kind fwd_of(op_kind op)
{
    switch (op) {
    case OP_LSTM_BWD:
    case OP_LSTM_INFER: return OP_LSTM;
    case OP_GRU_BWD:
    case OP_GRU_INFER: return OP_GRU;
    case OP_SIMPLE_RNN_BWD:
    case OP_SIMPLE_RNN_INFER: return OP_SIMPLE_RNN;
    default: return op;
    }
}

/* True for the inference forms of the recurrences. */
static bool is_infer(op_kind op)
{
    return op == OP_SIMPLE_RNN_INFER || op == OP_LSTM_INFER || op == OP_GRU_INFER;
}

int rnn_units(const cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    return g->nodes[n->in[1]].sh.d[1] / gates_of(fwd_of(n->op));
}

/* Floats per sample of the initial state: [h0], or LSTM's [h0 | c0]. */
static int state_width(op_kind op, int u)
{
    return op == OP_LSTM ? 2 * u : u;
}

/* The units of recurrence op over the input projection xw (n, T, k U) and
 * the recurrent kernel r (U, k U), after checking that they fit; -1 after an
 * error. */
static int recurrent_units(cg_graph *g, cg_src src, op_kind op, int xw, int r)
{
    const shape *xs = &g->nodes[xw].sh, *rs = &g->nodes[r].sh;
    char s1[64], s2[64];
    const char *what = op_table[op].name;
    if (xs->rank != 3 || !shape_batched(xs))
        return graph_error(g, src, g->cur_layer, "%s needs an input projection of shape (n, timesteps, gates), got %s",
                           what, shape_str(xs, s1, sizeof s1));
    int k = gates_of(op), ku = -1, width;
    if (rs->rank == 2 && (!int_mul(k, rs->d[0], &ku) || !int_mul(op == OP_SIMPLE_RNN ? 2 : 8, rs->d[0], &width)))
        return graph_error(g, src, g->cur_layer,
                           "%s: %d units overflow int: %d x units gate columns, %d x units "
                           "floats per step saved",
                           what, rs->d[0], k, op == OP_SIMPLE_RNN ? 2 : 8);
    if (rs->rank != 2 || rs->d[1] != ku || xs->d[2] != rs->d[1])
        return graph_error(g, src, g->cur_layer,
                           "%s: recurrent kernel %s does not fit the input projection %s "
                           "(expected (units, %d units))",
                           what, shape_str(rs, s1, sizeof s1), shape_str(xs, s2, sizeof s2), k);
    return rs->d[0];
}

/* 0 when s0, the initial state of recurrence op with u units, is -1 (none)
 * or of shape (n, [h0 | c0] width); -1 after an error. */
static int check_state(cg_graph *g, cg_src src, op_kind op, int u, int s0)
{
    char s1[64];
    if (s0 < 0)
        return 0;
    const shape *ss = &g->nodes[s0].sh;
    if (ss->rank != 2 || !shape_batched(ss) || ss->d[1] != state_width(op, u))
        return graph_error(g, src, g->cur_layer, "%s: initial state %s, expected (n, %d)", op_table[op].name,
                           shape_str(ss, s1, sizeof s1), state_width(op, u));
    return 0;
}

int op_recurrent(cg_graph *g, cg_src src, op_kind op, int xw, int r, int rb, int s0, cg_activation act,
                 cg_activation ract)
{
    if (xw < 0 || r < 0 || (op == OP_GRU && rb < 0))
        return -1;
    shape xs = g->nodes[xw].sh; /* a copy: making nodes may move g->nodes */
    char s1[64];
    int u = recurrent_units(g, src, op, xw, r), k = gates_of(op);
    if (u < 0)
        return -1;
    if (op == OP_GRU && g->nodes[rb].op != OP_CONST) {
        if (g->nodes[rb].sh.rank != 1 || g->nodes[rb].sh.d[0] != k * u)
            return graph_error(g, src, g->cur_layer, "GRU: recurrent bias %s, expected (%d)",
                               shape_str(&g->nodes[rb].sh, s1, sizeof s1), k * u);
        r = op_concat(g, src, r, op_reshape(g, src, rb, (shape){2, {1, k * u}}), 0); /* R's last row: rb */
    }
    if (check_state(g, src, op, u, s0))
        return -1;
    if (s0 < 0)
        s0 = op_const(g, 0.0f, false);
    if (r < 0 || s0 < 0)
        return -1;
    node nd = {.op = op,
               .nin = 3,
               .in = {xw, r, s0},
               .act = act,
               .ract = ract,
               .sh = {3, {xs.d[0], xs.d[1], rnn_width(op, u)}},
               .src = src};
    return node_add(g, &nd);
}

int op_recurrent_infer(cg_graph *g, cg_src src, op_kind op, int xw, int r, int b, int s0, cg_activation act,
                       cg_activation ract, bool sequences)
{
    if (xw < 0 || r < 0)
        return -1;
    int u = recurrent_units(g, src, op, xw, r);
    if (u < 0 || check_state(g, src, op, u, s0))
        return -1;
    int third = s0; /* H0, or GRU's bias B */
    if (op == OP_GRU) {
        char s1[64];
        const shape *bs = b >= 0 ? &g->nodes[b].sh : NULL;
        if (s0 >= 0)
            return graph_error(g, src, g->cur_layer, "internal: the inference form of GRU takes no initial state");
        if (bs && (bs->rank != 2 || bs->d[0] != 2 || bs->d[1] != 3 * u))
            return graph_error(g, src, g->cur_layer, "GRU: bias %s, expected (2, %d)", shape_str(bs, s1, sizeof s1),
                               3 * u);
        third = b;
    }
    if (third < 0 && (third = op_const(g, 0.0f, false)) < 0)
        return -1;
    const shape *xs = &g->nodes[xw].sh;
    op_kind form = op == OP_LSTM ? OP_LSTM_INFER : op == OP_GRU ? OP_GRU_INFER : OP_SIMPLE_RNN_INFER;
    node nd = {.op = form,
               .nin = 3,
               .in = {xw, r, third},
               .act = act,
               .ract = ract,
               .sh = sequences ? (shape){3, {xs->d[0], xs->d[1], u}} : (shape){2, {xs->d[0], u}},
               .src = src};
    return node_add(g, &nd);
}

/* A backward node named base (unique), unless an identical one exists. */
static int named_node(cg_graph *g, node nd, const char *base)
{
    nd.name = graph_unique_name(g, base);
    return node_add(g, &nd);
}

/* Gradients. A recurrence: its backward op, then dXW = dG, dR = H_prev^T dGh
 * (one matmul over every sample and step; H_prev holds h0 at t = 0), GRU's
 * drb = sum of dGh over samples and steps (R's last row), dH0 = step 0's
 * [dh_{t-1} (| dc_{t-1})]. */
static int grad_seq(cg_graph *g, int id, int dy, int dx[3])
{
    node n = g->nodes[id];
    cg_src s = n.src;
    char base[256];
    if (n.op != OP_SIMPLE_RNN && n.op != OP_LSTM && n.op != OP_GRU)
        return graph_error(g, s, n.layer, "no gradient rule for %s", op_table[n.op].name);
    int u = rnn_units(g, id), ku = gates_of(n.op) * u;
    const char *lname = n.layer >= 0 ? g->layers[n.layer].name : "rnn";
    snprintf(base, sizeof base, "d_%s_bptt", lname); /* backprop through time: dG_t, dh_{t-1} (dc_{t-1}) per step */
    node b = {.op = bwd_of(n.op),
              .nin = 3,
              .in = {id, n.in[1], dy},
              .act = n.act,
              .ract = n.ract,
              .src = s,
              .sh = {3, {n.sh.d[0], n.sh.d[1], bwd_width(n.op, u)}}};
    int bwd = named_node(g, b, base);
    int dgx = op_slice(g, s, bwd, 2, 0, ku);
    int dgh = n.op == OP_GRU ? op_slice(g, s, bwd, 2, ku, ku) : dgx;
    snprintf(base, sizeof base, "%s_h_prev", lname);
    node hp = {.op = OP_SLICE,
               .nin = 1,
               .in = {id},
               .axis = 2,
               .begin = rnn_hprev_offset(n.op, u),
               .src = s,
               .sh = {3, {n.sh.d[0], n.sh.d[1], u}}};
    int hprev = named_node(g, hp, base);
    dx[0] = dgx;
    dx[1] = op_matmul(g, s, hprev, dgh, true, false);
    if (n.op == OP_GRU && g->nodes[n.in[1]].sh.d[0] == u + 1) { /* R's last row, rb: drb = sum of dGh */
        int drb = op_reduce(g, s, OP_SUM, dgh, CG_AXIS(0) | CG_AXIS(1), false);
        dx[1] = op_concat(g, s, dx[1], op_reshape(g, s, drb, (shape){2, {1, ku}}), 0);
    }
    if (g->nodes[n.in[2]].op != OP_CONST) { /* the initial state: step 0's [dh_{t-1} (| dc_{t-1})] */
        int off = n.op == OP_LSTM ? 4 * u : n.op == OP_GRU ? 6 * u : u, sw = state_width(n.op, u);
        int d0 = op_slice(g, s, op_slice(g, s, bwd, 1, 0, 1), 2, off, sw);
        dx[2] = op_reshape(g, s, d0, (shape){2, {CG_BATCH, sw}});
    }
    return g->failed ? -1 : 0;
}

/* grad_seq's rule in words, for the inputs whose bit is set: its backward op's loop back over time (act, ract:
 * the activations, which the emitter names), then dXW, dR, dH0. */
static bool words_recurrent(cg_graph *g, int id, unsigned inputs, char *buf, size_t size)
{
    static const char *const loop[] = {
        "from t = T-1 down to 0: dG_t = (dY_t + dh_t) act'(h_t), dh_{t-1} = dG_t R^T",
        "from t = T-1 down to 0: dc_t += dh_t o act'(c_t); dG_t = [dc_t g ract'(i) | dc_t c_{t-1} ract'(f) | "
        "dc_t i act'(g) | dh_t act(c_t) ract'(o)]; dc_{t-1} = dc_t f; dh_{t-1} = dG_t R^T",
        "from t = T-1 down to 0: dG_t = [dz | dr | dhh act'(hh)] of the input side (ract' in dz, dr), dGh_t of the "
        "recurrent side; dh_{t-1} = dh_t z + dGh_t R^T",
    };
    const node *n = &g->nodes[id];
    if (n->op != OP_SIMPLE_RNN && n->op != OP_LSTM && n->op != OP_GRU)
        return false;
    bool packed = n->op == OP_GRU && g->nodes[n->in[1]].sh.d[0] == rnn_units(g, id) + 1;
    snprintf(buf, size, "%s", loop[n->op == OP_SIMPLE_RNN ? 0 : n->op == OP_LSTM ? 1 : 2]);
    if (inputs & 1)
        words_term(buf, size, "dXW = dG_t of every step (dG's first %d columns)", gates_of(n->op) * rnn_units(g, id));
    if (inputs >> 1 & 1)
        words_term(buf, size, "dR = %sH_prev^T . %s%s, H_prev every step's h_{t-1}", packed ? "[" : "",
                   n->op == OP_GRU ? "dGh (the next columns of dG)" : "dXW", packed ? " ; sum_{n,t} dGh]" : "");
    if (inputs >> 2 & 1)
        words_term(buf, size, "dH0 = step 0's dh_{t-1}%s", n->op == OP_LSTM ? " | dc_{t-1}" : "");
    return true;
}

/* Floating-point operations of a recurrent op for one sample: multiply-adds
 * count two, each activation, addition and product one. */
static long seq_flops(cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    long t = g->nodes[n->in[0]].sh.d[1]; /* the steps, of XW or S */
    long u = rnn_units(g, id);
    switch (n->op) { /* per step: h_{t-1} R (or dG R^T), then the gates */
    case OP_SIMPLE_RNN:
    case OP_SIMPLE_RNN_INFER: return t * (2 * u * u + 2 * u);
    case OP_SIMPLE_RNN_BWD: return t * (2 * u * u + 3 * u);
    case OP_LSTM:
    case OP_LSTM_INFER: return t * (2 * u * 4 * u + 4 * u + 4 * u + 3 * u + 2 * u);
    case OP_LSTM_BWD: return t * (2 * u * 4 * u + 20 * u);
    case OP_GRU:
    case OP_GRU_INFER: return t * (2 * u * 3 * u + 3 * u + 3 * u + 3 * u + 5 * u);
    case OP_GRU_BWD: return t * (2 * u * 3 * u + 3 * u + 16 * u);
    default: return 0;
    }
}

/* ---- lowering ------------------------------------------------------------------ */

/* The per-step product with R of a recurrent kernel, for every sample:
 * Y[b, t, c_off + j] (+)= sum_k Y[b, t, a_off + k] R[k][j] (forward), or with
 * R^T (backward: j < U, k < kU). Host: one GEMM over the batch, rows T * width
 * floats apart; portable: the loops. */
static void step_product(emit_ctx *e, text *t, int steps, int width, int u, int ku, bool transpose, int a_off,
                         int c_off, bool accumulate, const char *what)
{
    char nb[8] = "n", tt[16], w[16], cols[16], inner[16], k[16], ao[16], co[16], init[160], r_at[64];
    snprintf(tt, sizeof tt, "%d", steps);
    snprintf(w, sizeof w, "%d", width);
    snprintf(cols, sizeof cols, "%d", transpose ? u : ku);
    snprintf(inner, sizeof inner, "%d", transpose ? ku : u);
    snprintf(k, sizeof k, "%d", ku);
    snprintf(ao, sizeof ao, "%d", a_off);
    snprintf(co, sizeof co, "%d", c_off);
    if (accumulate)
        snprintf(init, sizeof init, "Y[(b * %d + t) * %d + %d + j]", steps, width, c_off);
    else
        snprintf(init, sizeof init, "0.0f");
    snprintf(r_at, sizeof r_at, transpose ? "R[j * %d + k]" : "R[k * %d + j]", ku);
    const char *kv[] = {"N",     nb,
                        "T",     tt,
                        "W",     w,
                        "COLS",  cols,
                        "INNER", inner,
                        "K",     k,
                        "A_OFF", ao,
                        "C_OFF", co,
                        "INIT",  init,
                        "R_AT",  r_at,
                        "TB",    transpose ? "1" : "0",
                        "BETA",  accumulate ? "1.0f" : "0.0f",
                        "WHAT",  what,
                        NULL};
    const char *tmpl = e->flavour == CG_HOST ? "kernels/rnn_step_product_host" : "kernels/rnn_step_product";
    if (text_template(t, tmpl, kv))
        graph_error(e->g, e->g->nodes[0].src, -1, "internal: template %s failed", tmpl);
}

/* True when the graph's code has a recurrence (host code then gets the
 * activations of kernels/rnn_math_host). */
bool seq_needs_math(cg_graph *g)
{
    for (int id = 0; id < g->nnodes; id++)
        if (op_table[g->nodes[id].op].family == &op_family_recurrent)
            return true;
    return false;
}

#define CELL_TEXT 256

/* The activations' C text in the cells of a recurrent kernel (activation a,
 * recurrent activation ra, from activations.def), as the template's values
 * RACT, ACT, ACT_C (act(.)), then DACT_TC ... DACT_H (act'(.), from the
 * output) into ex[0 .. 12). Returns 0, or -1 when one does not fit. */
static int cell_texts(cg_activation a, cg_activation ra, bool host, int u, char ex[12][CELL_TEXT])
{
    static const struct {
        bool rec;       /* the recurrent activation ra, else a */
        const char *at; /* its operand; NULL: SimpleRNN's h_t as saved, s[U + j] */
    } cell[12] = {{true, "v"},  {false, "v"}, {false, "c"},  {false, "tc"}, {true, "i"}, {true, "f"},
                  {false, "g"}, {true, "o"},  {false, "hh"}, {true, "z"},   {true, "r"}, {false, NULL}};
    char h_at[32];
    snprintf(h_at, sizeof h_at, "s[%d + j]", u);
    for (int i = 0; i < 12; i++) {
        cg_activation which = cell[i].rec ? ra : a;
        const char *at = cell[i].at ? cell[i].at : h_at;
        if (!(i < 3 ? act_cell_text(which, at, host, ex[i], CELL_TEXT) : act_cell_grad(which, at, ex[i], CELL_TEXT)))
            return -1;
    }
    return 0;
}

long rnn_infer_stack_bytes(const cg_graph *g, int id)
{
    op_kind fwd = fwd_of(g->nodes[id].op);
    if (!is_infer(g->nodes[id].op))
        return 0;
    return 4L * rnn_units(g, id) * (fwd == OP_LSTM ? 2 + 4 : fwd == OP_GRU ? 1 + 3 : 1 + 1);
}

/* The product G = INIT + h_{t-1} R of one sample in an inference kernel
 * (u units, k gate columns), summed over k in the order of the portable
 * training loops (rnn_step_product); host: a row of R at a time, so that
 * the loop over j vectorises (the same sums, in the same order). */
static void infer_product(emit_ctx *e, text *t, int u, int k, bool from_xw)
{
    char nu[16], nk[16];
    snprintf(nu, sizeof nu, "%d", u);
    snprintf(nk, sizeof nk, "%d", k);
    const char *kv[] = {"U",    nu,
                        "K",    nk,
                        "INIT", from_xw ? "xw[j]" : "0.0f",
                        "WHAT", from_xw ? "G = XW_t + h_{t-1} R" : "G = h_{t-1} R",
                        NULL};
    const char *tmpl = e->flavour == CG_HOST ? "kernels/rnn_infer_product_host" : "kernels/rnn_infer_product";
    if (text_template(t, tmpl, kv))
        graph_error(e->g, e->g->nodes[0].src, -1, "internal: template %s failed", tmpl);
}

/* Lowers the inference form of a recurrence (SIMPLE_RNN_INFER, LSTM_INFER,
 * GRU_INFER): its locals, its product, its cells and where Y gets h. */
static void lower_infer(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    op_kind fwd = fwd_of(n->op);
    int u = rnn_units(g, id), k = gates_of(fwd) * u, steps = g->nodes[n->in[0]].sh.d[1];
    char num[6][24], ex[12][CELL_TEXT], rb[3][64], s0[2][64], idx[48], y_at[48], y_note[128];
    int vals[] = {steps, u, 2 * u, 3 * u, k, (int)rnn_infer_stack_bytes(g, id)};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        snprintf(num[i], sizeof num[i], "%d", vals[i]);
    for (int i = 0; i < 3; i++) { /* GRU's rb, row 1 of B; h0 and c0 of H0 */
        snprintf(idx, sizeof idx, "%d + j", k + i * u);
        emit_input(e, id, 2, idx, rb[i], sizeof rb[i]);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(idx, sizeof idx, i ? "b * %d + %d + j" : "b * %d + j", state_width(fwd, u), u);
        emit_input(e, id, 2, idx, s0[i], sizeof s0[i]);
    }
    if (n->sh.rank == 3) {
        snprintf(y_at, sizeof y_at, "(b * %d + t) * %d", steps, u);
        snprintf(y_note, sizeof y_note, "(n, %d, %d): h_t of every step", steps, u);
    } else {
        snprintf(y_at, sizeof y_at, "b * %d", u);
        snprintf(y_note, sizeof y_note, "(n, %d): h_t, written at every step (the last step's stays)", u);
    }
    if (cell_texts(n->act, n->ract, e->flavour == CG_HOST, u, ex))
        graph_error(g, n->src, n->layer, "internal: an activation's text does not fit");
    text prod = {0};
    infer_product(e, &prod, u, k, fwd == OP_LSTM);
    char rb_note[64] = "rb = 0";
    if (fwd == OP_GRU && g->nodes[n->in[2]].op != OP_CONST)
        snprintf(rb_note, sizeof rb_note, "rb = B's row 1, B (2, %d) the layer's bias", k);
    /* clang-format off */
    const char *kv[] = {
        "N", "n", "T", num[0], "U", num[1], "U2", num[2], "U3", num[3], "K", num[4], "STACK", num[5],
        "ACT_NAME", emit_act_name(n->act), "RACT_NAME", emit_act_name(n->ract), "RACT", ex[0], "ACT", ex[1],
        "ACT_C", ex[2], "H0", s0[0], "C0", s0[1], "RB_Z", rb[0], "RB_R", rb[1], "RB_H", rb[2], "RB_NOTE", rb_note,
        "Y_AT", y_at, "Y_NOTE", y_note, "PRODUCT", prod.s ? prod.s : "",
        NULL};
    /* clang-format on */
    const char *tmpl = fwd == OP_LSTM  ? "kernels/lstm_infer"
                       : fwd == OP_GRU ? "kernels/gru_infer"
                                       : "kernels/simple_rnn_infer";
    if (text_template(e->t, tmpl, kv))
        graph_error(g, n->src, n->layer, "internal: template %s failed", tmpl);
    text_free(&prod);
}

/* Lowers a recurrence, its backward op or its inference form. */
static void lower_seq(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    char num[24][24], ex[12][CELL_TEXT], rb[3][64];
    const char *tmpl = NULL;
    if (is_infer(n->op)) {
        lower_infer(e, id);
        return;
    }
    bool bwd = n->op == OP_SIMPLE_RNN_BWD || n->op == OP_LSTM_BWD || n->op == OP_GRU_BWD;
    op_kind fwd = !bwd ? n->op : n->op == OP_LSTM_BWD ? OP_LSTM : n->op == OP_GRU_BWD ? OP_GRU : OP_SIMPLE_RNN;
    int u = rnn_units(g, id), k = gates_of(fwd) * u, steps = n->sh.d[1];
    int w = rnn_width(fwd, u), wb = bwd_width(fwd, u);
    int vals[] = {steps, u,     2 * u, 3 * u, k,         w,         wb, rnn_h_offset(fwd, u), rnn_hprev_offset(fwd, u),
                  4 * u, 5 * u, 6 * u, 7 * u, steps * w, steps * wb};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        snprintf(num[i], sizeof num[i], "%d", vals[i]);
    cg_activation a = n->act, ra = n->ract;
    text prod = {0};
    char what[160];
    if (!bwd) {
        int c_off = fwd == OP_GRU ? 3 * u : fwd == OP_SIMPLE_RNN ? rnn_h_offset(fwd, u) : 0; /* where h R goes */
        snprintf(what, sizeof what, "%s h_{t-1} R, all samples", fwd == OP_GRU ? "rec_t =" : "G_t +=");
        step_product(e, &prod, steps, w, u, k, false, rnn_hprev_offset(fwd, u), c_off, fwd == OP_LSTM, what);
    } else {
        int a_off = fwd == OP_GRU ? k : 0;
        snprintf(what, sizeof what, "dh_{t-1} %s dG%s_t R^T, all samples", fwd == OP_GRU ? "+=" : "=",
                 fwd == OP_GRU ? "h" : "");
        step_product(e, &prod, steps, wb, u, k, true, a_off, fwd == OP_GRU ? 2 * k : k, fwd == OP_GRU, what);
    }
    /* GRU's recurrent bias, R's last row, or a literal 0 without bias */
    bool packed = n->op == OP_GRU && g->nodes[n->in[1]].sh.d[0] == u + 1;
    char rb_note[96];
    for (int i = 0; i < 3; i++) {
        if (packed)
            snprintf(rb[i], sizeof rb[i], "R[%d + j]", u * k + i * u);
        else
            snprintf(rb[i], sizeof rb[i], "0.0f");
    }
    if (packed)
        snprintf(rb_note, sizeof rb_note, "(%d + 1, %d) = [R ; rb], rb (%d) its last row", u, k, k);
    else
        snprintf(rb_note, sizeof rb_note, "(%d, %d), rb = 0", u, k);
    /* the initial state at t = 0: H0 [h0 (| c0)], or literal zeros */
    char idx[2][48], s0[2][64];
    for (int i = 0; i < 2; i++) {
        snprintf(idx[i], sizeof idx[i], i ? "b * %d + %d + j" : "b * %d + j", state_width(fwd, u), u);
        if (!bwd)
            emit_input(e, id, 2, idx[i], s0[i], sizeof s0[i]);
        else
            snprintf(s0[i], sizeof s0[i], "0.0f");
    }
    if (cell_texts(a, ra, e->flavour == CG_HOST, u, ex))
        graph_error(g, n->src, n->layer, "internal: an activation's text does not fit");
    /* clang-format off */
    const char *kv[] = {
        "N", "n", "T", num[0], "U", num[1], "U2", num[2], "U3", num[3], "K", num[4], "W", num[5], "WB", num[6],
        "H", num[7], "HP", num[8], "U4", num[9], "U5", num[10], "U6", num[11], "U7", num[12], "TW", num[13],
        "TWB", num[14], "ACT_NAME", emit_act_name(a), "RACT_NAME", emit_act_name(ra), "RACT", ex[0], "ACT", ex[1],
        "ACT_C", ex[2], "DACT_TC", ex[3], "DRACT_I", ex[4], "DRACT_F", ex[5], "DACT_G", ex[6], "DRACT_O", ex[7],
        "DACT_HH", ex[8], "DRACT_Z", ex[9], "DRACT_R", ex[10], "DACT_H", ex[11], "RB_Z", rb[0], "RB_R", rb[1],
        "RB_H", rb[2], "RB_NOTE", rb_note, "H0", s0[0], "C0", s0[1], "PRODUCT", prod.s ? prod.s : "",
        NULL};
    /* clang-format on */
    switch (n->op) {
    case OP_SIMPLE_RNN: tmpl = "kernels/simple_rnn"; break;
    case OP_SIMPLE_RNN_BWD: tmpl = "kernels/simple_rnn_bwd"; break;
    case OP_LSTM: tmpl = "kernels/lstm"; break;
    case OP_LSTM_BWD: tmpl = "kernels/lstm_bwd"; break;
    case OP_GRU: tmpl = "kernels/gru"; break;
    default: tmpl = "kernels/gru_bwd"; break;
    }
    if (text_template(e->t, tmpl, kv))
        graph_error(g, n->src, n->layer, "internal: template %s failed", tmpl);
    text_free(&prod);
}

const op_family op_family_recurrent = {"recurrent", grad_seq, lower_seq, seq_flops, NULL, words_recurrent};
