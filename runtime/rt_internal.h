/* rt_internal.h: declarations shared between the runtime's own files (not
 * installed, not part of the public interface in include/cgrad_rt.h).
 *
 * Sections: errors and small helpers (util.c), data files and CSV text
 * (csv.c), datasets and their checks against a model (dataset.c), IDX and NPY
 * files (data.c), CSV datasets (csv_data.c), the data-format table
 * (formats.c), time series (series.c), progress bar (progress.c), the
 * callbacks' decisions (callbacks.c), sample and class weights (weights.c), training loop (fit.c), command line (cli.c, cli_series.c; its flags in cli_args.c,
 * its help, version and model hash in cli_help.c), the gradient check
 * (gradcheck.c), atomic writes (checkpoint.c), training curves (plot.c).
 */
#ifndef CGRAD_RT_INTERNAL_H
#define CGRAD_RT_INTERNAL_H

#include "cgrad_rt.h"

/* ---- util.c ------------------------------------------------------------- */

/* Formats one line into err->msg (err may be NULL); always returns -1 so a
 * failing function can `return rt_fail(err, ...)`. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int rt_fail(cgrt_error *err, const char *fmt, ...);

/* Seconds on a monotonic clock. */
double rt_now(void);

/* 1 if s ends with suffix. */
int rt_ends_with(const char *s, const char *suffix);

/* malloc of n * size bytes with an overflow check; NULL on failure or n == 0. */
void *rt_alloc_array(size_t n, size_t size);

/* ---- csv.c -------------------------------------------------------------- */

/* At most how many bytes deflate inflates one compressed byte to (a
 * 258-byte match coded in 2 bits): what a gzip file can truthfully promise. */
#define RT_GZIP_RATIO 1032

/* A data file open for reading, plain or gzip (zlib's gzFile). */
struct gzFile_s;
typedef struct rt_file {
    struct gzFile_s *gz;
    const char *path;
    long long size;     /* bytes on disk */
    long long consumed; /* bytes read so far (decompressed) */
} rt_file;

/* Opens path for reading without ever blocking (a FIFO without a writer
 * would wait forever) and refuses anything but a regular file (a folder, a
 * device, a FIFO); `what` names what a regular file there would be ("a data
 * file"). Returns the descriptor (blocking again) and its size in *size, or
 * -1 with err set. The data loaders and checkpoint loading open files
 * through it. */
int rt_open_regular(const char *path, const char *what, long long *size, cgrt_error *err);
/* Opens a regular file through rt_open_regular (a device, FIFO or folder is refused). */
int rt_file_open(rt_file *f, const char *path, cgrt_error *err);
void rt_file_close(rt_file *f);
/* Reads up to n bytes: the count read (short at the end), or -1 with err set. */
long long rt_file_read(rt_file *f, void *buf, size_t n, cgrt_error *err);
/* The most bytes the rest of the file can hold: exact (*exact = 1) for a
 * plain file, the deflate bound for gzip. Valid after the first read. */
long long rt_file_room(const rt_file *f, int *exact);

/* A CSV file in memory and the reader's position in it. */
typedef struct rt_csv {
    const char *path;
    char *text;          /* the whole file, NUL-terminated */
    const char *p, *end; /* the next line; the end of the text */
    int lineno;          /* 1-based number of the line last returned */
} rt_csv;

/* Reads path (plain or gzip) into c, past a UTF-8 byte-order mark. */
int rt_csv_open(rt_csv *c, const char *path, cgrt_error *err);
void rt_csv_close(rt_csv *c);
/* The next line into [*s, *e): 1, 0 at the end, -1 (err set) for a quote left open. */
int rt_csv_line(rt_csv *c, const char **s, const char **e, cgrt_error *err);
/* 1 when the line [s, e) holds only blanks. */
int rt_csv_blank(const char *s, const char *e);

/* A walk over the cells of one line (commas inside double quotes do not split). */
typedef struct rt_cells {
    const char *p, *e;
    int done;
} rt_cells;
void rt_cells_init(rt_cells *it, const char *s, const char *e);
/* The next cell, trimmed and unquoted, into [*cs, *ce); 0 after the last. */
int rt_cells_next(rt_cells *it, const char **cs, const char **ce);
int rt_csv_count_cells(const char *s, const char *e);

