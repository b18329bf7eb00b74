/* test_builder_rnn.c: builder errors of the recurrent layers and Embedding. As in test_builder_conv.c: each
 * error is returned, names the user's line (captured with __LINE__ on the line of the failing call), the
 * layer and the shapes, nothing is printed, and the error is sticky. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <string.h>

#include <cgrad.h>

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

TestSuite(builder_rnn, .init = quiet);

/* A model whose last add (or call) failed: checks rc, the message and stickiness. */
static void fails(cg_model *m, int rc, int line, const char *const *needles, int n)
{
    cg_graph *g = cg_model_graph(m);
    cr_expect(rc != 0 && cg_failed(g), "the layer was accepted");
    char first[512], where[64];
    snprintf(first, sizeof first, "%s", cg_error(g));
    snprintf(where, sizeof where, "test_builder_rnn.c:%d:", line);
    cr_expect(strstr(first, where) != NULL, "error \"%s\" does not name the line: expected %s", first, where);
    for (int i = 0; i < n; i++)
        cr_expect(strstr(first, needles[i]) != NULL, "error \"%s\" does not mention \"%s\"", first, needles[i]);
    cr_expect(cg_model_add(m, cg_lstm(2)) != 0, "a layer after the error was accepted");
    cr_expect_str_eq(cg_error(g), first, "the first message was replaced");
    fflush(stdout);
    fflush(stderr);
    cr_expect_stdout_eq_str("", "the library printed to stdout");
    cr_expect_stderr_eq_str("", "the library printed to stderr");
    cg_model_free(m);
}
#define FAILS(m, rc, line, ...) \
    fails(m, rc, line, (const char *[]){__VA_ARGS__}, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)))

Test(builder_rnn, lstm_on_a_vector)
{
    cg_model *m = cg_sequential("flat", CG_SHAPE(12));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_lstm(8));
    FAILS(m, rc, line, "lstm_1: ", "(n, 12)", "LSTM", "(batch, timesteps, features)", "Embedding");
}

Test(builder_rnn, gru_on_an_image)
{
    cg_model *m = cg_sequential("image", CG_SHAPE(4, 4, 2));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_gru(8, .name = "encoder"));
    FAILS(m, rc, line, "encoder: ", "(n, 4, 4, 2)", "GRU", "(batch, timesteps, features)");
}

Test(builder_rnn, simple_rnn_after_the_last_step)
{
    /* the first LSTM returns only its last step (n, 4): the second one has no sequence to read */
    cg_model *m = cg_sequential("stack", CG_SHAPE(6, 3));
    cg_model_add(m, cg_lstm(4));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_simple_rnn(4));
    FAILS(m, rc, line, "simple_rnn_1: ", "(n, 4)", "SimpleRNN");
}

Test(builder_rnn, zero_units)
{
    cg_model *m = cg_sequential("zero", CG_SHAPE(6, 3));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_lstm(0));
    FAILS(m, rc, line, "lstm_1: ", "units must be positive", "0");
}

Test(builder_rnn, negative_units)
{
    cg_model *m = cg_sequential("neg", CG_SHAPE(6, 3));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_gru(-3));
    FAILS(m, rc, line, "gru_1: ", "units must be positive", "-3");
}

Test(builder_rnn, softmax_activation)
{
    cg_model *m = cg_sequential("softmax", CG_SHAPE(6, 3));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_lstm(4, .activation = CG_SOFTMAX));
    FAILS(m, rc, line, "lstm_1: ", "activation", "softmax");
}

Test(builder_rnn, embedding_on_a_sequence_of_vectors)
{
    cg_model *m = cg_sequential("vectors", CG_SHAPE(5, 3));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_embedding(100, 8));
    FAILS(m, rc, line, "embedding_1: ", "(n, 5, 3)", "Embedding", "(batch, timesteps)");
}

Test(builder_rnn, embedding_sizes)
{
    cg_model *m = cg_sequential("sizes", CG_SHAPE(5));
    int line = __LINE__ + 1;
    int rc = cg_model_add(m, cg_embedding(0, 8, .name = "tokens"));
    FAILS(m, rc, line, "tokens: ", "input_dim", "positive", "0");
}

Test(builder_rnn, state_of_a_dense_layer)
{
    cg_model *m = cg_sequential("state", CG_SHAPE(5, 2));
    cg_model_add(m, cg_gru(3, .return_sequences = true));
    cg_model_add(m, cg_dense(2));
    int line = __LINE__ + 1;
    cg_t c = cg_rnn_state(m, "dense_1", CG_STATE_H);
    cr_expect(c.id < 0);
    FAILS(m, -1, line, "dense_1: ", "not recurrent");
}

Test(builder_rnn, cell_state_of_a_gru)
{
    cg_model *m = cg_sequential("state", CG_SHAPE(5, 2));
    cg_model_add(m, cg_gru(3));
    int line = __LINE__ + 1;
    cg_t c = cg_rnn_state(m, "gru_1", CG_STATE_C);
    cr_expect(c.id < 0);
    FAILS(m, -1, line, "gru_1: ", "only LSTM has a cell state");
}

Test(builder_rnn, state_of_an_unknown_layer)
{
    cg_model *m = cg_sequential("state", CG_SHAPE(5, 2));
    cg_model_add(m, cg_lstm(3));
    int line = __LINE__ + 1;
    cg_t c = cg_rnn_state(m, "lstm_9", CG_STATE_H);
    cr_expect(c.id < 0);
    FAILS(m, -1, line, "no layer named lstm_9");
}

