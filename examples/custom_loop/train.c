/* train.c: the hand-written loop of custom_loop. Each step: the loss and the
 * gradients (curve_gradients), clipping of the gradient block by its global
 * norm, then Adam (curve_apply_gradients). */
#include "curve.h"

#include <math.h>
#include <stdio.h>

#define N 256
#define CLIP_NORM 0.1f

/* A deterministic uniform number in [0, 1). */
static float uniform(uint64_t *r)
{
    *r = *r * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(*r >> 40) / 16777216.0f;
}

int main(void)
{
    /* y = sin(x) plus a little noise, and one target in ten thrown far off */
    static float x[N], y[N], truth[N];
    uint64_t r = 7;
    for (int i = 0; i < N; i++) {
        x[i] = -3.0f + 6.0f * (float)i / (N - 1);
        truth[i] = sinf(x[i]);
        y[i] = truth[i] + 0.05f * (uniform(&r) - 0.5f);
        if (i % 10 == 3)
            y[i] += 4.0f;
    }

    static curve_state s;
    curve_init(&s, 42);
    int clipped = 0;
    float loss = 0.0f;
    for (int step = 0; step < 3000; step++) {
        loss = curve_gradients(&s, N, x, y);
        float norm = 0.0f;   /* clip by global norm: scale every gradient alike */
        for (int i = 0; i < CURVE_TRAINABLE_FLOATS; i++)
            norm += s.grads[i] * s.grads[i];
        norm = sqrtf(norm);
        if (norm > CLIP_NORM) {
            for (int i = 0; i < CURVE_TRAINABLE_FLOATS; i++)
                s.grads[i] *= CLIP_NORM / norm;
            clipped++;
        }
        curve_apply_gradients(&s);
        if (step % 1000 == 0)
            printf("step %4d: Huber loss %.4f, gradient norm %.3f\n", step, loss, norm);
    }

    /* how close is the fit to the clean curve, away from the wild targets? curve_predict runs the
     * network alone: x in, y_hat out, no targets and no loss */
    static float y_hat[N];
    float err = 0.0f;
    curve_predict(&s, N, x, y_hat);
    for (int i = 0; i < N; i++)
        err += fabsf(y_hat[i] - truth[i]);
    err /= N;
    printf("Huber loss %.4f; mean |fit - sin(x)| = %.4f; %d of 3000 steps clipped\n", loss, err, clipped);
    int ok = err < 0.05f && clipped > 0;
    printf("%s\n", ok ? "fitted the curve through the outliers" : "FAILED to fit the curve");
    return ok ? 0 : 1;
}
