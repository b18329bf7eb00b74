/* ops/matmul.c: matrix multiplication with transpose flags, and the fused
 * DENSE node (X W + b, then an activation) that the fuse pass makes of it. */
#include "../cgrad_int.h"

#include <string.h>

/* Y = op(A) op(B). Each operand is seen as a matrix: rows = the product of
 * all its dimensions but the last, columns = the last. A (n, T, K) times
 * B (K, N) is (n, T, N): Keras' Dense on a sequence, the same weights at
 * every step. A^T B with A (n, T, K) and B (n, T, N) contracts over the batch
 * and the steps: (K, N), a weight gradient. Only A's rows may hold the batch
 * in the result. */
int op_matmul(cg_graph *g, cg_src src, int a, int b, bool ta, bool tb)
{
    if (a < 0 || b < 0)
        return -1;
    const shape *sa = &g->nodes[a].sh, *sb = &g->nodes[b].sh;
    char s1[64], s2[64];
    if (sa->rank < 2 || sb->rank < 2)
        return graph_error(g, src, g->cur_layer, "matmul needs operands of rank 2 or more, got %s and %s",
                           shape_str(sa, s1, sizeof s1), shape_str(sb, s2, sizeof s2));
    bool contract_rows = ta && !tb; /* A^T B: both contracted over their rows */
    if ((sa->rank > 2 && ta && !contract_rows) || (sb->rank > 2 && !contract_rows))
        return graph_error(g, src, g->cur_layer,
                           "matmul: %s%s times %s%s: an operand of rank 3 or more must be "
                           "A (rows of A, then B) or both operands contracted over their rows (A^T B)",
                           shape_str(sa, s1, sizeof s1), ta ? "^T" : "", shape_str(sb, s2, sizeof s2), tb ? "^T" : "");
    shape out = {0, {0}};
    bool ok;
    if (contract_rows) { /* the leading dimensions of A and B are contracted: they must agree */
        ok = sa->rank == sb->rank;
        for (int i = 0; ok && i < sa->rank - 1; i++)
            ok = sa->d[i] == sb->d[i];
        out = (shape){2, {sa->d[sa->rank - 1], sb->d[sb->rank - 1]}};
    } else if (!ta) { /* A's rows stay rows: (..., K) op(B) (K, N) -> (..., N) */
        int k = sa->d[sa->rank - 1], kb = tb ? sb->d[1] : sb->d[0], nn = tb ? sb->d[0] : sb->d[1];
        ok = k == kb;
        out = *sa;
        out.d[out.rank - 1] = nn;
    } else { /* A^T B^T, rank 2 */
        ok = sa->d[0] == sb->d[1];
        out = (shape){2, {sa->d[1], sb->d[0]}};
    }
    if (!ok)
        return graph_error(g, src, g->cur_layer, "matmul: inner dimensions differ: %s%s times %s%s",
                           shape_str(sa, s1, sizeof s1), ta ? "^T" : "", shape_str(sb, s2, sizeof s2), tb ? "^T" : "");
    for (int i = 1; i < out.rank; i++)
        if (out.d[i] == CG_BATCH)
            return graph_error(g, src, g->cur_layer, "matmul: the batch dimension would not come first in the result");
    node nd = {.op = OP_MATMUL, .nin = 2, .in = {a, b}, .ta = ta, .tb = tb, .sh = out, .src = src};
    return node_add(g, &nd);
}

cg_t cg_matmul_at(cg_src src, cg_t a, cg_t b, bool ta, bool tb)
{
    cg_graph *g = operands_graph(src, "MATMUL", (cg_t[]){a, b}, 2);
    if (!g)
        return (cg_t){a.g ? a.g : b.g, -1};
    return (cg_t){g, op_matmul(g, src, a.id, b.id, ta, tb)};
}

/* The rule of Y = op(A) op(B), per combination of transposes: dA and dB,
 * each a product of two of A, B and dY ('Y') with its own transposes. The
 * rule (grad_matmul) and its words (words_matmul) both read this table. */
