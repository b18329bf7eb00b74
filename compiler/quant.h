/* quant.h: int8 post-training quantization of a compiled model's predict
 * pass (quant.c: calibration, the integer model and its figures;
 * quant_emit.c: NAME_int8.h and NAME_int8.c). */
#ifndef CGRAD_QUANT_H
#define CGRAD_QUANT_H

#include "cgrad_int.h"

#include <stdint.h>

/* One Dense layer of an int8 model: weights symmetric per output unit
 * (zero point 0), activations asymmetric per tensor. */
typedef struct qlayer {
    const char *name;      /* its output buffer: "dense_1_out" */
    cg_src src;            /* the builder call that made it */
    int in, out;           /* units */
    bool relu;             /* fused as the clamp's lower end */
    const float *w, *b;    /* float kernel [in][out] and bias [out] (NULL: none), in the checkpoint's block */
    int8_t *qw;            /* [out][in] */
    int32_t *qb;           /* bias / (s_in s_w[o]), minus the input zero point times the row's weights */
    int32_t *mult, *shift; /* s_in s_w[o] / s_out = mult 2^(shift - 31) */
    float *wscale;         /* s_w[o] = max |w| / 127 */
    double scale;          /* of the output */
    int zp;
    float lo, hi; /* calibration range of the output */
    double err;   /* max |dequantized - float| over the test rows */
} qlayer;

/* The integer model of --quantize int8 and what calibration measured. */
typedef struct quant {
    int n;
    qlayer *l;
    bool softmax;    /* the model ends with a softmax, applied to the dequantized logits */
    double in_scale; /* of the input */
    int in_zp;
    float in_lo, in_hi; /* calibration range of the input */
    int samples;        /* calibration rows */
    const char *data;   /* --calibrate, escaped */
    size_t flash;       /* bytes of the int8 tables */
    text report;        /* float and int8 figures on the test rows, for the model program to print */
} quant;

/* Quantizes the predict pass of g (Dense layers, linear or ReLU, and a final
 * softmax) with the checkpoint's weights, calibrating on the first `samples`
 * training rows of data (read as the model reads its data); evaluates float
 * and int8 on the data's test rows into g->dep.quant->report. 0 or -1 (g's error). */
int quant_build(cg_graph *g, const char *data, int samples);
/* Writes DIR/NAME_int8.h and DIR/NAME_int8.c; 0 or -1 (g's error). */
int quant_emit(cg_graph *g, const char *dir);
/* One int8 dense layer (the emitted q_dense), y from x; the compiler's copy of it. */
void quant_dense(const qlayer *l, const int8_t *x, int8_t *y);

#endif
