"""Catching automatic differentiation in a submission (runs in the worker: standard library only).

The course asks for a backward pass written by hand; a submission that calls ``jax.grad`` (or
``vjp``, ``value_and_grad``, ``jacrev``, ``jacfwd``, ``jvp``, ``linearize``, ``hessian``),
``torch.autograd.grad``/``backward`` or ``Tensor.backward``, TensorFlow's
``GradientTape.gradient``/``jacobian``, or HIPS ``autograd``'s ``grad`` family while a case runs
fails that case with one line. Importing those libraries is no fault, nor is building a function
with them at import time: only a call made while a case runs counts (a function built by
``jax.grad`` at import is wrapped too, so calling it in a case counts).

:func:`install` runs in the worker before the submission is imported: it wraps those functions in
the libraries already imported and, through an import hook, in those imported later (the worker
itself never imports them). Threat model: this stops the shortcut (a student who calls
``jax.grad`` instead of writing the backward pass), not a student who digs the undecorated
function out of the library's private modules or rewrites the interpreter; the grader's verdict
on such code is the instructor's to read.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys

__all__ = ["MESSAGE", "install", "used", "watching"]

MESSAGE = "uses automatic differentiation ({name}): the assignment asks for a backward pass written by hand"
"""The one line of a case that called automatic differentiation."""

_TARGETS: dict[str, tuple[str, ...]] = {
    "jax": ("grad", "vjp", "value_and_grad", "jacrev", "jacfwd", "jacobian", "jvp", "linearize", "hessian"),
    "torch.autograd": ("grad", "backward"),
    "torch": ("Tensor.backward",),
    "tensorflow": ("GradientTape.gradient", "GradientTape.jacobian", "GradientTape.batch_jacobian"),
    "autograd": ("grad", "value_and_grad", "elementwise_grad", "jacobian", "hessian", "grad_and_aux"),
}

_state = {"case": False, "used": None}


def watching(on: bool) -> None:
    """Start (True) or stop (False) counting calls: on while a case runs."""
    _state["case"] = on
    if on:
        _state["used"] = None


def used() -> str | None:
    """The first automatic-differentiation function called since :func:`watching` (True), or None."""
    return _state["used"]


def _record(name: str) -> None:
    if _state["case"] and _state["used"] is None:
        _state["used"] = name


def _wrap(fn, name: str, returns_function: bool):
    if getattr(fn, "__fnnjax_watched__", False):
        return fn

    @functools.wraps(fn)
    def watched(*args, **kwargs):
        _record(name)
        out = fn(*args, **kwargs)
        if returns_function and callable(out):
            inner = out

            @functools.wraps(inner)
            def call(*a, **k):
                _record(name)
                return inner(*a, **k)

            return call
        return out

    watched.__fnnjax_watched__ = True  # type: ignore[attr-defined]
    return watched


_SHOWN = {
    "jax": "jax",
    "torch.autograd": "torch.autograd",
    "torch": "torch",
    "tensorflow": "tf",
    "autograd": "autograd",
}


def _patch(module_name: str) -> None:
    module = sys.modules.get(module_name)
    if module is None:
        return
    for dotted in _TARGETS[module_name]:
        parts = dotted.split(".")
        obj = module
        try:
            for part in parts[:-1]:
                obj = getattr(obj, part)
            fn = getattr(obj, parts[-1])
        except AttributeError:
            continue
        if not callable(fn):
            continue
        returns_function = module_name in ("jax", "autograd") and parts[-1] not in ("vjp", "jvp", "linearize")
        try:
            setattr(obj, parts[-1], _wrap(fn, f"{_SHOWN[module_name]}.{dotted}", returns_function))
        except (AttributeError, TypeError):
            continue


class _Hook(importlib.abc.MetaPathFinder):
    """Patches a watched library right after it is imported."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader, fullname)
                return spec
        return None


class _Loader(importlib.abc.Loader):
    def __init__(self, loader, name):
        self.loader, self.name = loader, name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _patch(self.name)
        if self.name == "torch":
            _patch("torch.autograd")

    def __getattr__(self, name):
        return getattr(self.loader, name)


def install() -> None:
    """Wrap the automatic-differentiation functions now and on every later import."""
    for name in _TARGETS:
        _patch(name)
    if not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