/* What works: shapes of outputs and states. */
Test(builder_rnn, shapes)
{
    cg_model *m = cg_sequential("ok", CG_SHAPE(7));
    cg_model_add(m, cg_embedding(50, 6));
    cr_expect(cg_shape_of(cg_model_output(m)).rank == 3 && cg_shape_of(cg_model_output(m)).dims[2] == 6);
    cg_model_add(m, cg_lstm(5, .return_sequences = true));
    cg_shape s = cg_shape_of(cg_model_output(m));
    cr_expect(s.rank == 3 && s.dims[1] == 7 && s.dims[2] == 5, "LSTM with return_sequences: rank %d", s.rank);
    cg_model_add(m, cg_dense(3));
    s = cg_shape_of(cg_model_output(m));
    cr_expect(s.rank == 3 && s.dims[1] == 7 && s.dims[2] == 3, "Dense on a sequence keeps the steps");
    cg_model_add(m, cg_gru(4));
    s = cg_shape_of(cg_model_output(m));
    cr_expect(s.rank == 2 && s.dims[1] == 4, "GRU: the last step (n, 4)");
    cg_shape c = cg_shape_of(cg_rnn_state(m, "lstm_1", CG_STATE_C));
    cr_expect(c.rank == 2 && c.dims[1] == 5, "the LSTM's cell state is (n, 5)");
    cr_expect(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    cg_model_free(m);
}

/* Initial states (Keras' initial_state): each (n, units), one for SimpleRNN and GRU, two for LSTM. */
Test(builder_rnn, initial_state_of_the_wrong_shape)
{
    cg_model *m = cg_functional("state_shape");
    cg_t x = cg_input(m, "seq", CG_SHAPE(6, 3)), h0 = cg_input(m, "h0", CG_SHAPE(5));
    int line = __LINE__ + 1;
    cg_t y = cg_apply(m, cg_gru(4, .name = "decoder"), x, h0);
    cr_expect(y.id < 0);
    FAILS(m, -1, line, "decoder: ", "initial state h", "(n, 5)", "GRU(4)", "(n, 4)");
}

Test(builder_rnn, initial_cell_state_of_the_wrong_shape)
{
    cg_model *m = cg_functional("state_shape");
    cg_t x = cg_input(m, "seq", CG_SHAPE(6, 3)), h0 = cg_input(m, "h0", CG_SHAPE(4));
    cg_t c0 = cg_input(m, "c0", CG_SHAPE(4, 1));
    int line = __LINE__ + 1;
    cg_t y = cg_apply(m, cg_lstm(4), x, h0, c0);
    cr_expect(y.id < 0);
    FAILS(m, -1, line, "lstm_1: ", "initial state c", "(n, 4, 1)", "LSTM(4)", "(n, 4)");
}

Test(builder_rnn, three_states_for_an_lstm)
{
    cg_model *m = cg_functional("three_states");
    cg_t x = cg_input(m, "seq", CG_SHAPE(6, 3)), h0 = cg_input(m, "h0", CG_SHAPE(4));
    int line = __LINE__ + 1;
    cg_t y = cg_apply(m, cg_lstm(4), x, h0, h0, h0);
    cr_expect(y.id < 0);
    FAILS(m, -1, line, "lstm_1: ", "LSTM", "two tensors [h, c]", "got 3 states");
}

Test(builder_rnn, one_state_for_an_lstm)
{
    cg_model *m = cg_functional("one_state");
    cg_t x = cg_input(m, "seq", CG_SHAPE(6, 3)), h0 = cg_input(m, "h0", CG_SHAPE(4));
    cg_layer_ref lstm = cg_make_layer(m, cg_lstm(4, .name = "enc"));
    int line = __LINE__ + 1;
    cg_t y = cg_call(lstm, x, h0);
    cr_expect(y.id < 0);
    FAILS(m, -1, line, "enc: ", "LSTM", "two tensors [h, c]", "got 1 state");
}

Test(builder_rnn, two_states_for_a_simple_rnn)
{
    cg_model *m = cg_functional("two_states");
    cg_t x = cg_input(m, "seq", CG_SHAPE(6, 3)), h0 = cg_input(m, "h0", CG_SHAPE(4));
    int line = __LINE__ + 1;
    cg_t y = cg_apply(m, cg_simple_rnn(4), x, h0, h0);
    cr_expect(y.id < 0);
    FAILS(m, -1, line, "simple_rnn_1: ", "SimpleRNN", "one tensor h", "got 2 states");
}

/* What works: a state of the right shape, and the output shapes that follow. */
Test(builder_rnn, initial_states)
{
    cg_model *m = cg_functional("states");
    cg_t x = cg_input(m, "seq", CG_SHAPE(6, 3)), z = cg_input(m, "z", CG_SHAPE(2));
    cg_t h0 = cg_apply(m, cg_dense(4), z), c0 = cg_apply(m, cg_dense(4), z);
    cg_shape s = cg_shape_of(cg_apply(m, cg_lstm(4, .return_sequences = true), x, h0, c0));
    cr_expect(s.rank == 3 && s.dims[1] == 6 && s.dims[2] == 4, "LSTM from [h0, c0]: rank %d", s.rank);
    s = cg_shape_of(cg_apply(m, cg_gru(4), x, h0));
    cr_expect(s.rank == 2 && s.dims[1] == 4, "GRU from h0: rank %d", s.rank);
    s = cg_shape_of(cg_apply(m, cg_simple_rnn(4, .use_bias = false), x, h0));
    cr_expect(s.rank == 2 && s.dims[1] == 4, "SimpleRNN from h0: rank %d", s.rank);
    cr_expect(!cg_failed(cg_model_graph(m)), "%s", cg_error(cg_model_graph(m)));
    cg_model_free(m);
}
