/* layers/recurrent.c: SimpleRNN, LSTM, GRU and Embedding (Keras semantics
 * and weight layouts). A recurrent layer is three steps:
 *
 *   xw = x kernel + bias           one matmul over every sample and step (a DENSE after fusion)
 *   seq = recurrence(xw, R, h0)    the loop over the steps (ops/recurrent.c) from the initial state (zeros, or
 *                                  Keras' initial_state), saving what backward needs
 *   out = h of the last step, or of every step, sliced out of seq
 *
 * and its gradient comes from the ops' rules: the recurrence's backward op
 * (the loop back through time), then matmuls and sums for the weights.
 * Applied in inference mode, the layer's last two steps are one: the
 * recurrence's inference form, which keeps only the state and writes h of
 * the last step, or of every step (a GRU given an initial state keeps the
 * training form: ops/recurrent.c says why). */
#include "../cgrad_int.h"

#include <string.h>

/* The op of a recurrent layer kind, and its gates per unit. */
static op_kind kind_op(cg_layer_kind kind)
{
    return kind == CG_LAYER_LSTM ? OP_LSTM : kind == CG_LAYER_GRU ? OP_GRU : OP_SIMPLE_RNN;
}

/* True when the cells can apply activation a: one written with its output
 * (the cells keep each gate's value after its activation, not before). */
static bool act_ok(cg_activation a)
{
    return (unsigned)a < ACT_COUNT && act_table[a].from == ACT_FROM_Y;
}

/* Checks the initial state of recurrent op op, the layer's inputs after x
 * ([h0], or LSTM's [h0, c0], each (n, units)), and sets *s0 to the one input
 * the op takes ([h0], or [h0 | c0]; -1 when none is given: zeros). Returns
 * 0, or -1 after an error. */
static int initial_state(const layer_call *lc, op_kind op, int *s0)
{
    cg_graph *g = lc->g;
    cg_src src = lc->l->src;
    const char *what = g->layers[g->cur_layer].kind;
    const int *states = lc->xs + 1;
    int nstates = lc->nx - 1, units = lc->l->rnn.units, want = op == OP_LSTM ? 2 : 1;
    char sb[64];
    if (nstates && nstates != want)
        return graph_error(g, src, g->cur_layer, "%s takes %s as its initial state, got %d state%s", what,
                           op == OP_LSTM ? "two tensors [h, c]" : "one tensor h", nstates, nstates == 1 ? "" : "s");
    for (int i = 0; i < nstates; i++) {
        const shape *ss = &g->nodes[states[i]].sh;
        if (ss->rank != 2 || !shape_batched(ss) || ss->d[1] != units)
            return graph_error(g, src, g->cur_layer, "initial state %s has shape %s; %s(%d) needs (n, %d)",
                               op == OP_LSTM ? (i ? "c" : "h") : "h", shape_str(ss, sb, sizeof sb), what, units, units);
    }
    if (nstates)
        *s0 = nstates == 2 ? op_concat(g, src, states[0], states[1], 1) : states[0];
    return 0;
}

/* Checks a recurrent layer's options against its input: units, the input's
 * rank, the activations the cells support. */
static int check_recurrent(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_rnn_opts *o = &lc->l->rnn;
    cg_src src = lc->l->src;
    const shape *xs = &g->nodes[lc->x].sh;
    const char *what = g->layers[g->cur_layer].kind;
    char sb[64];
    if (o->units <= 0)
        return graph_error(g, src, g->cur_layer, "units must be positive, got %d", o->units);
    if (xs->rank != 3)
        return graph_error(g, src, g->cur_layer, "input has shape %s; %s needs (batch, timesteps, features)%s",
                           shape_str(xs, sb, sizeof sb), what,
                           xs->rank == 2 ? ": reshape one feature per step to (timesteps, 1), or embed token ids "
                                           "with an Embedding layer"
                                         : "");
    for (int k = 0; k < 2; k++) {
        cg_activation a = k ? o->recurrent_activation : o->activation;
        char list[256];
        if (k && lc->l->kind == CG_LAYER_SIMPLE_RNN)
            break;
        if (!act_ok(a))
            return graph_error(g, src, g->cur_layer, "%s: %s %s is not supported (%s)", what,
                               k ? "recurrent_activation" : "activation", emit_act_name(a),
                               act_from_output_list(list, sizeof list));
    }
    return 0;
}

