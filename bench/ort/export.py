"""Export bench/torch_ref.py's MLP and CNN to ONNX for the ONNX Runtime reference (bench/ort/run.sh).

    /usr/bin/python3 bench/ort/export.py OUT_DIR

Writes OUT_DIR/mlp.onnx and OUT_DIR/cnn.onnx: the same layers as torch_ref.py (the CNN in NCHW, as
PyTorch builds it), random initial weights (timing only), a dynamic batch dimension, opset 13.
Needs only torch: torch.onnx.export writes the file itself.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch_ref  # noqa: E402  (bench/torch_ref.py: the models)


def export(model, example, path):
    model.eval()
    torch.onnx.export(model, example, path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=13)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: export.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    export(torch_ref.build_mlp(), torch.zeros(1, 784), os.path.join(out, "mlp.onnx"))
    export(torch_ref.build_cnn(), torch.zeros(1, 1, 28, 28), os.path.join(out, "cnn.onnx"))


if __name__ == "__main__":
    main()
