"""Hypothesis strategies for convolution and pooling configurations (odd shapes)."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from conftest import MEDIUM_CHANNELS, MEDIUM_MAPS, ODD_CHANNELS, ODD_MAPS, out_size, pads2d


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def conv2d_configs(draw, max_kernel=5, allow_same=True, medium=False):
    """A valid conv2d configuration: dict of shapes and arguments in API form."""
    chans = MEDIUM_CHANNELS if medium else ODD_CHANNELS
    c = draw(st.sampled_from(chans))
    h, w = draw(st.sampled_from(MEDIUM_MAPS if medium else ODD_MAPS))
    n = draw(st.sampled_from((1, 2) if medium else (1, 1, 2, 3)))
    kind = draw(st.sampled_from(("dense", "dense", "grouped", "depthwise")))
    if kind == "dense":
        groups = 1
    elif kind == "depthwise":
        groups = c
    else:
        groups = draw(st.sampled_from(_divisors(c)))
    mult = draw(st.sampled_from((1, 2, 3)))
    if groups == 1:
        co = draw(st.sampled_from(chans + ((2, 5) if not medium else (1, 7, 65))))
    else:
        co = groups * mult
    kh = draw(st.integers(1, max_kernel))
    kw = draw(st.integers(1, max_kernel))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pform = draw(st.sampled_from(("int", "pair", "quad", "quad", "same", "valid")
                                 if allow_same else ("int", "pair", "quad", "quad")))
    if pform == "int":
        padding = draw(st.integers(0, 3))
    elif pform == "pair":
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    elif pform == "quad":
        padding = tuple(draw(st.integers(0, 3)) for _ in range(4))
    else:
        padding = pform
    # scalar forms of stride/dilation sometimes
    if stride[0] == stride[1] and draw(st.booleans()):
        stride = stride[0]
    if dilation[0] == dilation[1] and draw(st.booleans()):
        dilation = dilation[0]
    t, l, b, r = pads2d(padding, (h, w), (kh, kw), stride, dilation)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    ho = out_size(h, t, b, kh, sh, dh)
    wo = out_size(w, l, r, kw, sw, dw)
    assume(ho >= 1 and wo >= 1)
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(n=n, c=c, h=h, w=w, co=co, kh=kh, kw=kw, stride=stride, padding=padding,
                dilation=dilation, groups=groups, bias=bias, seed=seed,
                pads=(t, l, b, r), out=(ho, wo))


def windows_cover(n, pad_begin, k, stride, dilation, out):
    """True if every output window along an axis has at least one tap inside [0, n)."""
    for o in range(out):
        start = o * stride - pad_begin
        if not any(0 <= start + i * dilation < n for i in range(k)):
            return False
    return True


@st.composite
def pool2d_configs(draw, with_dilation=True, symmetric_only=False, max_kernel=4):
    """A valid pool configuration: every window overlaps the input (pad <= kernel//2)."""
    c = draw(st.sampled_from((1, 3, 13)))
    h, w = draw(st.sampled_from(ODD_MAPS))
    n = draw(st.sampled_from((1, 2)))
    kh = draw(st.integers(1, max_kernel))
    kw = draw(st.integers(1, max_kernel))
    if draw(st.booleans()):
        stride = None
        sh, sw = kh, kw
    else:
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride = (sh, sw)
    dh = dw = 1
    if with_dilation:
        dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    dilation = (dh, dw)
    ph, pw = kh // 2, kw // 2
    if symmetric_only:
        t = b = draw(st.integers(0, ph))
        l = r = draw(st.integers(0, pw))
        padding = (t, l)
    else:
        t, b = draw(st.integers(0, ph)), draw(st.integers(0, ph))
        l, r = draw(st.integers(0, pw)), draw(st.integers(0, pw))
        padding = (t, l, b, r)
    ceil_mode = draw(st.booleans())
    count_include_pad = draw(st.booleans())
    ho = out_size(h, t, b, kh, sh, dh, ceil_mode)
    wo = out_size(w, l, r, kw, sw, dw, ceil_mode)
    assume(ho >= 1 and wo >= 1)
    # every window must hold at least one input element (what an empty window gives is
    # not part of the contract)
    assume(windows_cover(h, t, kh, sh, dh, ho) and windows_cover(w, l, kw, sw, dw, wo))
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(n=n, c=c, h=h, w=w, kernel=(kh, kw), stride=stride, padding=padding,
                pads=(t, l, b, r), dilation=dilation, ceil_mode=ceil_mode,
                count_include_pad=count_include_pad, seed=seed, out=(ho, wo),
                strides=(sh, sw))
