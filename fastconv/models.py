"""Model builders: VGG-11/13/16/19 (torchvision's layout), a CIFAR VGG, a small convnet.

Every builder returns a compiled `fastconv.Model` with He-initialised weights. Each
layer draws from its own seed, derived from the builder's `seed` and the layer's index,
so layers differ from each other and a (builder, seed) pair always gives the same bits.

Node names follow torchvision's module paths, so that the weights of a torchvision-style
export map onto the nodes by name and by order::

    features.0   Conv2d(3, 64, 3, padding=1)
    features.1   ReLU                      (features.1 is BatchNorm2d with batch_norm=True,
    features.2   Conv2d(64, 64, 3, padding=1)   and every index shifts as in torchvision)
    ...
    features.4   MaxPool2d(2, 2)
    ...
    flatten      Flatten                   (torch.flatten(x, 1) in torchvision's forward)
    classifier.0 Linear(512*7*7, 4096)
    classifier.1 ReLU
    classifier.2 Dropout(0.5)
    classifier.3 Linear(4096, 4096)
    classifier.4 ReLU
    classifier.5 Dropout(0.5)
    classifier.6 Linear(4096, num_classes)

torchvision puts `AdaptiveAvgPool2d((7, 7))` between the features and the classifier.
For a 224x224 input the features end at 512x7x7 and that pooling is the identity, so it
is left out. For another `input_size` the network is built without it, as the shapes
come: the classifier's first layer then takes 512*(H//32)*(W//32) features (H and W
must be at least 32 so that five 2x2 poolings leave a map), which means torchvision
weights for the first classifier layer fit only at 224x224 (or any 7x7 feature map).
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np

from fastconv import layers as L
from fastconv.graph import Model

__all__ = ["vgg11", "vgg13", "vgg16", "vgg19", "vgg", "cifar_vgg", "convnet", "VGG_CONFIGS"]

# Conv widths per stage, "M" = MaxPool2d(2, 2): the configurations A, B, D, E of
# Simonyan and Zisserman (2015), as torchvision names them.
VGG_CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}


def _layer_seed(seed: int, index: int) -> int:
    """A seed for layer `index` that differs per layer and per builder seed."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _input_size(input_size) -> Tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (channels, height, width), "
                         f"got {input_size!r}") from None
    if min(c, h, w) < 1:
        raise ValueError(f"input_size must be positive, got {(c, h, w)}")
    return c, h, w


def _features(cfg: Sequence, in_channels: int, batch_norm: bool, seed: int,
              algo: str) -> Tuple[List[L.Layer], int]:
    """torchvision's `make_layers`: conv3x3 pad 1 [+ BatchNorm2d] + ReLU, MaxPool2d(2, 2)."""
    out: List[L.Layer] = []
    c = in_channels
    for v in cfg:
        i = len(out)
        if v == "M":
            out.append(L.MaxPool2d(2, 2, name=f"features.{i}"))
            continue
        out.append(L.Conv2d(c, v, 3, padding=1, algo=algo, name=f"features.{i}",
                            seed=_layer_seed(seed, i)))
        if batch_norm:
            out.append(L.BatchNorm2d(v, name=f"features.{len(out)}"))
        out.append(L.ReLU(name=f"features.{len(out)}"))
        c = v
    return out, c


def _shape_after(layers: Sequence[L.Layer], shape) -> Tuple[int, ...]:
    """The per-sample shape after `layers`; a ShapeError names the layer that fails
    (an input too small for the poolings, say)."""
    shape = tuple(shape)
    for layer in layers:
        shape = tuple(layer.output_shape([shape]))
    return shape


def _linear(i: int, fin: int, fout: int, name: str, seed: int) -> L.Linear:
    # offset by 1000 so classifier seeds never coincide with feature seeds
    return L.Linear(fin, fout, name=name, seed=_layer_seed(seed, 1000 + i))


def vgg(cfg, num_classes: int = 1000, input_size=(3, 224, 224), batch_norm: bool = False,
        seed: int = 0, algo: str = "auto", name: str = "vgg") -> Model:
    """A VGG from a width list (see VGG_CONFIGS) in torchvision's layout (module docs)."""
    c, h, w = _input_size(input_size)
    feats, ch = _features(cfg, c, batch_norm, seed, algo)
    # torchvision's classifier, without AdaptiveAvgPool2d((7, 7)) (the identity at 224)
    fin = math.prod(_shape_after(feats, (c, h, w)))
    head = [
        L.Flatten(name="flatten"),
        _linear(0, fin, 4096, "classifier.0", seed),
        L.ReLU(name="classifier.1"),
        L.Dropout(0.5, name="classifier.2"),
        _linear(3, 4096, 4096, "classifier.3", seed),
        L.ReLU(name="classifier.4"),
        L.Dropout(0.5, name="classifier.5"),
        _linear(6, 4096, num_classes, "classifier.6", seed),
    ]
    return Model.sequential(feats + head, (c, h, w), name=name)