/* Kinds of cell, as rt_csv_number reads them. */
enum {
    RT_CELL_NUMBER,   /* a finite number that fits a float */
    RT_CELL_EMPTY,    /* nothing between the commas */
    RT_CELL_MISSING,  /* NA or nan: a missing value */
    RT_CELL_TEXT,     /* not a number at all (a header name, a typo) */
    RT_CELL_INFINITE, /* inf, -Infinity */
    RT_CELL_TOO_BIG,  /* a number beyond a float's range (1e39) */
};
/* Reads the trimmed cell [s, e) into *out (when a number); returns its kind. */
int rt_csv_number(const char *s, const char *e, float *out);
/* The phrase that says what keeps a cell of that kind from being a number. */
const char *rt_csv_problem(int kind);
/* 1 when some cell of the line is text: the line is a header. */
int rt_csv_is_header(const char *s, const char *e);
/* Writes the cells of the line [s, e), comma-separated, into buf (shortened
 * with "..."): how messages list a header's names. */
void rt_csv_header_names(const char *s, const char *e, char *buf, size_t size);

/* Growable array of floats. */
typedef struct rt_fvec {
    float *v;
    size_t n, cap;
} rt_fvec;
/* Appends x to a; -1 when out of memory. */
int rt_fvec_push(rt_fvec *a, float x);

/* ---- dataset.c ---------------------------------------------------------- */

/* Allocates x (and y when label_width > 0) for n samples; -1 with err naming
 * path when out of memory. */
int rt_dataset_alloc(cgrt_dataset *d, int n, int features, int label_width, const char *path, cgrt_error *err);

/* Checks features and labels of d against m (after keeping m's class range;
 * class indices become one-hot rows for dense-label classifiers). xpath and
 * ypath name the files of the inputs and of the labels in messages. */
int rt_check_dataset(const cgrt_model *m, cgrt_dataset *d, const char *xpath, const char *ypath, cgrt_error *err);

/* How many classes a file's labels may name for m: its classes (counted up
 * to the top of its class range, when it has one), 2 under binary
 * cross-entropy with one label, 0 when its labels are not classes. */
int rt_model_classes(const cgrt_model *m);

/* Reorders the samples of d by a permutation drawn from seed. */
int rt_permute_rows(cgrt_dataset *d, uint64_t seed, cgrt_error *err);

/* Moves a seeded random `fraction` of train into test (data without a test part). */
int rt_hold_out_test(cgrt_dataset *train, float fraction, cgrt_dataset *test, cgrt_error *err);

/* ---- data.c ------------------------------------------------------------- */

/* Loads an IDX images file alone (predict input) into an unlabelled dataset. */
int rt_load_idx_images(const char *path, float scale, cgrt_dataset *out, cgrt_error *err);

/* Loads an NPY file of samples (first dimension = samples) as an unlabelled dataset. */
int rt_load_npy_samples(const char *path, float scale, cgrt_dataset *out, cgrt_error *err);

/* Loads an NPY pair: inputs at xpath (times scale) and labels at ypath. */
int rt_load_npy_pair(const char *xpath, const char *ypath, float scale, cgrt_dataset *out, cgrt_error *err);

/* ---- csv_data.c --------------------------------------------------------- */

/* Loads a CSV file whose header (its first non-blank line) names the label
 * column `label`, which may stand anywhere: the other columns, in file
 * order, are the features (times scale), but for the column named
 * `weight` (NULL: none), which holds the samples' weights (into out->w). A label is a number, or, when the
 * column holds text, a class name: names are numbered 0, 1, ... in order of
 * first appearance, at most max_classes of them (0: text is refused).
 * want_labels 0 (predict input): the label column is dropped when the
 * header has one, and every column is a feature otherwise. When names were
 * numbered and note is not NULL, note gets a line saying which is which. */
int rt_load_csv_named(const char *path, const char *label, const char *weight, int max_classes, int want_labels,
                      float scale, cgrt_dataset *out, char *note, size_t note_size, cgrt_error *err);

/* ---- weights.c ---------------------------------------------------------- */

