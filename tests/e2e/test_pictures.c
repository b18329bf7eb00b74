/* test_pictures.c: the pictures of a model for readers of its emitted code.
 * --graph writes DIR/NAME.dot (and NAME.svg through Graphviz): every
 * example's picture is checked against its graph as --dump-after plan
 * prints it (nodes, colours, clusters, edges and their shapes, saved
 * activations, dashed gradient edges), parsed by dot, and the SVG drawn by
 * a real browser (headless Chromium); names from the user's file are
 * escaped. --plan prints every entry point's memory plan, the header's
 * table with a timeline; dumps name activations and, after the plan pass,
 * show schedules and plans; `cgrad build` passes these flags on. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

TestSuite(pictures, .timeout = 240, .fini = e2e_cleanup);

#define FORWARD_FILL "#d6e6f5"
#define BACKWARD_FILL "#fbd9b4"
#define MAX_NODES 20000

/* The examples' model programs; the parameters are indices into it. */
static const char *const gens[] = {PICTURE_GENS};
#define NUM_GENS ((int)(sizeof gens / sizeof gens[0]))

static int gen_index[NUM_GENS];

ParameterizedTestParameters(pictures, dot_of_every_example)
{
    for (int i = 0; i < NUM_GENS; i++)
        gen_index[i] = i;
    return cr_make_param_array(int, gen_index, NUM_GENS);
}

ParameterizedTestParameters(pictures, dot_parses)
{
    for (int i = 0; i < NUM_GENS; i++)
        gen_index[i] = i;
    return cr_make_param_array(int, gen_index, NUM_GENS);
}

ParameterizedTestParameters(pictures, plan_of_every_example)
{
    for (int i = 0; i < NUM_GENS; i++)
        gen_index[i] = i;
    return cr_make_param_array(int, gen_index, NUM_GENS);
}

/* ---- the graph as --dump-after plan prints it ------------------------------------------- */

typedef struct dnode {
    char name[128], op[40], shape[64], layer[96];
    int in[3], nin;
    int grad_of;     /* backward nodes: the forward node differentiated (grad_of=%N), -1: none shown */
    bool bwd, drawn; /* made by autodiff; computed by an entry point and no constant */
} dnode;

typedef struct graph_dump {
    dnode *n;
    int count;
} graph_dump;

/* Parses one node line "%ID NAME = OP %a, %b : (shape) attrs [layer=L] [[bwd]]" into d; false if it is none. */
static bool parse_node_line(const char *line, graph_dump *d)
{
    int id, used = 0;
    char name[128], op[40];
    if (sscanf(line, "%%%d %127s = %39s%n", &id, name, op, &used) != 3 || id < 0 || id >= MAX_NODES)
        return false;
    dnode *n = &d->n[id];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->op, sizeof n->op, "%s", op);
    const char *p = line + used, *colon = strstr(p, " : ");
    cr_assert_not_null(colon, "no shape in: %s", line);
    for (const char *q = strchr(p, '%'); q && q < colon && n->nin < 3; q = strchr(q + 1, '%'))
        n->in[n->nin++] = atoi(q + 1);
    const char *close = strchr(colon, ')');
    cr_assert_not_null(close, "no shape in: %s", line);
    snprintf(n->shape, sizeof n->shape, "%.*s", (int)(close + 1 - (colon + 3)), colon + 3);
    const char *l = strstr(close, " layer=");
    if (l)
        sscanf(l + 7, "%95[A-Za-z0-9_]", n->layer);
    n->bwd = strstr(close, " [bwd]") != NULL;
    const char *of = strstr(close, " grad_of=%");
    n->grad_of = of ? atoi(of + 10) : -1;
    if (id >= d->count)
        d->count = id + 1;
    return true;
}

/* Parses a dump: nodes, and "  schedule of ENTRY: %a %b ..." lines marking the drawn nodes. */
static graph_dump parse_dump(const char *out)
{
    graph_dump d = {calloc(MAX_NODES, sizeof(dnode)), 0};
    cr_assert_not_null(d.n);
    char *copy = strdup(out), *save = NULL;
    int schedules = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '%') {
            parse_node_line(line, &d);
            continue;
        }
        if (strncmp(line, "  schedule of ", 14))
            continue;
        schedules++;
        for (char *q = strchr(line, '%'); q; q = strchr(q + 1, '%')) {
            int id = atoi(q + 1);
            cr_assert(id >= 0 && id < d.count, "schedule names %%%d: %s", id, line);
            d.n[id].drawn = strcmp(d.n[id].op, "CONST") != 0;
        }
    }
    free(copy);
    cr_assert_gt(d.count, 0, "no nodes in the dump:\n%.2000s", out);
    cr_assert_gt(schedules, 0, "no schedule in the dump after the plan pass:\n%.2000s", out);
    return d;
}

