/* int8_ref.c: the emitted int8 model against a reference of its arithmetic
 * written another way: every rescaling as exact long double products and
 * roundl (halves away from zero), in place of the Q31 high multiply and the
 * rounding shift. Built by test_int8.c with the emitted NAME_int8.c and
 * ref_model.h (the model's tables as a list of layers, written by the test).
 * Reads rows.txt (one raw input a line, REF_SCALE applied), prints
 * "rows R mismatches M classes C0 C1 ..." and exits 0. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct ref_layer {
    int in, out, relu;
    const int8_t *w;
    const int32_t *b, *mult, *shift;
    int zp;
} ref_layer;

#include "ref_model.h"

/* One reference layer: x (int8 values as ints) to y. */
static void ref_dense(const ref_layer *l, const int *x, int *y)
{
    for (int o = 0; o < l->out; o++) {
        long long acc = l->b[o];
        for (int i = 0; i < l->in; i++)
            acc += (long long)l->w[(long)o * l->in + i] * x[i];
        long double v = (long double)acc * powl(2.0L, l->shift[o] > 0 ? l->shift[o] : 0);
        v = v > 2147483647.0L ? 2147483647.0L : v < -2147483648.0L ? -2147483648.0L : v;
        v = roundl(v * (long double)l->mult[o] / 2147483648.0L);
        v = roundl(v / powl(2.0L, l->shift[o] < 0 ? -l->shift[o] : 0)) + l->zp;
        long double lo = l->relu ? l->zp : -128;
        y[o] = (int)(v < lo ? lo : v > 127 ? 127 : v);
    }
}

int main(void)
{
    FILE *f = fopen("rows.txt", "r");
    static float x[REF_IN];
    static int a[4096], b[4096];
    int rows = 0, bad = 0;
    if (!f)
        return 1;
    printf("classes");
    for (;;) {
        int n = 0;
        for (; n < REF_IN && fscanf(f, "%f", &x[n]) == 1; n++)
            x[n] *= REF_SCALE;
        if (n < REF_IN)
            break;
        int8_t q[REF_IN], y[4096];
        ref_quantize(x, q);
        for (int i = 0; i < REF_IN; i++) { /* the input's quantization, the reference's way */
            long double r = roundl((long double)(x[i] / REF_INPUT_SCALE)) + REF_INPUT_ZP; /* float quotient */
            int want = (int)(r < -128 ? -128 : r > 127 ? 127 : r);
            bad += want != q[i];
            a[i] = q[i];
        }
        int *cur = a, *nxt = b;
        for (int k = 0; k < REF_LAYERS; k++) {
            ref_dense(&ref_layers[k], cur, nxt);
            int *t = cur;
            cur = nxt, nxt = t;
        }
        int cls = ref_predict(q, y, NULL);
        for (int o = 0; o < REF_OUT; o++)
            bad += y[o] != cur[o];
        printf(" %d", cls);
        rows++;
    }
    printf("\nrows %d mismatches %d\n", rows, bad);
    return 0;
}