typedef struct mm_term {
    char l, r;     /* the operands: 'A', 'B' or 'Y' (dY) */
    bool l_t, r_t; /* transposed */
} mm_term;

static const mm_term mm_rules[4][2] = {
    {{'Y', 'B', false, true}, {'A', 'Y', true, false}},  /* Y = A B:     dA = dY B^T,   dB = A^T dY */
    {{'Y', 'B', false, false}, {'Y', 'A', true, false}}, /* Y = A B^T:   dA = dY B,     dB = dY^T A */
    {{'B', 'Y', false, true}, {'A', 'Y', false, false}}, /* Y = A^T B:   dA = B dY^T,   dB = A dY */
    {{'B', 'Y', true, true}, {'Y', 'A', true, true}},    /* Y = A^T B^T: dA = B^T dY^T, dB = dY^T A^T */
};

/* dA and dB for each combination of transposes (mm_rules). */
static int grad_matmul(cg_graph *g, int id, int dy, int dx[3])
{
    node n = g->nodes[id];
    for (int k = 0; k < 2; k++) {
        const mm_term *t = &mm_rules[2 * n.ta + n.tb][k];
        int l = t->l == 'A' ? n.in[0] : t->l == 'B' ? n.in[1] : dy;
        int r = t->r == 'A' ? n.in[0] : t->r == 'B' ? n.in[1] : dy;
        dx[k] = op_matmul(g, n.src, l, r, t->l_t, t->r_t);
    }
    return g->failed ? -1 : 0;
}

/* An operand of mm_rules as the words write it. */
static const char *mm_operand(char c)
{
    return c == 'Y' ? "dY" : c == 'A' ? "A" : "B";
}

/* grad_matmul's rules in words, for the inputs whose bit is set; DENSE's,
 * which the fuse pass makes of an activation's, an addition's and a
 * product's rules: dZ = dY act'(.), db = dZ summed over the rows, then the
 * product's with dZ for dY. */
static bool words_matmul(cg_graph *g, int id, unsigned inputs, char *buf, size_t size)
{
    const node *n = &g->nodes[id];
    buf[0] = 0;
    if (n->op == OP_MATMUL) {
        for (int k = 0; k < 2; k++) {
            const mm_term *t = &mm_rules[2 * n->ta + n->tb][k];
            const char *lt = t->l_t ? "^T" : "", *rt = t->r_t ? "^T" : "";
            if (inputs >> k & 1)
                words_term(buf, size, "d%s = %s%s . %s%s", k ? "B" : "A", mm_operand(t->l), lt, mm_operand(t->r), rt);
        }
        return true;
    }
    char act[ACT_TEXT_MAX];
    const char *dz = n->act == CG_LINEAR ? "dY" : "dZ";
    if (n->act != CG_LINEAR && act_grad_words(n->act, n->alpha, "Y", act, sizeof act))
        words_term(buf, size, "dZ = %s", act);
    if (inputs >> 2 & 1)
        words_term(buf, size, "db = sum_%s %s", g->nodes[n->in[0]].sh.rank > 2 ? "{n,t}" : "n", dz);
    if (inputs >> 1 & 1)
        words_term(buf, size, "dW = X^T . %s", dz);
    if (inputs & 1)
        words_term(buf, size, "dX = %s . W^T", dz);
    return true;
}

/* The GEMM sizes of node id: Y (M, N) = op(A) (M, K) op(B) (K, N), A seen
 * as rows (all its dimensions but the last, "n * 12") by its last dimension. */
static void gemm_dims(emit_ctx *e, const node *n, char *m, char *nn, char *k, size_t size)
{
    const shape *sa = &e->g->nodes[n->in[0]].sh;
    char rows[48], cols[16];
    outer_rows(sa, sa->rank - 1, rows, sizeof rows);
    emit_dim(sa, sa->rank - 1, cols, sizeof cols);
    snprintf(m, size, "%s", n->ta ? cols : rows);
    snprintf(k, size, "%s", n->ta ? rows : cols);
    emit_dim(&n->sh, n->sh.rank - 1, nn, size);
}

