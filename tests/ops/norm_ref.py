#!/usr/bin/python3
"""norm_ref.py DIR...: the reference of test_preprocess.c's forward checks.

Reads DIR/x.bin (float32, n rows of f features), DIR/stats.bin (float32: f
means, f variances, then the Rescaling that follows, scale and offset) and
DIR/shape.txt ("n f"), and writes DIR/ref.bin: float32 of
((x - mean) / max(sqrt(variance), 1e-7)) * scale + offset, Keras'
Normalization then Rescaling, computed by torch (numpy when torch is missing).
Exits with status 77 when neither can be imported (the test is skipped).
"""
import os
import sys

try:
    import numpy as np
except ImportError:
    sys.exit(77)
try:
    import torch
except ImportError:
    torch = None


def reference(x, mean, var, scale, offset):
    """Normalization (Keras: divide by max(sqrt(variance), epsilon)), then Rescaling."""
    if torch is not None:
        t = torch.from_numpy(x)
        sd = torch.clamp(torch.sqrt(torch.from_numpy(var)), min=1e-7)
        return (((t - torch.from_numpy(mean)) / sd) * scale + offset).numpy()
    sd = np.maximum(np.sqrt(var), np.float32(1e-7))
    return ((x - mean) / sd) * np.float32(scale) + np.float32(offset)


for d in sys.argv[1:]:
    with open(os.path.join(d, "shape.txt")) as f:
        n, feats = (int(v) for v in f.read().split())
    x = np.fromfile(os.path.join(d, "x.bin"), dtype=np.float32).reshape(n, feats)
    st = np.fromfile(os.path.join(d, "stats.bin"), dtype=np.float32)
    y = reference(x, st[:feats], st[feats:2 * feats], float(st[2 * feats]), float(st[2 * feats + 1]))
    y.astype(np.float32).tofile(os.path.join(d, "ref.bin"))
