/* fuzz_csv.c: libFuzzer target of the CSV loaders. An input is a CSV file
 * (features, then one label column); it goes through cgrt_load_csv, then
 * through rt_load_data for a 3-class model that keeps classes 0..1 and holds
 * out a test part, and for a model with two dense label columns. It also
 * goes through rt_load_csv_named with the label column "label" (numbers or
 * at most 5 class names) and, when that loads, rt_load_data for a model
 * whose data spec names that column. */
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("data.csv");
    cgrt_dataset d, train, test;
    cgrt_model m;
    cgrt_error err;
    char note[256];
    int rc, features;
    fuzz_write(path, data, size);
    memset(&err, 0, sizeof err);
    rc = rt_load_csv_named(path, "label", NULL, 5, 1, 0.5f, &d, note, sizeof note, &err);
    fuzz_check(rc, &d, &err, path, NULL);
    if (rc == 0) {
        fuzz_model(&m, d.features, CGRT_LABEL_SPARSE, 1, 5, 0, 0);
        m.data.label_column = "label";
        cgrt_dataset_free(&d);
        memset(&err, 0, sizeof err);
        rc = rt_load_data(&m, path, 1, &train, &test, &err);
        fuzz_check_load_data(rc, &err, path, NULL);
        if (rc == 0)
            fuzz_check_split(&train, &test, path);
    }
    memset(&err, 0, sizeof err);
    rc = cgrt_load_csv(path, 1, 0.5f, &d, &err);
    fuzz_check(rc, &d, &err, path, NULL);
    if (rc != 0)
        return 0;
    features = d.features;
    cgrt_dataset_free(&d);
    fuzz_model(&m, features, CGRT_LABEL_SPARSE, 1, 3, 0, 1);
    memset(&err, 0, sizeof err);
    rc = rt_load_data(&m, path, 1, &train, &test, &err);
    fuzz_check_load_data(rc, &err, path, NULL);
    if (rc == 0)
        fuzz_check_split(&train, &test, path);
    if (features < 2)
        return 0;
    fuzz_model(&m, features - 1, CGRT_LABEL_DENSE, 2, 0, 0, 0);
    memset(&err, 0, sizeof err);
    rc = rt_load_data(&m, path, 0, &train, &test, &err);
    fuzz_check_load_data(rc, &err, path, NULL);
    if (rc == 0)
        fuzz_check_split(&train, &test, path);
    return 0;
}