/* ---- the picture ----------------------------------------------------------------------- */

typedef struct picture {
    int clusters, nodes, forward, backward, saved, solid, dashed;
    char (*cluster_of)[96]; /* per node id: its cluster's layer, "" outside clusters */
    int *fill;              /* per node id: 0 absent, 1 forward colour, 2 backward colour */
    int *dashed_from;       /* per node id: dashed edges leaving it */
} picture;

/* Checks one edge line "  nA -> nB [...]" against the dump and counts it into p. */
static void check_edge(const char *line, const graph_dump *d, picture *p)
{
    int a, b;
    cr_assert_eq(sscanf(line, " n%d -> n%d", &a, &b), 2, "edge line: %s", line);
    cr_assert(a >= 0 && a < d->count && b >= 0 && b < d->count && p->fill[a] && p->fill[b],
              "edge between nodes not drawn: %s", line);
    if (strstr(line, "style=dashed")) { /* a gradient node to the forward node it differentiates */
        p->dashed++;
        p->dashed_from[a]++;
        cr_expect(d->n[a].bwd && !d->n[b].bwd, "dashed edge not from a backward to a forward node: %s", line);
        cr_expect_eq(d->n[a].grad_of, b, "dashed edge from %s to %s, which the dump says differentiates %%%d: %s",
                     d->n[a].name, d->n[b].name, d->n[a].grad_of, line);
        return;
    }
    p->solid++;
    bool input = false;
    for (int i = 0; i < d->n[b].nin; i++)
        input = input || d->n[b].in[i] == a;
    cr_expect(input, "edge %s -> %s, but %s does not read %s", d->n[a].name, d->n[b].name, d->n[b].name, d->n[a].name);
    char want[96];
    snprintf(want, sizeof want, "[label=\"%s\"]", d->n[a].shape);
    cr_expect(strstr(line, want) != NULL, "edge %s -> %s should carry the shape %s: %s", d->n[a].name, d->n[b].name,
              d->n[a].shape, line);
}

/* Parses the DOT text this project writes (a statement a line) and checks each line against the dump. */
static picture parse_picture(const char *dot, const graph_dump *d)
{
    picture p = {0};
    p.cluster_of = calloc(MAX_NODES, sizeof *p.cluster_of);
    p.fill = calloc(MAX_NODES, sizeof(int));
    p.dashed_from = calloc(MAX_NODES, sizeof(int));
    cr_assert(p.cluster_of && p.fill && p.dashed_from);
    char *copy = strdup(dot), *save = NULL, cluster[96] = "";
    cr_assert(!strncmp(dot, "digraph \"", 9), "not a digraph: %.200s", dot);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int id;
        if (!strncmp(line, "  subgraph \"cluster_", 20)) {
            cr_assert_eq(sscanf(line + 20, "%95[A-Za-z0-9_]", cluster), 1, "cluster line: %s", line);
            p.clusters++;
        } else if (!strcmp(line, "  }"))
            cluster[0] = 0;
        else if (!strncmp(line, "    n", 5) && sscanf(line + 5, "%d", &id) == 1) {
            cr_assert(id >= 0 && id < d->count && d->n[id].drawn && !p.fill[id], "node line of n%d: %s", id, line);
            p.nodes++;
            bool fwd = strstr(line, "fillcolor=\"" FORWARD_FILL "\"") != NULL;
            bool bwd = strstr(line, "fillcolor=\"" BACKWARD_FILL "\"") != NULL;
            cr_expect(fwd != bwd && bwd == d->n[id].bwd, "%s (%s) has the wrong colour: %s", d->n[id].name,
                      d->n[id].bwd ? "backward" : "forward", line);
            p.fill[id] = bwd ? 2 : 1;
            p.forward += fwd;
            p.backward += bwd;
            p.saved += strstr(line, "penwidth=3") != NULL;
            snprintf(p.cluster_of[id], sizeof p.cluster_of[id], "%s", cluster);
            cr_expect_str_eq(cluster, d->n[id].layer, "%s is drawn in cluster \"%s\", its layer is \"%s\"",
                             d->n[id].name, cluster, d->n[id].layer);
            char label[200];
            snprintf(label, sizeof label, "[label=\"%s\\n%s", d->n[id].name, d->n[id].op);
            cr_expect(strstr(line, label) != NULL, "n%d's label does not start with its name and op: %s", id, line);
        } else if (strstr(line, " -> "))
            check_edge(line, d, &p);
    }
    free(copy);
    return p;
}

