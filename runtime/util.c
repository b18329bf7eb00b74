/* util.c: small helpers shared by the runtime files: error formatting,
 * the monotonic clock, string suffixes and checked allocation. */
#include "rt_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Writes the formatted message into err (if any) and returns -1. */
int rt_fail(cgrt_error *err, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* Returns seconds on CLOCK_MONOTONIC. */
double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Returns 1 if s ends with suffix, else 0. */
int rt_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Returns malloc(n * size), or NULL when n is 0 or the product overflows. */
void *rt_alloc_array(size_t n, size_t size)
{
    if (n == 0 || size == 0 || n > (size_t)-1 / size)
        return NULL;
    return malloc(n * size);
}
