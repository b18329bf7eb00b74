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
 *                [--label-column NAME] [--monitor NAME] [--mode auto|min|max] [--min-delta X]
 *                [--restore-best-weights] [--save-best-only] [--reduce-lr-factor F]
 *                [--reduce-lr-patience N] [--reduce-lr-min-delta X] [--reduce-lr-cooldown N]
 *                [--min-lr X] [--shuffle true|false] [--class-weight balanced|C:W,...]
 *                [--sample-weight FILE.npy] [--sample-weight-column NAME]
 *   BIN evaluate --weights FILE [--data PATH] [--label-column NAME] [--sample-weight FILE.npy]
 *                [--sample-weight-column NAME]
 *   BIN predict  --weights FILE --input FILE [--output FILE] [--label-column NAME]
 *   BIN predict  --weights FILE [--data PATH] [--output FILE]      (time series: the test part)
 *   BIN bench    [--batch-size N] [--iters N]
 *   BIN gradcheck [--weights FILE] [--data PATH] [--batch-size N] [--samples N] [--seed N]
 *                [--label-column NAME]
 *   BIN --help | help [COMMAND] | COMMAND --help | --version | version
 *
 * Short forms: -d data, -e epochs, -b batch size, -s seed, -o save (fit) or
 * output (predict), -w weights, -v verbose, -q quiet (verbose 0), -h help.
 * docs/man/cgrad-model.7 is the manual page of this command line.
 *
 * Sections: model descriptor, datasets, time series, checkpoints, training loop, command line.
 */
#ifndef CGRAD_RT_H
#define CGRAD_RT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CGRT_VERSION "0.1.0" /* cgrad's version, as CG_VERSION in cgrad.h (a test keeps them equal) */
#define CGRT_MAX_RANK 4
#define CGRT_MAX_METRICS 16 /* values reported beside the loss */

/* ---- Model descriptor (filled by the emitted net_main.c) ---------------- */

/* One named tensor of the parameter block: what checkpoints save and load. */
typedef struct cgrt_param {
    const char *name; /* "dense_1/kernel" */
    int rank;
    int dims[CGRT_MAX_RANK];
    size_t offset; /* in floats, from the start of the parameter block */
    size_t count;  /* number of floats */
    int trainable; /* 0 for non-trainable state (moving averages) */
} cgrt_param;

/* A time series: one numeric column of a CSV file cut into samples, as Keras'
 * timeseries_dataset_from_array does. Sample i has the window of values
 * i .. i+window-1 as input and value i+window-1+horizon as its (dense) label.
 * The last test_steps samples are the test part, the val_steps before them the
 * validation part, the rest the training part (in time order; targets never
 * shared between parts). Inputs and labels are standardised, (v - mean) / std,
 * with the mean and standard deviation of the values up to the last training
 * target. window 0: the data is not a time series. */
/* The largest window, horizon, season and part a series spec may give (16M
 * steps: far beyond any series, and far from int overflow in the index sums). */
#define CGRT_SERIES_MAX (1 << 24)

/* What the series loader does with a missing value: an empty cell, NA or nan
 * (and, in a file of one column, an empty line before the last value).
 * The same numbers as cgrad.h's CG_MISSING_*. */
enum {
    CGRT_MISSING_ERROR = 0,   /* refuse the file, naming the line (the default) */
    CGRT_MISSING_INTERPOLATE, /* linear between the known values on either side; missing at either end: error */
    CGRT_MISSING_PREVIOUS,    /* the last known value carried forward; missing before the first value: error */
};

typedef struct cgrt_series_spec {
    const char *column; /* header name of the value column; NULL: column_index */
    int column_index;   /* 0-based column, used when column is NULL */
    int window;         /* values per input sample; 0: not a time series */
    int horizon;        /* steps from the window's last value to the target; 0 means 1 */
    int val_steps;      /* targets before the test part that form the validation part */
    int test_steps;     /* the last targets, which form the test part */
    int season;         /* period of the seasonal-naive baseline (12 for monthly data); 0: none */
    int missing;        /* CGRT_MISSING_ERROR, _INTERPOLATE or _PREVIOUS */
} cgrt_series_spec;