/* Applies SimpleRNN, LSTM or GRU to x (n, T, F), from the initial state
 * given by the inputs after x ([h0], or LSTM's [h0, c0], each (n, units);
 * none: zeros); returns the output node. */
int layer_recurrent(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_rnn_opts *o = &lc->l->rnn;
    cg_src src = lc->l->src;
    int x = lc->x;
    const shape *xs = &g->nodes[x].sh;
    if (check_recurrent(lc))
        return -1;
    op_kind op = kind_op(lc->l->kind);
    int s0 = -1;
    if (initial_state(lc, op, &s0))
        return -1;
    int u = o->units, k = op == OP_LSTM ? 4 : op == OP_GRU ? 3 : 1, f = xs->d[2], steps = xs->d[1], ku, width;
    if (!int_mul(k, u, &ku) || !int_mul(op == OP_SIMPLE_RNN ? 2 : 8, u, &width)) /* rnn_width: the saved sequence */
        return graph_error(g, src, g->cur_layer,
                           "%d units overflow int: the kernels have %d x units columns, the "
                           "saved sequence %d x units floats per step",
                           u, k, op == OP_SIMPLE_RNN ? 2 : 8);
    cg_init ki = o->kernel_initializer.kind == CG_INIT_DEFAULT ? cg_glorot_uniform() : o->kernel_initializer;
    cg_init ri = o->recurrent_initializer.kind == CG_INIT_DEFAULT ? cg_orthogonal() : o->recurrent_initializer;
    cg_init bi = o->bias_initializer.kind == CG_INIT_DEFAULT ? cg_zeros() : o->bias_initializer;
    int kernel = weight_add(g, src, "kernel", &(shape){2, {f, ku}}, ki);
    int rec = weight_add(g, src, "recurrent_kernel", &(shape){2, {u, ku}}, ri);
    int xw = op_matmul(g, src, x, kernel, false, false);
    int rb = op_const(g, 0.0f, false), bias = -1;
    if (o->use_bias) {
        shape bs = op == OP_GRU ? (shape){2, {2, ku}} : (shape){1, {ku}};
        bias = weight_add(g, src, "bias", &bs, bi);
        if (bias >= 0 && op == OP_LSTM && o->unit_forget_bias) { /* ones at [U, 2U): the forget gate */
            g->vars[g->nodes[bias].var].ones_begin = u;
            g->vars[g->nodes[bias].var].ones_count = u;
        }
        int b = bias;
        if (op == OP_GRU) { /* row 0: the input bias, added to xw; row 1: the recurrent one, inside the loop */
            shape row = {1, {ku}};
            b = op_reshape(g, src, op_slice(g, src, bias, 0, 0, 1), row);
            rb = op_reshape(g, src, op_slice(g, src, bias, 0, 1, 1), row);
        }
        layer_name_role(g, xw, "x_kernel");
        xw = op_binary(g, src, OP_ADD, xw, b);
    }
    layer_name_role(g, xw, "xw");
    if (!lc->training && !(op == OP_GRU && s0 >= 0)) { /* inference: the state alone, nothing kept for backward */
        int y = op_recurrent_infer(g, src, op, xw, rec, op == OP_GRU ? bias : -1, s0, o->activation,
                                   o->recurrent_activation, o->return_sequences);
        layer_name_role(g, y, "out");
        return y;
    }
    int seq = op_recurrent(g, src, op, xw, rec, rb, s0, o->activation, o->recurrent_activation);
    layer_name_role(g, seq, "seq");
    if (seq < 0)
        return -1;
    int h = rnn_h_offset(op, u);
    if (o->return_sequences) {
        int y = op_slice(g, src, seq, 2, h, u);
        layer_name_role(g, y, "out");
        return y;
    }
    int last = op_slice(g, src, seq, 1, steps - 1, 1);
    layer_name_role(g, last, "last_step");
    int y = op_slice(g, src, last, 2, h, u);
    layer_name_role(g, y, "h_last");
    y = op_reshape(g, src, y, (shape){2, {CG_BATCH, u}});
    layer_name_role(g, y, "out");
    return y;
}

