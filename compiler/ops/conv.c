/* ops/conv.c: 2-D convolution (regular and depthwise), max and average
 * pooling, and zero padding, channels last: X (n, H, W, C), kernels
 * (KH, KW, C, F) as Keras stores them. Each has its shape rule, its gradient
 * rule (the backward ops below) and its lowering: plain loops in the
 * portable flavour; im2col and the GEMM shim in the host flavour, but for
 * small input windows (direct loops there too). */
#include "../cgrad_int.h"

#include <string.h>

/* Positions a window of win taps spaced dil apart covers, (win - 1) dil + 1;
 * -1 when that overflows int (a huge dilation). */
static int window_span(int win, int dil)
{
    int span;
    return int_mul(win - 1, dil, &span) && int_add(span, 1, &span) ? span : -1;
}

/* Output size of one spatial axis, and its padding ("same": the output has
 * ceil(in / stride) positions, extra padding at the end, as TensorFlow).
 * -1, and no padding, when the window's span or the padding overflows int. */
int conv_out_size(int in, int win, int stride, int dil, bool same, int *pad_lo, int *pad_hi)
{
    int span = window_span(win, dil);
    *pad_lo = *pad_hi = 0;
    if (span < 0)
        return -1;
    if (!same)
        return in < span ? 0 : (in - span) / stride + 1;
    int out = in / stride + (in % stride != 0); /* ceil(in / stride), without forming in + stride - 1 */
    long total = (long)(out - 1) * stride + span - in;
    if (total > ELEMS_MAX)
        return -1;
    if (total < 0)
        total = 0;
    *pad_lo = (int)total / 2;
    *pad_hi = (int)total - (int)total / 2;
    return out;
}

/* Output height and width of a window op on input shape x; false when a
 * window's span or a padded side overflows int. A window longer than the
 * padded side gives 0. */
static bool window_out(const shape *x, const spatial *sp, int *oh, int *ow)
{
    int out[2];
    for (int i = 0; i < 2; i++) {
        int span = window_span(sp->win[i], sp->dil[i]), side;
        if (span < 0 || !int_add(x->d[1 + i], sp->pad[i], &side) || !int_add(side, sp->pad[2 + i], &side))
            return false;
        out[i] = side < span ? 0 : (side - span) / sp->stride[i] + 1;
    }
    *oh = out[0];
    *ow = out[1];
    return true;
}

/* Checks the window attributes against input x; 0 or an error. */
static int check_window(cg_graph *g, cg_src src, const char *what, const shape *x, const spatial *sp)
{
    char sb[64];
    if (x->rank != 4)
        return graph_error(g, src, g->cur_layer, "%s needs an input of shape (n, height, width, channels), got %s",
                           what, shape_str(x, sb, sizeof sb));
    for (int i = 0; i < 2; i++) {
        if (sp->win[i] < 1)
            return graph_error(g, src, g->cur_layer, "%s: window size %d, must be 1 or more", what, sp->win[i]);
        if (sp->stride[i] < 1)
            return graph_error(g, src, g->cur_layer, "%s: stride %d, must be 1 or more", what, sp->stride[i]);
        if (sp->dil[i] < 1)
            return graph_error(g, src, g->cur_layer, "%s: dilation %d, must be 1 or more", what, sp->dil[i]);
    }
    for (int i = 0; i < 4; i++)
        if (sp->pad[i] < 0)
            return graph_error(g, src, g->cur_layer, "%s: padding %d is negative", what, sp->pad[i]);
    int oh, ow;
    if (!window_out(x, sp, &oh, &ow))
        return graph_error(g, src, g->cur_layer,
                           "%s: a %dx%d window with dilation %dx%d and padding (%d, %d, %d, %d) "
                           "on the input %s spans more positions than an int counts",
                           what, sp->win[0], sp->win[1], sp->dil[0], sp->dil[1], sp->pad[0], sp->pad[1], sp->pad[2],
                           sp->pad[3], shape_str(x, sb, sizeof sb));
    if (oh < 1 || ow < 1)
        return graph_error(g, src, g->cur_layer,
                           "%s: a %dx%d window (dilation %dx%d) does not fit the input %s: "
                           "no output",
                           what, sp->win[0], sp->win[1], sp->dil[0], sp->dil[1], shape_str(x, sb, sizeof sb));
    return 0;
}

