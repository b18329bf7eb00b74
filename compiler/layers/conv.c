/* layers/conv.c: Conv2D, DepthwiseConv2D, Conv1D, MaxPooling2D,
 * AveragePooling2D, GlobalAveragePooling2D, Flatten and Reshape (Keras
 * semantics, channels last). Each builds ops on the layer's input and
 * returns its output. */
#include "../cgrad_int.h"

/* Window attributes from the layer's options; window size set by the caller. */
static spatial conv_spatial(const cg_conv_opts *o)
{
    spatial sp = {{0, 0},
                  {o->strides > 0 ? o->strides : 1, o->strides > 0 ? o->strides : 1},
                  {o->dilation > 0 ? o->dilation : 1, o->dilation > 0 ? o->dilation : 1},
                  {0, 0, 0, 0}};
    return sp;
}

/* Fills sp.pad for "same" padding of input x (n, H, W, C). */
static void same_padding(const shape *x, spatial *sp)
{
    conv_out_size(x->d[1], sp->win[0], sp->stride[0], sp->dil[0], true, &sp->pad[0], &sp->pad[2]);
    conv_out_size(x->d[2], sp->win[1], sp->stride[1], sp->dil[1], true, &sp->pad[1], &sp->pad[3]);
}

/* Checks that the options of a Conv2D, DepthwiseConv2D or Conv1D (kind) are
 * sensible, and its input's rank, before any op is made. */
static int check_conv_opts(cg_graph *g, cg_src src, const cg_conv_opts *o, cg_layer_kind kind, const shape *x)
{
    bool depthwise = kind == CG_LAYER_DEPTHWISE_CONV2D, conv1d = kind == CG_LAYER_CONV1D;
    char sb[64];
    if (!depthwise && o->filters <= 0)
        return graph_error(g, src, g->cur_layer, "filters must be positive, got %d", o->filters);
    if (o->kernel_size <= 0 || o->kernel_w < 0)
        return graph_error(g, src, g->cur_layer, "kernel size must be positive, got %d", o->kernel_size);
    if (o->strides < 0 || o->dilation < 0)
        return graph_error(g, src, g->cur_layer, "strides and dilation must be positive, got %d and %d", o->strides,
                           o->dilation);
    if ((o->strides > 1) && (o->dilation > 1))
        return graph_error(g, src, g->cur_layer, "strides and dilation cannot both exceed 1 (as in Keras)");
    if (conv1d && o->kernel_w)
        return graph_error(g, src, g->cur_layer, "kernel_w is for Conv2D; a Conv1D kernel spans kernel_size steps");
    if (o->padding == CG_CAUSAL && !conv1d)
        return graph_error(g, src, g->cur_layer, "causal padding is for Conv1D (CG_VALID or CG_SAME here)");
    if ((unsigned)o->padding > CG_CAUSAL)
        return graph_error(g, src, g->cur_layer, "unknown padding %d (%s)", (int)o->padding,
                           conv1d ? "CG_VALID, CG_SAME or CG_CAUSAL" : "CG_VALID or CG_SAME");
    if ((unsigned)o->activation >= ACT_COUNT)
        return graph_error(g, src, g->cur_layer, "unknown activation %d", (int)o->activation);
    if (conv1d && x->rank != 3)
        return graph_error(g, src, g->cur_layer, "input has shape %s; Conv1D needs (n, steps, channels)%s",
                           shape_str(x, sb, sizeof sb),
                           x->rank == 2 ? ": reshape one channel per step to (steps, 1)" : "");
    if (!conv1d && x->rank != 4)
        return graph_error(g, src, g->cur_layer, "input has shape %s; this layer needs (n, height, width, channels)",
                           shape_str(x, sb, sizeof sb));
    return 0;
}