/* Runs gen with -o DIR, --name-file and the given flags in the test's folder; returns the run. */
static e2e_run run_gen(const char *gen, const char *const *flags, int nflags)
{
    const char *tmp = e2e_tmpdir();
    const char *argv[16] = {gen, "-o", "out", "--name-file", "name.txt"};
    int n = 5;
    for (int i = 0; i < nflags && n < 15; i++)
        argv[n++] = flags[i];
    argv[n] = NULL;
    e2e_run r = e2e_exec(tmp, tmp, 240, argv);
    cr_assert_eq(r.status, 0, "%s failed:\n%s", gen, r.err);
    return r;
}

/* The model name the last run wrote into name.txt, in a static buffer. */
static const char *model_name(void)
{
    static char name[128];
    char *s = e2e_read(e2e_path(e2e_tmpdir(), "name.txt"), NULL);
    cr_assert_not_null(s, "no name.txt");
    snprintf(name, sizeof name, "%.*s", (int)strcspn(s, "\n"), s);
    free(s);
    return name;
}

/* The file out/NAME.ext of the last run, read whole. */
static char *out_file(const char *ext)
{
    char file[256];
    snprintf(file, sizeof file, "out/%s.%s", model_name(), ext);
    char *s = e2e_read(e2e_path(e2e_tmpdir(), file), NULL);
    cr_assert_not_null(s, "%s was not written", file);
    return s;
}

/* Every drawn node in its layer's cluster with its colour, one cluster per
 * layer, an edge per input with its shape, the saved activations bold, and
 * a dashed edge from each gradient node to the forward node it
 * differentiates (grad_of in the dump), when that node is drawn. */
ParameterizedTest(int *i, pictures, dot_of_every_example)
{
    e2e_run r = run_gen(gens[*i], (const char *const[]){"--graph", "--dump-after", "plan"}, 3);
    graph_dump d = parse_dump(r.out);
    char *dot = out_file("dot");
    picture p = parse_picture(dot, &d);
    int drawn = 0, fwd = 0, layers = 0, saved = 0, edges = 0, need_dashed = 0, rules = 0;
    char seen[64][96];
    for (int id = 0; id < d.count; id++) {
        const dnode *n = &d.n[id];
        if (!n->drawn)
            continue;
        drawn++;
        fwd += !n->bwd;
        bool known = !n->layer[0];
        for (int k = 0; k < layers && !known; k++)
            known = !strcmp(seen[k], n->layer);
        if (!known && layers < 64)
            snprintf(seen[layers++], sizeof seen[0], "%s", n->layer);
        bool read_by_bwd = false;
        for (int j = 0; j < d.count; j++)
            for (int k = 0; k < d.n[j].nin; k++)
                read_by_bwd = read_by_bwd || (d.n[j].drawn && d.n[j].bwd && d.n[j].in[k] == id);
        saved += !n->bwd && strcmp(n->op, "VARIABLE") && read_by_bwd;
        for (int k = 0; k < n->nin; k++)
            edges += d.n[n->in[k]].drawn;
        const dnode *of = n->bwd && n->grad_of >= 0 ? &d.n[n->grad_of] : NULL;
        bool op = of && of->drawn && strcmp(of->op, "VARIABLE") && strcmp(of->op, "PLACEHOLDER");
        need_dashed += op;
        cr_expect_eq(p.dashed_from[id], op, "%s (grad_of=%%%d) has %d dashed edges, expected %d", n->name, n->grad_of,
                     p.dashed_from[id], op);
        rules += n->bwd && n->grad_of >= 0;
    }
    cr_expect_eq(p.nodes, drawn, "%d nodes drawn, the schedules compute %d", p.nodes, drawn);
    cr_expect_eq(p.forward, fwd, "%d nodes in the forward colour, %d forward nodes", p.forward, fwd);
    cr_expect_eq(p.backward, drawn - fwd, "%d nodes in the backward colour, %d backward", p.backward, drawn - fwd);
    cr_expect_eq(p.clusters, layers, "%d clusters for %d layers", p.clusters, layers);
    cr_expect_eq(p.saved, saved, "%d nodes bold, %d saved activations", p.saved, saved);
    cr_expect_eq(p.solid, edges, "%d edges, %d inputs", p.solid, edges);
    cr_expect_eq(p.dashed, need_dashed, "%d dashed edges, %d gradient nodes of drawn forward ops", p.dashed,
                 need_dashed);
    cr_expect_gt(rules, 0, "the dump names no node's grad_of");
    cr_expect_gt(p.backward, 0, "no backward node drawn");
    cr_expect_gt(p.dashed, 0, "no dashed gradient edge");
    free(dot), free(d.n), free(p.cluster_of), free(p.fill), free(p.dashed_from);
    e2e_run_free(&r);
}