/* Convolution of x (n, H, W, C) with k (KH, KW, C, F), or depthwise with
 * k (KH, KW, C). sp->win is taken from k. */
int op_conv2d(cg_graph *g, cg_src src, int x, int k, const spatial *sp_in, bool depthwise)
{
    if (x < 0 || k < 0)
        return -1;
    const shape *xs = &g->nodes[x].sh, *ks = &g->nodes[k].sh;
    char s1[64], s2[64];
    const char *what = depthwise ? "depthwise_conv2d" : "conv2d";
    if (ks->rank != (depthwise ? 3 : 4))
        return graph_error(g, src, g->cur_layer, "%s: kernel shape %s, expected (height, width, channels%s)", what,
                           shape_str(ks, s1, sizeof s1), depthwise ? "" : ", filters");
    spatial sp = *sp_in;
    sp.win[0] = ks->d[0];
    sp.win[1] = ks->d[1];
    if (check_window(g, src, what, xs, &sp))
        return -1;
    if (xs->d[3] != ks->d[2])
        return graph_error(g, src, g->cur_layer, "%s: input %s has %d channels but the kernel %s expects %d", what,
                           shape_str(xs, s1, sizeof s1), xs->d[3], shape_str(ks, s2, sizeof s2), ks->d[2]);
    int oh = 0, ow = 0;
    window_out(xs, &sp, &oh, &ow);
    node nd = {.op = depthwise ? OP_DEPTHWISE_CONV2D : OP_CONV2D,
               .nin = 2,
               .in = {x, k},
               .sp = sp,
               .sh = {4, {xs->d[0], oh, ow, depthwise ? xs->d[3] : ks->d[3]}},
               .src = src};
    return node_add(g, &nd);
}

/* Max or average pooling of x with the window, strides and padding of sp. */
int op_pool(cg_graph *g, cg_src src, op_kind op, int x, const spatial *sp)
{
    if (x < 0)
        return -1;
    const shape *xs = &g->nodes[x].sh;
    if (check_window(g, src, op == OP_MAX_POOL ? "max_pool" : "avg_pool", xs, sp))
        return -1;
    int oh = 0, ow = 0;
    window_out(xs, sp, &oh, &ow);
    node nd = {.op = op, .nin = 1, .in = {x}, .sp = *sp, .sh = {4, {xs->d[0], oh, ow, xs->d[3]}}, .src = src};
    return node_add(g, &nd);
}

/* Zero padding of the height and width of x: top, left, bottom, right. */
int op_pad(cg_graph *g, cg_src src, int x, const int pad[4])
{
    if (x < 0)
        return -1;
    const shape *xs = &g->nodes[x].sh;
    char sb[64];
    if (xs->rank != 4)
        return graph_error(g, src, g->cur_layer, "pad needs an input of shape (n, height, width, channels), got %s",
                           shape_str(xs, sb, sizeof sb));
    for (int i = 0; i < 4; i++)
        if (pad[i] < 0)
            return graph_error(g, src, g->cur_layer, "pad: padding %d is negative", pad[i]);
    node nd = {.op = OP_PAD, .nin = 1, .in = {x}, .src = src, .sh = *xs};
    for (int i = 0; i < 2; i++)
        if (!int_add(xs->d[1 + i], pad[i], &nd.sh.d[1 + i]) || !int_add(nd.sh.d[1 + i], pad[2 + i], &nd.sh.d[1 + i]))
            return graph_error(g, src, g->cur_layer,
                               "pad: padding %s by %d and %d gives more positions than an int "
                               "counts",
                               shape_str(xs, sb, sizeof sb), pad[i], pad[2 + i]);
    memcpy(nd.sp.pad, pad, sizeof nd.sp.pad);
    return node_add(g, &nd);
}

/* A backward op of the family: same window attributes, output shape `sh`. */
static int bwd_node(cg_graph *g, const node *fwd, op_kind op, int a, int b, shape sh)
{
    node nd = {.op = op, .nin = b < 0 ? 1 : 2, .in = {a, b}, .sp = fwd->sp, .sh = sh, .src = fwd->src};
    if (b < 0)
        nd.in[1] = 0;
    return node_add(g, &nd);
}

