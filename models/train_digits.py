"""Train a small VGG-style ConvNet on scikit-learn's bundled digits and export it to ONNX.

Rebuild the shipped artefacts with ``python models/train_digits.py`` (CPU, torch 2.13.0,
a few seconds on one core). Writes into fastconv/data/:

- digits_vgg.onnx     the trained network (opset 17, dynamic batch axis, weights inline)
- digits_heldout.npz  the held-out split: ``x`` float32 [N,1,32,32] preprocessed,
                      ``y`` uint8 [N] labels, ``raw`` uint8 [N,8,8] original images,
                      ``index`` int32 [N] rows of load_digits()
- digits_vgg.json     accuracy, counts, seed, versions, preprocessing constants, date

Preprocessing (also in the JSON): pixels 0..16 -> /16 -> [0,1]; bilinear upsample
8x8 -> 32x32 (align_corners=False, as torch.nn.functional.interpolate); then
(x - mean) / std with mean/std of the training split's upsampled pixels.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
IMAGE_SIZE = 32
PIXEL_MAX = 16.0          # load_digits pixels are integers 0..16
TEST_SIZE = 0.2
SPLIT_RANDOM_STATE = 0
EPOCHS = 12
BATCH_SIZE = 32
LR = 2e-3
WEIGHT_DECAY = 1e-4
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "fastconv" / "data"


class DigitsVGG(nn.Module):
    """Three conv blocks (3x3 conv pad 1 + ReLU, 2x2 max pool), then a two-layer head."""

    def __init__(self, channels=(16, 32, 64), hidden=64, num_classes=10):
        super().__init__()
        layers = []
        cin = 1
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, 2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        side = IMAGE_SIZE // 2 ** len(channels)
        self.classifier = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(cin * side * side, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # One thread and deterministic kernels: the same seed gives the same weights bit for bit.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def upsample(images01: np.ndarray) -> np.ndarray:
    """[N,8,8] floats in [0,1] -> [N,1,32,32] float32, bilinear (align_corners=False)."""
    t = torch.from_numpy(images01.astype(np.float32)).unsqueeze(1)
    return F.interpolate(t, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear",
                         align_corners=False).numpy()


def load_split():
    digits = load_digits()
    raw = digits.images.astype(np.uint8)           # [1797, 8, 8], values 0..16
    labels = digits.target.astype(np.int64)
    idx = np.arange(len(labels))
    tr, te = train_test_split(idx, test_size=TEST_SIZE, random_state=SPLIT_RANDOM_STATE,
                              stratify=labels)
    up = upsample(raw / PIXEL_MAX)
    # Normalisation constants come from the training split only.
    mean = float(up[tr].mean())
    std = float(up[tr].std())
    x = ((up - np.float32(mean)) / np.float32(std)).astype(np.float32)
    return raw, labels, x, tr, te, mean, std


def train(model, x_tr, y_tr, epochs=EPOCHS, log=print):
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    xt = torch.from_numpy(x_tr)
    yt = torch.from_numpy(y_tr)
    gen = torch.Generator().manual_seed(SEED)
    n = len(yt)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total, correct = 0.0, 0
        for i in range(0, n, BATCH_SIZE):
            b = perm[i:i + BATCH_SIZE]
            out = model(xt[b])
            loss = F.cross_entropy(out, yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
            correct += int((out.argmax(1) == yt[b]).sum())
        sched.step()
        log(f"epoch {epoch + 1:2d}/{epochs}  loss {total / n:.4f}  train acc {correct / n:.4f}")


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(torch.from_numpy(x)).numpy()


def export_onnx(model, path: Path) -> str:
    """Export with the TorchScript exporter (dynamo=False): plain initializers, standard
    ops, no onnxscript dependency. Returns the exporter's name for the record."""
    model.eval()
    dummy = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)
    with warnings.catch_warnings():
        # torch >= 2.9 flags the TorchScript exporter as legacy; it is what we want here.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            model, (dummy,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
            do_constant_folding=True, export_params=True)
    return "torch.onnx.export(dynamo=False) (TorchScript-based)"


