/* train.c: a hand-written training loop over the emitted linreg.c, as a
 * TensorFlow user writes one with a gradient tape: compute the loss and the
 * gradients, then w -= lr * dw by hand. */
#include "linreg.h"

#include <math.h>
#include <stdio.h>

#define N 256

int main(void)
{
    /* Data: y = 2 x0 - 3 x1 + 0.5 x2 + 1, plus a little noise. */
    static float x[N * 3], y[N];
    uint64_t r = 12345;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 3; j++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            x[i * 3 + j] = (float)((r >> 40) & 0xFFFF) / 65536.0f * 2.0f - 1.0f;
        }
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        float noise = ((float)((r >> 40) & 0xFFFF) / 65536.0f - 0.5f) * 0.02f;
        y[i] = 2.0f * x[i * 3] - 3.0f * x[i * 3 + 1] + 0.5f * x[i * 3 + 2] + 1.0f + noise;
    }

    static linreg_state s;
    linreg_init(&s, 42);
    float *w = s.params + LINREG_W, *dw = s.grads + LINREG_W;
    float *b = s.params + LINREG_B, *db = s.grads + LINREG_B;
    const float lr = 0.1f;
    float first = linreg_loss(&s, N, x, y), loss = first;
    for (int epoch = 0; epoch < 200; epoch++) {
        loss = linreg_gradients(&s, N, x, y);   /* forward, then backward into s.grads */
        for (int j = 0; j < 3; j++)
            w[j] -= lr * dw[j];                  /* the update, written by hand */
        b[0] -= lr * db[0];
        if (epoch % 50 == 0)
            printf("epoch %3d: loss %.6f\n", epoch, loss);
    }
    loss = linreg_loss(&s, N, x, y);
    printf("w = [%.3f, %.3f, %.3f], b = %.3f, loss %.6f (from %.6f)\n", w[0], w[1], w[2], b[0], loss, first);
    /* The fit must recover the true coefficients. */
    int ok = fabsf(w[0] - 2.0f) < 0.05f && fabsf(w[1] + 3.0f) < 0.05f && fabsf(w[2] - 0.5f) < 0.05f &&
             fabsf(b[0] - 1.0f) < 0.05f && loss < first / 100.0f;
    printf("%s\n", ok ? "recovered the coefficients" : "FAILED to recover the coefficients");
    return ok ? 0 : 1;
}
