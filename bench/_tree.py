"""Import the repository's fastconv, not an older installed one: the bench/ scripts and
the pytest-benchmark suite import this first. The tree goes first on sys.path when it
holds a compiled extension (an in-place build); otherwise an installed fastconv is used
and the tree is only a fallback."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def put_tree_on_path() -> None:
    pkg = ROOT / "fastconv"
    root = str(ROOT)
    if not pkg.is_dir():
        return
    built = any(pkg.glob("_kernels*.so")) or any(pkg.glob("_kernels*.pyd"))
    if built:
        if root not in sys.path:
            sys.path.insert(0, root)
        return
    # an unbuilt tree must not shadow an installed fastconv: `python -m pytest bench/`
    # from the checkout puts the working directory ('' or its path) first on sys.path
    sys.path[:] = [p for p in sys.path if _resolved(p) != ROOT]
    sys.path.append(root)


def _resolved(entry: str) -> Path:
    try:
        return Path(entry or ".").resolve()
    except OSError:
        return Path(entry)


put_tree_on_path()


def import_fastconv():
    """fastconv, or SystemExit with what to do when it cannot be imported."""
    try:
        import fastconv
        return fastconv
    except Exception as e:  # ImportError, a half-built tree, ...
        raise SystemExit(f"fastconv not importable ({type(e).__name__}: {e}); build it with "
                         f"'python setup.py build_ext --inplace'") from None
