"""The exceptions fastconv raises (see DESIGN.md)."""


class ShapeError(ValueError):
    """Shapes that do not fit: names the layer or function, the shapes and the rule."""


class UnsupportedOperatorError(NotImplementedError):
    """An ONNX operator fastconv cannot run: names the op, its opset and the node."""


class ModelFormatError(ValueError):
    """A model file that is corrupt, truncated or not a model."""
