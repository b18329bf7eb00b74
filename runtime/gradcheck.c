/* gradcheck.c: BIN gradcheck, the check of a model's gradients against
 * central finite differences of the same function: the training-mode loss
 * of one batch of real data (m->gradients: Dropout's masks, the same at every
 * call, and BatchNormalization's batch statistics), at the seeded initial
 * weights or those of a checkpoint.
 *
 * Per coordinate w of a parameter: h = 1e-3 max(1, |w|) in float, the loss at
 * w + h and w - h (floats, as the model computes it), their difference taken
 * in double and divided by the difference of the two floats actually stored
 * (not by 2h: w + h rounds). Tensors of more than --samples floats are
 * checked at that many coordinates drawn with a fixed seed, smaller ones at
 * every coordinate.
 *
 * The error of a coordinate is |fd - g| / max(|fd|, |g|, floor): relative to
 * the larger of the two, so that it reads as a fraction off whichever way it
 * is off, and never to less than a floor, so that it does not blow up where
 * the gradient is near 0. The floor is 1e-3, or the smallest gradient that
 * the quotient resolves to GC_TOL when that is larger: the loss is a float,
 * so the quotient carries the rounding of the two losses (taken as 4 units
 * in the last place of the loss, over the step).
 *
 * Kinks: where the loss is not differentiable (a ReLU input crossing 0, a
 * max-pooling window changing hands, both frequent at the zero biases of
 * initial weights), the central difference averages the slopes on either
 * side and may be far from the gradient, which is right. A coordinate over
 * GC_TOL whose one-sided slopes (over h and h / 2 on each side) spread by
 * more than GC_TOL is reported as a kink and not judged; a wrong gradient
 * rule shows on a smooth loss, where those slopes agree. A parameter fails
 * when more than one of its judged coordinates, and more than one in ten,
 * are over GC_TOL (gc_fails). */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The tolerance of the relative error, and of the spread of the slopes
 * that marks a kink. */
#define GC_TOL 5e-2

/* What every measurement needs: the model, its state, the batch, and the
 * loss at the unperturbed weights. */
typedef struct gc_run {
    const cgrt_model *m;
    void *state;
    int n;
    const float *x, *y;
    float loss;
} gc_run;

/* One coordinate: the difference quotient, the gradient, their relative
 * error, and whether the loss bends within the step there. */
typedef struct gc_point {
    double fd, grad, err;
    int kink;
} gc_point;

/* What the check of one parameter found: coordinates compared, those at
 * kinks (reported, not judged), those judged and over GC_TOL; the worst
 * judged coordinate and the worst at a kink, with their indices. */
typedef struct gc_param {
    int checked, kinks, bad;
    gc_point worst, worst_kink;
    size_t at, kink_at;
} gc_param;

/* 1 when parameter r fails: more than one of its judged coordinates (those
 * not at a kink), and more than one in ten, are over GC_TOL. An isolated one
 * may sit among kinks too dense for the slopes to show (the loss of a first
 * convolution bends many times within one step); a wrong gradient rule puts
 * most of them over. */
static int gc_fails(const gc_param *r)
{
    int judged = r->checked - r->kinks;
    return r->bad > 1 && r->bad > judged / 10;
}

/* The loss with coordinate *w set to v; *w is put back. */
static float gc_loss_at(const gc_run *r, float *w, float v)
{
    float w0 = *w, loss;
    *w = v;
    r->m->gradients(r->state, r->n, r->x, r->y, &loss);
    *w = w0;
    return loss;
}

/* 1 when the one-sided slopes of the loss over [w0 - h, w0], [w0, w0 + h]
 * and over the half steps spread by more than GC_TOL of the largest (floor:
 * their rounding, 4 res, res the central quotient's): the loss bends (a
 * ReLU crossing zero, a max-pooling window changing hands) within the step,
 * and the central difference averages across the kink. */
