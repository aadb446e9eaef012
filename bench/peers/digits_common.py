"""What bench_line.py and bench_ntk.py share: examples/digits_mlp.nn's model in PyTorch, its
weights from an nnc safetensors file, and the digits. Import it after pinning the process
(it imports numpy and torch)."""
import json
import struct

import numpy as np
import torch


class Mlp(torch.nn.Module):
    """x/16, Linear(64, 128), ReLU, Linear(128, 10): digits_mlp's model."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x / 16)))


def load_safetensors(path):
    """name -> float32 tensor (the format: u64 header length, JSON header, raw data)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        start, end = info["data_offsets"]
        array = np.frombuffer(data[8 + n + start:8 + n + end], dtype="<f4")
        out[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return out


def digits(path):
    """The features and labels of a digits CSV (label column `label`), in file order."""
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    with open(path) as f:
        label = f.readline().strip().split(",").index("label")
    x = torch.from_numpy(np.delete(rows, label, axis=1).copy())
    y = torch.from_numpy(rows[:, label].astype(np.int64))
    return x, y
