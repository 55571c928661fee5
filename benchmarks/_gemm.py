"""The matrix products of one training step, and how fast the machine's BLAS runs them.

One step of an MLP ``M_0 - M_1 - ... - M_L`` on a batch of B samples multiplies (F1, F11-F13):

- forward, every layer l: ``Z^(l) = A^(l-1) W^(l)T``, ``(B x M_{l-1}) . (M_{l-1} x M_l)``;
- the error terms, layers l = L..2: ``D^(l-1) = D^(l) W^(l)``, ``(B x M_l) . (M_l x M_{l-1})``
  (never for the input layer: nothing needs ``dL/dx``);
- the weight gradients, every layer: ``D^(l)T A^(l-1)``, ``(M_l x B) . (B x M_{l-1})``,

``2 m k n`` floating-point operations each. :func:`step_matmuls` lists them with the operands'
transposition as they appear; :class:`BlasMatmuls` runs exactly those products with numpy's or
(when installed) torch's BLAS, whichever runs the step faster, so that
"an epoch of nothing but the step's matmuls at BLAS speed" can be timed beside the training
loops, round by round; :func:`square_gflops` is the machine's GEMM rate on a large square product.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence

import numpy as np

__all__ = ["Matmul", "step_matmuls", "step_flops", "BlasMatmuls", "square_gflops"]


@dataclasses.dataclass(frozen=True)
class Matmul:
    """One product ``op(A) . op(B)`` of shape ``(m x k) . (k x n)``; ``a_t``/``b_t``: whether the
    operand is stored transposed (so ``op`` is a transpose of a row-major array)."""

    name: str
    m: int
    k: int
    n: int
    a_t: bool
    b_t: bool

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def step_matmuls(sizes: Sequence[int], batch: int) -> list[Matmul]:
    """The products of one backprop step (module docstring), in the order a step runs them."""
    out = []
    for l in range(1, len(sizes)):
        out.append(Matmul(f"Z{l} = A{l - 1} W{l}^T", batch, sizes[l - 1], sizes[l], False, True))
    for l in range(len(sizes) - 1, 0, -1):
        if l >= 2:
            out.append(Matmul(f"D{l - 1} = D{l} W{l}", batch, sizes[l], sizes[l - 1], False, False))
        out.append(Matmul(f"dW{l} = D{l}^T A{l - 1}", sizes[l], batch, sizes[l - 1], True, False))
    return out


def step_flops(sizes: Sequence[int], batch: int) -> int:
    """Floating-point operations of one step's matrix products."""
    return sum(mm.flops for mm in step_matmuls(sizes, batch))


def _operands(mm: Matmul, rng):
    a = rng.random((mm.k, mm.m) if mm.a_t else (mm.m, mm.k), dtype=np.float32)
    b = rng.random((mm.n, mm.k) if mm.b_t else (mm.k, mm.n), dtype=np.float32)
    return a, b


def _best_of(fn, repeats: int, warmup_s: float = 0.2) -> float:
    """Median seconds of ``repeats`` calls of ``fn``, after calling it for ``warmup_s`` seconds (so
    that the library's threads are up and another library's, which may still spin after its last
    call, have gone idle)."""
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < warmup_s:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class BlasMatmuls:
    """The step's products on random operands, all with one library: numpy's or torch's BLAS,
    whichever runs the whole step faster (one library, so that two thread pools never take
    turns within a step).

    Args:
      sizes: the MLP's widths.
      batch: B.
      steps: steps per ``epoch()`` (the training loop's steps per epoch).
      torch_device: where torch runs them (``cpu`` or ``cuda``); None: numpy only.
    """

    def __init__(self, sizes: Sequence[int], batch: int, steps: int, torch_device: str | None = "cpu"):
        rng = np.random.default_rng(0)
        self.steps, self.matmuls = steps, step_matmuls(sizes, batch)
        self.flops_per_step = step_flops(sizes, batch)
        operands = [_operands(mm, rng) for mm in self.matmuls]
        libraries = {"numpy": [self._numpy_call(a, b, mm) for (a, b), mm in zip(operands, self.matmuls)]}
        torch = _torch() if torch_device else None
        if torch is not None:
            libraries["torch"] = [
                self._torch_call(torch, a, b, mm, torch_device) for (a, b), mm in zip(operands, self.matmuls)
            ]
        sync = torch.cuda.synchronize if torch is not None and torch_device == "cuda" else (lambda: None)
        per_call = {lib: [_best_of(call, 20) for call in calls] for lib, calls in libraries.items()}
        step_s = {
            lib: _best_of(lambda calls=calls: [c() for c in calls] and sync(), 20) for lib, calls in libraries.items()
        }
        self.library = min(step_s, key=lambda lib: step_s[lib])
        self.calls, self.sync, self.step_s = libraries[self.library], sync, step_s[self.library]
        self.step_gflops_by_library = {lib: self.flops_per_step / t / 1e9 for lib, t in step_s.items()}
        self.table = [
            {
                "matmul": mm.name,
                "shape": f"({mm.m}x{mm.k}).({mm.k}x{mm.n})",
                **{f"{lib}_gflops": mm.flops / per_call[lib][i] / 1e9 for lib in libraries},
            }
            for i, mm in enumerate(self.matmuls)
        ]
        self.compile_s = None
        self.last_loss = None

    @staticmethod
    def _numpy_call(a, b, mm):
        a_, b_ = (a.T if mm.a_t else a), (b.T if mm.b_t else b)
        return lambda: np.matmul(a_, b_)

    @staticmethod
    def _torch_call(torch, a, b, mm, device):
        ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
        ta_, tb_ = (ta.T if mm.a_t else ta), (tb.T if mm.b_t else tb)
        return lambda: torch.mm(ta_, tb_)

    @property
    def gflops(self) -> float:
        """The step's products at the chosen library's rate, in GFLOP/s."""
        return self.flops_per_step / self.step_s / 1e9

    def epoch(self) -> float:
        """``steps`` steps' worth of products; returns the wall seconds."""
        t0 = time.perf_counter()
        for _ in range(self.steps):
            for call in self.calls:
                call()
        self.sync()
        return time.perf_counter() - t0


def _torch():
    try:
        import torch  # pyright: ignore[reportMissingImports]  (the optional bench extra)
    except ImportError:
        return None
    return torch


def square_gflops(n: int = 2048, device: str = "cpu") -> dict:
    """GFLOP/s of an ``n x n`` float32 product: numpy's and (when installed) torch's BLAS."""
    rng = np.random.default_rng(1)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    flops = 2 * n**3
    out = {"n": n, "numpy_gflops": flops / _best_of(lambda: np.matmul(a, b), 5) / 1e9}
    torch = _torch()
    if torch is not None:
        ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def run():
            torch.mm(ta, tb)
            sync()

        out["torch_gflops"] = flops / _best_of(run, 5) / 1e9
    return out
