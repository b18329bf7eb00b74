/* optim_ref.h: an optimizer's steps against PyTorch's (tests/ops/torch_optim.py).
 *
 * The reference model is 5 -> Dense(8, tanh) -> Dense(3) with MSE, batch 8.
 * cgrad's side writes spec.txt (the model, the optimizer's lines), the
 * parameters before training and one batch per step, then takes the steps;
 * torch_optim.py repeats them from the same parameters and writes out.bin:
 * the losses, the parameters after the last step, and the parameters of the
 * same run without the feature under test (which must end elsewhere, or the
 * check would not see the feature). */
#ifndef CGRAD_TEST_OPTIM_REF_H
#define CGRAD_TEST_OPTIM_REF_H

#include "harness.h"

#define OR_N 8         /* rows per batch */
#define OR_IN 5        /* input features */
#define OR_OUT 3       /* outputs */
#define OR_MAX_STEPS 8 /* steps at most */

/* cgrad's side of one case, kept until torch has run. */
typedef struct or_run {
    hx_module mod;
    cg_model *m;
    int steps;
    float loss[OR_MAX_STEPS];
} or_run;

/* Compiles the reference model named name with opt and builds it in flavour;
 * writes spec.txt (optimizer_lines: torch_optim.py's "optimizer ..." line and
 * any after it), params.bin, and x.bin and y.bin (steps batches, uniform in
 * [-scale, scale) from seed); takes the steps, keeping their losses. */
void or_prepare(or_run *run, const char *name, cg_optimizer opt, cg_flavour flavour, const char *optimizer_lines,
                int steps, uint64_t seed, float scale);

/* Runs script (torch_optim.py) over the runs; returns its status, having
 * closed the runs when it is 77 (torch is not installed). */
int or_run_torch(const char *script, or_run *runs, int count, char *log, size_t size);

/* Checks run against torch's out.bin: every step's loss, then every
 * parameter (|cgrad - torch| <= 1e-5 + 1e-4 |torch|); the run without the
 * feature (named by without, for the message) must end more than ten
 * tolerances away. Closes the run. */
void or_verify(or_run *run, const char *without);

#endif
