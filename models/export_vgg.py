"""Export a torchvision-layout VGG (random weights, fixed seed) to ONNX.

    python models/export_vgg.py --arch vgg16 --out /tmp/vgg16.onnx [--batch-norm]
        [--input-size 224] [--num-classes 1000] [--seed 0]

or, from tests and benches::

    from export_vgg import export_vgg          # with models/ on sys.path
    export_vgg("vgg11", "/tmp/vgg11.onnx", input_size=64)

The module layout is torchvision's (written out here; torchvision itself is not a
dependency): ``features`` is an ``nn.Sequential`` of Conv2d(3x3, pad 1) [+ BatchNorm2d]
+ ReLU and MaxPool2d(2, 2) with torchvision's indices (features.0, features.1, ...),
``avgpool`` is ``AdaptiveAvgPool2d``, ``classifier`` is Sequential(Linear, ReLU, Dropout,
Linear, ReLU, Dropout, Linear). At 224x224 the features end at 512x7x7 and avgpool is
torchvision's ``AdaptiveAvgPool2d((7, 7))`` (the identity there). At another input size
avgpool's output size is the feature map's own (again the identity) and classifier.0
takes 512*(H//32)*(W//32) features, the same convention as ``fastconv.models.vgg*``, so
the export's weights load into ``fc.models.vgg11(input_size=(3, H, W))``. Pass
``avgpool=7`` to keep torchvision's 7x7 pooling at any size (the TorchScript exporter
then needs the feature map to be a multiple of 7).

Weights: He-normal (fan_in) convolutions and linears, so activations keep their scale
through the depth of the net; small random biases; with --batch-norm, random BatchNorm
affine parameters and running statistics, so that BatchNorm folding is exercised. All
drawn from ``torch.manual_seed(seed)``; the model is exported in eval mode (Dropout off,
BatchNorm on running statistics). With --batch-norm the graph keeps its
BatchNormalization nodes (--fold-batch-norm lets the exporter fold them into the convs).

The exporter is torch.onnx.export(dynamo=False) (the TorchScript-based one; it needs no
onnxscript), opset 17, a dynamic batch axis, weights inline as plain initializers. The
VGG-16 file is about 550 MB: generate it on the fly, never commit it.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

# Conv widths, "M" = MaxPool2d(2, 2): torchvision's configurations A, B, D, E.
CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"

SizeArg = Union[int, Sequence[int]]


def _pair(v: SizeArg, what: str) -> Tuple[int, int]:
    if isinstance(v, int):
        h = w = v
    else:
        v = tuple(int(x) for x in v)
        if len(v) == 3:          # (C, H, W) as fastconv.models takes it
            v = v[1:]
        if len(v) != 2:
            raise ValueError(f"{what} must be an int, (H, W) or (C, H, W), got {v!r}")
        h, w = v
    if h < 1 or w < 1:
        raise ValueError(f"{what} must be positive, got {(h, w)}")
    return h, w


class VGG(nn.Module):
    """torchvision's VGG module layout: features / avgpool / classifier."""

    def __init__(self, cfg, batch_norm: bool = False, num_classes: int = 1000,
                 input_size: SizeArg = 224, avgpool: Optional[SizeArg] = None):
        super().__init__()
        layers = []
        c = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(c, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            c = v
        self.features = nn.Sequential(*layers)
        h, w = _pair(input_size, "input_size")
        fh, fw = h, w
        for v in cfg:
            if v == "M":
                fh, fw = fh // 2, fw // 2
        if fh < 1 or fw < 1:
            raise ValueError(f"input_size {(h, w)} is too small: {cfg.count('M')} 2x2 "
                             f"poolings need at least {2 ** cfg.count('M')} pixels a side")
        # The identity at the feature map's own size (7x7 at 224: torchvision's module).
        ph, pw = (fh, fw) if avgpool is None else _pair(avgpool, "avgpool")
        self.avgpool = nn.AdaptiveAvgPool2d((ph, pw))
        self.classifier = nn.Sequential(
            nn.Linear(c * ph * pw, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes))
        self.input_hw = (h, w)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


@torch.no_grad()
def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            m.bias.uniform_(-0.1, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)


def build_vgg(arch: str = "vgg16", batch_norm: bool = False, input_size: SizeArg = 224,
              num_classes: int = 1000, seed: int = 0,
              avgpool: Optional[SizeArg] = None) -> VGG:
    """The torch module, seeded weights, in eval mode."""
    if arch not in CONFIGS:
        raise ValueError(f"arch must be one of {sorted(CONFIGS)}, got {arch!r}")
    torch.manual_seed(seed)
    model = VGG(CONFIGS[arch], batch_norm=batch_norm, num_classes=num_classes,
                input_size=input_size, avgpool=avgpool)
    _init_weights(model)
    return model.eval()


def export_vgg(arch: str, path, batch_norm: bool = False, input_size: SizeArg = 224,
               seed: int = 0, num_classes: int = 1000,
               avgpool: Optional[SizeArg] = None, fold_batch_norm: bool = False) -> str:
    """Build the seeded VGG and export it to ONNX at `path`; returns the path (a str).

    Input "input" [N, 3, H, W] (N dynamic), output "output" [N, num_classes].
    With batch_norm, the graph keeps its BatchNormalization nodes (training_mode=0)
    unless fold_batch_norm=True, which lets the exporter fold them into the convs (its
    default for an eval-mode model; the graph is then that of the plain VGG).
    """
    model = build_vgg(arch, batch_norm=batch_norm, input_size=input_size,
                      num_classes=num_classes, seed=seed, avgpool=avgpool)
    return export_module(model, path, fold_batch_norm=fold_batch_norm)


def export_module(model: VGG, path, fold_batch_norm: bool = False) -> str:
    """Export a module from build_vgg (eval mode) to ONNX at `path`; returns the path.
    For callers that also want the torch module itself, e.g. as a float64 reference,
    without building (and initialising) it twice."""
    h, w = model.input_hw
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    path = str(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():
        # torch >= 2.9 flags the TorchScript exporter as legacy; it is the one we want
        # (no onnxscript, plain initializers).
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # ...and warns that PRESERVE plus constant folding may alter parameters of a model
        # in training mode; ours is in eval mode (checked against torch in _check).
        warnings.filterwarnings("ignore", message="It is recommended that constant folding")
        torch.onnx.export(
            model, (torch.zeros(1, 3, h, w),), path, dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
            do_constant_folding=True, export_params=True,
            # PRESERVE on an eval-mode model: BatchNorm exported as inference
            # BatchNormalization; EVAL would fold it into the preceding Conv.
            training=(torch.onnx.TrainingMode.PRESERVE if has_bn and not fold_batch_norm
                      else torch.onnx.TrainingMode.EVAL))
    model.train(was_training)
    return path


def _check(path: str, arch: str, batch_norm: bool, input_size, seed: int, num_classes: int,
           avgpool) -> None:
    """Run the export in onnxruntime on a random batch of 2 and compare with torch."""
    import numpy as np
    import onnxruntime as ort

    model = build_vgg(arch, batch_norm, input_size, num_classes, seed, avgpool)
    h, w = model.input_hw
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w)).astype(np.float32)
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    t1 = time.perf_counter()
    y = sess.run(None, {INPUT_NAME: x})[0]
    t2 = time.perf_counter()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    err = float(np.abs(y - ref).max())
    scale = float(np.abs(ref).max())
    print(f"onnxruntime: session {t1 - t0:.2f} s, first run (batch 2) {t2 - t1:.2f} s; "
          f"max |ort - torch| = {err:.3g} (output scale {scale:.3g})")
    if not err <= 1e-4 * scale:
        raise SystemExit("onnxruntime's output differs from torch's")


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description="Export a torchvision-layout VGG to ONNX.")
    ap.add_argument("--arch", default="vgg16", choices=sorted(CONFIGS))
    ap.add_argument("--out", required=True, help="path of the .onnx file to write")
    ap.add_argument("--batch-norm", action="store_true", help="the *_bn variant")
    ap.add_argument("--input-size", type=int, default=224, help="square input side")
    ap.add_argument("--fold-batch-norm", action="store_true",
                    help="let the exporter fold BatchNorm into the convs")
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--avgpool", type=int, default=None,
                    help="AdaptiveAvgPool2d output side (default: the feature map's, "
                         "i.e. 7 at 224)")
    ap.add_argument("--check", action="store_true",
                    help="run the export in onnxruntime and compare with torch")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = export_vgg(args.arch, args.out, batch_norm=args.batch_norm,
                      input_size=args.input_size, seed=args.seed,
                      num_classes=args.num_classes, avgpool=args.avgpool,
                      fold_batch_norm=args.fold_batch_norm)
    size = Path(path).stat().st_size
    print(f"wrote {path} ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    if args.check:
        _check(path, args.arch, args.batch_norm, args.input_size, args.seed,
               args.num_classes, args.avgpool)
    return path


if __name__ == "__main__":
    main()