/* Conv2D or DepthwiseConv2D: kernel, optional bias, activation. */
static int conv2d(cg_graph *g, const cg_conv_opts *o, bool depthwise, cg_src src, int x)
{
    const shape *xs = &g->nodes[x].sh;
    if (check_conv_opts(g, src, o, depthwise ? CG_LAYER_DEPTHWISE_CONV2D : CG_LAYER_CONV2D, xs))
        return -1;
    spatial sp = conv_spatial(o);
    sp.win[0] = o->kernel_size;
    sp.win[1] = o->kernel_w > 0 ? o->kernel_w : o->kernel_size;
    if (o->padding == CG_SAME)
        same_padding(xs, &sp);
    int c = xs->d[3], f = depthwise ? c : o->filters;
    shape ks = depthwise ? (shape){3, {sp.win[0], sp.win[1], c}} : (shape){4, {sp.win[0], sp.win[1], c, f}};
    cg_init ki = o->kernel_initializer.kind == CG_INIT_DEFAULT ? cg_glorot_uniform() : o->kernel_initializer;
    cg_init bi = o->bias_initializer.kind == CG_INIT_DEFAULT ? cg_zeros() : o->bias_initializer;
    int kernel = weight_add(g, src, depthwise ? "depthwise_kernel" : "kernel", &ks, ki);
    int y = op_conv2d(g, src, x, kernel, &sp, depthwise);
    return layer_bias_activation(g, src, y, "conv", f, o->use_bias, bi, o->activation, o->alpha);
}

/* Conv2D on x (n, height, width, channels). */
int layer_conv2d(const layer_call *lc)
{
    return conv2d(lc->g, &lc->l->conv, false, lc->l->src, lc->x);
}

/* DepthwiseConv2D: one kernel per input channel. */
int layer_depthwise_conv2d(const layer_call *lc)
{
    return conv2d(lc->g, &lc->l->conv, true, lc->l->src, lc->x);
}

/* The window of a Conv1D as a Conv2D's over (n, 1, steps, channels): 1 x
 * kernel_size, and its padding along the steps (sp->pad[1] before, [3]
 * after). Returns 0, or an error when the dilated kernel's span overflows
 * int or, with "valid" padding, is longer than the sequence. */
static int conv1d_window(cg_graph *g, cg_src src, const cg_conv_opts *o, const shape *xs, spatial *sp)
{
    char sb[64];
    int k = o->kernel_size, steps = xs->d[1], span;
    *sp = conv_spatial(o);
    sp->win[0] = sp->stride[0] = sp->dil[0] = 1;
    sp->win[1] = k;
    if (!int_mul(k - 1, sp->dil[1], &span) || !int_add(span, 1, &span))
        return graph_error(g, src, g->cur_layer, "kernel_size %d with dilation %d spans more steps than an int counts",
                           k, sp->dil[1]);
    if (o->padding == CG_VALID && span > steps)
        return graph_error(g, src, g->cur_layer,
                           "kernel_size %d (dilation %d, %d steps) is longer than the input %s "
                           "with valid padding: no output (CG_SAME or CG_CAUSAL pad the sequence)",
                           k, sp->dil[1], span, shape_str(xs, sb, sizeof sb));
    if (o->padding == CG_SAME)
        conv_out_size(steps, k, sp->stride[1], sp->dil[1], true, &sp->pad[1], &sp->pad[3]);
    if (o->padding == CG_CAUSAL)
        sp->pad[1] = span - 1;
    return 0;
}

/* Conv1D on x (n, steps, channels), as Keras: kernel (kernel_size, channels,
 * filters), optional bias, activation; output (n, new_steps, filters). Built
 * as a Conv2D of the view (n, 1, steps, channels) with the kernel's view
 * (1, kernel_size, channels, filters), the same floats, so its gradient is
 * Conv2D's. */
int layer_conv1d(const layer_call *lc)
{
    cg_graph *g = lc->g;
    const cg_conv_opts *o = &lc->l->conv;
    cg_src src = lc->l->src;
    const shape *xs = &g->nodes[lc->x].sh;
    spatial sp;
    if (check_conv_opts(g, src, o, CG_LAYER_CONV1D, xs) || conv1d_window(g, src, o, xs, &sp))
        return -1;
    int k = o->kernel_size, c = xs->d[2], f = o->filters;
    cg_init ki = o->kernel_initializer.kind == CG_INIT_DEFAULT ? cg_glorot_uniform() : o->kernel_initializer;
    cg_init bi = o->bias_initializer.kind == CG_INIT_DEFAULT ? cg_zeros() : o->bias_initializer;
    int x2 = op_reshape(g, src, lc->x, (shape){4, {CG_BATCH, 1, xs->d[1], c}});
    layer_name_role(g, x2, "x_2d");
    int kernel = weight_add(g, src, "kernel", &(shape){3, {k, c, f}}, ki);
    int k2 = op_reshape(g, src, kernel, (shape){4, {1, k, c, f}});
    layer_name_role(g, k2, "kernel_2d");
    int y = op_conv2d(g, src, x2, k2, &sp, false);
    y = layer_bias_activation(g, src, y, "conv", f, o->use_bias, bi, o->activation, o->alpha);
    if (y < 0)
        return -1;
    layer_name_role(g, y, "out_2d");
    y = op_reshape(g, src, y, (shape){3, {CG_BATCH, g->nodes[y].sh.d[2], f}});
    layer_name_role(g, y, "out");
    return y;
}

