"""Cross-check nnc's Embedding, flatten and concat against PyTorch.

Usage (needs torch, numpy, safetensors; CI does not run it):
    python scripts/torch_embedding_crosscheck.py target/debug/nnc
Writes a small id data set (CSV) and a model using an id input, an Embedding, flatten and a
DenseNet-style concat; trains it for a few steps with nnc (both backends), loads the weights
into the equivalent torch.nn model under the same state_dict names (strict), and compares
the loss and accuracy (`nnc eval`) and the gradients of the first batch (`nnc grad`) with
PyTorch's, in float64. Also checks that the initial embedding table is N(0, 1) like
torch.nn.Embedding's. Exits non-zero on any mismatch.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

NNC = sys.argv[1] if len(sys.argv) > 1 else "target/debug/nnc"
tmp = tempfile.mkdtemp()
V, T, D, C, N = 10, 3, 4, 2, 96

MODEL = f"""
model EmbedConcat {{
    input tok: class[B, {T}] of {V}
    label y: class[B] of {C}
    emb = Embedding({V} -> {D})
    fc1 = Dense({T * D} -> 5)
    fc2 = Dense({T * D + 5} -> {C})
    e      = flatten(emb(tok))
    h      = tanh(fc1(e))
    logits = fc2(concat(e, h))
    loss   = cross_entropy(logits, y)
    metric accuracy(logits, y)
}}
optimizer sgd(lr = 0.5, momentum = 0.9)
train {{ data = csv("ids.csv", label = "label"), batch = 16, seed = 4 }}
"""


class EmbedConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.fc1 = nn.Linear(T * D, 5)
        self.fc2 = nn.Linear(T * D + 5, C)

    def forward(self, tok):
        e = torch.flatten(self.emb(tok), 1)
        h = torch.tanh(self.fc1(e))
        return self.fc2(torch.cat([e, h], dim=-1))


def run(*args):
    out = subprocess.run([NNC, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nnc {' '.join(args)} failed: {out.stderr}")
    return out.stdout


rng = np.random.default_rng(1)
tok = rng.integers(0, V, size=(N, T))
# A learnable rule with repeated ids in every batch: class 1 when id 3 or 7 occurs.
lab = np.isin(tok, [3, 7]).any(axis=1).astype(np.int64)
with open(os.path.join(tmp, "ids.csv"), "w") as f:
    f.write(",".join([f"t{j}" for j in range(T)] + ["label"]) + "\n")
    for row, l in zip(tok, lab):
        f.write(",".join(str(v) for v in row) + f",{l}\n")
nn_file = os.path.join(tmp, "model.nn")
with open(nn_file, "w") as f:
    f.write(MODEL)

tok_t, lab_t = torch.tensor(tok), torch.tensor(lab)
worst_all = 0.0
for backend in ["interp", "jit"]:
    w = os.path.join(tmp, f"w_{backend}.safetensors")
    g = os.path.join(tmp, f"g_{backend}.safetensors")
    run("train", nn_file, "--steps", "15", "--save", w, "--quiet", "--backend", backend)
    model = EmbedConcat()
    model.load_state_dict(load_file(w), strict=True)  # same names and shapes, or this raises
    model.double()
    out = run("eval", nn_file, "--weights", w)
    got = {l.split()[0]: float(l.split()[1]) for l in out.splitlines()[1:]}
    with torch.no_grad():
        z = model(tok_t)
        loss = F.cross_entropy(z, lab_t).item()
        acc = (z.argmax(1) == lab_t).double().mean().item()
    print(f"{backend}: loss nnc {got['loss']:.6f} torch {loss:.6f}; "
          f"accuracy nnc {got['accuracy']:.6f} torch {acc:.6f}")
    assert abs(got["loss"] - loss) < 1e-4 * max(1, loss), "loss differs"
    assert abs(got["accuracy"] - acc) < 2e-6, "accuracy differs"
    run("grad", nn_file, "--weights", w, "--out", g, "--batch", "16")
    grads = load_file(g)
    model.zero_grad()
    F.cross_entropy(model(tok_t[:16]), lab_t[:16]).backward()
    worst = 0.0
    for name, p in model.named_parameters():
        a, b = grads[name].double(), p.grad
        worst = max(worst, ((a - b).abs().max() / (b.abs().max() + 1e-12)).item())
    print(f"{backend}: gradients of {len(grads)} tensors ({', '.join(grads)}), "
          f"worst relative difference {worst:.2e}")
    assert worst < 1e-4, "gradients differ"
    worst_all = max(worst_all, worst)

# The initial table is N(0, 1), like torch.nn.Embedding's default (weights saved before any
# step changes it visibly: --steps 1 with lr 1e-30).
big = os.path.join(tmp, "big.nn")
with open(big, "w") as f:
    f.write(f"""
model Big {{
    input tok: class[B, {T}] of {V}
    label y: class[B] of {C}
    emb = Embedding(2000 -> 50)
    fc  = Dense(50 -> {C})
    loss = cross_entropy(fc(mean(emb(tok), axis = 1)), y)
}}
optimizer sgd(lr = 1e-30)
train {{ data = csv("ids.csv", label = "label"), batch = 16, seed = 9 }}
""")
w = os.path.join(tmp, "big.safetensors")
run("train", big, "--steps", "1", "--save", w, "--quiet")
table = load_file(w)["emb.weight"].double()
ref = nn.Embedding(2000, 50).weight.detach().double()
print(f"init: nnc mean {table.mean():.4f} std {table.std():.4f}; "
      f"torch mean {ref.mean():.4f} std {ref.std():.4f}")
assert abs(table.mean()) < 0.02 and abs(table.std() - 1) < 0.02, "initialization differs"
print(f"ok (worst gradient difference {worst_all:.2e})")