/* The classes a class weight can name for m: its classes (class indices or
 * one-hot labels), 2 for one binary label, 0 when it is no classifier with
 * one output. */
int rt_weight_classes(const cgrt_model *m);
/* The class weights of spec ("balanced": n / (classes * count_c) over the
 * rows of train; or "C:W,C:W", a class not named weighing 1) into cw
 * (rt_weight_classes(m) floats); -1 with err naming --class-weight. */
int rt_class_weights(const cgrt_model *m, const char *spec, const cgrt_dataset *train, float *cw, cgrt_error *err);
/* Multiplies each sample's weight in d (ones when d->w is NULL) by its class's cw. */
int rt_apply_class_weights(const cgrt_model *m, cgrt_dataset *d, const float *cw, cgrt_error *err);
/* 0 when sample weight v (of 0-based row, in the file or place `what`) is
 * finite and at least 0; else -1 with err naming it. */
int rt_check_weight(float v, const char *what, int row, cgrt_error *err);
/* Reads an NPY file of one weight per sample of d into d->w; -1 with err
 * naming the file when its count differs from d->n or a weight is bad. */
int rt_attach_sample_weights(cgrt_dataset *d, const char *path, cgrt_error *err);

/* ---- formats.c ---------------------------------------------------------- */

/* What a data path is read for. */
enum {
    RT_ROLE_DATA,       /* fit's or evaluate's --data: labelled; a test part held out when asked */
    RT_ROLE_VALIDATION, /* --validation-data: labelled, all of it */
    RT_ROLE_INPUT,      /* predict's --input: samples without labels (a series: its values) */
};

/* A path to read, as the probes of the format table see it. */
typedef struct rt_source {
    const cgrt_model *m; /* the model: its data spec says the label column, the series, the scale */
    const char *path;
    int role;              /* RT_ROLE_* */
    int is_dir;            /* path is a directory */
    unsigned char head[8]; /* a file's first bytes, decompressed: where magic numbers are */
    int head_len;
} rt_source;

/* What a load gives. */
typedef struct rt_loaded {
    cgrt_dataset train; /* the samples (predict input: unlabelled) */
    cgrt_dataset val;   /* a time series' validation part; else empty */
    cgrt_dataset test;  /* the test part, when the data has one or one was held out */
    cgrt_series series; /* a time series' values; n == 0 for other data */
    char note[256];     /* a line for fit to print (the classes of a text label column); "" */
} rt_loaded;

/* One data format: its row in the table (formats.c). */
typedef struct rt_format {
    const char *name;                   /* "CSV", "IDX", ... */
    const char *describe;               /* one line for --help and messages: what a path of the format looks like */
    int (*probe)(const rt_source *src); /* 1 when src is of this format */
    int (*load)(const rt_source *src, rt_loaded *out, cgrt_error *err); /* reads it into out */
} rt_format;

/* Reads path for m in the given role through the first row of the format
 * table whose probe claims it; checks what it read against the model.
 * On success free out with rt_loaded_free. */
int rt_load(const cgrt_model *m, const char *path, int role, rt_loaded *out, cgrt_error *err);
void rt_loaded_free(rt_loaded *d);

/* cgrt_load_data with a choice: hold_out 0 never splits a test part off files
 * that have none (used for --validation-data). */
int rt_load_data(const cgrt_model *m, const char *path, int hold_out, cgrt_dataset *train, cgrt_dataset *test,
                 cgrt_error *err);

/* Prints the table, one line per format, for --help. */
void rt_formats_usage(FILE *f);


/* ---- series.c ----------------------------------------------------------- */

/* Loads the time series at path for m (whose data.series.window > 0), checks
 * m against it, and cuts it into its parts standardised with its own training
 * statistics. val, ser may be NULL (the validation part and the series are
 * then dropped); on success *ser owns the series (free with cgrt_series_free). */
int rt_load_series_data(const cgrt_model *m, const char *path, cgrt_dataset *train, cgrt_dataset *val,
                        cgrt_dataset *test, cgrt_series *ser, cgrt_error *err);

/* ---- checkpoint.c: atomic writes ------------------------------------------ */

