/* Keeps every firmware rule: static buffers, float maths, no recursion. */
#include "clean.h"

#include <math.h>
#include <stddef.h>

static float buf[CLEAN_N]; /* (CLEAN_N) */

/* The sum of sqrt(relu(x)^2 / 4 + 1) over the CLEAN_N inputs. */
float clean_layer(const float *x)
{
    float s = 0.0f;
    for (size_t i = 0; i < CLEAN_N; i++) {
        buf[i] = clean_relu(x[i]) * 0.5f;
        s += sqrtf(buf[i] * buf[i] + 1.0f);
    }
    return s;
}