static int gc_kink(const gc_run *r, float *w, float h, float up, float lu, float down, float ld, double res)
{
    float w0 = *w, up2 = w0 + h / 2, down2 = w0 - h / 2;
    float lu2 = gc_loss_at(r, w, up2), ld2 = gc_loss_at(r, w, down2);
    double l0 = r->loss, s[4], lo, hi, big = 0.0;
    int i;
    s[0] = ((double)lu - l0) / ((double)up - w0);
    s[1] = (l0 - ld) / ((double)w0 - down);
    s[2] = ((double)lu2 - l0) / ((double)up2 - w0);
    s[3] = (l0 - ld2) / ((double)w0 - down2);
    lo = hi = s[0];
    for (i = 0; i < 4; i++) {
        lo = fmin(lo, s[i]);
        hi = fmax(hi, s[i]);
        big = fmax(big, fabs(s[i]));
    }
    return hi - lo > GC_TOL * fmax(big, fmax(1e-3, 4.0 * res / GC_TOL));
}

/* Measures coordinate *w against its gradient grad into *pt: the central
 * difference quotient with h = 1e-3 max(1, |w|) over the floats actually
 * stored, and the relative error |fd - grad| / max(|fd|, |grad|, floor),
 * floor = max(1e-3, res / GC_TOL) where res = 4 ulp(loss) / (up - down) is
 * the quotient's rounding: a gradient smaller than the floor cannot be
 * resolved to GC_TOL in float. Over GC_TOL, the kink test decides. */
static void gc_measure(const gc_run *r, float *w, double grad, gc_point *pt)
{
    float w0 = *w, h = 1e-3f * fmaxf(1.0f, fabsf(w0)), up = w0 + h, down = w0 - h;
    float lu = gc_loss_at(r, w, up), ld = gc_loss_at(r, w, down), top = fmaxf(fabsf(lu), fabsf(ld));
    double step = (double)up - (double)down, res = 4.0 * ((double)nextafterf(top, INFINITY) - top) / step;
    pt->fd = ((double)lu - (double)ld) / step;
    pt->grad = grad;
    pt->err = fabs(pt->fd - grad) / fmax(fmax(fabs(pt->fd), fabs(grad)), fmax(1e-3, res / GC_TOL));
    pt->kink = pt->err > GC_TOL && gc_kink(r, w, h, up, lu, down, ld, res);
}

/* Draws k distinct indices below count into idx (every index, in order, when
 * count <= k) with a generator seeded by seed; returns how many. */
static int gc_pick(size_t count, int k, uint64_t seed, size_t *idx)
{
    cgrt_rng r = {seed};
    int n = 0, i;
    if (count <= (size_t)k) {
        for (n = 0; (size_t)n < count; n++)
            idx[n] = (size_t)n;
        return n;
    }
    while (n < k) {
        size_t v = (size_t)(cgrt_rng_next(&r) % count);
        for (i = 0; i < n && idx[i] != v; i++)
            ;
        if (i == n)
            idx[n++] = v;
    }
    return n;
}

/* Checks parameter p at up to samples coordinates (idx: room for them)
 * against the gradient block g into *out. */
static void gc_check(const gc_run *r, const cgrt_param *p, const float *g, int samples, size_t *idx, gc_param *out)
{
    float *w = r->m->param_block(r->state) + p->offset;
    int k, count = gc_pick(p->count, samples, 0x9E3779B97F4A7C15ull ^ p->offset, idx);
    memset(out, 0, sizeof *out);
    for (k = 0; k < count; k++) {
        gc_point pt;
        gc_measure(r, w + idx[k], g[p->offset + idx[k]], &pt);
        out->checked++;
        if (pt.kink) {
            if (out->kinks++ == 0 || pt.err > out->worst_kink.err)
                out->worst_kink = pt, out->kink_at = idx[k];
            continue;
        }
        out->bad += pt.err > GC_TOL;
        if (out->checked - out->kinks == 1 || pt.err > out->worst.err)
            out->worst = pt, out->at = idx[k];
    }
}