/* Where the default dataset is and how to read it. */
typedef struct cgrt_data_spec {
    const char *path;         /* default --data: an IDX directory, a .csv/.csv.gz file or an NPY directory */
    float scale;              /* every input value is multiplied by this on load (1/255 for images); 0 = 1 */
    float test_split;         /* for files without a test part: fraction held out as test (a seeded random sample) */
    int class_range[2];       /* {lo, hi}, hi > 0: only samples of classes lo..hi, relabelled 0..hi-lo */
    cgrt_series_spec series;  /* series.window > 0: path is a CSV file holding a time series */
    const char *label_column; /* header name of a CSV file's label column (anywhere in the row; text
                                  labels are class names); NULL: the labels are the last columns */
    const char *sample_weight_column; /* header name of a CSV file's column of sample weights (never a
                                          feature; needs label_column); NULL: none */
    const char *sample_weight_file;   /* NPY file of one weight per row of the training data file; NULL: none */
} cgrt_data_spec;

/* One output of the model (a functional model may have several, packed per
 * sample in the order given: predictions and labels alike). */
typedef struct cgrt_output {
    const char *name; /* the layer that makes it */
    int features;     /* floats per prediction */
    int label_width;  /* floats per label */
    int num_classes;  /* > 0: the label is a class index in [0, num_classes) */
} cgrt_output;

/* Label kinds. */
enum {
    CGRT_LABEL_SPARSE, /* one class index per sample, stored as a float */
    CGRT_LABEL_DENSE,  /* label_width floats per sample (one-hot, targets) */
};

/* Which way a monitored quantity improves (Keras' mode). The same numbers as
 * cgrad.h's CG_MODE_*. */
enum {
    CGRT_MODE_AUTO = 0, /* max for names ending in "accuracy", "acc" or "auc", min otherwise */
    CGRT_MODE_MIN,      /* lower is better */
    CGRT_MODE_MAX,      /* higher is better */
};

/* The model's defaults for fit's callbacks, Keras' EarlyStopping,
 * ModelCheckpoint(save_best_only) and ReduceLROnPlateau (cg_compile's
 * .callbacks); each has a flag of fit that overrides it. Zero everywhere:
 * Keras' defaults, with early stopping and the learning-rate schedule off. */
typedef struct cgrt_callbacks {
    const char *monitor;       /* history column watched: "val_loss" when NULL ("loss" without validation) */
    int mode;                  /* CGRT_MODE_* */
    float min_delta;           /* early stopping: an epoch improves when it beats the best by more than this */
    int patience;              /* early stopping: epochs without improvement before stopping; 0: never stop */
    int restore_best_weights;  /* 1: when training ends, put back the weights of the best epoch */
    int save_best_only;        /* 1: --save writes only after an epoch whose monitored value beats every earlier one */
    float reduce_lr_factor;    /* on a plateau, lr *= factor (0 < factor < 1); 0: no schedule */
    int reduce_lr_patience;    /* epochs without improvement before a reduction; 0: Keras' 10 */
    float reduce_lr_min_delta; /* the schedule's threshold of improvement; 0: Keras' 1e-4 */
    int reduce_lr_cooldown;    /* epochs after a reduction in which no plateau is counted */
    float min_lr;              /* the learning rate is never reduced below this */
} cgrt_callbacks;

/* A Normalization layer whose statistics fit computes (Keras' adapt): per
 * feature of the last axis of the model input it reads, the mean and the
 * population variance over every training row and every position of that
 * input, written into its two tensors of the parameter block. */
typedef struct cgrt_adapt {
    const char *layer;     /* "normalization_1" */
    size_t mean, variance; /* offsets (floats) of its mean and variance tensors in the parameter block */
    int features;          /* floats of each statistic: the input's last axis */
    int in_offset;         /* where that input starts within a packed input sample */
    int in_count;          /* its floats per sample, a multiple of features */
} cgrt_adapt;

