/* helpers.h: shared helpers of the runtime tests: temporary folders, writing
 * test files (plain, gzip, IDX, NPY), reading files back, and the tiny
 * hand-written models (tiny_model.c) that stand in for emitted code. */
#ifndef CGRT_TEST_HELPERS_H
#define CGRT_TEST_HELPERS_H

#include "cgrad_rt.h"

/* Creates a fresh temporary folder and returns its path (static storage). */
const char *t_tmpdir(void);
/* Returns "dir/name" in one of 256 rotating static buffers. */
const char *t_path(const char *dir, const char *name);
/* Writes len bytes to path (plain or gzip-compressed). */
void t_write(const char *path, const void *data, size_t len);
void t_write_gz(const char *path, const void *data, size_t len);
/* Reads a whole file into a malloc'd NUL-terminated buffer; *len may be NULL. */
char *t_read(const char *path, size_t *len);
/* Builds an IDX file (unsigned bytes) of the given dims in memory; *len gets its size. */
unsigned char *t_idx(int rank, const int *dims, const unsigned char *data, size_t *len);
/* Writes an NPY v1 file: descr like "<f4", shape text like "(2, 3)", raw data bytes. */
void t_write_npy(const char *path, const char *descr, int fortran, const char *shape, const void *data, size_t nbytes);
/* Writes a seasonal series of n values (period 6, with a trend) as CSV with the
 * header "date,value"; v (if not NULL) gets the values as written. */
void t_write_series(const char *path, int n, double *v);
/* Returns the last non-empty line of the text (static storage). */
const char *t_last_line(const char *text);
/* Counts the lines of the text. */
int t_count_lines(const char *text);
/* Counts the entries of dir whose name contains needle. */
int t_count_entries(const char *dir, const char *needle);

/* The tiny models of tiny_model.c: a softmax classifier of 4 features into 3
 * classes ("tiny"), one with 5 features ("tiny5"), one with an extra tensor
 * ("tiny_extra"), one whose loss becomes nan at its third step ("tiny_nan") and
 * one whose loss never improves ("tiny_flat"). */
extern const cgrt_model tiny_model, tiny5_model, tiny_extra_model, tiny_nan_model, tiny_flat_model;
/* A forecaster of a time series (column "value", window 4, horizon 2, 6
 * validation and 8 test targets, season 6): the window's last value plus a
 * trained bias (params[0], starting at 0.5), MSE loss, MAE metric. */
extern const cgrt_model tiny_series_model;
/* The tiny model's state (for direct use in tests). */
typedef struct tiny_state {
    float params[32];
    float lr;
    int steps;
} tiny_state;

/* Writes a 3-blob classification problem of n_train + n_test samples (4
 * features) into dir as x_train.npy, y_train.npy (and x_test/y_test when n_test > 0). */
void t_write_blobs_npy(const char *dir, int n_train, int n_test, unsigned seed);

/* Runs cgrt_main for m ("tiny_bin" then the NULL-terminated args) with stdout
 * and stderr sent to files in dir; returns its status, *out and *errs get the text. */
int t_run_cli(const cgrt_model *m, const char *dir, char **out, char **errs, const char *const *args);

#endif
