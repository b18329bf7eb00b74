/* test_firmware.c: cgrad's firmware output on a Cortex-M4F.
 *
 * For each model the suite emits firmware sources with the example's model
 * program (--target firmware), writes fw_model.h (the model's names and a
 * few real inputs as C arrays) for the driver fw_main.c, cross-compiles it
 * with the board files of this folder for Arm's MPS2 AN386, and runs it in
 * QEMU (`qemu-system-arm -M mps2-an386`, instructions counted with -icount).
 *
 * Predict: the example's training binary trains briefly on the host and
 * saves a checkpoint; the firmware is emitted from it (--mode predict
 * --weights CKPT --max-batch 1: weights const in flash, the state only the
 * predict arena) and predicts a few inputs one at a time. Train: the
 * firmware is emitted in train mode at the example's batch and takes
 * TRAIN_STEPS steps on one batch from NAME_init(s, 42), as a device
 * learning on its own would. For the MLPs the predict build also has the
 * int8 model (--quantize int8, calibrated on the same rows the binary trained
 * on), run on the same inputs after the float predictions: its int8 outputs
 * and classes must be the same on the board and the host (integer arithmetic
 * but for quantizing the input), and it must take fewer instructions per
 * inference than the float predict. The board's results are compared with
 *   (a) the same sources and driver built for this host with
 *       `cc -std=c99 -ffp-contract=off`: the same float operations in the same
 *       order, so the same bits. Recurrent models call expf and tanhf, where
 *       newlib and glibc may round differently (so may logf and cosf in the
 *       normal draws of init): there RNN_ULPS ulps of the largest output are
 *       allowed, and of a loss;
 *   (b) the training binary (host flavour: GEMM, another summation order,
 *       FMAs): its predictions from the same checkpoint to BINARY_RTOL and the
 *       same classes; its losses over the same steps to LOSS_RTOL.
 * Every run also checks that the header's NAME_RAM_BYTES is sizeof the state
 * on the target and the size of the ELF's `state`, and logs the ELF's
 * sections and the instructions per call.
 *
 * Without the cross toolchain or QEMU (packages gcc-arm-none-eabi,
 * libnewlib-arm-none-eabi and qemu-system-arm, which scripts/setup.sh
 * installs when it can) the tests are skipped. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FW_DIR SOURCE_DIR "/tests/firmware"
#define BOARD_DIR SOURCE_DIR "/examples/firmware/board" /* startup, linker script, semihosting, print */
#define DIGITS_CSV SOURCE_DIR "/examples/data/digits.csv.gz"

#define PREDICT_SAMPLES 8 /* inputs per model, each predicted at batch 1 */
#define FIT_SAMPLES 256   /* the binary's short training for the predict checkpoint */
#define FIT_EPOCHS "2"
#define TRAIN_BATCH 32   /* the examples' batch size: one train step per epoch in the binary */
#define TRAIN_STEPS 4    /* train steps on the board, one batch each */
#define TEST_SAMPLES 8   /* the binary's test set (it reports on it; nothing here reads that) */
#define RNN_ULPS 4       /* newlib's expf/tanhf (and logf, cosf) against glibc's */
#define BINARY_RTOL 1e-5 /* of the largest output: the binary prints 6 digits (%.6g) */
#define LOSS_RTOL 1e-5   /* relative, losses: the binary's history has 6 digits too */

TestSuite(firmware, .timeout = 240, .fini = e2e_cleanup);

/* How a model's example data is stored. */
typedef enum data_kind {
    DATA_CSV, /* features then the class on each line (gzip or plain) */
    DATA_IDX, /* Fashion-MNIST's test images and labels */
} data_kind;

/* One model the suite runs, and where its example keeps its data. */
typedef struct fw_model {
    const char *name;  /* the model's name: digits_mlp */
    const char *upper; /* its macro prefix: DIGITS_MLP */
    const char *gen;   /* the model program, which emits the sources */
    const char *bin;   /* the example's training binary */
    data_kind kind;
    const char *data; /* the CSV file, or the IDX folder */
    int features;     /* floats per input sample */
    bool recurrent;   /* calls expf/tanhf: RNN_ULPS instead of bit-exact */
} fw_model;

/* clang-format off */
static const fw_model digits = {"digits_mlp", "DIGITS_MLP", DIGITS_MLP_GEN, DIGITS_MLP,
                                DATA_CSV, DIGITS_CSV, 64, false};
static const fw_model fashion_cnn = {"fashion_cnn", "FASHION_CNN", FASHION_CNN_GEN, FASHION_CNN,
                                     DATA_IDX, FASHION_DATA, 784, false};
static const fw_model sequence_sum = {"sequence_sum", "SEQUENCE_SUM", SEQUENCE_SUM_GEN, SEQUENCE_SUM,
                                      DATA_CSV, SEQUENCE_SUM_DATA, 12, true};
static const fw_model fashion_mlp = {"fashion_mlp", "FASHION_MLP", FASHION_MLP_GEN, FASHION_MLP,
                                     DATA_IDX, FASHION_DATA, 784, false};
static const fw_model sine = {"sine", "SINE", SINE_GEN, SINE,
                              DATA_CSV, SINE_DATA, 1, false};
/* clang-format on */

/* ---- tools ------------------------------------------------------------------------ */

