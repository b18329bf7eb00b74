#!/usr/bin/python3
"""torch_ref.py DIR...: the PyTorch reference of test_reference.c and test_activations.c.

Reads DIR/spec.txt (the model), DIR/params.bin (cgrad's parameter block,
float32), DIR/x.bin and DIR/y.bin (the batch); rebuilds the same model in
torch (a Keras kernel (in, out) is torch's weight transposed, so it is used
as x @ kernel directly), computes the batch-mean loss and the gradients, takes
one torch.optim.Adam step (eps=1e-7, as Keras), and writes DIR/out.bin:
float32 [loss, grads (trainable floats), params after the step (param floats)],
and DIR/pred.bin, the model's output before the step (dense and rnn specs).
Exits with status 77 when torch cannot be imported (the test is skipped).

A spec.txt that starts with "arch rnn" describes a recurrent model (run_rnn):
x is (n, T, F), or token ids (n, T) when F is 0; the layers are the kernels
behind torch's nn.LSTM, nn.GRU and nn.RNN (torch._VF.lstm, .gru, .rnn_tanh, as
those modules call them) with weights made from the Keras tensors (so the
gradients and Adam's step are those of the Keras tensors): weight_ih = kernel^T, weight_hh = recurrent_kernel^T, with the gates
reordered for GRU (Keras z, r, h; torch r, z, n); LSTM's single bias is b_ih
with b_hh = 0 (SimpleRNN the same), GRU's bias[0] is b_ih and bias[1] b_hh.
Embedding is F.embedding with ids truncated toward zero and rows of zeros for
ids outside [0, V). It also writes DIR/pred.bin, the model's output before the
step, which the test compares with NAME_predict.

rnn spec.txt lines (after "arch rnn"):
  n N / in T F / lr LR / loss mse | sparse_ce_logits
  state K   (K > 0: each sample of x is [seq (T F) | h0 | c0 when K is 2], the
             first layer's initial state, nn.LSTM's (h0, c0) or nn.GRU's h0)
  layer lstm|gru|simple_rnn NAME UNITS RETURN_SEQUENCES BIAS
  layer embedding NAME V D
  layer dense NAME UNITS BIAS ACT   (on (n, features) or every step of (n, T, features))
  param NAME OFFSET COUNT DIMS...

A spec.txt that starts with "arch cnn" describes a convolutional model
(run_cnn): x is NHWC (n, H, W, C) as cgrad has it, or a sequence (n, T, C);
each op converts to torch's NCHW (NCT) and back, Keras kernels (KH, KW, C, F)
become torch weights (F, C, KH, KW) and depthwise kernels (KH, KW, C) weights
(C, 1, KH, KW) with groups = C; "same" padding is TensorFlow's (the odd pixel
at the bottom and right), applied with F.pad. Conv1D runs a torch.nn.Conv1d
(torch.nn.utils.stateless.functional_call) whose weight (F, C, K) is the
Keras kernel (K, C, F) permuted, and whose input is padded as Keras does:
"same" as above, "causal" with (K - 1) DIL zeros before the sequence. It
also writes DIR/pred.bin, the model's output before the step (in training
mode: the test compares it with NAME_predict only for models whose layers
behave alike in both modes). BatchNormalization runs torch's batch_norm in
training mode with momentum = 1 - keras_momentum and the moving averages
updated as Keras does: moving_mean from torch's running_mean, and
moving_variance from the BIASED batch variance (torch's running_var uses the
unbiased one; it is checked against that formula too). The moving averages
go into "params after the step" at their offsets.

cnn spec.txt lines (after "arch cnn"):
  n N / in H W C (or in T C) / out K / lr LR / loss sparse_ce_logits | mse
  layer conv2d NAME F KH KW STRIDE DIL valid|same BIAS ACT
  layer conv1d NAME F K STRIDE DIL valid|same|causal BIAS ACT
  layer depthwise NAME KH KW STRIDE DIL valid|same BIAS ACT
  layer maxpool|avgpool K STRIDE valid|same
  layer gap | layer flatten | layer activation ACT
  layer dense NAME UNITS BIAS ACT
  layer batchnorm NAME MOMENTUM EPS
  param NAME OFFSET COUNT DIMS...   (every parameter, any order)

spec.txt lines:
  n N / in K / out K / lr LR
  loss sparse_ce_logits | cce_probs | sparse_ce_probs | bce_logits | bce_probs | mse
       (the *_probs losses follow a sigmoid or softmax: computed from its logits, as tf.keras and cgrad do)
  dense UNITS ACTIVATION [ALPHA]    (in order; ALPHA: the activation's parameter, else its default)
  param NAME OFFSET COUNT D0 [D1]   (in order: kernel then bias per dense)
"""
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.nn.utils import stateless
except ImportError:
    sys.exit(77)


