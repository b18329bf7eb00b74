/* fuzz_idx.c: libFuzzer target of the IDX loader, plain (fuzz_idx) or gzip
 * (fuzz_idx_gz, built with FUZZ_IDX_GZIP). An input is an images file
 * followed by its labels file (`cat images labels`), cut before the last
 * labels magic number (00 00 08 01; for gzip, the last gzip magic 1f 8b 08);
 * without one, the labels file is empty. Both files go through
 * cgrt_load_idx, then, as the training files of a folder, through
 * rt_load_data for a 10-class model that keeps classes 1..8 and holds out a
 * test part. */
#include "fuzz.h"

#include <string.h>

#ifdef FUZZ_IDX_GZIP
#define SUFFIX ".gz"
#define MAGIC "\x1f\x8b\x08"
#else
#define SUFFIX ""
#define MAGIC "\0\0\x08\x01"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *images = fuzz_path("train-images-idx3-ubyte" SUFFIX);
    const char *labels = fuzz_path("train-labels-idx1-ubyte" SUFFIX);
    size_t cut = fuzz_cut(data, size, MAGIC, sizeof MAGIC - 1);
    cgrt_dataset d, train, test;
    cgrt_model m;
    cgrt_error err;
    char folder[320];
    int rc;
    fuzz_write(images, data, cut);
    fuzz_write(labels, data + cut, size - cut);
    memset(&err, 0, sizeof err);
    rc = cgrt_load_idx(images, labels, 1.0f / 255.0f, &d, &err);
    fuzz_check(rc, &d, &err, images, labels);
    if (rc != 0)
        return 0;
    fuzz_model(&m, d.features, CGRT_LABEL_SPARSE, 1, 10, 1, 8);
    cgrt_dataset_free(&d);
    strcpy(folder, images);
    *strrchr(folder, '/') = '\0';
    memset(&err, 0, sizeof err);
    rc = rt_load_data(&m, folder, 1, &train, &test, &err);
    fuzz_check_load_data(rc, &err, images, labels);
    if (rc == 0)
        fuzz_check_split(&train, &test, images);
    return 0;
}