/* True when Graphviz's dot runs here. */
static bool have_dot(void)
{
    e2e_run r = E2E_RUN(e2e_tmpdir(), NULL, "dot", "-V");
    bool ok = r.status == 0;
    e2e_run_free(&r);
    return ok;
}

/* dot parses every example's picture without a word, and the model program drew the same SVG. */
ParameterizedTest(int *i, pictures, dot_parses)
{
    if (!have_dot())
        cr_skip_test("Graphviz's dot is not installed (scripts/setup.sh installs graphviz)");
    e2e_run r = run_gen(gens[*i], (const char *const[]){"--graph"}, 1);
    e2e_run_free(&r);
    char dot_file[256];
    snprintf(dot_file, sizeof dot_file, "out/%s.dot", model_name());
    r = E2E_RUN(e2e_tmpdir(), e2e_tmpdir(), "dot", "-Tsvg", "-o", "again.svg", dot_file);
    cr_expect_eq(r.status, 0, "dot -Tsvg %s: status %d\n%s", dot_file, r.status, r.err);
    cr_expect_str_empty(r.err, "dot -Tsvg %s said:\n%s", dot_file, r.err);
    e2e_run_free(&r);
    char *svg = out_file("svg"), *again = e2e_read(e2e_path(e2e_tmpdir(), "again.svg"), NULL);
    cr_assert_not_null(again);
    cr_expect(strstr(svg, "<svg") != NULL, "NAME.svg is no SVG: %.200s", svg);
    cr_expect_str_eq(svg, again, "the model program's SVG differs from dot's");
    free(svg), free(again);
}

/* Without Graphviz the model program writes the .dot alone, says nothing,
 * and removes the SVG of an earlier build that no longer matches. */
Test(pictures, without_dot_only_the_dot_file)
{
    e2e_run r = run_gen(DIGITS_MLP_GEN, (const char *const[]){"--graph"}, 0);
    e2e_run_free(&r);
    e2e_write_str(e2e_path(e2e_tmpdir(), "out/digits_mlp.svg"), "stale");
    cr_assert_eq(setenv("PATH", e2e_path(e2e_tmpdir(), "empty"), 1), 0);
    r = run_gen(DIGITS_MLP_GEN, (const char *const[]){"--graph"}, 1);
    cr_expect_str_empty(r.err, "the model program spoke without dot:\n%s", r.err);
    cr_expect(e2e_exists(e2e_path(e2e_tmpdir(), "out/digits_mlp.dot")), "no digits_mlp.dot");
    cr_expect(!e2e_exists(e2e_path(e2e_tmpdir(), "out/digits_mlp.svg")), "a stale digits_mlp.svg is left");
    e2e_run_free(&r);
}

/* ---- the SVG in a real browser ---------------------------------------------------------- */

/* Pixels of rgb[0 .. w h) within 3 of the colour "#rrggbb". */
static long count_colour(const unsigned char *rgb, int w, int h, const char *hex)
{
    unsigned v = (unsigned)strtoul(hex + 1, NULL, 16);
    int want[3] = {(int)(v >> 16), (int)(v >> 8 & 255), (int)(v & 255)};
    long n = 0;
    for (long i = 0; i < (long)w * h; i++)
        n += abs(rgb[3 * i] - want[0]) <= 3 && abs(rgb[3 * i + 1] - want[1]) <= 3 && abs(rgb[3 * i + 2] - want[2]) <= 3;
    return n;
}