# torch's form of each activation of compiler/activations.def, by its name there; alpha: its parameter (None:
# cgrad's default, Keras': 0.3 for leaky_relu, 1.0 for elu)
ACTIVATIONS = {
    "linear": lambda h, a: h,
    "relu": lambda h, a: torch.relu(h),
    "sigmoid": lambda h, a: torch.sigmoid(h),
    "tanh": lambda h, a: torch.tanh(h),
    "softmax": lambda h, a: torch.softmax(h, dim=-1),
    "leaky_relu": lambda h, a: F.leaky_relu(h, 0.3 if a is None else a),
    "gelu": lambda h, a: F.gelu(h, approximate="none"),
    "gelu_tanh": lambda h, a: F.gelu(h, approximate="tanh"),
    "elu": lambda h, a: F.elu(h, 1.0 if a is None else a),
    "swish": lambda h, a: F.silu(h),
}


def activation(h, act, alpha=None):
    if act not in ACTIVATIONS:
        raise SystemExit(f"unknown activation {act}: add its torch form to ACTIVATIONS in torch_ref.py")
    return ACTIVATIONS[act](h, alpha)


def same_pad(size, k, stride, dil):
    """TensorFlow's "same": (before, after) padding of one axis."""
    span = dil * (k - 1) + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def pad_nchw(h, kh, kw, stride, dil, padding, value=0.0):
    if padding != "same":
        return h
    t, b = same_pad(h.shape[2], kh, stride, dil)
    l, r = same_pad(h.shape[3], kw, stride, dil)
    return F.pad(h, (l, r, t, b), value=value)


def conv1d(h, kernel, bias, stride, dil, padding):
    """Keras' Conv1D of h (n, T, C) through torch.nn.Conv1d: the weight (F, C,
    K) is the Keras kernel (K, C, F) permuted, the padding Keras'."""
    k, c, f = kernel.shape
    conv = torch.nn.Conv1d(c, f, k, stride=stride, dilation=dil, bias=bias is not None)
    weights = {"weight": kernel.permute(2, 1, 0)}
    if bias is not None:
        weights["bias"] = bias
    z = h.permute(0, 2, 1)                                  # (n, C, T)
    if padding == "same":
        z = F.pad(z, same_pad(z.shape[2], k, stride, dil))
    elif padding == "causal":
        z = F.pad(z, (dil * (k - 1), 0))
    return stateless.functional_call(conv, weights, (z,)).permute(0, 2, 1)


def adam_step_and_write(d, loss, trainable, flat, after, lr):
    """The gradients of loss, one Adam step (eps 1e-7, as Keras) on the
    trainable (offset, count, tensor) triples, and DIR/out.bin: loss, the
    gradient block, then the parameters after the step (after: the
    parameter block to write them into, other entries kept)."""
    opt = torch.optim.Adam([t for _, _, t in trainable], lr=lr, betas=(0.9, 0.999), eps=1e-7)
    opt.zero_grad()
    loss.backward()
    grads = np.zeros_like(flat)
    for off, count, t in trainable:
        grads[off:off + count] = t.grad.detach().numpy().ravel()
    opt.step()
    for off, count, t in trainable:
        after[off:off + count] = t.detach().numpy().ravel()
    out = np.concatenate([np.array([loss.item()], dtype=np.float32), grads, after]).astype(np.float32)
    out.tofile(f"{d}/out.bin")