/* Writes path atomically: body(f, ctx) fills a new temporary file in path's
 * folder (created exclusively, never through a symlink; stale ones of
 * killed writers removed first), which is flushed, fsynced and renamed over
 * path, so path holds the old file or the new one. body returns 0, or -1
 * with errno set. what names the file in messages ("checkpoint", "plot").
 * Returns 0, or -1 with err set (the temporary file removed). */
int rt_write_atomic(const char *path, const char *what, int (*body)(FILE *f, void *ctx), void *ctx, cgrt_error *err);

/* ---- plot.c ------------------------------------------------------------- */

#define RT_HISTORY_MAX_COLS 40 /* columns of a history, epoch included */
#define RT_HISTORY_NAME 80     /* bytes of a column's name, its NUL included */

/* A training history as fit --history writes it: the header's column
 * names and a row of values per epoch (NaN where a cell is empty, missing
 * or not finite). */
typedef struct rt_history {
    const char *path; /* the file messages name */
    int ncols;        /* columns, epoch included; 0 before the header */
    int epoch_col;    /* the epoch's column */
    int header_line;  /* the header's line number */
    char names[RT_HISTORY_MAX_COLS][RT_HISTORY_NAME];
    int rows;  /* epochs read */
    rt_fvec v; /* rows x ncols values */
} rt_history;

/* Starts an empty history read from path (the name messages give). */
void rt_history_init(rt_history *h, const char *path);
void rt_history_free(rt_history *h);
/* Reads line lineno [s, e) of a history CSV: the header first, then a row
 * per epoch (blank lines skipped); -1 with err naming the file and line. */
int rt_history_line(rt_history *h, const char *s, const char *e, int lineno, cgrt_error *err);
/* Draws the curves of h as an SVG document titled title into path,
 * atomically; -1 with err set (h without a row is refused). */
int rt_plot_svg(const rt_history *h, const char *title, const char *path, cgrt_error *err);

/* ---- progress.c --------------------------------------------------------- */

/* Figures of one finished epoch. */
typedef struct rt_epoch_stats {
    double loss, metric[CGRT_MAX_METRICS];
    int has_val;
    double val_loss, val_metric[CGRT_MAX_METRICS];
    double seconds;
    double samples_per_sec;
    double lr;      /* the learning rate in effect during the epoch */
    int has_lr;     /* 1 when a learning-rate schedule runs: the history has an lr column */
    int lr_changed; /* 1 when lr differs from the previous epoch's: the progress line shows it */
} rt_epoch_stats;

/* State of the progress display of one fit. */
typedef struct rt_progress {
    int verbose; /* 0, 1 (live bar, TTY only) or 2 (one line per epoch) */
    int live;    /* 1 when the live bar is drawn (verbose 1 on a TTY) */
    int num_metrics;
    const char *const *metric_names;
    FILE *out;
    int epoch, epochs, steps;
    double t0, last_draw;
    int last_len; /* length of the last live line, to blank leftovers */
} rt_progress;

void rt_progress_init(rt_progress *p, int verbose, const cgrt_model *m, FILE *out);
void rt_progress_begin_epoch(rt_progress *p, int epoch, int epochs, int steps);
void rt_progress_update(rt_progress *p, int step, double loss, const double *metrics);
void rt_progress_end_epoch(rt_progress *p, const rt_epoch_stats *s);
/* Ends a live line early (before an error message is printed). */
void rt_progress_abort(rt_progress *p);
/* Formats a duration the Keras way ("3s", "1m 05s") into buf. */
void rt_format_seconds(char *buf, size_t size, double seconds);

/* ---- callbacks.c -------------------------------------------------------- */

/* A column of the history: the loss (metric -1) or metric k, of the
 * training pass or (val) of the validation pass. */
typedef struct rt_column {
    int val;
    int metric;
} rt_column;

/* Finds the history column named name[0..len) of model m ("loss",
 * "accuracy", "val_loss", "val_mae", ...) into *col; 0, or -1 when m has none. */
int rt_find_column(const cgrt_model *m, const char *name, size_t len, rt_column *col);
/* The value of column col in the figures of one epoch. */
double rt_column_value(const rt_epoch_stats *s, rt_column col);
/* 1 when a quantity named name improves upwards under mode (CGRT_MODE_*):
 * auto says so for names ending in "accuracy", "acc" or "auc" (Keras). */
