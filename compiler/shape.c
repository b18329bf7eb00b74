/* shape.c: static shapes whose first dimension may be the run-time batch. */
#include "cgrad_int.h"

#include <string.h>

/* The shape of a scalar. */
shape shape_scalar(void)
{
    return (shape){0, {0}};
}

/* Number of elements, counting the batch dimension as `batch`. */
long shape_size(const shape *s, int batch)
{
    long n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->d[i] == CG_BATCH ? batch : s->d[i];
    return n;
}

bool shape_equal(const shape *a, const shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i])
            return false;
    return true;
}

/* True when the first dimension is the batch. */
bool shape_batched(const shape *s)
{
    return s->rank > 0 && s->d[0] == CG_BATCH;
}

/* Writes "(n, 784)" into buf and returns it. */
const char *shape_str(const shape *s, char *buf, size_t size)
{
    size_t len = 0;
    len += (size_t)snprintf(buf + len, size - len, "(");
    for (int i = 0; i < s->rank && len < size; i++) {
        if (s->d[i] == CG_BATCH)
            len += (size_t)snprintf(buf + len, size - len, "%sn", i ? ", " : "");
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? ", " : "", s->d[i]);
    }
    if (len < size)
        snprintf(buf + len, size - len, ")");
    return buf;
}

/* Numpy broadcasting, dimensions aligned from the right: equal sizes, or one
 * of them 1. The batch dimension broadcasts only against 1 or itself. */
bool shape_broadcast(const shape *a, const shape *b, shape *out)
{
    int rank = a->rank > b->rank ? a->rank : b->rank;
    shape r = {rank, {0}};
    for (int i = 0; i < rank; i++) {
        int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da == db)
            r.d[i] = da;
        else if (da == 1)
            r.d[i] = db;
        else if (db == 1)
            r.d[i] = da;
        else
            return false;
    }
    for (int i = 1; i < rank; i++)
        if (r.d[i] == CG_BATCH)
            return false;
    *out = r;
    return true;
}

/* Public: a shape from a list of dimensions. */
cg_shape cg_shape_make(const int *dims, int rank)
{
    cg_shape s = {rank > CG_MAX_RANK ? CG_MAX_RANK + 1 : rank, {0}};
    for (int i = 0; i < rank && i < CG_MAX_RANK; i++)
        s.dims[i] = dims[i];
    return s;
}