/* True when program `name` is found in PATH. */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name);
        if (access(buf, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

/* Skips the test unless the cross compiler, newlib and QEMU are installed. */
static void need_toolchain(const char *tmp)
{
    if (!on_path("arm-none-eabi-gcc") || !on_path("qemu-system-arm"))
        cr_skip_test("arm-none-eabi-gcc or qemu-system-arm is not installed (packages gcc-arm-none-eabi, "
                     "libnewlib-arm-none-eabi, qemu-system-arm; scripts/setup.sh installs them)");
    /* without newlib the compiler prints the bare name back instead of a path */
    e2e_run r = E2E_RUN(tmp, tmp, "arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                        "-mfpu=fpv4-sp-d16", "-print-file-name=libm.a");
    bool newlib = r.status == 0 && strchr(r.out, '/') != NULL;
    e2e_run_free(&r);
    if (!newlib)
        cr_skip_test("newlib for arm-none-eabi is not installed (package libnewlib-arm-none-eabi)");
}

/* Asserts that run r of `what` exited 0, showing its output if not. */
static void assert_ran(const e2e_run *r, const char *what)
{
    cr_assert(!r->timed_out, "%s timed out:\n%s%s", what, r->out, r->err);
    cr_assert_eq(r->status, 0, "%s failed (status %d):\n%.3000s\n%.3000s", what, r->status, r->out, r->err);
}

/* A command line put together from lists (at most 63 words). */
typedef struct command {
    const char *argv[64];
    int n;
} command;

/* Appends the NULL-terminated words to c. */
static void command_add(command *c, const char *const *words)
{
    for (; *words; words++) {
        cr_assert_lt(c->n, 63, "command line too long");
        c->argv[c->n++] = *words;
        c->argv[c->n] = NULL;
    }
}
#define COMMAND_ADD(c, ...) command_add(c, (const char *const[]){__VA_ARGS__, NULL})

/* ---- data ------------------------------------------------------------------------- */

/* The first samples of a model's example data: raw features (before the
 * model's scale) and class labels. */
typedef struct samples {
    int n, features;
    float *x; /* n * features */
    float *y; /* n */
} samples;

/* Reads the first n lines of CSV file path (gzip or plain): features then the class. */
static samples read_csv(const char *path, int features, int n)
{
    samples s = {n, features, calloc((size_t)n * (size_t)features, sizeof(float)), calloc((size_t)n, sizeof(float))};
    gzFile f = gzopen(path, "rb");
    char line[8192];
    cr_assert_not_null(f, "cannot open %s", path);
    for (int i = 0; i < n; i++) {
        char *p = gzgets(f, line, sizeof line), *end;
        cr_assert_not_null(p, "%s: fewer than %d lines", path, n);
        for (int j = 0; j <= features; j++) {
            float v = strtof(p, &end);
            cr_assert(end != p, "%s:%d: field %d is not a number", path, i + 1, j + 1);
            if (j < features)
                s.x[(size_t)i * (size_t)features + (size_t)j] = v;
            else
                s.y[i] = v;
            p = end + (*end == ',');
        }
    }
    gzclose(f);
    return s;
}

/* Reads exactly len bytes of gzip file path from offset skip. */
static void read_gz(const char *path, long skip, unsigned char *buf, unsigned len)
{
    gzFile f = gzopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(gzseek(f, skip, SEEK_SET), skip, "%s: too short", path);
    cr_assert_eq(gzread(f, buf, len), (int)len, "%s: too short", path);
    gzclose(f);
}

/* The first n of Fashion-MNIST's test images (784 bytes each after a 16-byte
 * header) and labels (after 8 bytes). */
static samples read_idx(const char *dir, int features, int n)
{
    samples s = {n, features, calloc((size_t)n * (size_t)features, sizeof(float)), calloc((size_t)n, sizeof(float))};
    unsigned char *px = malloc((size_t)n * (size_t)features), lab[256];
    cr_assert(n <= 256);
    read_gz(e2e_path(dir, "t10k-images-idx3-ubyte.gz"), 16, px, (unsigned)(n * features));
    read_gz(e2e_path(dir, "t10k-labels-idx1-ubyte.gz"), 8, lab, (unsigned)n);
    for (size_t k = 0; k < (size_t)n * (size_t)features; k++)
        s.x[k] = px[k];
    for (int i = 0; i < n; i++)
        s.y[i] = lab[i];
    free(px);
    return s;
}

/* The first n samples of model m's data, or a skip when the data is not installed. */
static samples load_samples(const fw_model *m, int n)
{
    if (m->kind == DATA_IDX) {
        if (!e2e_exists(e2e_path(m->data, "t10k-images-idx3-ubyte.gz")))
            cr_skip_test("Fashion-MNIST is not installed at %s (package dataset-fashion-mnist)", m->data);
        return read_idx(m->data, m->features, n);
    }
    cr_assert(e2e_exists(m->data), "%s is missing", m->data);
    return read_csv(m->data, m->features, n);
}

static void samples_free(samples *s)
{
    free(s->x);
    free(s->y);
}

/* Writes float32 array v of shape (rows, cols), or (rows) when cols is 0, as NPY file path. */
static void write_npy(const char *path, const float *v, int rows, int cols)
{
    char head[128];
    int n = cols ? snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows,
                            cols)
                 : snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }", rows);
    size_t total = 10 + (size_t)n + 1, pad = (64 - total % 64) % 64, count = (size_t)rows * (size_t)(cols ? cols : 1);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((int)((n + pad + 1) & 0xFF), f); /* header length, little-endian */
    fputc((int)((n + pad + 1) >> 8), f);
    fputs(head, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    cr_assert_eq(fwrite(v, sizeof(float), count, f), count, "cannot write %s", path);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}

/* ---- the firmware ----------------------------------------------------------------- */

/* Emits m's firmware sources into tmp/src with the model program: --target
 * firmware and the NULL-terminated options opts. Returns the folder. */
static const char *emit_firmware(const char *tmp, const fw_model *m, const char *const *opts)
{
    const char *dir = e2e_path(tmp, "src");
    command c = {{NULL}, 0};
    COMMAND_ADD(&c, m->gen, "-o", dir, "--target", "firmware");
    command_add(&c, opts);
    e2e_run r = e2e_exec(tmp, tmp, 120, c.argv);
    assert_ran(&r, m->gen);
    e2e_run_free(&r);
    return dir;
}
#define EMIT_FIRMWARE(tmp, m, ...) emit_firmware(tmp, m, (const char *const[]){__VA_ARGS__, NULL})

/* Appends "static const float NAME[] = {...};" to f, each value a hex float literal (exact). */
static void put_array(FILE *f, const char *name, const float *v, size_t count)
{
    fprintf(f, "static const float %s[%zu] = {", name, count);
    for (size_t i = 0; i < count; i++)
        fprintf(f, "%s%af", i == 0 ? "\n    " : i % 8 ? ", " : ",\n    ", (double)v[i]);
    fprintf(f, "\n};\n");
}

/* Writes dir/fw_model.h for fw_main.c: model m's names, then FW_PREDICT on
 * the raw inputs s (train = false; a build with weights, no init) or
 * FW_TRAIN from init on them with their labels, and the arrays. */
static void write_fw_model(const char *dir, const fw_model *m, const samples *s, bool train)
{
    const char *path = e2e_path(dir, "fw_model.h");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fprintf(f, "/* fw_model.h: written by test_firmware.c for %s. */\n#include \"%s.h\"\n\n", m->name, m->name);
    static const char *const fns[] = {"state", "init", "predict_checked", "train_step_checked"};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        fprintf(f, "#define model_%s %s_%s\n", fns[i], m->name, fns[i]);
    static const char *const defs[] = {"IN_FEATURES", "OUT_FEATURES", "NUM_METRICS",
                                       "RAM_BYTES",   "INPUT_SCALE",  "INPUT_OFFSET"};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        fprintf(f, "#define MODEL_%s %s_%s\n", defs[i], m->upper, defs[i]);
    fprintf(f, "#define FW_SAMPLES %d\n", s->n);
    if (train)
        fprintf(f, "#define FW_TRAIN\n#define FW_INIT\n#define FW_STEPS %d\n", TRAIN_STEPS);
    else
        fprintf(f, "#define FW_PREDICT\n");
    put_array(f, "fw_inputs", s->x, (size_t)s->n * (size_t)s->features);
    if (train)
        put_array(f, "fw_labels", s->y, (size_t)s->n);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}

/* Appends to dir/fw_model.h what fw_main.c's FW_INT8 run needs: model m's
 * int8 header and entry points. */
static void add_int8_to_fw_model(const char *dir, const fw_model *m)
{
    const char *path = e2e_path(dir, "fw_model.h");
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f, "cannot write %s", path);
    fprintf(f, "\n#include \"%s_int8.h\"\n#define FW_INT8\n", m->name);
    fprintf(f, "#define model_quantize_input %s_quantize_input\n#define model_predict_int8 %s_predict_int8\n", m->name,
            m->name);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}

/* Appends -Isrc and the emitted sources to c: src/NAME.c, and src/NAME_weights.c
 * and src/NAME_int8.c when the build has them (paths in bufs, which must outlive c). */
static void add_model_sources(command *c, const char *src, const fw_model *m, char bufs[4][1024])
{
    snprintf(bufs[0], sizeof bufs[0], "-I%s", src);
    snprintf(bufs[1], sizeof bufs[1], "%s/%s.c", src, m->name);
    snprintf(bufs[2], sizeof bufs[2], "%s/%s_weights.c", src, m->name);
    snprintf(bufs[3], sizeof bufs[3], "%s/%s_int8.c", src, m->name);
    COMMAND_ADD(c, bufs[0], bufs[1]);
    if (e2e_exists(bufs[2]))
        COMMAND_ADD(c, bufs[2]);
    if (e2e_exists(bufs[3]))
        COMMAND_ADD(c, bufs[3]);
}

/* Cross-compiles fw_main.c with the emitted sources in src and the MPS2
 * board files into tmp/fw.elf (and its map tmp/fw.map); returns its path.
 * libm is newlib's: the linker takes from it only what the model calls.
 * Warnings fail the build (-Wdouble-promotion included). */
static const char *build_target(const char *tmp, const fw_model *m, const char *src)
{
    char bufs[4][1024], map[1024];
    const char *elf = e2e_path(tmp, "fw.elf");
    command c = {{NULL}, 0};
    snprintf(map, sizeof map, "-Wl,-Map=%s/fw.map", tmp);
    COMMAND_ADD(&c, "arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
                "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wdouble-promotion", "-Wvla",
                "-ffunction-sections", "-fdata-sections", "-I" BOARD_DIR, FW_DIR "/fw_main.c",
                BOARD_DIR "/startup_mps2.c", BOARD_DIR "/board_mps2.c", BOARD_DIR "/print.c");
    add_model_sources(&c, src, m, bufs);
    COMMAND_ADD(&c, "-nostartfiles", "-T", BOARD_DIR "/mps2_an386.ld", "-Wl,--gc-sections", map, "-o", elf, "-lm");
    e2e_run r = e2e_exec(tmp, tmp, 240, c.argv);
    assert_ran(&r, "arm-none-eabi-gcc");
    if (r.err[0])
        cr_log_warn("%s: arm-none-eabi-gcc warns:\n%.2000s", m->name, r.err);
    e2e_run_free(&r);
    return elf;
}

/* Runs elf in QEMU's MPS2 AN386, counting instructions (-icount shift=0:
 * 1 ns of virtual time per instruction); returns what it printed through
 * semihosting (QEMU writes that to stderr). */
static char *run_target(const char *tmp, const char *elf)
{
    e2e_run r = E2E_RUN(tmp, tmp, "qemu-system-arm", "-M", "mps2-an386", "-nographic", "-icount", "shift=0",
                        "-semihosting-config", "enable=on,target=native", "-kernel", elf);
    assert_ran(&r, "qemu-system-arm");
    char *text = malloc(strlen(r.out) + strlen(r.err) + 1);
    strcpy(text, r.err);
    strcat(text, r.out);
    e2e_run_free(&r);
    return text;
}

/* Builds fw_main.c with the same sources for this host (same float operations:
 * -std=c99 -ffp-contract=off) and runs it; returns its output. */
static char *run_host(const char *tmp, const fw_model *m, const char *src)
{
    char bufs[4][1024];
    const char *exe = e2e_path(tmp, "fw_host");
    command c = {{NULL}, 0};
    COMMAND_ADD(&c, "cc", "-std=c99", "-ffp-contract=off", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                "-I" BOARD_DIR, FW_DIR "/fw_main.c", BOARD_DIR "/board_host.c", BOARD_DIR "/print.c");
    add_model_sources(&c, src, m, bufs);
    COMMAND_ADD(&c, "-o", exe, "-lm");
    e2e_run r = e2e_exec(tmp, tmp, 240, c.argv);
    assert_ran(&r, "cc (host build of fw_main.c)");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, exe);
    assert_ran(&r, "fw_host");
    char *text = r.out;
    free(r.err);
    return text;
}