int rt_mode_is_max(int mode, const char *name);
/* Keras' rule: 1 when current beats best by more than min_delta (higher
 * when max_mode, lower otherwise); never for NaN. */
int rt_improves(int max_mode, double min_delta, double current, double best);

/* EarlyStopping's state across epochs. */
typedef struct rt_early_stop {
    int max_mode, patience; /* patience 0: never stop */
    double min_delta, best;
    int best_epoch; /* 1-based; 0 before the first epoch */
    int wait;       /* epochs since the last improvement */
} rt_early_stop;

/* What rt_early_stop_update says of an epoch (bits). */
enum {
    RT_ES_BEST = 1, /* the epoch is the best so far: keep its weights */
    RT_ES_STOP = 2, /* patience is exhausted: stop training */
};

void rt_early_stop_init(rt_early_stop *es, int max_mode, double min_delta, int patience);
/* Feeds the monitored value of epoch (1-based); returns RT_ES_* bits. */
int rt_early_stop_update(rt_early_stop *es, int epoch, double current);

/* ReduceLROnPlateau's state across epochs. */
typedef struct rt_plateau {
    int max_mode, patience, cooldown;
    double factor, min_delta, min_lr, best;
    int wait, cooldown_counter;
} rt_plateau;

void rt_plateau_init(rt_plateau *p, int max_mode, double factor, int patience, double min_delta, int cooldown,
                     double min_lr);
/* Feeds an epoch's monitored value and the learning rate in effect; returns
 * the learning rate of the next epoch (lr, unless it was reduced). */
float rt_plateau_update(rt_plateau *p, double current, float lr);

/* The callbacks of one fit, resolved from the flags. */
typedef struct rt_callback_opts {
    rt_column monitor;     /* the column the callbacks watch */
    char monitor_name[80]; /* its name, for messages */
    int max_mode;          /* 1: higher is better */
    double min_delta;      /* early stopping's threshold of improvement */
    int patience;          /* early stopping; 0: never stop early */
    int restore_best_weights, save_best_only;
    double reduce_lr_factor; /* 0: no learning-rate schedule */
    int reduce_lr_patience, reduce_lr_cooldown;
    double reduce_lr_min_delta, min_lr;
    int shuffle; /* 0: the training samples in their order, every epoch */
} rt_callback_opts;

struct rt_cli_opts;
/* Resolves fit's callback flags o for model m into cb: the monitored
 * column (a validation column falls back to its training column when fit
 * has no validation, unless the command line named it), its direction and
 * each callback's settings. has_val: fit validates. Returns 0, or -1 with
 * err holding a usage error naming the flag. */
int rt_callbacks_resolve(const cgrt_model *m, const struct rt_cli_opts *o, int has_val, rt_callback_opts *cb,
                         cgrt_error *err);

/* Writes into out the checkpoint name of pattern for epoch (1-based; 0:
 * before training) with figures s: Keras' ModelCheckpoint file names, whose
 * fields {epoch}, {loss}, {val_loss}, {<metric>}, {val_<metric>} and {lr}
 * take Python's format specs [0][width][.precision][d|f|e|g] ({epoch:02d},
 * {val_loss:.4f}); {{ and }} are braces. s NULL: only {epoch} has a value.
 * Returns 0, or -1 with err naming the field and what is wrong. */
int rt_checkpoint_name(const char *pattern, const cgrt_model *m, int epoch, const rt_epoch_stats *s, char *out,
                       size_t size, cgrt_error *err);

/* ---- fit.c -------------------------------------------------------------- */

/* Options of one fit, already validated by the command line. */
typedef struct rt_fit_opts {
    int epochs; /* 0: nothing trained; --save writes the initial weights */
    int batch;
    uint64_t seed;
    int verbose;
    float lr;                              /* the learning rate at the start */
    rt_callback_opts cb;                   /* early stopping, checkpoints, learning-rate schedule, shuffle */
    const char *save_path;                 /* NULL: no checkpoints; may hold fields ({epoch:02d}) */
    const char *history_path;              /* NULL: no history file */
    const char *plot_path;                 /* NULL: no training curves (--plot) */
    const cgrt_series_stats *series_stats; /* time series: saved in every checkpoint; else NULL */
    const char *bin;                       /* program name for messages */
} rt_fit_opts;

