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
