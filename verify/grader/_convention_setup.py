"""Setting a convention up for one submission: its options, and what its class says about itself.

Before the cases run, a class form is built once (the ``probe`` form of
:mod:`fnnjax.verify.grader._calls`, in the submission's own process or in this one):

- a constructor the grader cannot call (a required parameter it cannot fill) or an unfinished one
  (``self.params`` left empty: the starter code's TODO) fails the whole check once, in one line,
  instead of every case with the same error;
- Nielsen's network2.py says which cost it uses (``self.cost``: ``QuadraticCost`` or
  ``CrossEntropyCost``), and the reference loss follows it.

The options (:class:`fnnjax.verify.grader._convention.Options`: ``l2_factor``, ``strict``,
``init``) configure the convention (:meth:`Convention.configured`).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

from ._convention import Convention, Entry, Options, make_inputs

__all__ = ["SetupError", "configure", "make_options", "parse_init"]


class SetupError(Exception):
    """The submission's class cannot be checked at all (its constructor cannot be called, or it is
    unfinished): one line."""


Probe = Callable[[dict], "tuple[str, Any]"]
"""``probe(request) -> (kind, value)``: ``("ok", returned)``, ``("contract", message)`` (the class
does not fit the calling contract), or another kind (it raised, timed out...: left to the cases)."""


def make_options(
    l2_factor: float | None = None, strict: bool = False, init: Mapping[str, Any] | None = None
) -> Options:
    """The :class:`Options` of a check, validated.

    Args:
      l2_factor: cs231n's L2 term is ``l2_factor·reg·Σ‖W‖²`` (None: the form's own).
      strict: fnnjax's float64 tolerances instead of the course's standard.
      init: extra constructor keywords (numbers, strings, booleans, None, lists of them).

    Returns:
      The :class:`Options`.

    Raises:
      ValueError: one line: an l2_factor that is not a positive number, an init key that is not a
        Python name.

    Example:
      >>> from fnnjax.verify.grader._convention_setup import make_options
      >>> make_options(l2_factor=0.5, init={"std": 0.1}).init
      (('std', 0.1),)
    """
    if l2_factor is not None:
        if (
            isinstance(l2_factor, bool)
            or not isinstance(l2_factor, (int, float))
            or not (l2_factor > 0 and math.isfinite(l2_factor))
        ):
            raise ValueError(
                f"l2_factor={l2_factor!r} must be a positive number: 1 for reg·Σ‖W‖² (cs231n assignment 1, "
                "2017 on), 0.5 for 0.5·reg·Σ‖W‖² (2016, and assignment 2)"
            )
        l2_factor = float(l2_factor)
    items = []
    for key, value in (init or {}).items():
        if not (isinstance(key, str) and key.isidentifier()):
            raise ValueError(f"init key {key!r} is not a parameter name; pass init={{'name': value}}")
        items.append((key, value))
    return Options(l2_factor, bool(strict), tuple(items))


def parse_init(pairs: list[str] | None) -> dict[str, Any]:
    """``--init KEY=VALUE`` options as a dict: VALUE read as a Python literal (``0.1``, ``'relu'``,
    ``[4, 4]``, ``None``), else kept as the string.

    Raises:
      ValueError: one line for a pair without ``=`` or a key that is not a Python name.

    Example:
      >>> from fnnjax.verify.grader._convention_setup import parse_init
      >>> parse_init(["std=0.1", "activation_mode=sigmoid"])
      {'std': 0.1, 'activation_mode': 'sigmoid'}
    """
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(
                f"--init {pair!r} is not KEY=VALUE; write e.g. --init std=0.1 or --init activation_mode=sigmoid"
            )
        try:
            out[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key] = text.strip()
    return out


def configure(base: Convention, entry: Entry, options: Options, probe: Probe, seed: int = 0) -> Convention:
    """The convention for one submission: configured with its options, its class probed once.

    Args:
      base: the convention (from :data:`fnnjax.verify.grader._conventions.CONVENTIONS`).
      entry: what is checked.
      options: the check's options.
      probe: runs the ``probe`` form (see :data:`Probe`).
      seed: the seed of the cases (the probe builds the first one's sizes).

    Returns:
      The configured :class:`Convention`.

    Raises:
      SetupError: the class's constructor cannot be called by the grader, or it is unfinished.
    """
    conv = base.configured(entry, options)
    if entry.kind != "class":
        return conv
    cases = conv.cases(entry)
    case = next((c for c in cases if not c.optional), cases[0])
    inputs = make_inputs(conv, case, seed, conv.all_cases.index(case))
    form, _, request = conv.request(case, inputs, entry)
    if form not in ("cs231n-class", "nielsen"):
        return conv
    kind, value = probe({"form": form, "request": request})
    if kind == "contract":
        raise SetupError(str(value))
    if kind != "ok" or not isinstance(value, dict):
        return conv  # it raised, timed out...: each case says so
    cost = value.get("cost")
    if base.name == "nielsen" and cost in ("quadratic", "cross-entropy"):
        return base.configured(entry, options._replace(cost=cost))
    return conv


def worker_probe(worker, name: str | None) -> Probe:
    """A :data:`Probe` that runs in the submission's own process (a
    :class:`fnnjax.verify.grader._isolation.Worker`)."""

    def probe(request: dict) -> tuple[str, Any]:
        outcome = worker.call("probe", name, request)
        if not outcome.ok:
            return outcome.kind, outcome.message
        result = outcome.value.get("result") if isinstance(outcome.value, dict) else None
        return "ok", result.get("returned") if isinstance(result, dict) else None

    return probe


def local_probe(target) -> Probe:
    """A :data:`Probe` that runs in this process (a trusted class)."""
    from ._calls import CallError, call

    def probe(request: dict) -> tuple[str, Any]:
        try:
            return "ok", call("probe", target, request)["returned"]
        except CallError as err:
            return "contract", str(err)
        except Exception as err:  # the class's own error: each case reports it
            return "raised", f"{type(err).__name__}: {err}"

    return probe