/* Writes index i of a tensor of shape p->dims as "[a, b, c]" into buf. */
static void gc_where(const cgrt_param *p, size_t i, char *buf, size_t size)
{
    size_t len = 0, stride[CGRT_MAX_RANK];
    int k;
    for (k = p->rank - 1; k >= 0; k--)
        stride[k] = k == p->rank - 1 ? 1 : stride[k + 1] * (size_t)p->dims[k + 1];
    buf[0] = 0;
    for (k = 0; k < p->rank && len < size; k++)
        len += (size_t)snprintf(buf + len, size - len, "%s%zu", k ? ", " : "[", i / stride[k] % (size_t)p->dims[k]);
    if (len < size)
        snprintf(buf + len, size - len, "%s", p->rank ? "]" : "[]");
}

/* The state to check, initialised with the seed (the dropout generator's
 * too), then given the checkpoint's weights when there is one; NULL with
 * err set. */
static void *gc_state(const cgrt_model *m, const rt_cli_opts *o, cgrt_error *err)
{
    size_t bytes = (m->state_bytes + 63) / 64 * 64;
    void *s = NULL;
    if (posix_memalign(&s, 64, bytes ? bytes : 64) != 0) {
        rt_fail(err, "out of memory for the model state");
        return NULL;
    }
    memset(s, 0, bytes ? bytes : 64);
    m->init(s, o->seed);
    if (o->weights && cgrt_load_checkpoint(m, m->param_block(s), o->weights, err) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Prints parameter p's line: coordinates checked, at kinks, over GC_TOL, the worst
 * judged error and where, the difference quotient and the gradient there. */
static void gc_print(const cgrt_param *p, const gc_param *r)
{
    char at[96] = "-", count[48];
    if (r->checked > r->kinks)
        gc_where(p, r->at, at, sizeof at);
    snprintf(count, sizeof count, "%d/%zu", r->checked, p->count);
    printf("%-28s %12s %6d %5d %10.3g  %-16s %12.5g %12.5g\n", p->name, count, r->kinks, r->bad, r->worst.err, at,
           r->worst.fd, r->worst.grad);
}

/* Prints the kinks line: how many coordinates were not judged, and the
 * largest error among them, at which coordinate. */
static void gc_print_kinks(const cgrt_model *m, const gc_param *res, int kinks)
{
    const gc_param *w = NULL;
    const cgrt_param *wp = NULL;
    char at[96];
    int i;
    for (i = 0; i < m->num_params; i++)
        if (m->params[i].trainable && res[i].kinks && (!w || res[i].worst_kink.err > w->worst_kink.err))
            w = &res[i], wp = &m->params[i];
    gc_where(wp, w->kink_at, at, sizeof at);
    printf("kinks: at %d coordinate%s the loss bends within the step (its one-sided slopes spread by more than %g),\n"
           "so the difference there averages across the kink: reported, not judged; the largest error there is\n"
           "%.3g at %s%s (difference %.5g, gradient %.5g)\n",
           kinks, kinks == 1 ? "" : "s", GC_TOL, w->worst_kink.err, wp->name, at, w->worst_kink.fd, w->worst_kink.grad);
}

/* Checks every trainable parameter of m, whose gradient block after the
 * batch is g, into res[]; prints a line per parameter, the kinks and the
 * verdict. Returns 1 when a parameter fails (gc_fails). */
static int gc_report(const gc_run *r, const float *g, const rt_cli_opts *o, size_t *idx, gc_param *res)
{
    const cgrt_model *m = r->m;
    double worst = 0.0;
    int i, kinks = 0, failed = 0, checked = 0;
    const char *sep = " in ";
    printf("gradcheck: %s, the first %d samples of %s, %s, training-mode loss %.6g\n", m->name, r->n, o->data,
           o->weights ? o->weights : "the initial weights", (double)r->loss);
    printf("error = |difference - gradient| / max(|difference|, |gradient|, floor); a parameter fails when more than\n"
           "one, and more than 1 in 10, of its coordinates not at a kink have an error over %g\n",
           GC_TOL);
    printf("%-28s %12s %6s %5s %10s  %-16s %12s %12s\n", "parameter", "checked", "kinks", "over", "worst_rel", "at",
           "difference", "gradient");
    for (i = 0; i < m->num_params; i++) {
        if (!m->params[i].trainable)
            continue;
        gc_check(r, &m->params[i], g, (int)o->samples, idx, &res[i]);
        gc_print(&m->params[i], &res[i]);
        checked++;
        worst = fmax(worst, res[i].worst.err);
        kinks += res[i].kinks;
        failed += gc_fails(&res[i]);
    }
    if (!checked)
        printf("(nothing is trainable: no gradient to check)\n");
    if (kinks)
        gc_print_kinks(m, res, kinks);
    printf("gradcheck: %s worst_rel=%.3g", failed ? "FAIL" : "PASS", worst);
    for (i = 0; i < m->num_params; i++) /* the parameters that fail, and how many coordinates disagree */
        if (m->params[i].trainable && gc_fails(&res[i]))
            printf("%s%s (%d of %d judged)", sep, m->params[i].name, res[i].bad, res[i].checked - res[i].kinks),
                sep = ", ";
    printf("\n");
    fflush(stdout);
    return failed > 0;
}

/* BIN gradcheck: loads --data and the weights, computes the gradients of the
 * first --batch-size samples and checks them; returns the exit status. */
int rt_cli_gradcheck(const cgrt_model *m, const rt_cli_opts *o, const char *bin)
{
    rt_loaded d;
    cgrt_error err;
    gc_run r;
    const float *block = NULL;
    float *g = NULL;
    size_t *idx = NULL;
    gc_param *res = NULL;
    int rc = -1;
    if (!o->data)
        return rt_cli_usage_error(bin, "gradcheck", "no --data given and the model has no default dataset");
    if (rt_load(m, o->data, RT_ROLE_DATA, &d, &err) != 0)
        return rt_cli_report(bin, 1, err.msg);
    memset(&r, 0, sizeof r);
    r.m = m;
    r.n = d.train.n < o->batch ? d.train.n : (int)o->batch;
    r.x = d.train.x;
    r.y = d.train.y;
    if (r.n == 0)
        rt_fail(&err, "%s: no training samples to check the gradients on", o->data);
    else if ((r.state = gc_state(m, o, &err)) != NULL) {
        block = m->gradients(r.state, r.n, r.x, r.y, &r.loss);
        g = rt_alloc_array(m->param_floats, sizeof(float));
        idx = rt_alloc_array((size_t)o->samples, sizeof(size_t));
        res = calloc((size_t)m->num_params + 1, sizeof(gc_param));
        if (!g || !idx || !res)
            rt_fail(&err, "out of memory for the gradient check");
        else
            rc = 0;
    }
    if (rc == 0) {
        size_t trainable = 0, i;
        for (i = 0; i < (size_t)m->num_params; i++) /* the gradient block: the trainable parameters' floats */
            if (m->params[i].trainable && m->params[i].offset + m->params[i].count > trainable)
                trainable = m->params[i].offset + m->params[i].count;
        memset(g, 0, m->param_floats * sizeof(float));
        if (block) /* a copy: every loss evaluation overwrites the block */
            memcpy(g, block, trainable * sizeof(float));
        rc = gc_report(&r, g, o, idx, res);
    }
    free(g);
    free(idx);
    free(res);
    free(r.state);
    rt_loaded_free(&d);
    return rc < 0 ? rt_cli_report(bin, 1, err.msg) : rc;
}