/* ---- reading the records ------------------------------------------------------------ */

/* Finds the line starting with `key` + " " (plus k and a space, when k >= 0);
 * returns what follows on that line, or NULL. */
static const char *record(const char *text, const char *key, int k)
{
    char prefix[64];
    size_t n = k >= 0 ? (size_t)snprintf(prefix, sizeof prefix, "%s %d ", key, k)
                      : (size_t)snprintf(prefix, sizeof prefix, "%s ", key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, prefix, n))
            return p + n;
    return NULL;
}

/* The number after "key " in text; asserts it is there. */
static unsigned long long record_value(const char *text, const char *key)
{
    const char *p = record(text, key, -1);
    cr_assert_not_null(p, "no \"%s\" record in:\n%.3000s", key, text);
    return strtoull(p, NULL, 10);
}

/* Reads up to max floats (hex bits) after "key k "; returns how many. */
static int record_floats(const char *text, const char *key, int k, float *v, int max)
{
    const char *p = record(text, key, k);
    int n = 0;
    cr_assert_not_null(p, "no \"%s %d\" record in:\n%.3000s", key, k, text);
    while (n < max && *p && *p != '\n') {
        char *end;
        uint32_t bits = (uint32_t)strtoul(p, &end, 16);
        cr_assert(end != p, "bad \"%s %d\" record in:\n%.3000s", key, k, text);
        memcpy(&v[n++], &bits, sizeof bits);
        p = end + (*end == ' ');
    }
    return n;
}