typedef struct cgrt_model {
    const char *name; /* model name, "fashion_mlp" */
    int max_batch;    /* largest batch the emitted code was planned for */
    int in_rank;      /* per-sample input shape (without the batch dimension) */
    int in_dims[CGRT_MAX_RANK];
    int in_features;                 /* floats per input sample */
    int out_features;                /* floats per prediction */
    int label_kind;                  /* CGRT_LABEL_SPARSE or CGRT_LABEL_DENSE */
    int label_width;                 /* floats per label: 1 for sparse labels */
    int num_classes;                 /* sparse labels must lie in [0, num_classes) */
    const char *loss_name;           /* "sparse_categorical_crossentropy" */
    int num_metrics;                 /* values beside the loss: 0 .. CGRT_MAX_METRICS */
    const char *const *metric_names; /* "accuracy", "mae", "digit_loss", ... */
    int num_outputs;
    const cgrt_output *outputs;
    float default_lr;
    int default_epochs;
    int default_batch;
    cgrt_data_spec data;

    size_t state_bytes;  /* sizeof the emitted state struct */
    size_t param_floats; /* size of the parameter block */
    int num_params;
    const cgrt_param *params;

    /* Entry points. x: n*in_features floats; y: n*label_width floats.
     * train_step and eval_step write the MEAN loss and metrics (num_metrics
     * floats) over the n samples of the batch; the runtime weights them by n
     * across batches. */
    void (*init)(void *state, uint64_t seed); /* initialise weights, zero optimizer state */
    float *(*param_block)(void *state);       /* the parameter block */
    void (*set_lr)(void *state, float lr);
    void (*set_seed)(void *state, uint64_t seed); /* seeds in-graph randomness (dropout); may be NULL */
    void (*train_step)(void *state, int n, const float *x, const float *y, float *loss, float *metrics);
    void (*eval_step)(void *state, int n, const float *x, const float *y, float *loss, float *metrics);
    void (*predict)(void *state, int n, const float *x, float *out);
    cgrt_callbacks callbacks; /* defaults of fit's callbacks (all zero: none) */
    /* The training-mode loss of the batch (Dropout's masks, the same at every
     * call; BatchNormalization's batch statistics) into *loss and its gradient:
     * returns the gradient block (the trainable parameters' gradients at their
     * offsets in the parameter block; NULL when nothing is trainable). No
     * optimizer step, no moving averages. */
    const float *(*gradients)(void *state, int n, const float *x, const float *y, float *loss);
    int num_adapt;           /* Normalization layers whose statistics fit computes; 0: none */
    const cgrt_adapt *adapt; /* num_adapt of them */
    /* The learning-rate schedule the training step follows (NAME_learning_rate: the rate of step k,
     * counted from 0, which the step sets itself) and its Keras name ("CosineDecay"); NULL: a constant
     * rate, which --lr sets and ReduceLROnPlateau may lower. */
    float (*learning_rate)(int step);
    const char *lr_schedule;
    /* train_step and eval_step with a weight per sample (sw: n floats, NULL:
     * every weight 1): the loss is sum_i sw[i] loss_i / n, Keras'
     * sum_over_batch_size; the metrics are not weighted. NULL for a model
     * whose custom loss gives the batch's value alone: it takes no weights. */
    void (*train_step_weighted)(void *state, int n, const float *x, const float *y, const float *sw, float *loss,
                                float *metrics);
    void (*eval_step_weighted)(void *state, int n, const float *x, const float *y, const float *sw, float *loss,
                               float *metrics);
    const char *class_weight; /* default of fit's --class-weight ("balanced", "0:1,1:3.5"); NULL: none */
} cgrt_model;

/* ---- Datasets ----------------------------------------------------------- */

/* A dataset in memory: n samples of `features` floats and `label_width` floats. */
typedef struct cgrt_dataset {
    int n;
    int features;
    int label_width;
    float *x; /* n * features */
    float *y; /* n * label_width; NULL for unlabelled input */
    float *w; /* n weights of the samples' losses (Keras' sample_weight); NULL: every weight 1 */
} cgrt_dataset;

/* Errors: every runtime function that can fail returns 0 on success and -1 on
 * failure, after writing one line naming the file and what is wrong into err. */
typedef struct cgrt_error {
    char msg[512];
} cgrt_error;

void cgrt_dataset_free(cgrt_dataset *d);

/* The loaders read regular files only, and fail (naming the file and the
 * place) on a value that is not a finite float and on a header that promises
 * more than its file holds. */
