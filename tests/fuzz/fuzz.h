/* fuzz.h: what the libFuzzer targets of the loaders (tests/fuzz/fuzz_*.c)
 * share. The loaders take file paths, so each input is written to a file in a
 * private folder (under /dev/shm when it can be used, else TMPDIR or /tmp)
 * and the real loader reads it back. */
#ifndef CGRAD_FUZZ_H
#define CGRAD_FUZZ_H

#include "rt_internal.h"

#include <stddef.h>
#include <stdint.h>

/* Returns "FOLDER/name" in the process's private folder (created on first
 * use, removed with its files at exit); the string lives until exit. */
const char *fuzz_path(const char *name);

/* Prints "fuzz: " and the formatted message, removes the private folder and
 * aborts: a broken invariant, reported as a crash (libFuzzer saves the input). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
void fuzz_fail(const char *fmt, ...);

/* Writes size bytes of data to path (replacing it); aborts when it cannot,
 * which is a failure of the machine, not of the loader. */
void fuzz_write(const char *path, const uint8_t *data, size_t size);

/* Where to cut data in two files: the offset of the last occurrence of
 * magic (len bytes) after offset 0, or size when there is none. */
size_t fuzz_cut(const uint8_t *data, size_t size, const char *magic, size_t len);

/* Checks what a loader returned. rc 0: the dataset's sizes are positive and
 * every value of x (and y, when label_width > 0) can be read (so ASan sees a
 * short allocation). rc -1: err holds a message naming the file path (or
 * path2, when not NULL). Aborts, saying what is wrong, on a violation. */
void fuzz_check(int rc, const cgrt_dataset *d, const cgrt_error *err, const char *path, const char *path2);

/* The part of fuzz_check for loaders that fill no dataset: rc is 0, or -1
 * with a message naming path (or path2). */
void fuzz_check_error(int rc, const cgrt_error *err, const char *path, const char *path2);

/* fuzz_check_error for rt_load_data: its messages, those of the steps after
 * the readers too (checks against the model, the test split), name path,
 * path2 or the folder holding path. */
void fuzz_check_load_data(int rc, const cgrt_error *err, const char *path, const char *path2);

/* A classifier descriptor for the dataset checks of rt_load_data: `features`
 * inputs, labels of the given kind and width, num_classes classes, a class
 * range lo..hi (hi 0: none) and a test split of a quarter. No entry points. */
void fuzz_model(cgrt_model *m, int features, int label_kind, int label_width, int num_classes, int lo, int hi);

/* Frees the datasets of a successful rt_load_data after checking them
 * (a test part may be empty). */
void fuzz_check_split(cgrt_dataset *train, cgrt_dataset *test, const char *path);

/* Reads the n floats of v (so ASan checks they lie inside their allocation). */
void fuzz_touch(const float *v, size_t n);

#endif