def sparse_ce_or_mse(kind, h, y):
    """The batch-mean loss of the cnn and rnn specs."""
    if kind == "sparse_ce_logits":
        return F.cross_entropy(h, y.long())
    if kind == "mse":
        return ((h - y.reshape(h.shape)) ** 2).mean()
    raise SystemExit(f"unknown loss {kind}")


def parse_layered(lines):
    """The cnn and rnn specs: `layer ...` lines in order, `param NAME OFFSET
    COUNT DIMS...` lines by name, any other line a key and its words."""
    spec, layers, params = {}, [], {}
    for w in lines:
        if w[0] == "layer":
            layers.append(w[1:])
        elif w[0] == "param":
            params[w[1]] = (int(w[2]), int(w[3]), [int(v) for v in w[4:]])
        else:
            spec[w[0]] = w[1:]
    return spec, layers, params


def run_cnn(d, lines):
    spec, layers, params = parse_layered(lines)
    n = int(spec["n"][0])
    dims = [int(v) for v in spec["in"]]
    flat = np.fromfile(f"{d}/params.bin", dtype=np.float32)
    x = torch.from_numpy(np.fromfile(f"{d}/x.bin", dtype=np.float32).reshape(n, *dims))
    y = torch.from_numpy(np.fromfile(f"{d}/y.bin", dtype=np.float32))
    tensors = {}
    trainable = []
    for name, (off, count, dims) in params.items():
        t = torch.tensor(flat[off:off + count].reshape(dims))
        if "moving_" not in name:
            t.requires_grad_(True)
            trainable.append((off, count, t))
        tensors[name] = t
    after = flat.copy()
    h = x                                   # NHWC throughout, as cgrad
    for L in layers:
        kind = L[0]
        if kind in ("conv2d", "depthwise"):
            if kind == "conv2d":
                name, f, kh, kw, stride, dil, padding, bias, act = L[1:]
            else:
                name, kh, kw, stride, dil, padding, bias, act = L[1:]
            kh, kw, stride, dil = int(kh), int(kw), int(stride), int(dil)
            z = pad_nchw(h.permute(0, 3, 1, 2), kh, kw, stride, dil, padding)
            if kind == "conv2d":
                wt = tensors[f"{name}/kernel"].permute(3, 2, 0, 1)                     # (F, C, KH, KW)
                z = F.conv2d(z, wt, stride=stride, dilation=dil)
            else:
                k = tensors[f"{name}/depthwise_kernel"]
                wt = k.permute(2, 0, 1).unsqueeze(1)                                   # (C, 1, KH, KW)
                z = F.conv2d(z, wt, stride=stride, dilation=dil, groups=k.shape[2])
            h = z.permute(0, 2, 3, 1)
            if bias == "1":
                h = h + tensors[f"{name}/bias"]
            h = activation(h, act)
        elif kind == "conv1d":
            name, f, k, stride, dil, padding, bias, act = L[1:]
            b = tensors[f"{name}/bias"] if bias == "1" else None
            h = activation(conv1d(h, tensors[f"{name}/kernel"], b, int(stride), int(dil), padding), act)
        elif kind in ("maxpool", "avgpool"):
            k, stride, padding = int(L[1]), int(L[2]), L[3]
            z = h.permute(0, 3, 1, 2)
            if kind == "maxpool":
                z = F.max_pool2d(pad_nchw(z, k, k, stride, 1, padding, value=-float("inf")), k, stride)
            else:   # padding is not counted in the mean
                s = F.avg_pool2d(pad_nchw(z, k, k, stride, 1, padding), k, stride) * (k * k)
                ones = torch.ones_like(z[:1, :1])
                cnt = F.avg_pool2d(pad_nchw(ones, k, k, stride, 1, padding), k, stride) * (k * k)
                z = s / cnt
            h = z.permute(0, 2, 3, 1)
        elif kind == "gap":
            h = h.mean(dim=(1, 2))
        elif kind == "flatten":
            h = h.reshape(n, -1)
        elif kind == "activation":
            h = activation(h, L[1])
        elif kind == "dense":
            name, units, bias, act = L[1:]
            h = h @ tensors[f"{name}/kernel"]
            if bias == "1":
                h = h + tensors[f"{name}/bias"]
            h = activation(h, act)
        elif kind == "batchnorm":
            name, momentum, eps = L[1], float(L[2]), float(L[3])
            mm, mv = tensors[f"{name}/moving_mean"], tensors[f"{name}/moving_variance"]
            z = h.permute(0, 3, 1, 2) if h.dim() == 4 else h
            run_mean, run_var = mm.clone(), mv.clone()
            z = F.batch_norm(z, run_mean, run_var, tensors[f"{name}/gamma"], tensors[f"{name}/beta"],
                             training=True, momentum=1 - momentum, eps=eps)
            axes = tuple(range(h.dim() - 1))
            count = h.numel() // h.shape[-1]
            var = h.detach().var(dim=axes, unbiased=False)
            unbiased = h.detach().var(dim=axes, unbiased=True)
            want_run_var = momentum * mv + (1 - momentum) * unbiased
            if not torch.allclose(run_var, want_run_var, rtol=1e-5, atol=1e-6):
                raise SystemExit(f"{name}: torch's running_var is not the unbiased update (count {count})")
            new_mv = momentum * mv + (1 - momentum) * var          # Keras: the biased variance
            off, cnt, _ = params[f"{name}/moving_mean"]
            after[off:off + cnt] = run_mean.numpy()
            off, cnt, _ = params[f"{name}/moving_variance"]
            after[off:off + cnt] = new_mv.numpy()
            h = z.permute(0, 2, 3, 1) if h.dim() == 4 else z
        else:
            raise SystemExit(f"unknown layer {kind}")
    h.detach().numpy().astype(np.float32).tofile(f"{d}/pred.bin")
    loss = sparse_ce_or_mse(spec["loss"][0], h, y)
    adam_step_and_write(d, loss, trainable, flat, after, float(spec["lr"][0]))