/* Distance in ulps between two finite floats of any signs. */
static uint32_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia, ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return (uint32_t)(oa > ob ? oa - ob : ob - oa);
}

/* Index of the largest of v[0..n). */
static int argmax(const float *v, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* ---- the training binary ------------------------------------------------------------ */

/* Writes s as an NPY data folder under tmp (raw features: the binary scales
 * them) and returns the folder. All of s is training data, in its order: a
 * test part of its own (the first TEST_SAMPLES again) keeps the binary from
 * holding out a shuffled share of it as the test set. */
static const char *write_data_dir(const char *tmp, const samples *s)
{
    const char *dir = e2e_path(tmp, "data");
    e2e_mkdir(dir);
    write_npy(e2e_path(dir, "x_train.npy"), s->x, s->n, s->features);
    write_npy(e2e_path(dir, "y_train.npy"), s->y, s->n, 0);
    write_npy(e2e_path(dir, "x_test.npy"), s->x, TEST_SAMPLES, s->features);
    write_npy(e2e_path(dir, "y_test.npy"), s->y, TEST_SAMPLES, 0);
    return dir;
}

/* Trains m's training binary for FIT_EPOCHS epochs on the samples s and
 * returns the path of the checkpoint it saves. */
static const char *binary_checkpoint(const char *tmp, const fw_model *m, const samples *s)
{
    const char *data = write_data_dir(tmp, s), *ckpt = e2e_path(tmp, "model.safetensors");
    e2e_run r = E2E_RUN(tmp, tmp, m->bin, "fit", "--data", data, "--epochs", FIT_EPOCHS, "--save", ckpt, "--verbose",
                        "0");
    assert_ran(&r, m->bin);
    e2e_run_free(&r);
    return ckpt;
}

/* Runs m's training binary's predict from checkpoint ckpt on the first n
 * samples of s; fills out (n * outs values) and classes (its last column). */
static void binary_predict(const char *tmp, const fw_model *m, const char *ckpt, const samples *s, int n, int outs,
                           float *out, int *classes)
{
    const char *x = e2e_path(tmp, "x.npy"), *csv = e2e_path(tmp, "predictions.csv");
    write_npy(x, s->x, n, s->features);
    e2e_run r = E2E_RUN(tmp, tmp, m->bin, "predict", "--weights", ckpt, "--input", x, "--output", csv);
    assert_ran(&r, m->bin);
    e2e_run_free(&r);
    char *text = e2e_read(csv, NULL);
    cr_assert_not_null(text, "%s predict wrote no %s", m->bin, csv);
    cr_assert_eq(e2e_count_lines(text), n, "%s predict wrote %d lines for %d inputs:\n%s", m->bin,
                 e2e_count_lines(text), n, text);
    for (int i = 0; i < n; i++) {
        const char *p = e2e_line(text, i);
        char *end;
        for (int j = 0; j <= outs; j++) {
            double v = strtod(p, &end);
            if (j == outs && end == p) { /* a regression model prints no class: the largest output's index */
                classes[i] = 0;
                for (int k = 1; k < outs; k++)
                    classes[i] = out[i * outs + k] > out[i * outs + classes[i]] ? k : classes[i];
                break;
            }
            cr_assert(end != p, "%s predict, line %d: %s", m->bin, i + 1, e2e_line(text, i));
            if (j < outs)
                out[i * outs + j] = (float)v;
            else
                classes[i] = (int)v;
            p = end + (*end == ',');
        }
    }
    free(text);
}

/* Trains m's training binary for `epochs` epochs of one batch on the samples
 * s (from init seed 42) and reads each epoch's loss from its history. */
static void binary_losses(const char *tmp, const fw_model *m, const samples *s, int epochs, double *loss)
{
    const char *data = write_data_dir(tmp, s), *hist = e2e_path(tmp, "history.csv");
    char n[16];
    snprintf(n, sizeof n, "%d", epochs);
    e2e_run r = E2E_RUN(tmp, tmp, m->bin, "fit", "--data", data, "--epochs", n, "--seed", "42", "--history", hist,
                        "--verbose", "0");
    assert_ran(&r, m->bin);
    e2e_run_free(&r);
    char *text = e2e_read(hist, NULL);
    cr_assert_not_null(text, "%s fit wrote no history", m->bin);
    cr_assert_eq(e2e_count_lines(text), epochs + 1, "history:\n%s", text);
    for (int k = 0; k < epochs; k++) {
        const char *line = e2e_line(text, k + 1);
        const char *comma = strchr(line, ',');
        cr_assert_not_null(comma, "history line %d: %s", k + 2, line);
        loss[k] = strtod(comma + 1, NULL);
    }
    free(text);
}

/* ---- the ELF -------------------------------------------------------------------------- */

/* Section sizes of elf, as arm-none-eabi-size reports them (Berkeley format). */
typedef struct elf_sizes {
    unsigned long text, data, bss;
} elf_sizes;

static elf_sizes read_sizes(const char *tmp, const char *elf)
{
    elf_sizes z = {0, 0, 0};
    e2e_run r = E2E_RUN(tmp, tmp, "arm-none-eabi-size", elf);
    assert_ran(&r, "arm-none-eabi-size");
    cr_assert_eq(sscanf(e2e_line(r.out, 1), "%lu %lu %lu", &z.text, &z.data, &z.bss), 3, "size: %s", r.out);
    e2e_run_free(&r);
    return z;
}

/* Which symbols of an ELF to count (see symbol_bytes). */
typedef bool (*symbol_filter)(const char *sym, char kind, const fw_model *m);

/* The object `state` of fw_main.c, in .bss (nm's b: local, zero-initialised). */
static bool is_state(const char *sym, char kind, const fw_model *m)
{
    (void)m;
    return kind == 'b' && !strcmp(sym, "state");
}

/* A table of NAME_int8.c: read-only data named NAME_int8_<layer>_<what>. */
static bool is_int8_table(const char *sym, char kind, const fw_model *m)
{
    size_t n = strlen(m->name);
    return kind == 'R' && !strncmp(sym, m->name, n) && !strncmp(sym + n, "_int8_", 6);
}

/* A weight array of NAME_weights.c: read-only data named NAME_<param>
 * (NAME_params_info, the parameters' names and shapes, and the int8 tables are not). */
static bool is_weight(const char *sym, char kind, const fw_model *m)
{
    size_t n = strlen(m->name);
    return kind == 'R' && !strncmp(sym, m->name, n) && sym[n] == '_' && strcmp(sym + n, "_params_info") != 0 &&
           !is_int8_table(sym, kind, m);
}

/* The sizes of elf's symbols that keep() accepts, added up (arm-none-eabi-nm -S);
 * *count gets how many there are. */
static unsigned long long symbol_bytes(const char *tmp, const char *elf, symbol_filter keep, const fw_model *m,
                                       int *count)
{
    unsigned long long sum = 0;
    e2e_run r = E2E_RUN(tmp, tmp, "arm-none-eabi-nm", "-S", elf);
    assert_ran(&r, "arm-none-eabi-nm");
    *count = 0;
    for (int i = 0; i < e2e_count_lines(r.out); i++) {
        unsigned long addr, size;
        char kind, sym[256];
        if (sscanf(e2e_line(r.out, i), "%lx %lx %c %255s", &addr, &size, &kind, sym) == 4 && keep(sym, kind, m)) {
            sum += size;
            ++*count;
        }
    }
    e2e_run_free(&r);
    return sum;
}

/* The value of `#define NAME` in header text h; asserts it is there. */
static unsigned long long header_define(const char *h, const char *name)
{
    char key[160];
    snprintf(key, sizeof key, "#define %.128s ", name);
    const char *p = strstr(h, key);
    cr_assert_not_null(p, "the header has no %s", name);
    return strtoull(p + strlen(key), NULL, 10);
}

/* Checks that the weight arrays linked into elf take the header's
 * NAME_FLASH_BYTES (with int8, that the int8 tables take NAME_int8.h's
 * NAME_INT8_FLASH_BYTES), and returns that. */
static unsigned long long check_flash_bytes(const char *tmp, const fw_model *m, const char *src, const char *elf,
                                            bool int8)
{
    char name[256], macro[128];
    int arrays;
    snprintf(name, sizeof name, "%s%s.h", m->name, int8 ? "_int8" : "");
    snprintf(macro, sizeof macro, "%s%s_FLASH_BYTES", m->upper, int8 ? "_INT8" : "");
    char *h = e2e_read(e2e_path(src, name), NULL);
    cr_assert_not_null(h);
    unsigned long long flash = header_define(h, macro),
                       sum = symbol_bytes(tmp, elf, int8 ? is_int8_table : is_weight, m, &arrays);
    free(h);
    cr_assert(flash > 0 && sum == flash, "%s: the %d weight arrays take %llu B in the ELF, %s says %llu", m->name,
              arrays, sum, macro, flash);
    return flash;
}

/* The forward FLOPs per sample that the header's summary states. */
static double header_flops(const char *src, const fw_model *m)
{
    char name[256];
    snprintf(name, sizeof name, "%s.h", m->name);
    char *h = e2e_read(e2e_path(src, name), NULL), digits[32];
    cr_assert_not_null(h);
    const char *p = strstr(h, "FLOPs per sample: forward ");
    cr_assert_not_null(p, "%s.h states no FLOPs per sample", m->name);
    p += strlen("FLOPs per sample: forward ");
    size_t n = 0;
    for (; (*p >= '0' && *p <= '9') || *p == ','; p++)
        if (*p != ',' && n + 1 < sizeof digits)
            digits[n++] = *p;
    digits[n] = '\0';
    free(h);
    return atof(digits);
}

/* ---- the checks ----------------------------------------------------------------------- */

#define MAX_OUT 16

/* Checks what every run of the board must show: it finished, and the
 * header's NAME_RAM_BYTES is sizeof(model_state) on the target and the size
 * of `state` in the ELF. Logs the ELF's sizes. */
static void check_board_run(const char *tmp, const fw_model *m, const char *elf, const char *target, const char *what)
{
    cr_assert(!strncmp(target, "done\n", 5) || strstr(target, "\ndone\n"), "%s on the board did not finish:\n%.3000s",
              m->name, target);
    unsigned long long state = record_value(target, "state_bytes"), ram = record_value(target, "ram_bytes");
    int found;
    unsigned long long in_elf = symbol_bytes(tmp, elf, is_state, m, &found);
    cr_assert_eq(found, 1, "%s: %d symbols named state in the ELF's .bss", m->name, found);
    cr_assert_eq(ram, state, "%s: %s_RAM_BYTES is %llu, sizeof(state) on the target %llu", m->name, m->upper, ram,
                 state);
    cr_assert_eq(in_elf, state, "%s: state takes %llu B in the ELF, sizeof says %llu", m->name, in_elf, state);
    elf_sizes z = read_sizes(tmp, elf);
    cr_log_info("%s %s: ELF text %lu B, data %lu B, bss %lu B; %s_RAM_BYTES %llu = sizeof(state) = state in .bss",
                m->name, what, z.text, z.data, z.bss, m->upper, ram);
}

/* The largest differences seen: board against host, and against the binary. */
typedef struct agreement {
    uint32_t ulps; /* board vs host, in ulps of each output */
    double host;   /* board vs host, absolute */
    double binary; /* board vs the training binary, absolute */
} agreement;

/* Largest |v[j]| of v[0..n). */
static double max_abs(const float *v, int n)
{
    double m = 0;
    for (int j = 0; j < n; j++)
        m = fmax(m, fabs((double)v[j]));
    return m;
}

/* Compares the outs outputs of input i: the board's b with the host's h
 * (the same bits; for recurrent models within RNN_ULPS ulps of the largest
 * output, since outputs near zero come from sums that cancel) and with the
 * training binary's x (BINARY_RTOL of the largest output). Updates a. */
static void compare_sample(const fw_model *m, int i, const float *b, const float *h, const float *x, int outs,
                           agreement *a)
{
    double host_tol = m->recurrent ? RNN_ULPS * FLT_EPSILON * max_abs(h, outs) : 0.0;
    double bin_tol = BINARY_RTOL * max_abs(x, outs);
    for (int j = 0; j < outs; j++) {
        double dh = fabs((double)b[j] - h[j]), dx = fabs((double)b[j] - x[j]);
        cr_assert(isfinite(b[j]), "%s input %d output %d: %g on the board", m->name, i, j, (double)b[j]);
        cr_assert_leq(dh, host_tol, "%s input %d output %d: board %.9g, host %.9g (%u ulps; allowed: %g)", m->name, i,
                      j, (double)b[j], (double)h[j], ulps(b[j], h[j]), host_tol);
        cr_assert_leq(dx, bin_tol, "%s input %d output %d: board %.9g, training binary %.9g (allowed: %g)", m->name, i,
                      j, (double)b[j], (double)x[j], bin_tol);
        a->ulps = ulps(b[j], h[j]) > a->ulps ? ulps(b[j], h[j]) : a->ulps;
        a->host = fmax(a->host, dh);
        a->binary = fmax(a->binary, dx);
    }
}

/* Reads the int8 record of input i in text ("int8 I C Y0 Y1 ..."): the
 * class into *cls and the int8 outputs into y; returns how many. */
static int record_int8(const char *text, int i, int *cls, int8_t *y, int max)
{
    const char *p = record(text, "int8", i);
    char *end;
    int n = 0;
    cr_assert_not_null(p, "no \"int8 %d\" record in:\n%.3000s", i, text);
    *cls = (int)strtol(p, &end, 10);
    cr_assert(end != p, "bad \"int8 %d\" record in:\n%.3000s", i, text);
    for (p = end; n < max && *p == ' '; p = end) {
        long v = strtol(p, &end, 10);
        cr_assert(end != p + 1 && v >= 0 && v <= 255, "bad \"int8 %d\" record in:\n%.3000s", i, text);
        y[n++] = (int8_t)(v > 127 ? v - 256 : v);
    }
    return n;
}

/* Checks the int8 model's run against the host's: the same class and int8
 * outputs for every input, the class the index of the largest output; and
 * that an int8 inference takes fewer instructions than the float predict.
 * board holds the float predictions (outs each) and flash the int8 tables'
 * bytes, for the log. */
static void check_int8(const fw_model *m, const char *target, const char *host, float board[][MAX_OUT], int outs,
                       unsigned long long flash)
{
    int same_class = 0;
    for (int i = 0; i < PREDICT_SAMPLES; i++) {
        int8_t yb[MAX_OUT], yh[MAX_OUT];
        int cb, ch, best = 0;
        cr_assert_eq(record_int8(target, i, &cb, yb, MAX_OUT), outs, "%s input %d: int8 outputs", m->name, i);
        cr_assert_eq(record_int8(host, i, &ch, yh, MAX_OUT), outs, "host run:\n%s", host);
        for (int j = 0; j < outs; j++) {
            cr_assert_eq(yb[j], yh[j], "%s input %d int8 output %d: %d on the board, %d on the host", m->name, i, j,
                         yb[j], yh[j]);
            best = yb[j] > yb[best] ? j : best;
        }
        cr_assert_eq(cb, ch, "%s input %d: int8 class %d on the board, %d on the host", m->name, i, cb, ch);
        cr_assert_eq(cb, best, "%s input %d: int8 class %d, but output %d is the largest", m->name, i, cb, best);
        same_class += cb == argmax(board[i], outs);
    }
    unsigned long long f = record_value(target, "instructions predict"),
                       q = record_value(target, "instructions predict_int8"),
                       in = record_value(target, "instructions quantize_int8");
    cr_assert_lt(q, f, "%s: the int8 inference takes %llu instructions, the float predict %llu", m->name, q, f);
    cr_log_info("%s int8: tables %llu B = %s_INT8_FLASH_BYTES; outputs and classes board = host on %d inputs, class "
                "as float's on %d; instructions per inference: float %llu, int8 %llu (%.2fx fewer), quantizing the "
                "input %llu more",
                m->name, flash, m->upper, PREDICT_SAMPLES, same_class, f, q, (double)f / (double)q, in);
}

/* Trains the binary briefly, emits predict firmware from its checkpoint,
 * and predicts PREDICT_SAMPLES inputs at batch 1 on the board, on the host
 * from the same sources, and with the binary from the checkpoint; compares
 * them. With int8, the build also has the int8 model (check_int8). */
static void check_predict(const fw_model *m, bool int8)
{
    const char *tmp = e2e_tmpdir();
    need_toolchain(tmp);
    samples s = load_samples(m, FIT_SAMPLES), first = s;
    first.n = PREDICT_SAMPLES;
    const char *ckpt = binary_checkpoint(tmp, m, &s), *data = e2e_path(tmp, "data");
    const char *opts[] = {"--mode",     "predict", "--weights",   ckpt, "--max-batch", "1",
                          "--quantize", "int8",    "--calibrate", data, NULL};
    if (!int8) /* the float model alone */
        opts[6] = NULL;
    const char *src = emit_firmware(tmp, m, opts);
    write_fw_model(src, m, &first, false);
    if (int8)
        add_int8_to_fw_model(src, m);
    const char *elf = build_target(tmp, m, src);
    char *target = run_target(tmp, elf), *host = run_host(tmp, m, src);
    check_board_run(tmp, m, elf, target, "predict");
    unsigned long long flash = check_flash_bytes(tmp, m, src, elf, false);

    float board[PREDICT_SAMPLES][MAX_OUT], desk[MAX_OUT], bin[PREDICT_SAMPLES * MAX_OUT];
    int outs = record_floats(target, "predict", 0, board[0], MAX_OUT), classes[PREDICT_SAMPLES];
    cr_assert(outs > 0 && outs < MAX_OUT, "%s: %d outputs", m->name, outs);
    binary_predict(tmp, m, ckpt, &s, PREDICT_SAMPLES, outs, bin, classes);
    agreement a = {0, 0, 0};
    for (int i = 0; i < PREDICT_SAMPLES; i++) {
        cr_assert_eq(record_floats(target, "predict", i, board[i], MAX_OUT), outs);
        cr_assert_eq(record_floats(host, "predict", i, desk, MAX_OUT), outs, "host run:\n%s", host);
        compare_sample(m, i, board[i], desk, bin + i * outs, outs, &a);
        cr_assert_eq(argmax(board[i], outs), classes[i], "%s input %d: class %d on the board, %d by the binary",
                     m->name, i, argmax(board[i], outs), classes[i]);
    }
    double flops = header_flops(src, m);
    unsigned long long insns = record_value(target, "instructions predict");
    cr_assert(insns >= flops / 2 && insns <= 50 * flops,
              "%s: %llu instructions for one inference of %.0f FLOPs: the count is off", m->name, insns, flops);
    cr_log_info("%s predict: weights %llu B = %s_FLASH_BYTES; board vs host: %u ulps, %.3g at most; vs the "
                "training binary %.3g at most; classes %d/%d; %llu instructions per inference (%.0f FLOPs)",
                m->name, flash, m->upper, a.ulps, a.host, a.binary, PREDICT_SAMPLES, PREDICT_SAMPLES, insns, flops);
    if (int8)
        check_int8(m, target, host, board, outs, check_flash_bytes(tmp, m, src, elf, true));
    free(target);
    free(host);
    samples_free(&s);
}

/* Takes TRAIN_STEPS train steps from init(42) on one batch on the board, on
 * the host from the same sources, and with the training binary; compares
 * their losses. */
static void check_train(const fw_model *m)
{
    const char *tmp = e2e_tmpdir();
    need_toolchain(tmp);
    samples s = load_samples(m, TRAIN_BATCH);
    const char *src = EMIT_FIRMWARE(tmp, m, "--mode", "train");
    write_fw_model(src, m, &s, true);
    const char *elf = build_target(tmp, m, src);
    char *target = run_target(tmp, elf), *host = run_host(tmp, m, src);
    check_board_run(tmp, m, elf, target, "train");

    double bin[TRAIN_STEPS], worst_rel = 0;
    uint32_t worst_ulps = 0;
    binary_losses(tmp, m, &s, TRAIN_STEPS, bin);
    for (int k = 0; k < TRAIN_STEPS; k++) {
        float b, h;
        cr_assert_eq(record_floats(target, "loss", k, &b, 1), 1);
        cr_assert_eq(record_floats(host, "loss", k, &h, 1), 1, "host run:\n%s", host);
        double rel = fabs((double)b - bin[k]) / fabs(bin[k]);
        cr_assert(isfinite(b) && b > 0, "%s step %d: loss %g on the board", m->name, k, (double)b);
        cr_assert_leq(ulps(b, h), m->recurrent ? RNN_ULPS : 0, "%s step %d: loss %.9g on the board, %.9g on the host",
                      m->name, k, (double)b, (double)h);
        cr_assert_leq(rel, LOSS_RTOL, "%s step %d: loss %.9g on the board, %.9g by the training binary", m->name, k,
                      (double)b, bin[k]);
        worst_ulps = ulps(b, h) > worst_ulps ? ulps(b, h) : worst_ulps;
        worst_rel = fmax(worst_rel, rel);
    }
    cr_log_info("%s train: %d steps at batch %d; losses board vs host %u ulps at most, vs the training binary %.3g "
                "relative at most; %llu instructions per train step",
                m->name, TRAIN_STEPS, TRAIN_BATCH, worst_ulps, worst_rel,
                record_value(target, "instructions train_step"));
    free(target);
    free(host);
    samples_free(&s);
}

Test(firmware, digits_mlp_predict)
{
    check_predict(&digits, true);
}

Test(firmware, fashion_cnn_predict)
{
    check_predict(&fashion_cnn, false);
}

Test(firmware, sequence_sum_predict)
{
    check_predict(&sequence_sum, false);
}

/* 940 KB of weights, all in flash: the state is the 1.5 KB arena. */
Test(firmware, fashion_mlp_predict)
{
    check_predict(&fashion_mlp, true);
}

/* The microcontroller hello-world model (examples/sine), as onnx2c and TFLite Micro report it. */
Test(firmware, sine_predict)
{
    check_predict(&sine, false);
}

Test(firmware, digits_mlp_train)
{
    check_train(&digits);
}

Test(firmware, sequence_sum_train)
{
    check_train(&sequence_sum);
}

/* examples/firmware as its README says: the digits firmware built by its
 * Makefile (main.c, the board files, the emitted model) runs on the board and
 * gives each of its four readings (the first four rows of the digits data)
 * the class the training binary predicts for them from the same checkpoint. */
Test(firmware, example_makefile_builds_and_runs)
{
    const char *tmp = e2e_tmpdir();
    need_toolchain(tmp);
    if (!on_path("make"))
        cr_skip_test("make is not installed (package make)");
    samples s = load_samples(&digits, FIT_SAMPLES);
    const char *ckpt = binary_checkpoint(tmp, &digits, &s);
    const char *src = EMIT_FIRMWARE(tmp, &digits, "--mode", "predict", "--weights", ckpt, "--max-batch", "1");
    char model[1100], out[1100];
    snprintf(model, sizeof model, "MODEL=%s", src);
    snprintf(out, sizeof out, "OUT=%s", tmp);
    e2e_run r = E2E_RUN(tmp, SOURCE_DIR "/examples/firmware", "make", "-s", model, out, "run");
    assert_ran(&r, "make run in examples/firmware");
    samples rows = read_csv(DIGITS_CSV, 64, 4);
    float scores[4 * 10];
    int classes[4];
    binary_predict(tmp, &digits, ckpt, &rows, 4, 10, scores, classes);
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "reading %d: digit %d (", i, classes[i]);
        cr_expect(strstr(r.out, want) || strstr(r.err, want), "the firmware lacks \"%s\":\n%s%s", want, r.out, r.err);
    }
    e2e_run_free(&r);
    samples_free(&rows);
    samples_free(&s);
}
