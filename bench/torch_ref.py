#!/usr/bin/python3
"""PyTorch reference for the cgrad benchmarks (Fashion-MNIST, and an LSTM).

Trains one benchmark model with the same recipe as the cgrad examples and prints
machine-readable `key=value` lines that bench/run.sh parses:

    train_samples_per_sec=<training throughput over the timed epochs>
    predict_us_per_sample=<batch-1 predict latency, no_grad, after warm-up>
    test_accuracy=<accuracy on the 10,000 test images>

Run with Debian's interpreter and python3-torch:

    /usr/bin/python3 bench/torch_ref.py mlp --epochs 1 --threads 1
    /usr/bin/python3 bench/torch_ref.py cnn --epochs 1 --threads 2
    /usr/bin/python3 bench/torch_ref.py lstm --threads 1

Recipe (mlp, cnn): Adam(lr=1e-3), batch 64, reshuffled every epoch, softmax
cross-entropy on logits (nn.CrossEntropyLoss), pixels scaled to [0, 1].

lstm: nn.LSTM(1, 32) over windows of 12 steps, the last hidden state into
nn.Linear(32, 1), MSE, Adam(lr=1e-3), batch 32 (the shape of cgrad's
bench/lstm model). It times --iters training steps on one random batch,
as cgrad's `bench` command does, and batch-1 predict; no accuracy.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# Each model: a builder and the per-sample input shape it expects (batch first).
def build_mlp():
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def build_cnn():
    # NCHW, "valid" 3x3 convolutions: 28 -> 26 -> 13 -> 11 -> 5, so 64*5*5 = 1600.
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1600, 10),
    )


class LastStepLSTM(nn.Module):
    """LSTM(32) over (batch, 12, 1) windows, the last hidden state into Dense(1)."""

    def __init__(self, units=32):
        super().__init__()
        self.lstm = nn.LSTM(1, units, batch_first=True)
        self.head = nn.Linear(units, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1, :])


MODELS = {
    "mlp": (build_mlp, (784,)),
    "cnn": (build_cnn, (1, 28, 28)),
    "lstm": (LastStepLSTM, (12, 1)),
}


def bench_lstm(args):
    """Training steps on one random batch, then batch-1 predict latency."""
    model = LastStepLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.MSELoss()
    x = torch.randn(args.batch_size, 12, 1)
    y = torch.randn(args.batch_size, 1)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(20):
        step()
    t0 = time.perf_counter()
    for _ in range(args.iters):
        step()
    seconds = time.perf_counter() - t0
    latency = predict_latency(model, torch.randn(256, 12, 1), args.predict_calls, args.predict_warmup)
    print("model=lstm")
    print(f"torch_version={torch.__version__}")
    print(f"threads={torch.get_num_threads()}")
    print(f"batch_size={args.batch_size}")
    print(f"train_seconds={seconds:.3f}")
    print(f"train_samples_per_sec={args.iters * args.batch_size / seconds:.1f}")
    print(f"predict_us_per_sample={latency * 1e6:.2f}")


def train(model, x, y, epochs, batch_size, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - t0
    return seconds, epochs * n / seconds


@torch.no_grad()
def evaluate(model, x, y, batch_size=1000):
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss_sum, correct = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        logits = model(x[start:start + batch_size])
        yb = y[start:start + batch_size]
        loss_sum += loss_fn(logits, yb).item()
        correct += (logits.argmax(1) == yb).sum().item()
    return loss_sum / x.shape[0], correct / x.shape[0]


@torch.no_grad()
def predict_latency(model, x, calls, warmup):
    """Mean seconds per single-sample forward call (batch of 1)."""
    model.eval()
    n = x.shape[0]
    for k in range(warmup):
        model(x[k % n:k % n + 1])
    t0 = time.perf_counter()
    for k in range(calls):
        j = k % n
        model(x[j:j + 1])
    return (time.perf_counter() - t0) / calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default="mlp", choices=sorted(MODELS))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--batch-size", type=int, default=0, help="default: 64 (mlp, cnn), 32 (lstm)")
    ap.add_argument("--iters", type=int, default=1000, help="lstm: timed training steps")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--predict-calls", type=int, default=2000)
    ap.add_argument("--predict-warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-samples", type=int, default=0,
                    help="train on only the first N images (0: all 60,000; for quick checks)")
    ap.add_argument("--data-dir", default=os.environ.get("FASHION_MNIST_DIR", DEFAULT_DATA))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.batch_size <= 0:
        args.batch_size = 32 if args.model == "lstm" else 64
    if args.model == "lstm":
        bench_lstm(args)
        return

    build, sample_shape = MODELS[args.model]
    try:
        x_train, y_train = load_split(args.data_dir, "train")
        x_test, y_test = load_split(args.data_dir, "t10k")
    except OSError as e:
        sys.exit(f"torch_ref.py: cannot read Fashion-MNIST from {args.data_dir}: {e}")
    x_train = x_train.reshape(-1, *sample_shape).contiguous()
    x_test = x_test.reshape(-1, *sample_shape).contiguous()
    if args.train_samples > 0:
        x_train, y_train = x_train[:args.train_samples], y_train[:args.train_samples]

    model = build()
    seconds, throughput = train(model, x_train, y_train, args.epochs, args.batch_size, args.lr)
    test_loss, test_acc = evaluate(model, x_test, y_test)
    latency = predict_latency(model, x_test, args.predict_calls, args.predict_warmup)

    print(f"model={args.model}")
    print(f"torch_version={torch.__version__}")
    print(f"threads={torch.get_num_threads()}")
    print(f"epochs={args.epochs}")
    print(f"train_seconds={seconds:.3f}")
    print(f"train_samples_per_sec={throughput:.1f}")
    print(f"test_loss={test_loss:.4f}")
    print(f"test_accuracy={test_acc:.4f}")
    print(f"predict_us_per_sample={latency * 1e6:.2f}")


if __name__ == "__main__":
    main()
