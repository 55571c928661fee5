"""Strict JAX numerics for every test: no implicit dtype promotion, no implicit rank promotion.

Library code must therefore cast and broadcast explicitly. Float64 is switched on only inside the
tests that need it, with the ``jax.enable_x64(True)`` context manager (see the ``x64`` fixture).
"""

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (scoped; restored afterwards)."""
    with jax.enable_x64(True):
        yield


def write_fashion_lookalike(root, n_train: int, n_test: int):
    """A Fashion-MNIST look-alike in ``root/fashion-mnist/``: the four IDX files and SHA256SUMS.

    Class c brightens rows 2c..2c+2 of a dim random image, so a tiny net learns it in a few
    epochs. Returns ``root`` (what ``--data-dir`` takes)."""
    import hashlib

    import numpy as np

    from fnnjax import data

    folder = root / "fashion-mnist"
    folder.mkdir()
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    rng = np.random.default_rng(0)
    arrays = []
    for n in (n_train, n_test):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for c in range(10):
            x[y == c, 2 * c : 2 * c + 3, :] += 150
        arrays += [x, y]
    for name, arr in zip(names, arrays):
        data.write_idx(folder / name, arr)
    (folder / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    )
    return root


@pytest.fixture(scope="session")
def fashion_lookalike():
    """:func:`write_fashion_lookalike`, for tests and fixtures of any scope."""
    return write_fashion_lookalike
