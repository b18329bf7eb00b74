#!/usr/bin/python3
"""torch_ref.py DIR...: the PyTorch reference of test_reference.c.

Reads DIR/spec.txt (the model), DIR/params.bin (cgrad's parameter block,
float32), DIR/x.bin and DIR/y.bin (the batch); rebuilds the same model in
torch (a Keras kernel (in, out) is torch's weight transposed, so it is used
as x @ kernel directly), computes the batch-mean loss and the gradients, takes
one torch.optim.Adam step (eps=1e-7, as Keras), and writes DIR/out.bin:
float32 [loss, grads (trainable floats), params after the step (param floats)].
Exits with status 77 when torch cannot be imported (the test is skipped).

spec.txt lines:
  n N / in K / out K / lr LR
  loss sparse_ce_logits | cce_probs | bce_logits | bce_probs | mse
  dense UNITS ACTIVATION            (in order)
  param NAME OFFSET COUNT D0 [D1]   (in order: kernel then bias per dense)
"""
import sys

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(77)


def main(d):
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
    eps = 1e-7
    h = x
    for i, (units, act) in enumerate(spec["dense"]):
        kernel, bias = params[2 * i][2], params[2 * i + 1][2]
        h = h @ kernel + bias
        if act == "relu":
            h = torch.relu(h)
        elif act == "tanh":
            h = torch.tanh(h)
        elif act == "sigmoid":
            h = torch.sigmoid(h)
        elif act == "softmax":
            h = torch.softmax(h, dim=1)
        elif act != "linear":
            raise SystemExit(f"unknown activation {act}")
    loss_kind = spec["loss"]
    if loss_kind == "sparse_ce_logits":
        loss = torch.nn.functional.cross_entropy(h, y.long())
    elif loss_kind == "cce_probs":   # Keras: -sum t log(clip(p, eps, 1 - eps)), batch mean
        t = y.reshape(n, k_out)
        loss = -(t * torch.log(h.clamp(eps, 1 - eps))).sum(dim=1).mean()
    elif loss_kind == "bce_logits":
        loss = torch.nn.functional.binary_cross_entropy_with_logits(h, y.reshape(n, k_out))
    elif loss_kind == "bce_probs":   # Keras clips p to [eps, 1 - eps]
        t, p = y.reshape(n, k_out), h.clamp(eps, 1 - eps)
        loss = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    elif loss_kind == "mse":
        loss = ((h - y.reshape(n, k_out)) ** 2).mean()
    else:
        raise SystemExit(f"unknown loss {loss_kind}")
    opt = torch.optim.Adam([p for _, _, p in params], lr=float(spec["lr"]), betas=(0.9, 0.999), eps=eps)
    opt.zero_grad()
    loss.backward()
    grads = np.zeros_like(flat)
    for off, count, p in params:
        grads[off:off + count] = p.grad.detach().numpy().ravel()
    opt.step()
    after = flat.copy()
    for off, count, p in params:
        after[off:off + count] = p.detach().numpy().ravel()
    out = np.concatenate([np.array([loss.item()], dtype=np.float32), grads, after]).astype(np.float32)
    out.tofile(f"{d}/out.bin")


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(d)