/* Status codes of rt_fit. */
enum {
    RT_FIT_OK = 0,         /* all epochs done, or stopped early */
    RT_FIT_ERROR = -1,     /* I/O failure: err says what */
    RT_FIT_NONFINITE = -2, /* loss became nan or inf: err says where */
};

/* Trains state on train for o->epochs, validating on val when val->n > 0. */
int rt_fit(const cgrt_model *m, void *state, const rt_fit_opts *o, const cgrt_dataset *train, const cgrt_dataset *val,
           cgrt_error *err);

/* Evaluates state on d in batches of m->max_batch: sample-weighted means of
 * the loss and of each of the m->num_metrics metrics. */
void rt_evaluate(const cgrt_model *m, void *state, const cgrt_dataset *d, double *loss, double *metrics);

/* ---- cli.c, cli_series.c, cli_args.c, cli_help.c: the command line ------ */

/* Every option of every subcommand, after parsing. */
typedef struct rt_cli_opts {
    const char *data, *val_data, *save, *history, *plot, *weights, *input, *output, *init_from, *label_column;
    const char *class_weight, *sample_weight, *sample_weight_column;
    long epochs, batch, verbose, patience, iters;
    double lr, val_split;
    uint64_t seed;
    const char *monitor, *mode, *shuffle;        /* NULL: val_loss, auto, true */
    long restore_best_weights, save_best_only;   /* 0 or 1 */
    long reduce_lr_patience, reduce_lr_cooldown; /* ReduceLROnPlateau */
    double min_delta, reduce_lr_factor, reduce_lr_min_delta, min_lr;
    long samples; /* gradcheck: coordinates checked per parameter */
} rt_cli_opts;

/* Subcommands, as bits so a flag can list where it applies. */
enum {
    RT_CMD_FIT = 1,        /* train */
    RT_CMD_EVAL = 2,       /* evaluate a checkpoint */
    RT_CMD_PREDICT = 4,    /* write predictions */
    RT_CMD_BENCH = 8,      /* time train and predict steps */
    RT_CMD_GRADCHECK = 16, /* gradients against finite differences */
};

/* One subcommand: its name, bit and one line for the help. */
typedef struct rt_cli_cmd {
    const char *name;
    unsigned bit;
    const char *help;
} rt_cli_cmd;

/* Kinds of flag value. */
enum {
    RT_FLAG_STRING = 's',  /* a non-empty string */
    RT_FLAG_INT = 'i',     /* a long in [lo, hi] */
    RT_FLAG_NUMBER = 'f',  /* a finite double in [lo, hi] */
    RT_FLAG_UINT64 = 'u',  /* a uint64_t */
    RT_FLAG_SET = 'n',     /* no value: stores lo into its long */
    RT_FLAG_HELP = 'h',    /* no value: print the command's help */
    RT_FLAG_VERSION = 'V', /* no value: print the version */
};

/* One flag: the row of the parser's table that the help prints too. */
typedef struct rt_cli_flag {
    const char *name; /* long name, without "--" */
    char short_name;  /* the one-letter form, or 0 */
    char kind;        /* RT_FLAG_* */
    size_t offset;    /* of its field in rt_cli_opts */
    double lo, hi;    /* valid range of numbers */
    unsigned cmds;    /* RT_CMD_* bits where it applies */
    unsigned needs;   /* RT_CMD_* bits where it is required (the usage line shows it unbracketed) */
    const char *meta; /* what the help calls its value ("N", "FILE"); "" for none */
    const char *help; /* one line: what it does */
    const char *none; /* the default shown when its value is unset (NULL or 0); NULL: no default shown */
} rt_cli_flag;

/* The subcommands and the flags (cli_args.c). */
extern const rt_cli_cmd rt_cli_cmds[];
extern const int rt_cli_num_cmds;
extern const rt_cli_flag rt_cli_flags[];
extern const int rt_cli_num_flags;

/* What rt_cli_parse found besides flags. */
enum {
    RT_CLI_RUN = 0,     /* flags parsed: run the command */
    RT_CLI_HELP = 1,    /* --help or -h */
    RT_CLI_VERSION = 2, /* --version */
};

