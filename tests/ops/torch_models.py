#!/usr/bin/python3
"""torch_models.py DIR...: the PyTorch reference of test_reference_models.c.

Reads DIR/spec.txt, DIR/params.bin (cgrad's parameter block, float32),
DIR/x.bin and DIR/y.bin (the batch, packed as the emitted entry points take
it); rebuilds the named computation in torch, in float64, with every
parameter taken by name (a Keras kernel is (in, out), used as x @ kernel);
computes the loss, the metrics in Keras' order, the gradient of every
parameter (autograd) and the outputs, and writes DIR/out.bin:
float64 [loss, metrics, gradients (at the parameters' offsets), outputs].
Exits with status 77 when torch cannot be imported (the test is skipped).

spec.txt lines:
  model seq_my_dense | resnet | two_in_two_out
  n N
  param NAME OFFSET COUNT           (every parameter of the model)

The models (see test_reference_models.c):
  seq_my_dense    relu(x @ my_dense_1), relu(. @ my_dense_2), Dense(3); sparse CE from logits; [accuracy]
  resnet          h = tanh(stem(x)); h += tanh(block(h)) twice, one block; head; sparse CE; [accuracy]
  two_in_two_out  x = [a (5), b (3)]; pa, pb = tanh(proj_a(a)), tanh(proj_b(b)); sa, sb = tanh(shared(.));
                  cls = Dense(concat(sa, sb)), reg = Dense(pa + sa * sb); y = [class, reg (2)];
                  loss = CE(cls) + 0.5 MSE(reg); [cls_loss, reg_loss, cls_accuracy, reg_mae]
"""
import sys

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(77)

F = torch.nn.functional

# Every model's parameters with their Keras shapes: spec.txt must list exactly these.
SHAPES = {
    "seq_my_dense": {"my_dense_1/kernel": (6, 8), "my_dense_2/kernel": (8, 5),
                     "dense_1/kernel": (5, 3), "dense_1/bias": (3,)},
    "resnet": {"stem/kernel": (4, 6), "stem/bias": (6,), "block/kernel": (6, 6), "block/bias": (6,),
               "head/kernel": (6, 3), "head/bias": (3,)},
    "two_in_two_out": {"proj_a/kernel": (5, 4), "proj_a/bias": (4,), "proj_b/kernel": (3, 4), "proj_b/bias": (4,),
                       "shared/kernel": (4, 4), "shared/bias": (4,), "cls/kernel": (8, 3), "cls/bias": (3,),
                       "reg/kernel": (4, 2), "reg/bias": (2,)},
}
X_WIDTH = {"seq_my_dense": 6, "resnet": 4, "two_in_two_out": 8}


def dense(p, name, h):
    return h @ p[f"{name}/kernel"] + p[f"{name}/bias"]


def accuracy(logits, labels):
    return (logits.argmax(dim=1) == labels).double().mean()


def seq_my_dense(p, x, y):
    h = torch.relu(x @ p["my_dense_1/kernel"])
    h = torch.relu(h @ p["my_dense_2/kernel"])
    logits = dense(p, "dense_1", h)
    labels = y.long()
    return F.cross_entropy(logits, labels), [accuracy(logits, labels)], logits


def resnet(p, x, y):
    h = torch.tanh(dense(p, "stem", x))
    h = h + torch.tanh(dense(p, "block", h))
    h = h + torch.tanh(dense(p, "block", h))
    logits = dense(p, "head", h)
    labels = y.long()
    return F.cross_entropy(logits, labels), [accuracy(logits, labels)], logits


def two_in_two_out(p, x, y):
    a, b = x[:, :5], x[:, 5:]
    pa = torch.tanh(dense(p, "proj_a", a))
    pb = torch.tanh(dense(p, "proj_b", b))
    sa = torch.tanh(dense(p, "shared", pa))
    sb = torch.tanh(dense(p, "shared", pb))
    cls = dense(p, "cls", torch.cat([sa, sb], dim=1))
    reg = dense(p, "reg", pa + sa * sb)
    y = y.reshape(-1, 3)
    labels, targets = y[:, 0].long(), y[:, 1:]
    cls_loss = F.cross_entropy(cls, labels)
    reg_loss = F.mse_loss(reg, targets)
    loss = cls_loss + 0.5 * reg_loss
    metrics = [cls_loss, reg_loss, accuracy(cls, labels), (reg - targets).abs().mean()]
    return loss, metrics, torch.cat([cls, reg], dim=1)


MODELS = {"seq_my_dense": seq_my_dense, "resnet": resnet, "two_in_two_out": two_in_two_out}


def main(d):
    spec, table = {}, {}
    for line in open(f"{d}/spec.txt"):
        w = line.split()
        if not w:
            continue
        if w[0] == "param":
            table[w[1]] = (int(w[2]), int(w[3]))
        else:
            spec[w[0]] = w[1]
    kind, n = spec["model"], int(spec["n"])
    shapes = SHAPES[kind]
    if set(table) != set(shapes):
        raise SystemExit(f"{d}: {kind}: cgrad's parameters {sorted(table)}, expected {sorted(shapes)}")
    flat = np.fromfile(f"{d}/params.bin", dtype=np.float32)
    params = {}
    for name, (off, count) in table.items():
        if count != int(np.prod(shapes[name])):
            raise SystemExit(f"{d}: {name} has {count} floats, expected shape {shapes[name]}")
        params[name] = torch.tensor(flat[off:off + count].astype(np.float64).reshape(shapes[name]), requires_grad=True)
    x = torch.from_numpy(np.fromfile(f"{d}/x.bin", dtype=np.float32).astype(np.float64).reshape(n, X_WIDTH[kind]))
    y = torch.from_numpy(np.fromfile(f"{d}/y.bin", dtype=np.float32).astype(np.float64))
    loss, metrics, outputs = MODELS[kind](params, x, y)
    loss.backward()
    grads = np.zeros(flat.shape, dtype=np.float64)
    for name, (off, count) in table.items():
        grads[off:off + count] = params[name].grad.numpy().ravel()
    out = np.concatenate([[loss.item()], [m.item() for m in metrics], grads, outputs.detach().numpy().ravel()])
    out.astype(np.float64).tofile(f"{d}/out.bin")


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(d)
