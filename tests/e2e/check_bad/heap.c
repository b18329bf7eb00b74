/* Breaks the heap rule: allocates and frees (lines 7 and 13). */
#include <stdlib.h>

/* A buffer of n floats from the heap. */
float *make_buffer(int n)
{
    float *p = malloc((size_t)n * sizeof *p);
    return p;
}

void drop_buffer(float *p)
{
    free(p);
}