/* The subcommand named name, or NULL. */
const rt_cli_cmd *rt_cli_find_cmd(const char *name);
/* Fills o with the defaults of command c for model m (the model's epochs,
 * batch size, learning rate and data; the runtime's own for the rest). */
void rt_cli_defaults(const cgrt_model *m, const rt_cli_cmd *c, rt_cli_opts *o);
/* Parses argv[first..argc) for command c with getopt_long: long flags
 * ("--flag value", "--flag=value", never abbreviated) and short ones ("-e 5",
 * "-e5"). Returns RT_CLI_RUN, RT_CLI_HELP or RT_CLI_VERSION (at the first
 * --help or --version), or -1 with err naming the flag and what is wrong. */
int rt_cli_parse(int argc, char **argv, int first, const rt_cli_cmd *c, rt_cli_opts *o, cgrt_error *err);

/* The usage lines of every command, the model's defaults and the data
 * formats: what the binary prints without a command, and atop --help. */
void rt_cli_usage(FILE *f, const char *bin, const cgrt_model *m);
/* BIN --help: the usage, the commands, where each command's help is, and the environment. */
void rt_cli_help(FILE *f, const char *bin, const cgrt_model *m);
/* BIN COMMAND --help: the usage line, every flag of the command with what it
 * does and its default for m, the data formats where data is read, and the
 * environment. */
void rt_cli_help_cmd(FILE *f, const char *bin, const cgrt_model *m, const rt_cli_cmd *c);
/* BIN --version: cgrad's version (CGRT_VERSION) and the model's name and hash. */
void rt_cli_version(FILE *f, const cgrt_model *m);
/* A 64-bit FNV-1a hash of what defines m for its checkpoints:
 * its name, input shape, largest batch, outputs, labels, loss, metrics and
 * every parameter's name, shape, place and trainability (numbers hashed as
 * decimal text, so the hash is the same on every host). */
uint64_t rt_model_hash(const cgrt_model *m);

/* Prints "BIN: msg" to stderr and returns status. */
int rt_cli_report(const char *bin, int status, const char *msg);
/* Prints a usage error on one line, "BIN: msg (usage: BIN CMD [FLAG]...;
 * try 'BIN CMD --help')" (cmd NULL: the command is missing or unknown), and
 * returns 2. */
int rt_cli_usage_error(const char *bin, const char *cmd, const char *msg);
/* Prints "PREFIXloss=x accuracy=y ..." (the loss and the model's metrics). */
void rt_cli_print_figures(const cgrt_model *m, const char *prefix, double loss, const double *metrics);
/* Allocates a state and loads the checkpoint into it; NULL with err set on failure. */
void *rt_cli_state_from_checkpoint(const cgrt_model *m, const char *weights, cgrt_error *err);

/* The time-series lines of the usage text. */
void rt_cli_usage_series(FILE *f, const char *bin, const cgrt_model *m);
/* What fit says of the series: its parts, the values it filled, its training statistics. */
void rt_cli_print_series_parts(const cgrt_model *m, const cgrt_series *s);
/* Prints, after prefix, the forecast errors of samples [first, first + count)
 * in original units and those of the seasonal-naive forecast. */
int rt_cli_print_forecast_errors(const cgrt_model *m, void *state, const cgrt_series *s, const cgrt_series_stats *st,
                                 int first, int count, const char *prefix, cgrt_error *err);
/* evaluate of a forecaster: figures on the test part, then in original units. */
int rt_cli_evaluate_series(const cgrt_model *m, const rt_cli_opts *o, void *state, cgrt_error *err);
/* predict of a forecaster: forecasts of the test part of --data, or of every window of --input. */
int rt_cli_predict_series(const cgrt_model *m, const rt_cli_opts *o, const char *bin);

/* ---- gradcheck.c --------------------------------------------------------- */

/* BIN gradcheck: every trainable parameter's gradient (m->gradients) against
 * central finite differences of the training-mode loss on a batch of --data;
 * prints a line per parameter and the verdict; returns the exit status
 * (1 when a gradient disagrees or on an error). */
int rt_cli_gradcheck(const cgrt_model *m, const rt_cli_opts *o, const char *bin);

#endif