/* IDX (plain or gzip): images file and labels file. */
int cgrt_load_idx(const char *images, const char *labels, float scale, cgrt_dataset *out, cgrt_error *err);
/* CSV (plain or gzip): features then label_width label columns per row; a
 * first line with a text cell is a header and skipped, and the first data
 * row sets the width of every row. label_width 0: no labels. */
int cgrt_load_csv(const char *path, int label_width, float scale, cgrt_dataset *out, cgrt_error *err);
/* NPY (version 1/2, little-endian f4, f8, u1, i4 or i8, C order) into floats. */
int cgrt_load_npy(const char *path, float **data, int *rank, int dims[CGRT_MAX_RANK], cgrt_error *err);

/* Loads the training data at PATH for model m (IDX directory, CSV file or NPY
 * directory, as the format table in formats.c recognises them) into train, and the test split (if the data has one) into test
 * (test->n == 0 otherwise). Checks features and labels against the model.
 * For a time-series model (data.series.window > 0): the training and test
 * parts of the series, standardised (the validation part is in neither; see
 * cgrt_load_series and cgrt_series_parts). */
int cgrt_load_data(const cgrt_model *m, const char *path, cgrt_dataset *train, cgrt_dataset *test, cgrt_error *err);

/* Splits off the last `fraction` of d into val (copies, sample weights too), shrinking d. */
int cgrt_split_tail(cgrt_dataset *d, float fraction, cgrt_dataset *val, cgrt_error *err);

/* Keras' adapt for every Normalization layer of m (m->adapt): the mean and
 * population variance of its features over the rows of train (the training
 * part alone: fit calls it after the test and validation splits), computed
 * in double, into params. Fails naming the layer when train has no rows. */
int cgrt_adapt_stats(const cgrt_model *m, float *params, const cgrt_dataset *train, cgrt_error *err);

/* ---- Time series ----------------------------------------------------------- */

/* Standardisation statistics of a series, from its training part; saved in
 * checkpoints, so evaluate and predict scale as fit did. */
typedef struct cgrt_series_stats {
    double mean;
    double std; /* population standard deviation; 1 when the training values are all equal */
} cgrt_series_stats;

/* A time series in memory, with its parts (see cgrt_series_spec). */
typedef struct cgrt_series {
    int n;         /* values */
    float *values; /* the column's values in file order, original units */
    int filled;    /* of them, missing in the file and filled as spec.missing says */
    int window, horizon, season;
    int samples;             /* windows that have a target: n - window - horizon + 1 */
    int train, val, test;    /* samples of each part, in time order: train, val, test */
    cgrt_series_stats stats; /* of values 0 .. (target of the last training sample) */
} cgrt_series;

/* Reads the spec's column of a CSV file (plain or gzip) into s, splits it into
 * parts and computes the training statistics. A header line is recognised by
 * a non-number in the column (required when the column is given by name); a
 * file of a single column without a header is read whatever the column.
 * Fails, naming the file (and line), when the column does not exist or holds
 * a cell that is not a number (or is missing and spec->missing does not fill
 * it), or when the series is too short for the window, the horizon, the
 * validation and test parts and one training sample. */
int cgrt_load_series(const char *path, const cgrt_series_spec *spec, cgrt_series *s, cgrt_error *err);
/* Reads the column alone (input of predict): s->n values, no parts, zero
 * statistics; fails when there are fewer values than the window. */
int cgrt_read_series(const char *path, const cgrt_series_spec *spec, cgrt_series *s, cgrt_error *err);
void cgrt_series_free(cgrt_series *s);

/* Index in s->values of the target of sample i: i + window - 1 + horizon. */
int cgrt_series_target(const cgrt_series *s, int i);
/* The seasonal-naive forecast of value t into *v: the value k*season steps
 * earlier, k the smallest whole number with k*season >= horizon (so the value
 * `season` steps before the target when horizon <= season), which is known
 * when the window ends. Returns 1, or 0 when the series has no such value
 * (or season is 0). */
int cgrt_series_naive(const cgrt_series *s, int t, float *v);

/* Samples [first, first + count) as a dataset standardised with st: inputs
 * are the windows, labels the targets (y is NULL when a target lies past the
 * end of the series, as for the last windows of predict input). */
int cgrt_series_windows(const cgrt_series *s, int first, int count, const cgrt_series_stats *st, cgrt_dataset *out,
                        cgrt_error *err);