/* Gradients: each forward op has its backward ops, written as kernels. */
static int grad_conv(cg_graph *g, int id, int dy, int dx[3])
{
    node n = g->nodes[id];
    int x = n.in[0];
    shape xs = g->nodes[x].sh;
    switch (n.op) {
    case OP_CONV2D:
        dx[0] = bwd_node(g, &n, OP_CONV2D_BWD_INPUT, dy, n.in[1], xs);
        dx[1] = bwd_node(g, &n, OP_CONV2D_BWD_FILTER, x, dy, g->nodes[n.in[1]].sh);
        break;
    case OP_DEPTHWISE_CONV2D:
        dx[0] = bwd_node(g, &n, OP_DEPTHWISE_BWD_INPUT, dy, n.in[1], xs);
        dx[1] = bwd_node(g, &n, OP_DEPTHWISE_BWD_FILTER, x, dy, g->nodes[n.in[1]].sh);
        break;
    case OP_MAX_POOL: dx[0] = bwd_node(g, &n, OP_MAX_POOL_BWD, x, dy, xs); break;
    case OP_AVG_POOL: dx[0] = bwd_node(g, &n, OP_AVG_POOL_BWD, dy, -1, xs); break;
    case OP_PAD: dx[0] = bwd_node(g, &n, OP_PAD_BWD, dy, -1, xs); break;
    default: return graph_error(g, n.src, n.layer, "no gradient rule for %s", op_table[n.op].name);
    }
    return g->failed ? -1 : 0;
}

/* grad_conv's rules in words; CONV2D_BIAS_ACT's, which the fuse pass makes
 * of an activation's, an addition's and a convolution's rules, with dZ. */
static bool words_conv(cg_graph *g, int id, unsigned inputs, char *buf, size_t size)
{
    const node *n = &g->nodes[id];
    char act[ACT_TEXT_MAX];
    const char *dz = "dY";
    buf[0] = 0;
    switch (n->op) {
    case OP_CONV2D_BIAS_ACT:
        if (n->act != CG_LINEAR && act_grad_words(n->act, n->alpha, "Y", act, sizeof act)) {
            words_term(buf, size, "dZ = %s", act);
            dz = "dZ";
        }
        if (inputs >> 2 & 1)
            words_term(buf, size, "dbias = sum_{n,i,j} %s", dz);
        /* fall through */
    case OP_CONV2D:
        if (inputs >> 1 & 1)
            words_term(buf, size, "dK[p,q,c,f] = sum_{n,i,j} X[n, i*sh + p*dh, j*sw + q*dw, c] %s[n,i,j,f]", dz);
        if (inputs & 1)
            words_term(buf, size, "dX[n, i*sh + p*dh, j*sw + q*dw, c] += sum_f %s[n,i,j,f] K[p,q,c,f]", dz);
        break;
    case OP_DEPTHWISE_CONV2D:
        if (inputs >> 1 & 1)
            words_term(buf, size, "dK[p,q,c] = sum_{n,i,j} X[n, i*sh + p*dh, j*sw + q*dw, c] dY[n,i,j,c]");
        if (inputs & 1)
            words_term(buf, size, "dX[n, i*sh + p*dh, j*sw + q*dw, c] += dY[n,i,j,c] K[p,q,c]");
        break;
    case OP_MAX_POOL: words_term(buf, size, "dX = dY at each window's first maximum, 0 elsewhere"); break;
    case OP_AVG_POOL: words_term(buf, size, "dX = dY / count, spread over each window"); break;
    case OP_PAD: words_term(buf, size, "dX = dY without the padding"); break;
    default: break;
    }
    return buf[0] != 0;
}

/* Input windows of at most this many floats (KH * KW * C) make a GEMM depth too short to pay for the im2col
 * copy: the host then convolves directly (a first layer on one or three channels), keeping the kernel, or
 * the filter's gradient, in a local array of at most DIRECT_KERNEL_MAX floats (32 KB of stack). */
#define DIRECT_WINDOW_MAX 32
#define DIRECT_KERNEL_MAX 8192

/* True when host node n convolves directly, without im2col: a convolution with its bias and activation, or
 * a filter gradient, whose input window holds at most DIRECT_WINDOW_MAX floats. */
