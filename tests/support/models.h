/* models.h: small compiled models that several op suites check, each in its
 * own way (finite differences, PyTorch): one definition, so that they check
 * the same thing. All compile with plain SGD, lr 1, batch at most 8. */
#ifndef CGRAD_TEST_MODELS_H
#define CGRAD_TEST_MODELS_H

#include <cgrad.h>

/* A functional model: inputs a (5) and b (3), each projected to 4 (tanh);
 * one Dense "shared" (4, tanh) called on both projections (shared
 * weights); Concatenate, Multiply and Add merge the branches; outputs "cls"
 * (3 logits, sparse cross-entropy, accuracy) and "reg" (2 values, MSE with
 * loss weight 0.5, MAE). Packed: x = a then b, y = cls's class then reg's 2. */
cg_model *tm_two_in_two_out(const char *name);

/* A custom model (init + call) over 4 features: h = stem(x); h = h +
 * block(h); h = h + block(h); y = head(h), Dense layers of 6, 6 (tanh) and 3,
 * the block called twice (shared weights); sparse cross-entropy from
 * logits, accuracy. */
cg_model *tm_residual(const char *name);

#endif