/* The three parts of s as datasets standardised with st (a part may be empty). */
int cgrt_series_parts(const cgrt_series *s, const cgrt_series_stats *st, cgrt_dataset *train, cgrt_dataset *val,
                      cgrt_dataset *test, cgrt_error *err);

/* Forecast errors in original units over the samples that have a target,
 * and those of the seasonal-naive forecast on the same targets. */
typedef struct cgrt_forecast_errors {
    int count; /* targets compared */
    double rmse, mae;
    int has_naive; /* 1 when every one of those targets has a seasonal-naive forecast */
    double naive_rmse, naive_mae;
} cgrt_forecast_errors;

/* Forecasts samples [first, first + count) of s with the model (its output
 * mapped back to original units with st) into forecast (count floats; may be
 * NULL) and measures them into e. The windows must lie inside the series. */
int cgrt_series_forecast(const cgrt_model *m, void *state, const cgrt_series *s, const cgrt_series_stats *st, int first,
                         int count, float *forecast, cgrt_forecast_errors *e, cgrt_error *err);

/* Checks that model m can forecast its series: window values in, one value
 * out, one dense label. */
int cgrt_check_series_model(const cgrt_model *m, cgrt_error *err);

/* Seeded generator (splitmix64 / xoshiro-style) and Fisher-Yates shuffle. */
typedef struct cgrt_rng {
    uint64_t s;
} cgrt_rng;
uint64_t cgrt_rng_next(cgrt_rng *r);
void cgrt_shuffle(int *idx, int n, cgrt_rng *r);

/* ---- Checkpoints (safetensors) ------------------------------------------ */

/* Writes the parameter block as safetensors, atomically: temporary file in the
 * same folder, fsync, rename. */
int cgrt_save_checkpoint(const cgrt_model *m, const float *params, const char *path, cgrt_error *err);
/* Reads a safetensors checkpoint into params; every tensor of the model must be
 * present with its dtype F32 and its shape, or the error names the first that is not. */
int cgrt_load_checkpoint(const cgrt_model *m, float *params, const char *path, cgrt_error *err);
/* cgrt_save_checkpoint plus, when stats is not NULL, a time series' scaling
 * statistics in the header's __metadata__ (strings, as safetensors wants):
 * "series_mean" and "series_std" (17 significant digits), and for the reader's
 * information "series_column", "series_window" and "series_horizon". */
int cgrt_save_checkpoint_series(const cgrt_model *m, const float *params, const cgrt_series_stats *stats,
                                const char *path, cgrt_error *err);
/* Reads "series_mean" and "series_std" from a checkpoint's __metadata__;
 * fails naming the file when they are missing or not numbers (std > 0). */
int cgrt_load_series_stats(const char *path, cgrt_series_stats *stats, cgrt_error *err);
/* Fails, naming both, when the checkpoint's metadata records another series
 * column, window or horizon than model m's. */
int cgrt_check_series_checkpoint(const cgrt_model *m, const char *path, cgrt_error *err);

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

/* ---- Training curves ------------------------------------------------------ */

/* Draws the history CSV at csv_path (as fit --history writes it) as SVG
 * training curves into svg_path, atomically: the same picture as fit
 * --plot for the same epochs. title names the model (NULL: the CSV's file
 * name). A missing, empty or malformed CSV fails naming the file and line. */
int cgrt_plot_history(const char *csv_path, const char *svg_path, const char *title, cgrt_error *err);

/* ---- Command line -------------------------------------------------------- */

/* Called first by binaries whose GEMM shim runs on OpenBLAS
 * (cgrt_gemm_uses_openblas), with openblas_get_corename():
 * on a CPU with AVX-512 that OpenBLAS took for "Haswell" or "Zen" (Debian
 * 12's 0.3.21 on AMD Zen 4/5), runs the program again with
 * OPENBLAS_CORETYPE=SkylakeX so that OpenBLAS uses its AVX-512 kernels.
 * Does nothing when OPENBLAS_CORETYPE or CGRAD_NO_BLAS_TUNE is set. */
void cgrt_tune_openblas(char **argv, const char *corename);

/* Runs the training binary's command line; returns the process exit status. */
int cgrt_main(int argc, char **argv, const cgrt_model *m);

#endif