/* Runs headless Chromium on file url with the given mode flag; the run. */
static e2e_run chromium(const char *mode, const char *url)
{
    return E2E_RUN(e2e_tmpdir(), e2e_tmpdir(), "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                   "--hide-scrollbars", "--user-data-dir=profile", "--window-size=1600,1200", mode, url);
}

/* Chromium reads digits_mlp's SVG as an SVG document with a group per
 * cluster and per node, and its screenshot shows both colours. */
Test(pictures, svg_in_browser)
{
    if (!have_dot())
        cr_skip_test("Graphviz's dot is not installed: no SVG to render");
    e2e_run r = E2E_RUN(e2e_tmpdir(), NULL, "chromium", "--version");
    bool have = r.status == 0;
    e2e_run_free(&r);
    if (!have)
        cr_skip_test("chromium is not installed (scripts/setup.sh --torch installs it)");
    r = run_gen(DIGITS_MLP_GEN, (const char *const[]){"--graph"}, 1);
    e2e_run_free(&r);
    char url[512], *dot = out_file("dot");
    snprintf(url, sizeof url, "file://%s/out/digits_mlp.svg", e2e_tmpdir());
    int clusters = 0, nodes = 0;
    for (const char *p = strstr(dot, "subgraph \"cluster_"); p; p = strstr(p + 1, "subgraph \"cluster_"))
        clusters++;
    for (const char *p = strstr(dot, "\n    n"); p; p = strstr(p + 1, "\n    n"))
        nodes++;
    r = chromium("--dump-dom", url);
    cr_assert_eq(r.status, 0, "chromium --dump-dom: status %d\n%s", r.status, r.err);
    cr_expect(strstr(r.out, "<svg") && !strstr(r.out, "parsererror"), "not read as SVG:\n%.600s", r.out);
    int dom_clusters = 0, dom_nodes = 0;
    for (const char *p = strstr(r.out, "class=\"cluster\""); p; p = strstr(p + 1, "class=\"cluster\""))
        dom_clusters++;
    for (const char *p = strstr(r.out, "class=\"node\""); p; p = strstr(p + 1, "class=\"node\""))
        dom_nodes++;
    cr_expect_eq(dom_clusters, clusters, "the browser's document has %d clusters, the .dot %d", dom_clusters, clusters);
    cr_expect_eq(dom_nodes, nodes, "the browser's document has %d nodes, the .dot %d", dom_nodes, nodes);
    e2e_run_free(&r);
    r = chromium("--screenshot=shot.png", url);
    cr_assert_eq(r.status, 0, "chromium --screenshot: status %d\n%s", r.status, r.err);
    e2e_run_free(&r);
    size_t len = 0;
    unsigned char *png = (unsigned char *)e2e_read(e2e_path(e2e_tmpdir(), "shot.png"), &len);
    cr_assert_not_null(png, "no screenshot");
    int w = 0, h = 0;
    unsigned char *rgb = e2e_png_rgb(png, len, &w, &h);
    cr_assert_not_null(rgb, "the screenshot is no 8-bit RGB(A) PNG");
    long fwd = count_colour(rgb, w, h, FORWARD_FILL), bwd = count_colour(rgb, w, h, BACKWARD_FILL);
    cr_expect_gt(fwd, 2000, "%ld pixels of the forward colour in the %dx%d screenshot", fwd, w, h);
    cr_expect_gt(bwd, 2000, "%ld pixels of the backward colour in the %dx%d screenshot", bwd, w, h);
    free(rgb), free(png), free(dot);
}

/* A user's file name with a quote, a backslash, an entity, a newline, a
 * byte of no UTF-8 sequence and a valid accent: escaped into the labels, so
 * the picture stays one valid DOT graph. */
Test(pictures, file_name_escaped)
{
    const char *tmp = e2e_tmpdir();
    const char *file = "m\"q\\b&amp;\n\xff\xc3\xa9.c";
    e2e_copy(SOURCE_DIR "/examples/digits_mlp/model.c", e2e_path(tmp, file), (size_t)-1);
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", file, "-o", "out", "--target", "firmware", "--graph");
    cr_assert_eq(r.status, 0, "cgrad build: status %d\n%s", r.status, r.err);
    e2e_run_free(&r);
    char *dot = e2e_read(e2e_path(tmp, "out/digits_mlp.dot"), NULL);
    cr_assert_not_null(dot);
    const char *want = "label=\"dense_1 (Dense), m\\\"q\\\\b&amp;amp;??\xc3\xa9.c:12\"";
    cr_expect(strstr(dot, want) != NULL, "no escaped label %s in:\n%.1500s", want, dot);
    for (const char *line = dot; *line; line = strchr(line, '\n') + 1) { /* quotes pair up on every line */
        int quotes = 0;
        for (const char *c = line; *c && *c != '\n'; c++) {
            quotes += *c == '"';
            c += *c == '\\' && c[1] && c[1] != '\n';
        }
        cr_expect_eq(quotes % 2, 0, "unbalanced quotes: %.*s", (int)strcspn(line, "\n"), line);
        if (!strchr(line, '\n'))
            break;
    }
    if (have_dot()) {
        r = E2E_RUN(tmp, tmp, "dot", "-Tsvg", "-o", "x.svg", "out/digits_mlp.dot");
        cr_expect_eq(r.status, 0, "dot: %s", r.err);
        cr_expect_str_empty(r.err, "dot said: %s", r.err);
        e2e_run_free(&r);
        char *svg = e2e_read(e2e_path(tmp, "x.svg"), NULL);
        cr_expect(svg && strstr(svg, "m&quot;q\\b&amp;amp;??\xc3\xa9.c:12"), "the SVG does not show the file name");
        free(svg);
    }
    free(dot);
}

/* ---- --plan ------------------------------------------------------------------------------- */

/* The next line of *s (without its newline) into buf; false at the end. */
static bool next_line(const char **s, char *buf, size_t size)
{
    if (!**s)
        return false;
    size_t n = strcspn(*s, "\n");
    snprintf(buf, size, "%.*s", (int)n, *s);
    *s += n + ((*s)[n] == '\n');
    return true;
}

/* Every entry point of the header's memory plan, in order, with each
 * buffer's table row, is in --plan's output, and each timeline has one row
 * per buffer, live ('#') over exactly the steps of the row's range. */
ParameterizedTest(int *i, pictures, plan_of_every_example)
{
    e2e_run r = run_gen(gens[*i], (const char *const[]){"--plan"}, 1);
    char *h = out_file("h"), line[4096], entry[256] = "";
    const char *hp = strstr(h, "/* The memory plan:"), *out = r.out;
    cr_assert_not_null(hp, "no memory plan in the header");
    int entries = 0;
    while (next_line(&hp, line, sizeof line) && strcmp(line, " */")) {
        int steps;
        if (sscanf(line, " * %255[a-z_]: %*s B of arena at batch %*d, %d steps", entry, &steps) == 2) {
            entries++; /* the same title in --plan, then the table, then the timeline */
            char title[4096];
            bool found = false;
            while (!found && next_line(&out, title, sizeof title))
                found = !strcmp(title, line + 3);
            cr_assert(found, "--plan has no \"%s\":\n%s", line + 3, r.out);
            next_line(&out, title, sizeof title); /* the table's head */
            const char *rows = hp;
            int n = 0;
            char row[4096], got[4096];
            while (next_line(&rows, row, sizeof row) && strncmp(row, " *   ", 5) == 0 && strcmp(row, " *")) {
                if (!strncmp(row, " *   buffer ", 11))
                    continue;
                cr_assert(next_line(&out, got, sizeof got), "--plan ends early in %s", entry);
                cr_expect_str_eq(got, row + 3, "%s: the header's row differs from --plan's", entry);
                n++;
            }
            cr_assert(next_line(&out, got, sizeof got) && strstr(got, "timeline"), "%s: no timeline: %s", entry, got);
            next_line(&out, got, sizeof got);
            if (steps >= 10)
                next_line(&out, got, sizeof got); /* the tens, then the units */
            cr_expect(strstr(got, "step ") != NULL, "%s: no ruler: %s", entry, got);
            rows = hp;
            for (int k = 0; k < n; k++) {
                do
                    next_line(&rows, row, sizeof row);
                while (!strncmp(row, " *   buffer ", 11));
                char name[128], range[32];
                int first, last;
                cr_assert_eq(sscanf(row, " * %127s %*d %31s", name, range), 2, "row: %s", row);
                bool to_end = strstr(range, "-end") != NULL;
                if (sscanf(range, "%d-%d", &first, &last) != 2)
                    last = to_end ? steps : first;
                cr_assert(next_line(&out, got, sizeof got), "%s: the timeline ends before %s", entry, name);
                char tname[128], cells[4096];
                cr_assert_eq(sscanf(got, " %127s %4095s", tname, cells), 2, "%s: timeline row: %s", entry, got);
                cr_expect_str_eq(tname, name, "%s: timeline row %d is %s, the table's %s", entry, k, tname, name);
                cr_expect_eq((int)strlen(cells), steps + to_end, "%s: %s has %zu cells for %d steps", entry, name,
                             strlen(cells), steps);
                for (int s = 1; s <= steps && s <= (int)strlen(cells); s++)
                    cr_expect_eq(cells[s - 1], s >= first && s <= last ? '#' : '.', "%s: %s at step %d: %s", entry,
                                 name, s, got);
                cr_expect_eq(to_end, cells[strlen(cells) - 1] == '>', "%s: %s: %s", entry, name, got);
            }
            cr_assert(!next_line(&out, got, sizeof got) || !got[0], "%s: more timeline rows than buffers: %s", entry,
                      got);
        }
    }
    cr_expect_gt(entries, 0, "no entry point in the header's plan");
    free(h);
    e2e_run_free(&r);
}

/* ---- dumps ----------------------------------------------------------------------------------- */

/* Dumps name activations; the plan pass's adds each entry point's plan and schedule. */
Test(pictures, dumps_name_activations)
{
    e2e_run r = run_gen(DIGITS_MLP_GEN, (const char *const[]){"--dump-after", "fuse"}, 2);
    cr_expect(strstr(r.out, "= DENSE %0, %1, %3 : (n, 64) act=relu layer=dense_1\n"), "%s", r.out);
    cr_expect(strstr(r.out, "= ACT_BWD %5, ") && strstr(r.out, " act=relu layer=dense_1 grad_of=%5 [bwd]\n"), "%s",
              r.out);
    for (const char *p = strstr(r.out, "act="); p; p = strstr(p + 1, "act="))
        cr_expect(p[4] < '0' || p[4] > '9', "an activation by number: %.40s", p);
    cr_expect_null(strstr(r.out, "schedule of"), "a schedule before the plan pass");
    e2e_run_free(&r);
    r = run_gen(TIMESERIES_RNN_GEN, (const char *const[]){"--dump-after", "plan"}, 2);
    cr_expect(strstr(r.out, " act=tanh ract=sigmoid"), "no recurrence's activations by name:\n%.3000s", r.out);
    cr_expect(strstr(r.out, "\ntrain_step: ") && strstr(r.out, "\n  schedule of train_step: %"), "%.3000s", r.out);
    cr_expect(strstr(r.out, "\npredict: ") && strstr(r.out, "\n  schedule of predict: %"), "%.3000s", r.out);
    e2e_run_free(&r);
}

/* `cgrad build` passes --summary, --plan, --graph and --dump-after PASS to the model program. */
Test(pictures, cgrad_build_passes_them_on)
{
    const char *tmp = e2e_tmpdir();
    e2e_run r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", SOURCE_DIR "/examples/digits_mlp/model.c", "-o", "out",
                        "--target", "firmware", "--summary", "--plan", "--graph", "--dump-after", "plan");
    cr_assert_eq(r.status, 0, "cgrad build: status %d\n%s", r.status, r.err);
    cr_expect(strstr(r.out, "graph digits_mlp\n%0 x = PLACEHOLDER"), "no dump:\n%.500s", r.out);
    cr_expect(strstr(r.out, "Model: \"digits_mlp\""), "no summary:\n%s", r.out);
    cr_expect(strstr(r.out, "memory plan of digits_mlp") && strstr(r.out, "timeline"), "no plan:\n%s", r.out);
    cr_expect(e2e_exists(e2e_path(tmp, "out/digits_mlp.dot")), "no digits_mlp.dot");
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", SOURCE_DIR "/examples/digits_mlp/model.c", "-o", "out", "--dump-after");
    cr_expect_eq(r.status, 2, "--dump-after without a pass: status %d", r.status);
    cr_expect(strstr(r.err, "usage: cgrad build"), "%s", r.err);
    e2e_run_free(&r);
    r = E2E_RUN(tmp, tmp, CGRAD_TOOL, "build", SOURCE_DIR "/examples/digits_mlp/model.c", "-o", "out", "--dump-after",
                "nosuch");
    cr_expect_eq(r.status, 1, "an unknown pass: status %d", r.status);
    cr_expect(strstr(r.err, "no pass is called \"nosuch\""), "%s", r.err);
    e2e_run_free(&r);
}
