#!/usr/bin/python3
"""torch_optim.py DIR...: the PyTorch reference of test_optimizers.c and test_clipping.c.

Reads DIR/spec.txt (a stack of Dense layers and an optimizer), DIR/params.bin
(cgrad's parameter block before training, float32), DIR/x.bin and DIR/y.bin
(one batch per step, in order); rebuilds the model in torch with the Keras
kernels (in, out) as leaf tensors (used as x @ kernel), takes `steps` steps of
torch.optim.AdamW with the spec's hyperparameters, and writes DIR/out.bin,
float32: the loss of each step (before its update), the parameters after the
last step, then the parameters after the same steps of torch.optim.Adam
(no weight decay), which lets the test show that the decay is visible.
With `optimizer sgd` and a `clip` line: torch.optim.SGD, the gradients
clipped before each step (clip_grad_norm_ over all of them for global,
over each parameter alone for norm, clip_grad_value_ for value); the
second run is the same SGD without clipping.
Exits with status 77 when torch cannot be imported (the test is skipped).

spec.txt lines:
  steps K / n N / in F / loss mse | sparse_ce_logits
  optimizer adamw LR WEIGHT_DECAY BETA_1 BETA_2 EPSILON | optimizer sgd LR
  clip global|norm|value C          (optional)
  layer dense NAME UNITS ACT        (in order; ACT linear | relu | tanh | sigmoid)
  param NAME OFFSET COUNT DIMS...   (kernel (in, out), bias (out))
"""
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(77)

ACTIVATIONS = {"linear": lambda h: h, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def clip(spec, tensors):
    """Clips the gradients of tensors as the spec's clip line says (nothing without one)."""
    if "clip" not in spec:
        return
    kind, c = spec["clip"][0], float(spec["clip"][1])
    if kind == "global":
        torch.nn.utils.clip_grad_norm_(tensors, c)
    elif kind == "norm":
        for t in tensors:
            torch.nn.utils.clip_grad_norm_([t], c)
    elif kind == "value":
        torch.nn.utils.clip_grad_value_(tensors, c)
    else:
        raise SystemExit(f"unknown clip {kind}")


def train(spec, layers, params, flat, x, y, make_optimizer):
    """Runs the steps with the optimizer make_optimizer(tensors) returns
    (clipping the gradients when the spec says so); returns the losses and
    the parameter block after the last step."""
    tensors = {name: torch.tensor(flat[off:off + count].reshape(dims), requires_grad=True)
               for name, (off, count, dims) in params.items()}
    opt = make_optimizer(list(tensors.values()))
    steps, n = int(spec["steps"][0]), int(spec["n"][0])
    losses = []
    for s in range(steps):
        h = x[s * n:(s + 1) * n]
        for name, _units, act in layers:
            h = ACTIVATIONS[act](h @ tensors[f"{name}/kernel"] + tensors[f"{name}/bias"])
        if spec["loss"][0] == "mse":
            loss = ((h - y[s * n * h.shape[1]:(s + 1) * n * h.shape[1]].reshape(h.shape)) ** 2).mean()
        elif spec["loss"][0] == "sparse_ce_logits":
            loss = F.cross_entropy(h, y[s * n:(s + 1) * n].long())
        else:
            raise SystemExit(f"unknown loss {spec['loss'][0]}")
        opt.zero_grad()
        loss.backward()
        clip(spec, list(tensors.values()))
        opt.step()
        losses.append(loss.item())
    after = flat.copy()
    for name, (off, count, _dims) in params.items():
        after[off:off + count] = tensors[name].detach().numpy().ravel()
    return losses, after


def main(d):
    spec, layers, params = {}, [], {}
    for w in (line.split() for line in open(f"{d}/spec.txt")):
        if not w:
            continue
        if w[0] == "layer":
            layers.append((w[2], int(w[3]), w[4]))
        elif w[0] == "param":
            params[w[1]] = (int(w[2]), int(w[3]), [int(v) for v in w[4:]])
        else:
            spec[w[0]] = w[1:]
    kind = spec["optimizer"][0]
    if kind not in ("adamw", "sgd"):
        raise SystemExit(f"unknown optimizer {kind}")
    flat = np.fromfile(f"{d}/params.bin", dtype=np.float32)
    x = torch.from_numpy(np.fromfile(f"{d}/x.bin", dtype=np.float32).reshape(-1, int(spec["in"][0])))
    y = torch.from_numpy(np.fromfile(f"{d}/y.bin", dtype=np.float32))
    if kind == "sgd":
        lr = float(spec["optimizer"][1])
        losses, after = train(spec, layers, params, flat, x, y, lambda ts: torch.optim.SGD(ts, lr=lr))
        plain = {k: v for k, v in spec.items() if k != "clip"}
        _, other = train(plain, layers, params, flat, x, y, lambda ts: torch.optim.SGD(ts, lr=lr))
    else:
        lr, wd, b1, b2, eps = (float(v) for v in spec["optimizer"][1:])
        losses, after = train(spec, layers, params, flat, x, y,
                              lambda ts: torch.optim.AdamW(ts, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd))
        _, other = train(spec, layers, params, flat, x, y,
                         lambda ts: torch.optim.Adam(ts, lr=lr, betas=(b1, b2), eps=eps))
    np.concatenate([np.array(losses, dtype=np.float32), after, other]).astype(np.float32).tofile(f"{d}/out.bin")


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(d)