static bool conv_direct(const cg_graph *g, const node *n)
{
    if (g->flavour != CG_HOST || (n->op != OP_CONV2D_BIAS_ACT && n->op != OP_CONV2D_BWD_FILTER))
        return false;
    long window = (long)n->sp.win[0] * n->sp.win[1] * g->nodes[n->in[0]].sh.d[3];
    return window <= DIRECT_WINDOW_MAX && window * n->sh.d[3] <= DIRECT_KERNEL_MAX; /* d[3]: F of Y or of dK */
}

/* True when max pooling's gradient node n has windows that tile its input exactly (stride = window, no
 * padding, no row or column left over): each input element is in one window, and one pass writes dX. */
static bool pool_tiles(const cg_graph *g, const node *n)
{
    const shape *x = &g->nodes[n->in[0]].sh, *y = &g->nodes[n->in[1]].sh;
    return n->op == OP_MAX_POOL_BWD && n->sp.stride[0] == n->sp.win[0] && n->sp.stride[1] == n->sp.win[1] &&
           !n->sp.pad[0] && !n->sp.pad[1] && y->d[1] * n->sp.win[0] == x->d[1] && y->d[2] * n->sp.win[1] == x->d[2];
}

/* Scratch floats of the host im2col kernels at the maximum batch (of a direct filter gradient: one partial
 * dK per sample). */
long conv_scratch(cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    if (g->flavour != CG_HOST)
        return 0;
    if (conv_direct(g, n)) { /* one partial filter gradient per sample of X */
        const shape *xs = &g->nodes[n->in[0]].sh;
        long samples = shape_batched(xs) ? g->max_batch : xs->d[0];
        return n->op == OP_CONV2D_BWD_FILTER ? samples * shape_size(&n->sh, 1) : 0;
    }
    const shape *x;
    long positions; /* rows of the im2col matrix */
    switch (n->op) {
    case OP_CONV2D:
    case OP_CONV2D_BIAS_ACT:
        x = &g->nodes[n->in[0]].sh;
        positions = shape_size(&n->sh, g->max_batch) / n->sh.d[3];
        break;
    case OP_CONV2D_BWD_FILTER:
    case OP_CONV2D_BWD_INPUT: {
        const shape *dy = &g->nodes[n->op == OP_CONV2D_BWD_FILTER ? n->in[1] : n->in[0]].sh;
        x = n->op == OP_CONV2D_BWD_FILTER ? &g->nodes[n->in[0]].sh : &n->sh;
        positions = shape_size(dy, g->max_batch) / dy->d[3];
        break;
    }
    default: return 0;
    }
    return positions * n->sp.win[0] * n->sp.win[1] * x->d[3];
}

/* Bytes of the local arrays of node id's window kernel: a max pooling's maximum per channel (its gradient's
 * maximum and position), a direct convolution's copy of the kernel, bias, window and sums, a direct filter
 * gradient's sums and window; 0 for the others. */
long conv_stack_bytes(const cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    long c = n->sh.d[n->sh.rank - 1], window = 0;
    if (n->op == OP_MAX_POOL || n->op == OP_MAX_POOL_BWD)
        return (n->op == OP_MAX_POOL ? 4 : 8) * c;
    if (!conv_direct(g, n))
        return 0;
    window = (long)n->sp.win[0] * n->sp.win[1] * g->nodes[n->in[0]].sh.d[3];
    return 4 * (n->op == OP_CONV2D_BWD_FILTER ? window * c + window : window * c + 2 * c + window);
}

/* Host kernels whose samples are independent run them as pieces on the
 * pool: every window op but the depthwise filter gradient (which sums over
 * samples); the filter gradient splits its im2col, then one GEMM. */
bool conv_batch_parallel(cg_graph *g, int id, bool *tail)
{
    const node *n = &g->nodes[id];
    *tail = n->op == OP_CONV2D_BWD_FILTER;
    return g->flavour == CG_HOST && op_table[n->op].cat == CAT_CONV && n->op != OP_DEPTHWISE_BWD_FILTER &&
           (*tail || shape_batched(&n->sh)) && shape_batched(&g->nodes[n->in[0]].sh);
}

/* ---- lowering ------------------------------------------------------------------ */

