/* cgrad_rt.h: the runtime that generated training binaries link (libcgrad_rt).
 *
 * A model emitted by cgrad (net.h/net.c) knows nothing of files, terminals or
 * the command line. The emitted driver net_main.c fills one cgrt_model
 * descriptor with the model's sizes and entry points and hands it to
 * cgrt_main(), which implements the command line of every training binary:
 *
 *   BIN fit      [--data PATH] [--epochs N] [--batch-size N] [--lr X] [--seed N]
 *                [--validation-split F] [--validation-data PATH] [--save FILE]
 *                [--history FILE.csv] [--verbose 0|1|2] [--patience N] [--init-from FILE]
 *   BIN evaluate --weights FILE [--data PATH]
 *   BIN predict  --weights FILE --input FILE [--output FILE]
 *   BIN bench    [--batch-size N] [--iters N]
 *
 * Sections: model descriptor, datasets, checkpoints, training loop, command line.
 */
#ifndef CGRAD_RT_H
#define CGRAD_RT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CGRT_MAX_RANK 4
#define CGRT_MAX_METRICS 16        /* values reported beside the loss */

/* ---- Model descriptor (filled by the emitted net_main.c) ---------------- */

/* One named tensor of the parameter block: what checkpoints save and load. */
typedef struct cgrt_param {
    const char *name;          /* "dense_1/kernel" */
    int rank;
    int dims[CGRT_MAX_RANK];
    size_t offset;             /* in floats, from the start of the parameter block */
    size_t count;              /* number of floats */
    int trainable;             /* 0 for non-trainable state (moving averages) */
} cgrt_param;

/* Where the default dataset is and how to read it. */
typedef struct cgrt_data_spec {
    const char *path;          /* default --data: an IDX directory, a .csv/.csv.gz file or an NPY directory */
    float scale;               /* every input value is multiplied by this on load (1/255 for images); 0 = 1 */
    float test_split;          /* for files without a test part: fraction held out as test (a seeded random sample) */
    int class_range[2];        /* {lo, hi}, hi > 0: only samples of classes lo..hi, relabelled 0..hi-lo */
} cgrt_data_spec;

/* One output of the model (a functional model may have several, packed per
 * sample in the order given: predictions and labels alike). */
typedef struct cgrt_output {
    const char *name;          /* the layer that makes it */
    int features;              /* floats per prediction */
    int label_width;           /* floats per label */
    int num_classes;           /* > 0: the label is a class index in [0, num_classes) */
} cgrt_output;

/* Label kinds. */
enum {
    CGRT_LABEL_SPARSE,         /* one class index per sample, stored as a float */
    CGRT_LABEL_DENSE,          /* label_width floats per sample (one-hot, targets) */
};

typedef struct cgrt_model {
    const char *name;          /* model name, "fashion_mlp" */
    int max_batch;             /* largest batch the emitted code was planned for */
    int in_rank;               /* per-sample input shape (without the batch dimension) */
    int in_dims[CGRT_MAX_RANK];
    int in_features;           /* floats per input sample */
    int out_features;          /* floats per prediction */
    int label_kind;            /* CGRT_LABEL_SPARSE or CGRT_LABEL_DENSE */
    int label_width;           /* floats per label: 1 for sparse labels */
    int num_classes;           /* sparse labels must lie in [0, num_classes) */
    const char *loss_name;     /* "sparse_categorical_crossentropy" */
    int num_metrics;           /* values beside the loss: 0 .. CGRT_MAX_METRICS */
    const char *const *metric_names;   /* "accuracy", "mae", "digit_loss", ... */
    int num_outputs;
    const cgrt_output *outputs;
    float default_lr;
    int default_epochs;
    int default_batch;
    cgrt_data_spec data;

    size_t state_bytes;        /* sizeof the emitted state struct */
    size_t param_floats;       /* size of the parameter block */
    int num_params;
    const cgrt_param *params;

    /* Entry points. x: n*in_features floats; y: n*label_width floats.
     * train_step and eval_step write the MEAN loss and metrics (num_metrics
     * floats) over the n samples of the batch; the runtime weights them by n
     * across batches. */
    void (*init)(void *state, uint64_t seed);          /* initialise weights, zero optimizer state */
    float *(*param_block)(void *state);                /* the parameter block */
    void (*set_lr)(void *state, float lr);
    void (*set_seed)(void *state, uint64_t seed);      /* seeds in-graph randomness (dropout); may be NULL */
    void (*train_step)(void *state, int n, const float *x, const float *y, float *loss, float *metrics);
    void (*eval_step)(void *state, int n, const float *x, const float *y, float *loss, float *metrics);
    void (*predict)(void *state, int n, const float *x, float *out);
} cgrt_model;

