/* A header of the clean example: included by clean.c, so checked there. */
#ifndef CLEAN_H
#define CLEAN_H

#define CLEAN_N 8

/* max(x, 0) */
static inline float clean_relu(float x)
{
    return x > 0.0f ? x : 0.0f;
}

float clean_layer(const float *x);

#endif
