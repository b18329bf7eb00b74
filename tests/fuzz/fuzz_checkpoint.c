/* fuzz_checkpoint.c: libFuzzer target of the safetensors checkpoint reader.
 * An input is a checkpoint file; it goes through cgrt_load_checkpoint for a
 * model of two tensors, cgrt_load_checkpoint_by_name for a model of three,
 * cgrt_load_series_stats and cgrt_check_series_checkpoint. A checkpoint that
 * loads is saved again and must read back bit for bit. */
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const cgrt_param params2[] = {
    {"dense/kernel", 2, {4, 3, 0, 0}, 0, 12, 1},
    {"dense/bias", 1, {3, 0, 0, 0}, 12, 3, 1},
};
static const cgrt_param params3[] = {
    {"dense/kernel", 2, {4, 3, 0, 0}, 0, 12, 1},
    {"dense/bias", 1, {3, 0, 0, 0}, 12, 3, 1},
    {"head/kernel", 2, {3, 2, 0, 0}, 15, 6, 1},
};

/* The model of the two or the three tensors, reading the series "value" (window 4, horizon 2). */
static void checkpoint_model(cgrt_model *m, int three)
{
    fuzz_model(m, 4, CGRT_LABEL_SPARSE, 1, 3, 0, 0);
    m->name = three ? "fuzz3" : "fuzz";
    m->num_params = three ? 3 : 2;
    m->params = three ? params3 : params2;
    m->param_floats = three ? 21 : 15;
    m->data.series.column = "value";
    m->data.series.window = 4;
    m->data.series.horizon = 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("w.safetensors"), *again = fuzz_path("again.safetensors");
    float p[21], q[21];
    cgrt_load_report rep;
    cgrt_series_stats st;
    cgrt_model m2, m3;
    cgrt_error err;
    int rc;
    checkpoint_model(&m2, 0);
    checkpoint_model(&m3, 1);
    fuzz_write(path, data, size);
    memset(&err, 0, sizeof err);
    rc = cgrt_load_checkpoint(&m2, p, path, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == 0) {
        if (cgrt_save_checkpoint(&m2, p, again, &err) != 0)
            fuzz_fail("saving a checkpoint that loaded: %s", err.msg);
        memset(q, 0, sizeof q);
        if (cgrt_load_checkpoint(&m2, q, again, &err) != 0)
            fuzz_fail("reading back a saved checkpoint: %s", err.msg);
        if (memcmp(p, q, 15 * sizeof *p) != 0)
            fuzz_fail("round trip: the saved checkpoint reads back other values");
    }
    memset(&err, 0, sizeof err);
    rc = cgrt_load_checkpoint_by_name(&m3, p, path, &rep, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == 0 && (rep.loaded < 1 || rep.loaded + rep.kept != 3))
        fuzz_fail("by name: the report does not add up");
    memset(&err, 0, sizeof err);
    rc = cgrt_load_series_stats(path, &st, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc == 0 && !(st.std > 0.0 && st.mean == st.mean))
        fuzz_fail("series statistics: std is not positive or mean is nan");
    memset(&err, 0, sizeof err);
    rc = cgrt_check_series_checkpoint(&m2, path, &err);
    fuzz_check_error(rc, &err, path, NULL);
    return 0;
}