/* MaxPooling2D or AveragePooling2D. */
static int pool2d(cg_graph *g, const cg_pool_opts *o, op_kind op, cg_src src, int x)
{
    const shape *xs = &g->nodes[x].sh;
    char sb[64];
    int size = o->pool_size > 0 ? o->pool_size : 2, stride = o->strides > 0 ? o->strides : size;
    if (o->pool_size < 0 || o->strides < 0)
        return graph_error(g, src, g->cur_layer, "pool size and strides must be positive, got %d and %d", o->pool_size,
                           o->strides);
    if (o->padding == CG_CAUSAL)
        return graph_error(g, src, g->cur_layer, "causal padding is for Conv1D (CG_VALID or CG_SAME here)");
    if ((unsigned)o->padding > CG_SAME)
        return graph_error(g, src, g->cur_layer, "unknown padding %d (CG_VALID or CG_SAME)", (int)o->padding);
    if (xs->rank != 4)
        return graph_error(g, src, g->cur_layer, "input has shape %s; pooling needs (n, height, width, channels)",
                           shape_str(xs, sb, sizeof sb));
    spatial sp = {{size, size}, {stride, stride}, {1, 1}, {0, 0, 0, 0}};
    if (o->padding == CG_SAME)
        same_padding(xs, &sp);
    int y = op_pool(g, src, op, x, &sp);
    layer_name_role(g, y, "out");
    return y;
}

/* MaxPooling2D. */
int layer_max_pool2d(const layer_call *lc)
{
    return pool2d(lc->g, &lc->l->pool, OP_MAX_POOL, lc->l->src, lc->x);
}

/* AveragePooling2D. */
int layer_avg_pool2d(const layer_call *lc)
{
    return pool2d(lc->g, &lc->l->pool, OP_AVG_POOL, lc->l->src, lc->x);
}

/* GlobalAveragePooling2D: the mean over height and width. */
int layer_global_avg_pool(const layer_call *lc)
{
    cg_graph *g = lc->g;
    cg_src src = lc->l->src;
    int x = lc->x;
    char sb[64];
    if (g->nodes[x].sh.rank != 4)
        return graph_error(g, src, g->cur_layer, "input has shape %s; this layer needs (n, height, width, channels)",
                           shape_str(&g->nodes[x].sh, sb, sizeof sb));
    int y = op_reduce(g, src, OP_MEAN, x, CG_AXIS(1) | CG_AXIS(2), false);
    layer_name_role(g, y, "out");
    return y;
}

/* Flatten: (n, ...) -> (n, product); Reshape: (n, ...) -> (n, target). */
static int reshape(cg_graph *g, cg_src src, int x, const cg_shape *target)
{
    const shape *xs = &g->nodes[x].sh;
    shape to = {1, {CG_BATCH}};
    if (!target) {
        if (check_elems(g, src, g->cur_layer, "the input", xs, 1))
            return -1;
        to = (shape){2, {CG_BATCH, (int)shape_elems(xs, 1)}};
    } else {
        if (target->rank < 1 || target->rank >= CG_MAX_RANK)
            return graph_error(g, src, g->cur_layer, "target shape needs 1 to %d dimensions, got %d", CG_MAX_RANK - 1,
                               target->rank);
        for (int i = 0; i < target->rank; i++)
            to.d[to.rank++] = target->dims[i];
    }
    int y = op_reshape(g, src, x, to);
    return y;
}

/* Flatten: (n, ...) -> (n, product). */
int layer_flatten(const layer_call *lc)
{
    return reshape(lc->g, lc->l->src, lc->x, NULL);
}

/* Reshape: (n, ...) -> (n, target_shape). */
int layer_reshape(const layer_call *lc)
{
    return reshape(lc->g, lc->l->src, lc->x, &lc->l->misc.target_shape);
}