def gru_order(t, u):
    """Keras' GRU gate blocks z, r, h along the first axis -> torch's r, z, n."""
    return torch.cat([t[u:2 * u], t[0:u], t[2 * u:3 * u]])


def run_rnn(d, lines):
    spec, layers, params = parse_layered(lines)
    n = int(spec["n"][0])
    steps, feats = (int(v) for v in spec["in"])
    flat = np.fromfile(f"{d}/params.bin", dtype=np.float32)
    xs = np.fromfile(f"{d}/x.bin", dtype=np.float32)
    nstates = int(spec.get("state", ["0"])[0])
    states = []
    if nstates:   # per sample [seq | h0 (| c0)]: the first layer's initial state, as (1, n, U)
        xs = xs.reshape(n, -1)
        u0 = (xs.shape[1] - steps * feats) // nstates
        for i in range(nstates):
            part = xs[:, steps * feats + i * u0:steps * feats + (i + 1) * u0]
            states.append(torch.from_numpy(np.ascontiguousarray(part)).unsqueeze(0))
        xs = np.ascontiguousarray(xs[:, :steps * feats])
    x = torch.from_numpy(xs.reshape(n, steps, feats) if feats else xs.reshape(n, steps))
    y = torch.from_numpy(np.fromfile(f"{d}/y.bin", dtype=np.float32))
    tensors, trainable = {}, []
    for name, (off, count, dims) in params.items():
        t = torch.tensor(flat[off:off + count].reshape(dims), requires_grad=True)
        trainable.append((off, count, t))
        tensors[name] = t
    h = x
    for L in layers:
        kind = L[0]
        if kind in ("lstm", "gru", "simple_rnn"):
            name, units, retseq, bias = L[1], int(L[2]), L[3] == "1", L[4] == "1"
            kernel, rec = tensors[f"{name}/kernel"], tensors[f"{name}/recurrent_kernel"]
            wih, whh = kernel.t(), rec.t()
            if kind == "gru":
                wih, whh = gru_order(wih, units), gru_order(whh, units)
            weights = [wih, whh]
            if bias:
                b = tensors[f"{name}/bias"]
                if kind == "gru":
                    weights += [gru_order(b[0], units), gru_order(b[1], units)]
                else:
                    weights += [b, torch.zeros_like(b)]
            h0 = c0 = torch.zeros(1, h.shape[0], units)
            if states:   # the first recurrent layer's initial state
                h0, c0 = states[0], states[-1]
                states = []
            # torch's own kernels, as nn.LSTM / nn.GRU / nn.RNN call them, on weights made from the Keras tensors
            if kind == "lstm":
                out = torch._VF.lstm(h, (h0, c0), weights, bias, 1, 0.0, True, False, True)[0]
            elif kind == "gru":
                out = torch._VF.gru(h, h0, weights, bias, 1, 0.0, True, False, True)[0]
            else:
                out = torch._VF.rnn_tanh(h, h0, weights, bias, 1, 0.0, True, False, True)[0]
            h = out if retseq else out[:, -1]
        elif kind == "embedding":
            name = L[1]
            table = tensors[f"{name}/embeddings"]
            ids = torch.trunc(h)
            ok = (ids >= 0) & (ids < table.shape[0])
            h = F.embedding(torch.where(ok, ids, torch.zeros_like(ids)).long(), table) * ok.unsqueeze(-1)
        elif kind == "dense":
            name, units, bias, act = L[1:]
            h = h @ tensors[f"{name}/kernel"]
            if bias == "1":
                h = h + tensors[f"{name}/bias"]
            h = activation(h, act)
        else:
            raise SystemExit(f"unknown layer {kind}")
    h.detach().numpy().astype(np.float32).tofile(f"{d}/pred.bin")
    loss = sparse_ce_or_mse(spec["loss"][0], h, y)
    adam_step_and_write(d, loss, trainable, flat, flat.copy(), float(spec["lr"][0]))