def verify_onnx(path: Path, x: np.ndarray, torch_logits: np.ndarray):
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    ops = sorted({n.op_type for n in proto.graph.node})
    allowed = {"Conv", "Relu", "MaxPool", "Flatten", "Reshape", "Gemm", "MatMul", "Add"}
    if not set(ops) <= allowed:
        raise RuntimeError(f"non-standard ops in export: {sorted(set(ops) - allowed)}")
    for init in proto.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise RuntimeError(f"initializer {init.name} uses external data")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_logits = sess.run(None, {INPUT_NAME: x})[0]
    if not np.array_equal(ort_logits.argmax(1), torch_logits.argmax(1)):
        raise RuntimeError("onnxruntime and torch disagree on an argmax")
    scale = float(np.abs(torch_logits).max())
    err = float(np.abs(ort_logits - torch_logits).max())
    if err > 1e-4 * scale:
        raise RuntimeError(f"onnxruntime logits differ from torch by {err} (scale {scale})")
    return proto, ops, err, scale, ort_logits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args(argv)

    import onnx
    import onnxruntime as ort
    import sklearn

    seed_everything(SEED)
    raw, labels, x, tr, te, mean, std = load_split()
    model = DigitsVGG()
    t0 = time.perf_counter()
    train(model, x[tr], labels[tr], epochs=args.epochs)
    train_seconds = time.perf_counter() - t0

    logits = predict(model, x[te])
    acc = float((logits.argmax(1) == labels[te]).mean())
    train_acc = float((predict(model, x[tr]).argmax(1) == labels[tr]).mean())
    print(f"held-out accuracy {acc:.4f} ({int((logits.argmax(1) == labels[te]).sum())}"
          f"/{len(te)}), train accuracy {train_acc:.4f}, training {train_seconds:.1f} s")
    if acc < 0.97:
        raise SystemExit(f"held-out accuracy {acc:.4f} is below 0.97")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out_dir / "digits_vgg.onnx"
    exporter = export_onnx(model, onnx_path)
    proto, ops, err, scale, ort_logits = verify_onnx(onnx_path, x[te], logits)
    ort_acc = float((ort_logits.argmax(1) == labels[te]).mean())
    print(f"ONNX ok: ops {ops}, max |ort - torch| = {err:.2e} (logit scale {scale:.2f})")

    np.savez_compressed(
        args.out_dir / "digits_heldout.npz",
        x=x[te], y=labels[te].astype(np.uint8), raw=raw[te],
        index=te.astype(np.int32))

    record = {
        "model": "digits_vgg.onnx",
        "heldout_file": "digits_heldout.npz",
        "architecture": ("conv3x3(1->16)+ReLU, maxpool2; conv3x3(16->32)+ReLU, maxpool2; "
                         "conv3x3(32->64)+ReLU, maxpool2; Flatten; Linear(1024->64)+ReLU; "
                         "Linear(64->10)"),
        "num_params": int(sum(p.numel() for p in model.parameters())),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_shape": [None, 1, IMAGE_SIZE, IMAGE_SIZE],
        "heldout_accuracy": acc,
        "heldout_correct": int((logits.argmax(1) == labels[te]).sum()),
        "onnxruntime_heldout_accuracy": ort_acc,
        "train_accuracy": train_acc,
        "num_train": int(len(tr)),
        "num_heldout": int(len(te)),
        "num_total": int(len(labels)),
        "split": {"test_size": TEST_SIZE, "random_state": SPLIT_RANDOM_STATE,
                  "stratify": "labels", "function": "sklearn.model_selection.train_test_split"},
        "seed": SEED,
        "training": {"epochs": args.epochs, "batch_size": BATCH_SIZE, "optimizer": "Adam",
                     "lr": LR, "weight_decay": WEIGHT_DECAY, "schedule": "cosine",
                     "threads": 1, "seconds": round(train_seconds, 2)},
        "preprocessing": {
            "dataset": "sklearn.datasets.load_digits (8x8, pixels 0..16)",
            "scale": 1.0 / PIXEL_MAX,
            "upsample": {"size": [IMAGE_SIZE, IMAGE_SIZE], "mode": "bilinear",
                         "align_corners": False},
            "mean": mean,
            "std": std,
            "formula": "x = (bilinear_upsample(raw / 16) - mean) / std",
        },
        "onnx": {"opset": OPSET, "exporter": exporter, "ops": ops,
                 "bytes": onnx_path.stat().st_size,
                 "max_abs_diff_vs_torch": err},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                     "scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "date": datetime.date.today().isoformat(),
    }
    with open(args.out_dir / "digits_vgg.json", "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    for name in ("digits_vgg.onnx", "digits_heldout.npz", "digits_vgg.json"):
        print(f"wrote {args.out_dir / name} ({(args.out_dir / name).stat().st_size} bytes)")
    return record


if __name__ == "__main__":
    main()