/* The numbers every window kernel uses, as template keys. */
typedef struct window_keys {
    char nb[8], h[16], w[16], c[16], oh[16], ow[16], f[16], kh[16], kw[16], sh[16], sw[16], dh[16], dw[16], pt[16],
        pl[16], pb[16], pr[16], kkc[32];
    /* the samples of a piece [b0, b1); its rows of the im2col matrix [row0, row0 + rows); the input side's
     * elements [e0, e1); where its rows start in cols, Y and dY */
    char b0[32], b1[32], rows[96], row0[64], e0[96], e1[96], cols_row[128], y_row[128], dy_row[128];
} window_keys;

/* Fills the keys from input shape in (n, H, W, C), output shape out (n, OH, OW, F|C). */
static void fill_keys(window_keys *k, const node *n, const shape *in, const shape *out)
{
    if (shape_batched(in))
        snprintf(k->nb, sizeof k->nb, "n");
    else
        snprintf(k->nb, sizeof k->nb, "%d", in->d[0]);
    snprintf(k->h, sizeof k->h, "%d", in->d[1]);
    snprintf(k->w, sizeof k->w, "%d", in->d[2]);
    snprintf(k->c, sizeof k->c, "%d", in->d[3]);
    snprintf(k->oh, sizeof k->oh, "%d", out->d[1]);
    snprintf(k->ow, sizeof k->ow, "%d", out->d[2]);
    snprintf(k->f, sizeof k->f, "%d", out->d[3]);
    snprintf(k->kh, sizeof k->kh, "%d", n->sp.win[0]);
    snprintf(k->kw, sizeof k->kw, "%d", n->sp.win[1]);
    snprintf(k->sh, sizeof k->sh, "%d", n->sp.stride[0]);
    snprintf(k->sw, sizeof k->sw, "%d", n->sp.stride[1]);
    snprintf(k->dh, sizeof k->dh, "%d", n->sp.dil[0]);
    snprintf(k->dw, sizeof k->dw, "%d", n->sp.dil[1]);
    snprintf(k->pt, sizeof k->pt, "%d", n->sp.pad[0]);
    snprintf(k->pl, sizeof k->pl, "%d", n->sp.pad[1]);
    snprintf(k->kkc, sizeof k->kkc, "%d", n->sp.win[0] * n->sp.win[1] * in->d[3]);
    snprintf(k->pb, sizeof k->pb, "%d", n->sp.pad[2]);
    snprintf(k->pr, sizeof k->pr, "%d", n->sp.pad[3]);
}

/* Fills the keys of the part of the kernel being written: a piece over
 * samples [lo, hi) run on the pool (part 1), or the whole batch (no "0 *
 * 26" then: the first sample's offsets are plain 0). */
static void fill_piece_keys(window_keys *k, int part)
{
    bool piece = part == 1;
    snprintf(k->b0, sizeof k->b0, piece ? "(int)lo" : "0");
    snprintf(k->b1, sizeof k->b1, "%s", piece ? "(int)hi" : k->nb);
    if (piece)
        snprintf(k->rows, sizeof k->rows, "((int)hi - (int)lo) * %s * %s", k->oh, k->ow);
    else
        snprintf(k->rows, sizeof k->rows, "%s * %s * %s", k->nb, k->oh, k->ow);
    snprintf(k->row0, sizeof k->row0, piece ? "lo * %s * %s" : "0", k->oh, k->ow);
    snprintf(k->e0, sizeof k->e0, piece ? "%s * %s * %s * %s" : "0", k->b0, k->h, k->w, k->c);
    snprintf(k->e1, sizeof k->e1, "%s * %s * %s * %s", k->b1, k->h, k->w, k->c);
    snprintf(k->cols_row, sizeof k->cols_row, piece ? "cols + %s * %s" : "cols", k->row0, k->kkc);
    snprintf(k->y_row, sizeof k->y_row, piece ? "Y + %s * %s" : "Y", k->row0, k->f);
    snprintf(k->dy_row, sizeof k->dy_row, piece ? "dY + %s * %s" : "dY", k->row0, k->f);
}

