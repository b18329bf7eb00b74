/* fuzz_npy.c: libFuzzer target of the NPY loader. An input is an inputs file
 * followed by its labels file (`cat x.npy y.npy`), cut before the last NPY
 * magic string; without a second one, the labels file is empty. The inputs
 * go through cgrt_load_npy (any rank), both files through rt_load_npy_samples
 * and, as x_train.npy and y_train.npy of a folder, through rt_load_data for a
 * model with three dense label values (class indices are expanded one-hot). */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *xp = fuzz_path("x_train.npy"), *yp = fuzz_path("y_train.npy");
    size_t cut = fuzz_cut(data, size, "\x93NUMPY", 6), count = 1;
    int rank, dims[CGRT_MAX_RANK], rc, i, features;
    cgrt_dataset x, y, train, test;
    cgrt_model m;
    cgrt_error err;
    char folder[320];
    float *v;
    fuzz_write(xp, data, cut);
    fuzz_write(yp, data + cut, size - cut);
    memset(&err, 0, sizeof err);
    rc = cgrt_load_npy(xp, &v, &rank, dims, &err);
    fuzz_check_error(rc, &err, xp, NULL);
    if (rc == 0) {
        for (i = 0; i < rank; i++)
            count *= (size_t)dims[i];
        fuzz_touch(v, count);
        free(v);
    }
    memset(&err, 0, sizeof err);
    rc = rt_load_npy_samples(yp, 1.0f, &y, &err);
    fuzz_check(rc, &y, &err, yp, NULL);
    if (rc == 0)
        cgrt_dataset_free(&y);
    memset(&err, 0, sizeof err);
    rc = rt_load_npy_samples(xp, 0.5f, &x, &err);
    fuzz_check(rc, &x, &err, xp, NULL);
    if (rc != 0)
        return 0;
    features = x.features;
    cgrt_dataset_free(&x);
    fuzz_model(&m, features, CGRT_LABEL_DENSE, 3, 3, 0, 0);
    strcpy(folder, xp);
    *strrchr(folder, '/') = '\0';
    memset(&err, 0, sizeof err);
    rc = rt_load_data(&m, folder, 1, &train, &test, &err);
    fuzz_check_load_data(rc, &err, xp, yp);
    if (rc == 0)
        fuzz_check_split(&train, &test, xp);
    return 0;
}
