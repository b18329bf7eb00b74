/* tiny_model.c: hand-written stand-ins for emitted models, so the runtime's
 * fit/evaluate/predict/bench can be tested without the compiler. "tiny" is a
 * softmax (multinomial logistic) regression of 4 features into 3 classes,
 * trained by plain SGD; its variants differ in one way each. */
#include "helpers.h"

#include <math.h>
#include <string.h>

#define IN 4
#define K 3

/* Initialises the weights from the seed (uniform in [-0.1, 0.1)), bias 0. */
static void tiny_init(void *state, uint64_t seed)
{
    tiny_state *s = state;
    cgrt_rng r;
    int i;
    r.s = seed;
    memset(s, 0, sizeof *s);
    for (i = 0; i < IN * K; i++)
        s->params[i] = (float)((double)(cgrt_rng_next(&r) >> 11) / 9007199254740992.0 * 0.2 - 0.1);
}

/* Returns the parameter block. */
static float *tiny_params(void *state)
{
    return ((tiny_state *)state)->params;
}

/* Sets the learning rate. */
static void tiny_set_lr(void *state, float lr)
{
    ((tiny_state *)state)->lr = lr;
}

/* Softmax probabilities of one sample into p. */
static void forward(const float *w, const float *x, int in, float *p)
{
    float z[K], mx;
    double sum = 0.0;
    int j, i;
    for (j = 0; j < K; j++) {
        z[j] = w[in * K + j];
        for (i = 0; i < in; i++)
            z[j] += x[i] * w[i * K + j];
    }
    mx = z[0];
    for (j = 1; j < K; j++)
        mx = z[j] > mx ? z[j] : mx;
    for (j = 0; j < K; j++)
        sum += exp((double)(z[j] - mx));
    for (j = 0; j < K; j++)
        p[j] = (float)(exp((double)(z[j] - mx)) / sum);
}

/* Mean cross-entropy (each sample's times its weight sw[b]; sw NULL: 1)
 * and accuracy of a batch; with update, one SGD step. */
static void step_w(tiny_state *s, int in, int n, const float *x, const float *y, const float *sw, float *loss,
                   float *acc, int update)
{
    float grad[32] = {0}, p[K];
    double l = 0.0, a = 0.0;
    int b, i, j;
    for (b = 0; b < n; b++) {
        const float *xb = x + b * in;
        int c = (int)y[b], best = 0;
        forward(s->params, xb, in, p);
        float wb = sw ? sw[b] : 1.0f;
        l -= wb * log((double)p[c] + 1e-12);
        for (j = 1; j < K; j++)
            best = p[j] > p[best] ? j : best;
        a += best == c;
        for (j = 0; j < K; j++) {
            float d = wb * (p[j] - (j == c)) / (float)n;
            for (i = 0; i < in; i++)
                grad[i * K + j] += xb[i] * d;
            grad[in * K + j] += d;
        }
    }
    *loss = (float)(l / n);
    *acc = (float)(a / n);
    if (update)
        for (i = 0; i < (in + 1) * K; i++)
            s->params[i] -= s->lr * grad[i];
}

/* step_w with every weight 1. */
static void step(tiny_state *s, int in, int n, const float *x, const float *y, float *loss, float *acc, int update)
{
    step_w(s, in, n, x, y, NULL, loss, acc, update);
}

/* Weighted train step of the 4-feature model. */
static void tiny_train_w(void *state, int n, const float *x, const float *y, const float *sw, float *loss,
                         float *metric)
{
    step_w(state, IN, n, x, y, sw, loss, metric, 1);
}

/* Weighted eval step of the 4-feature model. */
static void tiny_eval_w(void *state, int n, const float *x, const float *y, const float *sw, float *loss, float *metric)
{
    step_w(state, IN, n, x, y, sw, loss, metric, 0);
}

/* Train step of the 4-feature model. */
static void tiny_train(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    step(state, IN, n, x, y, loss, metric, 1);
}

/* Eval step of the 4-feature model. */
static void tiny_eval(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    step(state, IN, n, x, y, loss, metric, 0);
}

/* Predict (probabilities) of the 4-feature model. */
static void tiny_predict(void *state, int n, const float *x, float *out)
{
    int b;
    for (b = 0; b < n; b++)
        forward(((tiny_state *)state)->params, x + b * IN, IN, out + b * K);
}

/* Train step whose loss is nan from the third call on. */
static void nan_train(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    tiny_state *s = state;
    step(s, IN, n, x, y, loss, metric, 1);
    if (++s->steps >= 3)
        *loss = (float)NAN;
}

/* Train and eval steps whose loss is always 1 (never improves). */
static void flat_step(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    (void)state, (void)n, (void)x, (void)y;
    *loss = 1.0f;
    *metric = 0.5f;
}

static const cgrt_param tiny_params_desc[] = {
    {"dense/kernel", 2, {IN, K, 0, 0}, 0, IN *K, 1},
    {"dense/bias", 1, {K, 0, 0, 0}, IN *K, K, 1},
};
static const cgrt_param tiny5_params_desc[] = {
    {"dense/kernel", 2, {5, K, 0, 0}, 0, 5 * K, 1},
    {"dense/bias", 1, {K, 0, 0, 0}, 5 * K, K, 1},
};
static const cgrt_param extra_params_desc[] = {
    {"dense/kernel", 2, {IN, K, 0, 0}, 0, IN *K, 1},
    {"dense/bias", 1, {K, 0, 0, 0}, IN *K, K, 1},
    {"dense_2/kernel", 2, {K, 2, 0, 0}, IN *K + K, K * 2, 1},
};