/* ---- Datasets ----------------------------------------------------------- */

/* A dataset in memory: n samples of `features` floats and `label_width` floats. */
typedef struct cgrt_dataset {
    int n;
    int features;
    int label_width;
    float *x;                  /* n * features */
    float *y;                  /* n * label_width; NULL for unlabelled input */
} cgrt_dataset;

/* Errors: every runtime function that can fail returns 0 on success and -1 on
 * failure, after writing one line naming the file and what is wrong into err. */
typedef struct cgrt_error {
    char msg[512];
} cgrt_error;

void cgrt_dataset_free(cgrt_dataset *d);

/* IDX (plain or gzip): images file and labels file. */
int cgrt_load_idx(const char *images, const char *labels, float scale, cgrt_dataset *out, cgrt_error *err);
/* CSV (plain or gzip): features then label_width label columns per row; a
 * non-numeric first line is a header and skipped. label_width 0: no labels. */
int cgrt_load_csv(const char *path, int label_width, float scale, cgrt_dataset *out, cgrt_error *err);
/* NPY (version 1/2, little-endian f4, f8, u1, i4 or i8, C order) into floats. */
int cgrt_load_npy(const char *path, float **data, int *rank, int dims[CGRT_MAX_RANK], cgrt_error *err);

/* Loads the training data at PATH for model m (IDX directory, CSV file or NPY
 * directory) into train, and the test split (if the data has one) into test
 * (test->n == 0 otherwise). Checks features and labels against the model. */
int cgrt_load_data(const cgrt_model *m, const char *path, cgrt_dataset *train, cgrt_dataset *test,
                   cgrt_error *err);

/* Splits off the last `fraction` of d into val (copies), shrinking d. */
int cgrt_split_tail(cgrt_dataset *d, float fraction, cgrt_dataset *val, cgrt_error *err);

/* Seeded generator (splitmix64 / xoshiro-style) and Fisher-Yates shuffle. */
typedef struct cgrt_rng { uint64_t s; } cgrt_rng;
uint64_t cgrt_rng_next(cgrt_rng *r);
void cgrt_shuffle(int *idx, int n, cgrt_rng *r);

/* ---- Checkpoints (safetensors) ------------------------------------------ */

/* Writes the parameter block as safetensors, atomically: temporary file in the
 * same folder, fsync, rename. */
int cgrt_save_checkpoint(const cgrt_model *m, const float *params, const char *path, cgrt_error *err);
/* Reads a safetensors checkpoint into params; every tensor of the model must be
 * present with its dtype F32 and its shape, or the error names the first that is not. */
int cgrt_load_checkpoint(const cgrt_model *m, float *params, const char *path, cgrt_error *err);

/* What cgrt_load_checkpoint_by_name did: tensors loaded, model tensors kept
 * at their initial values (not in the file), file tensors the model has no
 * use for; each with a comma-separated list of names (shortened with "..."). */
typedef struct cgrt_load_report {
    int loaded, kept, unused;
    char loaded_names[512], kept_names[512], unused_names[512];
} cgrt_load_report;

/* Transfer learning (Keras' load_weights(by_name=True)): reads the tensors
 * of the checkpoint whose names the model has; they must have the model's
 * shapes (a mismatch is an error naming the tensor and both shapes). Fails
 * when no name matches. */
int cgrt_load_checkpoint_by_name(const cgrt_model *m, float *params, const char *path, cgrt_load_report *rep,
                                 cgrt_error *err);

/* ---- Command line -------------------------------------------------------- */

/* Called first by binaries that link OpenBLAS, with openblas_get_corename():
 * on a CPU with AVX-512 that OpenBLAS took for "Haswell" or "Zen" (Debian
 * 12's 0.3.21 on AMD Zen 4/5), runs the program again with
 * OPENBLAS_CORETYPE=SkylakeX so that OpenBLAS uses its AVX-512 kernels.
 * Does nothing when OPENBLAS_CORETYPE or CGRAD_NO_BLAS_TUNE is set. */
void cgrt_tune_openblas(char **argv, const char *corename);

/* Runs the training binary's command line; returns the process exit status. */
int cgrt_main(int argc, char **argv, const cgrt_model *m);

#endif