def _named_vgg(key: str, num_classes, input_size, batch_norm, seed, algo) -> Model:
    return vgg(VGG_CONFIGS[key], num_classes=num_classes, input_size=input_size,
               batch_norm=batch_norm, seed=seed, algo=algo,
               name=key + ("_bn" if batch_norm else ""))


def vgg11(num_classes: int = 1000, input_size=(3, 224, 224), batch_norm: bool = False,
          seed: int = 0, algo: str = "auto") -> Model:
    """VGG-11 (configuration A): 132,863,336 parameters at 1000 classes, 224x224."""
    return _named_vgg("vgg11", num_classes, input_size, batch_norm, seed, algo)


def vgg13(num_classes: int = 1000, input_size=(3, 224, 224), batch_norm: bool = False,
          seed: int = 0, algo: str = "auto") -> Model:
    """VGG-13 (configuration B): 133,047,848 parameters at 1000 classes, 224x224."""
    return _named_vgg("vgg13", num_classes, input_size, batch_norm, seed, algo)


def vgg16(num_classes: int = 1000, input_size=(3, 224, 224), batch_norm: bool = False,
          seed: int = 0, algo: str = "auto") -> Model:
    """VGG-16 (configuration D): 138,357,544 parameters, about 15.47 GMACs at 224x224."""
    return _named_vgg("vgg16", num_classes, input_size, batch_norm, seed, algo)


def vgg19(num_classes: int = 1000, input_size=(3, 224, 224), batch_norm: bool = False,
          seed: int = 0, algo: str = "auto") -> Model:
    """VGG-19 (configuration E): 143,667,240 parameters at 1000 classes, 224x224."""
    return _named_vgg("vgg19", num_classes, input_size, batch_norm, seed, algo)


def cifar_vgg(num_classes: int = 10, batch_norm: bool = False, seed: int = 0,
              algo: str = "auto") -> Model:
    """VGG-16's conv stack on a 3x32x32 input with a small classifier.

    features.0 .. features.30 (features.43 with batch_norm) as in vgg16: the five 2x2
    poolings take 32x32 down to 512x1x1; then `flatten`, `classifier.0` Linear(512, 512),
    `classifier.1` ReLU, `classifier.2` Linear(512, num_classes). No dropout and no
    softmax: the outputs are logits. 15.0M parameters at 10 classes (14.7M in the convs).
    """
    feats, ch = _features(VGG_CONFIGS["vgg16"], 3, batch_norm, seed, algo)
    head = [
        L.Flatten(name="flatten"),
        _linear(0, ch, 512, "classifier.0", seed),
        L.ReLU(name="classifier.1"),
        _linear(2, 512, num_classes, "classifier.2", seed),
    ]
    return Model.sequential(feats + head, (3, 32, 32),
                            name="cifar_vgg" + ("_bn" if batch_norm else ""))


def convnet(blocks=((32, 2), (64, 2)), fc=(128,), num_classes: int = 10,
            input_size=(3, 32, 32), seed: int = 0, algo: str = "auto") -> Model:
    """A small VGG-style network.

    Each block `(channels, n)` is n times [3x3 conv, padding 1 + ReLU] then
    MaxPool2d(2); then Flatten, one Linear + ReLU per entry of `fc`, a final Linear to
    `num_classes` and a Softmax (the outputs are class probabilities). Node names:
    `conv{b}_{i}`, `relu{b}_{i}`, `pool{b}` (b, i from 1), `flatten`, `fc{j}`,
    `relu_fc{j}`, `fc_out`, `softmax`.
    """
    c, h, w = _input_size(input_size)
    out: List[L.Layer] = []
    ch = c
    for b, block in enumerate(blocks, 1):
        try:
            width, n = (int(v) for v in block)
        except (TypeError, ValueError):
            raise ValueError(f"convnet: block {b} must be (channels, number of convs), "
                             f"got {block!r}") from None
        if width < 1 or n < 1:
            raise ValueError(f"convnet: block {b} = {tuple(block)}: channels and number of "
                             f"convs must be >= 1")
        for i in range(1, n + 1):
            out.append(L.Conv2d(ch, width, 3, padding=1, algo=algo, name=f"conv{b}_{i}",
                                seed=_layer_seed(seed, len(out))))
            out.append(L.ReLU(name=f"relu{b}_{i}"))
            ch = width
        out.append(L.MaxPool2d(2, name=f"pool{b}"))
    out.append(L.Flatten(name="flatten"))
    (fin,) = _shape_after(out, (c, h, w))
    for j, width in enumerate(fc, 1):
        out.append(_linear(j, fin, int(width), f"fc{j}", seed))
        out.append(L.ReLU(name=f"relu_fc{j}"))
        fin = int(width)
    out.append(_linear(0, fin, num_classes, "fc_out", seed))
    out.append(L.Softmax(name="softmax"))
    return Model.sequential(out, (c, h, w), name="convnet")