static const char *const tiny_metric_names[] = {"accuracy"};
static const cgrt_output tiny_outputs[] = {{"dense", K, 1, K}};

/* clang-format off */
#define NO_CALLBACKS {NULL, CGRT_MODE_AUTO, 0.0f, 0, 0, 0, 0.0f, 0, 0.0f, 0, 0.0f}
#define TINY_COMMON                                                                                        \
    16, 1, {IN, 0, 0, 0}, IN, K, CGRT_LABEL_SPARSE, 1, K, "sparse_categorical_crossentropy", 1,             \
        tiny_metric_names, 1, tiny_outputs, 0.5f, 3, 8, {NULL, 0.0f, 0.0f, {0, 0}, {NULL, 0, 0, 0, 0, 0, 0, CGRT_MISSING_ERROR}, NULL, NULL, NULL}, sizeof(tiny_state)

const cgrt_model tiny_model = {"tiny", TINY_COMMON, 15, 2, tiny_params_desc, tiny_init, tiny_params, tiny_set_lr,
                               NULL, tiny_train, tiny_eval, tiny_predict, NO_CALLBACKS, NULL, 0, NULL, NULL, NULL,
                               tiny_train_w, tiny_eval_w, NULL};
const cgrt_model tiny5_model = {"tiny5", 16, 1, {5, 0, 0, 0}, 5, K, CGRT_LABEL_SPARSE, 1, K,
                                "sparse_categorical_crossentropy", 1, tiny_metric_names, 1, tiny_outputs,
                                0.5f, 3, 8, {NULL, 0.0f, 0.0f, {0, 0}, {NULL, 0, 0, 0, 0, 0, 0, CGRT_MISSING_ERROR}, NULL, NULL, NULL},
                                sizeof(tiny_state), 18, 2, tiny5_params_desc, tiny_init, tiny_params, tiny_set_lr,
                                NULL, tiny_train, tiny_eval, tiny_predict, NO_CALLBACKS, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL};
const cgrt_model tiny_extra_model = {"tiny_extra", TINY_COMMON, 21, 3, extra_params_desc, tiny_init, tiny_params,
                                     tiny_set_lr, NULL, tiny_train, tiny_eval, tiny_predict, NO_CALLBACKS, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL};
const cgrt_model tiny_nan_model = {"tiny_nan", TINY_COMMON, 15, 2, tiny_params_desc, tiny_init, tiny_params,
                                   tiny_set_lr, NULL, nan_train, tiny_eval, tiny_predict, NO_CALLBACKS, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL};
const cgrt_model tiny_flat_model = {"tiny_flat", TINY_COMMON, 15, 2, tiny_params_desc, tiny_init, tiny_params,
                                    tiny_set_lr, NULL, flat_step, flat_step, tiny_predict, NO_CALLBACKS, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL};
/* clang-format on */

/* ---- tiny_series: a forecaster over windows of 4 values ---------------------- */

#define SW 4

/* Starts the bias at 0.5 (so that training has something to remove). */
static void series_init(void *state, uint64_t seed)
{
    tiny_state *s = state;
    (void)seed;
    memset(s, 0, sizeof *s);
    s->params[0] = 0.5f;
}

/* The forecast: the window's last value plus the bias. */
static void series_predict(void *state, int n, const float *x, float *out)
{
    const tiny_state *s = state;
    int b;
    for (b = 0; b < n; b++)
        out[b] = x[b * SW + SW - 1] + s->params[0];
}

/* Mean squared error and mean absolute error of a batch; with update, one SGD step on the bias. */
static void series_step(tiny_state *s, int n, const float *x, const float *y, float *loss, float *mae, int update)
{
    double l = 0.0, a = 0.0, g = 0.0;
    int b;
    for (b = 0; b < n; b++) {
        double d = (double)x[b * SW + SW - 1] + (double)s->params[0] - (double)y[b];
        l += d * d;
        a += fabs(d);
        g += 2.0 * d / n;
    }
    *loss = (float)(l / n);
    *mae = (float)(a / n);
    if (update)
        s->params[0] -= s->lr * (float)g;
}

static void series_train(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    series_step(state, n, x, y, loss, metric, 1);
}

static void series_eval(void *state, int n, const float *x, const float *y, float *loss, float *metric)
{
    series_step(state, n, x, y, loss, metric, 0);
}

static const cgrt_param series_params_desc[] = {
    {"dense/bias", 1, {1, 0, 0, 0}, 0, 1, 1},
};

static const char *const series_metric_names[] = {"mae"};
static const cgrt_output series_outputs[] = {{"dense", 1, 1, 0}};

const cgrt_model tiny_series_model = {
    "tiny_series",
    16,
    2,
    {SW, 1, 0, 0},
    SW,
    1,
    CGRT_LABEL_DENSE,
    1,
    0,
    "mean_squared_error",
    1,
    series_metric_names,
    1,
    series_outputs,
    0.1f,
    5,
    8,
    {NULL, 0.0f, 0.0f, {0, 0}, {"value", 0, SW, 2, 6, 8, 6, CGRT_MISSING_ERROR}, NULL, NULL, NULL},
    sizeof(tiny_state),
    1,
    1,
    series_params_desc,
    series_init,
    tiny_params,
    tiny_set_lr,
    NULL,
    series_train,
    series_eval,
    series_predict,
    NO_CALLBACKS,
    NULL,
    0,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL};