def main(d):
    lines = [line.split() for line in open(f"{d}/spec.txt") if line.split()]
    if lines[0] == ["arch", "cnn"]:
        return run_cnn(d, lines[1:])
    if lines[0] == ["arch", "rnn"]:
        return run_rnn(d, lines[1:])
    spec = {"dense": [], "param": []}
    for line in open(f"{d}/spec.txt"):
        w = line.split()
        if not w:
            continue
        if w[0] in ("dense", "param"):
            spec[w[0]].append(w[1:])
        else:
            spec[w[0]] = w[1]
    n, k_in, k_out = int(spec["n"]), int(spec["in"]), int(spec["out"])
    flat = np.fromfile(f"{d}/params.bin", dtype=np.float32)
    x = torch.from_numpy(np.fromfile(f"{d}/x.bin", dtype=np.float32).reshape(n, k_in))
    y = torch.from_numpy(np.fromfile(f"{d}/y.bin", dtype=np.float32))
    params = []
    for name, off, count, *dims in spec["param"]:
        off, count = int(off), int(count)
        t = torch.tensor(flat[off:off + count].reshape([int(v) for v in dims]), requires_grad=True)
        params.append((off, count, t))
    h = x
    for i, (units, act, *alpha) in enumerate(spec["dense"]):
        kernel, bias = params[2 * i][2], params[2 * i + 1][2]
        z = h @ kernel + bias  # the last one: the logits of a sigmoid or softmax output
        h = activation(z, act, float(alpha[0]) if alpha else None)
    h.detach().numpy().astype(np.float32).tofile(f"{d}/pred.bin")
    loss_kind = spec["loss"]
    if loss_kind == "sparse_ce_logits":
        loss = F.cross_entropy(h, y.long())
    elif loss_kind == "cce_probs":   # from the softmax's logits (tf.keras recovers them)
        loss = F.cross_entropy(z, y.reshape(n, k_out))
    elif loss_kind == "sparse_ce_probs":
        loss = F.cross_entropy(z, y.long())
    elif loss_kind == "bce_logits":
        loss = F.binary_cross_entropy_with_logits(h, y.reshape(n, k_out))
    elif loss_kind == "bce_probs":   # from the sigmoid's logits (tf.keras recovers them)
        loss = F.binary_cross_entropy_with_logits(z, y.reshape(n, k_out))
    elif loss_kind == "mse":
        loss = ((h - y.reshape(n, k_out)) ** 2).mean()
    else:
        raise SystemExit(f"unknown loss {loss_kind}")
    adam_step_and_write(d, loss, params, flat, flat.copy(), float(spec["lr"]))


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(d)