/* The kernel template of window op `op` in the host or the portable flavour; NULL: none. */
static const char *conv_template(op_kind op, bool host)
{
    switch (op) {
    case OP_CONV2D: return host ? "kernels/conv2d_host" : "kernels/conv2d";
    case OP_CONV2D_BIAS_ACT: return host ? "kernels/conv2d_bias_act_host" : "kernels/conv2d_bias_act";
    case OP_CONV2D_BWD_INPUT: return host ? "kernels/conv2d_bwd_input_host" : "kernels/conv2d_bwd_input";
    case OP_CONV2D_BWD_FILTER: return host ? "kernels/conv2d_bwd_filter_host" : "kernels/conv2d_bwd_filter";
    case OP_DEPTHWISE_CONV2D: return "kernels/depthwise_conv2d";
    case OP_DEPTHWISE_BWD_INPUT: return "kernels/depthwise_bwd_input";
    case OP_DEPTHWISE_BWD_FILTER: return "kernels/depthwise_bwd_filter";
    case OP_MAX_POOL: return "kernels/max_pool";
    case OP_MAX_POOL_BWD: return "kernels/max_pool_bwd";
    case OP_AVG_POOL: return "kernels/avg_pool";
    case OP_AVG_POOL_BWD: return "kernels/avg_pool_bwd";
    case OP_PAD: return "kernels/pad";
    case OP_PAD_BWD: return "kernels/pad_bwd";
    default: return NULL;
    }
}

/* Lowers a window op from its template: the forward input shape and the
 * forward output shape decide every bound. */
void lower_conv(emit_ctx *e, int id)
{
    cg_graph *g = e->g;
    const node *n = &g->nodes[id];
    const shape *in, *out;
    switch (n->op) {
    case OP_CONV2D:
    case OP_CONV2D_BIAS_ACT:
    case OP_DEPTHWISE_CONV2D:
    case OP_MAX_POOL:
    case OP_AVG_POOL:
    case OP_PAD: in = &g->nodes[n->in[0]].sh, out = &n->sh; break;
    case OP_CONV2D_BWD_FILTER:
    case OP_DEPTHWISE_BWD_FILTER:
    case OP_MAX_POOL_BWD: in = &g->nodes[n->in[0]].sh, out = &g->nodes[n->in[1]].sh; break;
    default: /* *_BWD_INPUT, AVG_POOL_BWD, PAD_BWD: dY first, output dX */
        in = &n->sh, out = &g->nodes[n->in[0]].sh;
        break;
    }
    window_keys k;
    fill_keys(&k, n, in, out);
    if (n->op == OP_PAD || n->op == OP_PAD_BWD) {
        const shape *big = n->op == OP_PAD ? &n->sh : &g->nodes[n->in[0]].sh;
        snprintf(k.oh, sizeof k.oh, "%d", big->d[1]);
        snprintf(k.ow, sizeof k.ow, "%d", big->d[2]);
        snprintf(k.f, sizeof k.f, "%d", big->d[3]);
    }
    bool host = g->flavour == CG_HOST, direct = conv_direct(g, n);
    const char *tmpl = pool_tiles(g, n)                        ? "kernels/max_pool_bwd_tiled"
                       : direct && n->op == OP_CONV2D_BIAS_ACT ? "kernels/conv2d_bias_act_direct"
                                                               : conv_template(n->op, host);
    fill_piece_keys(&k, e->part);
    char act[ACT_TEXT_MAX], grad[ACT_TEXT_MAX];
    const char *act_name = emit_activation(n->act, n->alpha, act, sizeof act);
    if (!act_name || !emit_act_grad(n->act, n->alpha, "best[c]", "dy[c]", grad, sizeof grad)) { /* MAX_POOL_BWD */
        graph_error(g, n->src, n->layer, "internal: the activation's text does not fit");
        return;
    }
    const char *kv[] = {"N",        k.nb,       "ACT",   act,     "ACT_NAME", act_name, "H",  k.h,  "W",
                        k.w,        "C",        k.c,     "OH",    k.oh,       "OW",     k.ow, "F",  k.f,
                        "KH",       k.kh,       "KW",    k.kw,    "SH",       k.sh,     "SW", k.sw, "DH",
                        k.dh,       "DW",       k.dw,    "PT",    k.pt,       "PL",     k.pl, "PB", k.pb,
                        "PR",       k.pr,       "KKC",   k.kkc,   "B0",       k.b0,     "B1", k.b1, "ROWS",
                        k.rows,     "ROW0",     k.row0,  "GRAD",  grad,       "E0",     k.e0, "E1", k.e1,
                        "COLS_ROW", k.cols_row, "Y_ROW", k.y_row, "DY_ROW",   k.dy_row, NULL};
    /* host convolutions copy windows first (im2col); the filter gradient's
     * copy is the split loop (part 1) and its GEMM what follows (part 2); a
     * direct filter gradient sums each sample's share there, then adds them */
    bool im2col = host && !direct &&
                  (n->op == OP_CONV2D || n->op == OP_CONV2D_BIAS_ACT ||
                   (n->op == OP_CONV2D_BWD_FILTER && e->part != 2));
    if (direct && n->op == OP_CONV2D_BWD_FILTER) {
        if ((e->part != 2 && text_template(e->t, "kernels/conv2d_bwd_filter_direct", kv)) ||
            (e->part != 1 && text_template(e->t, "kernels/conv2d_bwd_filter_sum", kv)))
            graph_error(g, n->src, n->layer, "internal: the direct filter gradient's template failed");
        return;
    }
    if (host && n->op == OP_CONV2D_BWD_FILTER && e->part == 1)
        tmpl = NULL;
    if (im2col && text_template(e->t, "kernels/im2col", kv))
        graph_error(g, n->src, n->layer, "internal: the im2col template failed");
    if (!tmpl && im2col)
        return;
    if (!tmpl || text_template(e->t, tmpl, kv))
        graph_error(g, n->src, n->layer, "internal: no kernel template for %s", op_table[n->op].name);
}

