#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/):
small valid files of each loader's format, in the form its target expects
(see the comment at the top of each fuzz_*.c). Run it from anywhere; the
files are committed, so it only needs running when a seed changes. Inputs
that once crashed a target are kept beside the seeds (crash-*) and are not
written by this script."""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def idx(dims, values):
    head = bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes(values)


def gz(data):
    return gzip.compress(data, mtime=0)


def npy(descr, shape, payload, version=1):
    text = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(text) + 1) % 64) % 64
    text = text + " " * pad + "\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text.encode() + payload


def safetensors(tensors, meta):
    """tensors: list of (name, shape, floats); meta: the __metadata__ dict."""
    header, off, data = {"__metadata__": meta}, 0, b""
    for name, shape, vals in tensors:
        blob = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        off += len(blob)
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    # IDX: images then labels, 10 classes (the model keeps 1..8)
    pairs = {
        "three_2x2": (idx([3, 2, 2], [0, 255, 17, 128, 1, 2, 3, 4, 200, 100, 50, 25]), idx([3], [1, 2, 3])),
        "five_rank4": (idx([5, 1, 2, 2], list(range(0, 200, 10))), idx([5], [0, 4, 8, 9, 5])),
        "two_3x1": (idx([2, 3, 1], [9, 8, 7, 6, 5, 4]), idx([2], [7, 1])),
    }
    for name, (images, labels) in pairs.items():
        put("fuzz_idx", name, images + labels)
        put("fuzz_idx_gz", name, gz(images) + gz(labels))

    # CSV: features then one label column (classes 0..2)
    put("fuzz_csv", "header", b"a,b,c,label\n1,2,3,0\n4.5,-6,7e2,1\n0,0,0,2\n8,9,10,1\n")
    put("fuzz_csv", "no_header_crlf", b"1.0, 2.0, 1\r\n3.0, 4.0, 0\r\n\r\n5.0, 6.0, 1\r\n-1, -2, 0\r\n")
    put("fuzz_csv", "quoted_blank_lines", b'"x","y","class"\n\n"1","2","0"\n  \n"3","4","1"\n5,6,1\n7,8,0\n')
    put("fuzz_csv", "one_feature", b"v,l\n1,1\n2,0\n3,1\n4,0\n")
    put("fuzz_csv", "named_label_classes", b"id,label,w\n1,cat,0.5\n2,dog,1.5\n3,cat,2\n4,bird,-1\n5,dog,3\n")
    put("fuzz_csv", "named_label_numbers", b"label,a,b\n0,1,2\n1,3,4\n2,5,6\n1,7,8\n")

    # NPY: inputs then labels
    f4 = struct.pack("<6f", 0.5, -1.0, 2.0, 3.25, -4.5, 6.0)
    put("fuzz_npy", "f4_i8", npy("<f4", (3, 2), f4) + npy("<i8", (3,), struct.pack("<3q", 0, 2, 1)))
    put("fuzz_npy", "u1_f8_onehot", npy("|u1", (2, 2, 2), bytes(range(8))) +
        npy("<f8", (2, 3), struct.pack("<6d", 1, 0, 0, 0, 0, 1)))
    put("fuzz_npy", "f8_i4_v2", npy("<f8", (4, 1), struct.pack("<4d", 1, 2, 3, 4), version=2) +
        npy("<i4", (4,), struct.pack("<4i", 2, 1, 0, 2), version=2))
    put("fuzz_npy", "scalar", npy("<f4", (), struct.pack("<f", 1.5)))

    # checkpoints of the target's models (fuzz: dense/kernel [4,3], dense/bias [3])
    kernel = [0.1 * i - 0.5 for i in range(12)]
    bias = [0.25, -0.75, 1.5]
    put("fuzz_checkpoint", "two_tensors", safetensors(
        [("dense/kernel", [4, 3], kernel), ("dense/bias", [3], bias)], {"format": "pt", "model": "fuzz"}))
    put("fuzz_checkpoint", "series_metadata", safetensors(
        [("dense/kernel", [4, 3], kernel), ("dense/bias", [3], bias)],
        {"format": "pt", "model": "fuzz", "series_mean": "12.5", "series_std": "3.0000000000000004",
         "series_column": "value", "series_window": "4", "series_horizon": "2"}))
    put("fuzz_checkpoint", "three_tensors", safetensors(
        [("dense/kernel", [4, 3], kernel), ("dense/bias", [3], bias), ("head/kernel", [3, 2], [1, 2, 3, 4, 5, 6])],
        {"format": "pt", "model": "fuzz3"}))
    put("fuzz_checkpoint", "bias_only_escapes", safetensors(
        [("dense/bias", [3], bias), ("other\\\"t\u00e9", [1], [7.0])], {"format": "pt", "model": "other"}))

    # time series: a column "value" (window 3, horizon 2, 2 + 2 held out, season 4); column 1 by index
    rows = "".join("2024-%02d,%g,%d\n" % (i + 1, 10 + (i % 4) * 2.5 + 0.1 * i, i) for i in range(12))
    put("fuzz_series", "date_value_other", ("date,value,other\n" + rows).encode())
    put("fuzz_series", "single_column", "".join("%g\n" % (i * 0.5) for i in range(10)).encode())
    put("fuzz_series", "quoted_header", ('"when","value"\r\n' + "".join(
        '"d%d","%g"\r\n' % (i, (i * 7) % 5) for i in range(11))).encode())
    put("fuzz_series", "missing_values", b"t,value\n0,1\n1,NA\n2,3\n3,\n4,nan\n5,6\n6,7\n7,8\n8,9\n9,10\n10,11\n11,12\n")


if __name__ == "__main__":
    main()