/* Applies Embedding to token ids x (n, T); returns (n, T, output_dim). */
int layer_embedding(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_embedding_opts *o = &lc->l->embedding;
    cg_src src = lc->l->src;
    int x = lc->x;
    const shape *xs = &g->nodes[x].sh;
    char sb[64];
    if (o->input_dim <= 0 || o->output_dim <= 0)
        return graph_error(g, src, g->cur_layer, "input_dim and output_dim must be positive, got %d and %d",
                           o->input_dim, o->output_dim);
    if (xs->rank != 2)
        return graph_error(g, src, g->cur_layer, "input has shape %s; Embedding needs token ids (batch, timesteps)",
                           shape_str(xs, sb, sizeof sb));
    cg_init ei = o->embeddings_initializer.kind == CG_INIT_DEFAULT ? cg_uniform(-0.05f, 0.05f)
                                                                   : o->embeddings_initializer;
    int table = weight_add(g, src, "embeddings", &(shape){2, {o->input_dim, o->output_dim}}, ei);
    int y = op_embedding(g, src, x, table);
    layer_name_role(g, y, "out");
    return y;
}

/* Public: the final h or c of a recurrent layer (Keras' return_state), sliced
 * out of its saved sequence; named "<layer>_state_h" / "_state_c". */
cg_t cg_rnn_state_at(cg_src src, cg_model *m, const char *layer_name, cg_rnn_state which)
{
    if (!m || cg_failed(m->g))
        return (cg_t){m ? m->g : NULL, -1};
    cg_graph *g = m->g;
    int li = -1, seq = -1;
    for (int i = 0; i < g->nlayers && li < 0; i++)
        if (layer_name && !strcmp(g->layers[i].name, layer_name))
            li = i;
    if (li < 0)
        return (cg_t){g, graph_error(g, src, -1, "%s: no layer named %s", m->name, layer_name ? layer_name : "(null)")};
    for (int id = 0; id < g->nnodes && seq < 0; id++) {
        op_kind op = g->nodes[id].op;
        if (g->nodes[id].layer == li && (op == OP_SIMPLE_RNN || op == OP_LSTM || op == OP_GRU))
            seq = id;
    }
    if (seq < 0)
        return (cg_t){g, graph_error(g, src, li, "cg_rnn_state: the layer is not recurrent")};
    op_kind op = g->nodes[seq].op;
    if (which == CG_STATE_C && op != OP_LSTM)
        return (cg_t){g, graph_error(g, src, li, "cg_rnn_state: only LSTM has a cell state c")};
    if (which != CG_STATE_H && which != CG_STATE_C)
        return (cg_t){g, graph_error(g, src, li, "cg_rnn_state: unknown state %d", (int)which)};
    int u = rnn_units(g, seq), steps = g->nodes[seq].sh.d[1];
    int saved = g->cur_layer;
    g->cur_layer = li;
    int last = op_slice(g, src, seq, 1, steps - 1, 1);
    int off = which == CG_STATE_C ? rnn_c_offset(u) : rnn_h_offset(op, u);
    int y = op_slice(g, src, last, 2, off, u);
    if (y >= 0 && which == CG_STATE_C)
        g->nodes[y].name = graph_unique_name(g, arena_printf(&g->a, "%s_state_c", g->layers[li].name));
    y = op_reshape(g, src, y, (shape){2, {CG_BATCH, u}});
    g->cur_layer = saved;
    return (cg_t){g, y};
}