/* The fused convolution, and max pooling's gradient with an activation's fused in, in buffer names;
 * false for the others (their formula). */
static bool describe_conv(emit_ctx *e, int id, const char *const in[3], char *buf, size_t size)
{
    const node *n = &e->g->nodes[id];
    const char *act = emit_act_name(n->act);
    if (n->op == OP_CONV2D_BIAS_ACT)
        snprintf(buf, size, "%s = %s(conv2d(%s, %s) + %s), stride %dx%d, dilation %dx%d, padding %d %d %d %d", n->name,
                 act, in[0], in[1], in[2], n->sp.stride[0], n->sp.stride[1], n->sp.dil[0], n->sp.dil[1], n->sp.pad[0],
                 n->sp.pad[1], n->sp.pad[2], n->sp.pad[3]);
    else if (n->op == OP_MAX_POOL_BWD && n->act != CG_LINEAR)
        snprintf(buf, size,
                 "%s: dX gets dY[b,i,j,c] * %s'(X) at the first maximum of each window (0 elsewhere), "
                 "with X = %s (the %s output), dY = %s",
                 n->name, act, in[0], act, in[1]);
    else
        return false;
    return true;
}

/* Multiply-adds count twice; a backward op costs what its forward did; padding only moves data. */
static long flops_conv(cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    long out = shape_size(&n->sh, 1), win = (long)n->sp.win[0] * n->sp.win[1];
    bool dy_second = n->op == OP_CONV2D_BWD_FILTER || n->op == OP_DEPTHWISE_BWD_FILTER || n->op == OP_MAX_POOL_BWD;
    long dy = shape_size(&g->nodes[n->in[dy_second ? 1 : 0]].sh, 1);
    switch (n->op) {
    case OP_CONV2D: return 2 * out * win * g->nodes[n->in[0]].sh.d[3];
    case OP_CONV2D_BIAS_ACT: return 2 * out * win * g->nodes[n->in[0]].sh.d[3] + 2 * out;
    case OP_CONV2D_BWD_INPUT: return 2 * dy * win * n->sh.d[3];
    case OP_CONV2D_BWD_FILTER: return 2 * dy * win * g->nodes[n->in[0]].sh.d[3];
    case OP_DEPTHWISE_CONV2D: return 2 * out * win;
    case OP_DEPTHWISE_BWD_INPUT:
    case OP_DEPTHWISE_BWD_FILTER: return 2 * dy * win;
    case OP_MAX_POOL:
    case OP_AVG_POOL: return out * win;
    case OP_MAX_POOL_BWD:
    case OP_AVG_POOL_BWD: return dy * win;
    default: return 0;
    }
}

const op_family op_family_conv = {"conv", grad_conv, lower_conv, flops_conv, describe_conv, words_conv};