/* Lowers MATMUL and DENSE from the kernel templates of the flavour. */
static void lower_matmul(emit_ctx *e, int id)
{
    const node *n = &e->g->nodes[id];
    char m[48], nn[48], k[48], act[ACT_TEXT_MAX];
    gemm_dims(e, n, m, nn, k, sizeof m);
    const char *act_name = emit_activation(n->act, n->alpha, act, sizeof act);
    if (!act_name) {
        graph_error(e->g, n->src, n->layer, "internal: the activation's text does not fit");
        return;
    }
    bool host = e->flavour == CG_HOST;
    /* Row-major element access of op(A)[i][p] and op(B)[p][j]. */
    char a_at[96], b_at[96], lda[48], ldb[48];
    snprintf(a_at, sizeof a_at, n->ta ? "A[p * %s + i]" : "A[i * %s + p]", n->ta ? m : k);
    snprintf(b_at, sizeof b_at, n->tb ? "B[j * %s + p]" : "B[p * %s + j]", n->tb ? k : nn);
    snprintf(lda, sizeof lda, "%s", n->ta ? m : k);
    snprintf(ldb, sizeof ldb, "%s", n->tb ? k : nn);
    if (n->op == OP_DENSE) {
        snprintf(a_at, sizeof a_at, "X[i * %s + p]", k);
        snprintf(b_at, sizeof b_at, "W[p * %s + j]", nn);
    }
    const char *kv[] = {"TA_FLAG",  n->ta ? "1" : "0",
                        "TB_FLAG",  n->tb ? "1" : "0",
                        "M",        m,
                        "N",        nn,
                        "K",        k,
                        "A_AT",     a_at,
                        "B_AT",     b_at,
                        "LDA",      lda,
                        "LDB",      ldb,
                        "ACT",      act,
                        "ACT_NAME", act_name,
                        NULL};
    const char *tmpl;
    if (n->op == OP_DENSE)
        tmpl = host ? (strcmp(m, "n") == 0 ? "kernels/dense_host_gemv" : "kernels/dense_host")
                    : "kernels/dense_portable";
    else
        tmpl = host ? "kernels/matmul_host" : "kernels/matmul_portable";
    if (text_template(e->t, tmpl, kv))
        graph_error(e->g, n->src, n->layer, "internal: template %s failed", tmpl);
}

/* "y = a . b^T", "y = relu(x . w + b)" */
static bool describe_matmul(emit_ctx *e, int id, const char *const in[3], char *buf, size_t size)
{
    const node *n = &e->g->nodes[id];
    if (n->op == OP_DENSE)
        snprintf(buf, size, "%s = %s(%s . %s + %s)", n->name, emit_act_name(n->act), in[0], in[1], in[2]);
    else
        snprintf(buf, size, "%s = %s%s . %s%s", n->name, in[0], n->ta ? "^T" : "", in[1], n->tb ? "^T" : "");
    return true;
}

/* 2 M N K for one sample (a contraction over the batch, or the steps, counts one sample); DENSE adds
 * the bias and the activation. */
static long flops_matmul(cg_graph *g, int id)
{
    const node *n = &g->nodes[id];
    const shape *a = &g->nodes[n->in[0]].sh;
    long out = shape_size(&n->sh, 1);
    if (n->op == OP_DENSE)
        return 2 * out * a->d[a->rank - 1] + 2 * out;
    long k = n->ta ? shape_size(a, 1) / a->d[a->rank - 1] : a->d[a->rank - 1];
    return 2 * out * k;
}

const op_family op_family_matmul = {"matmul", grad_matmul, lower_matmul, flops_matmul, describe_matmul, words_matmul};
