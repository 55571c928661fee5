"""What a check is, how one is declared, how the suite finds every check, and where each formula is.

A check is a function ``fn(*, seed: int, quick: bool, **implementations) -> Outcome`` decorated with
:func:`check`. The decorator returns a :class:`Check`, and the suite collects every :class:`Check`
defined at module level in the modules of this package whose names start with ``_checks_`` (see
:data:`CHECK_MODULE_PREFIX`): adding a check module, e.g. ``verify/formulas/_checks_pretraining.py`` for F28,
is a one-file addition. Keyword arguments other than ``seed`` and ``quick`` are the implementations
under test (a deltas function, a derivative table, a loss...), with fnnjax's as defaults, so that a
test can inject a deliberately wrong one and see the check fail.

Every formula F1-F28 is stated and derived on one page of the documentation, under a heading whose
anchor is its lowercase ID: :func:`formula_page` gives that page, repository-relative, e.g.
``docs/formulas/backprop.md#f10``; every report names it next to each check.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "CHECK_MODULE_PREFIX",
    "FORMULA_PAGES",
    "Check",
    "Outcome",
    "all_checks",
    "CHECKS_PAGE",
    "check",
    "check_page",
    "checks_in",
    "formula_page",
    "get_check",
    "select_checks",
]

CHECK_MODULE_PREFIX = "_checks_"
"""Modules of the ``verify`` package whose names start with this are scanned for checks."""

_ID_PATTERN = re.compile(r"^F(\d+)(-[a-z0-9]+(?:-[a-z0-9]+)*)?$")

FORMULA_PAGES: dict[str, range] = {
    "docs/formulas/forward.md": range(1, 6),
    "docs/formulas/losses.md": range(6, 10),
    "docs/formulas/backprop.md": range(10, 17),
    "docs/formulas/activations.md": range(17, 19),
    "docs/formulas/differentiation.md": range(19, 24),
    "docs/formulas/generalisation.md": range(24, 28),
    "docs/formulas/pretraining.md": range(28, 29),
}
"""Page of the documentation (repository-relative) -> the formula numbers stated and derived on it."""


def formula_page(formula: str | int) -> str | None:
    """Where a formula is stated and derived: its page and heading anchor, repository-relative.

    Args:
      formula: a formula number (``10``), formula ID (``"F10"``) or check ID (``"F10-softmax-ce"``).

    Returns:
      ``docs/formulas/<page>.md#f<number>``, or ``None`` for a number outside F1-F28.

    Raises:
      ValueError: for a string that is not a formula or check ID.

    Example:
      >>> from fnnjax.verify import formula_page
      >>> formula_page("F10-softmax-ce"), formula_page(28)
      ('docs/formulas/backprop.md#f10', 'docs/formulas/pretraining.md#f28')
    """
    if isinstance(formula, str):
        match = _ID_PATTERN.match(formula)
        if match is None:
            raise ValueError(f"{formula!r} is not a formula or check ID; use e.g. 'F10' or 'F10-softmax-ce'")
        number = int(match.group(1))
    else:
        number = int(formula)
    for page, numbers in FORMULA_PAGES.items():
        if number in numbers:
            return f"{page}#f{number}"
    return None


CHECKS_PAGE = "docs/checks.md"
"""The documentation page (repository-relative) with one entry per check: its claim, evidence,
criterion, the formula it proves and its source, under a heading whose anchor is the check's ID in
lowercase (see :func:`check_page`)."""


def check_page(check_id: str) -> str:
    """Where a check is documented: the checks page and the check's anchor, repository-relative.

    Args:
      check_id: a check ID, e.g. ``"F11-hidden-deltas"``.

    Returns:
      ``docs/checks.md#<the ID in lowercase>``.

    Raises:
      ValueError: for a string that is not a check ID.

    Example:
      >>> from fnnjax.verify.formulas import check_page
      >>> check_page("F11-hidden-deltas")
      'docs/checks.md#f11-hidden-deltas'
    """
    if not isinstance(check_id, str) or not _ID_PATTERN.match(check_id):
        raise ValueError(f"{check_id!r} is not a check ID; use e.g. 'F10-softmax-ce'")
    return f"{CHECKS_PAGE}#{check_id.lower()}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a check measured and whether that meets its criterion.

    Attributes:
      measured: name -> value (numbers, strings, short lists): everything needed to judge the claim.
      tolerance: the criterion or expected value, in words and numbers (one line).
      passed: whether every measured value meets the criterion.
    """

    measured: dict[str, Any]
    tolerance: str
    passed: bool


@dataclasses.dataclass(frozen=True)
class Check:
    """One check of one claim of the formulas F1-F28 (see :func:`formula_page`).

    Attributes:
      id: ``F<number>`` or ``F<number>-<part>`` (lowercase words joined by hyphens), e.g. ``F10-softmax-ce``.
      claim: the claim, in one line.
      method: the independent evidence used, in one line.
      fn: ``fn(*, seed, quick, **implementations) -> Outcome``.
    """

    id: str
    claim: str
    method: str
    fn: Callable[..., Outcome]

    @property
    def formula(self) -> str:
        """The formula ID alone, e.g. ``F10`` for ``F10-softmax-ce``."""
        return self.id.split("-", 1)[0]

    @property
    def number(self) -> int:
        """The formula number, e.g. 10 for ``F10-softmax-ce``."""
        return int(self.formula[1:])

    @property
    def formula_page(self) -> str | None:
        """Where the formula is stated and derived, e.g. ``docs/formulas/backprop.md#f10``."""
        return formula_page(self.number)

    @property
    def docs_page(self) -> str:
        """Where the check itself is documented, e.g. ``docs/checks.md#f10-softmax-ce``."""
        return check_page(self.id)

    def __call__(self, *, seed: int = 0, quick: bool = False, **implementations) -> Outcome:
        """Run the check function as is (no float64 scope, no error capture: see ``run_check``)."""
        return self.fn(seed=seed, quick=quick, **implementations)


def check(id: str, *, claim: str, method: str) -> Callable[[Callable[..., Outcome]], Check]:
    """Declare a check: decorate ``fn(*, seed, quick, **implementations) -> Outcome``.

    Args:
      id: ``F<number>`` or ``F<number>-<part>``, e.g. ``"F28-stacked-autoencoders"``.
      claim: the claim in one line.
      method: the independent evidence in one line.

    Returns:
      A decorator returning the :class:`Check` (module-level Checks are found by :func:`all_checks`).

    Raises:
      ValueError: for a malformed ID or an empty claim/method.

    Example:
      >>> from fnnjax.verify.formulas._registry import Outcome, check
      >>> @check("F99-example", claim="1 + 1 = 2", method="integer arithmetic")
      ... def one_plus_one(*, seed=0, quick=False, add=lambda a, b: a + b):
      ...     got = add(1, 1)
      ...     return Outcome({"1 + 1": got}, "== 2", got == 2)
      >>> one_plus_one().passed, one_plus_one.formula
      (True, 'F99')
    """
    if not isinstance(id, str) or not _ID_PATTERN.match(id):
        raise ValueError(
            f"check ID {id!r} is malformed; use 'F<number>' or 'F<number>-<part>' with lowercase "
            "letters, digits and hyphens, e.g. 'F10-softmax-ce'"
        )
    for name, text in (("claim", claim), ("method", method)):
        if not isinstance(text, str) or not text.strip() or "\n" in text:
            raise ValueError(f"check {id}: {name} must be one non-empty line, got {text!r}")

    def decorate(fn: Callable[..., Outcome]) -> Check:
        return Check(id=id, claim=claim, method=method, fn=fn)

    return decorate


def checks_in(module) -> list[Check]:
    """The :class:`Check` objects defined at module level in ``module``, in definition order."""
    return [value for value in vars(module).values() if isinstance(value, Check)]


def _check_modules() -> list[str]:
    package = importlib.import_module(__package__ or "")
    names = sorted(
        info.name for info in pkgutil.iter_modules(package.__path__) if info.name.startswith(CHECK_MODULE_PREFIX)
    )
    return [f"{__package__}.{name}" for name in names]


def all_checks() -> list[Check]:
    """Every check of the suite, ordered by formula number (then definition order).

    Returns:
      The checks of every ``verify/formulas/_checks_*.py`` module.

    Raises:
      ValueError: when two checks share an ID (naming both modules).

    Example:
      >>> from fnnjax.verify import all_checks
      >>> all_checks()[0].id
      'F1-composition'
    """
    found: list[tuple[Check, str]] = []
    seen: dict[str, str] = {}
    for name in _check_modules():
        for c in checks_in(importlib.import_module(name)):
            if c.id in seen:
                raise ValueError(
                    f"check ID {c.id} is defined twice, in {seen[c.id]} and {name}; give one of them another ID"
                )
            seen[c.id] = name
            found.append((c, name))
    order = {c.id: i for i, (c, _) in enumerate(found)}
    return sorted((c for c, _ in found), key=lambda c: (c.number, order[c.id]))


def get_check(id: str) -> Check:
    """The check with exactly this ID.

    Raises:
      KeyError: for an unknown ID (listing the valid ones).
    """
    checks = all_checks()
    for c in checks:
        if c.id == id:
            return c
    raise KeyError(f"no check has ID {id!r}; valid IDs are {', '.join(c.id for c in checks)}")


def _matches(token: str, check_id: str) -> bool:
    return check_id == token or check_id.startswith(token + "-")


def select_checks(checks: Sequence[Check], only: str | Sequence[str] | None) -> list[Check]:
    """The checks selected by ``only``: IDs or ID prefixes, comma-separated or a sequence.

    A token selects the check with that ID and every check whose ID extends it after a hyphen:
    ``F10`` selects ``F10-softmax-ce``, ``F10-sigmoid-bce``, ...; ``F1`` does not select ``F10``.

    Args:
      checks: the checks to choose from (e.g. :func:`all_checks`).
      only: ``None`` for all of them, ``"F11,F12"`` or ``["F11", "F12"]``.

    Returns:
      The selected checks, in the order of ``checks``.

    Raises:
      ValueError: for a token that selects nothing (listing the valid formula IDs) or an empty
        selection.

    Example:
      >>> from fnnjax.verify import all_checks, select_checks
      >>> [c.id for c in select_checks(all_checks(), "F10-sigmoid")]
      ['F10-sigmoid-bce', 'F10-sigmoid-mse']
    """
    if only is None:
        return list(checks)
    tokens = [t.strip() for t in (only.split(",") if isinstance(only, str) else only)]
    tokens = [t for t in tokens if t]
    if not tokens:
        raise ValueError("--only got no check IDs; give e.g. --only F11,F12 (see --list)")
    formulas = list(dict.fromkeys(c.formula for c in checks))
    for token in tokens:
        if not any(_matches(token, c.id) for c in checks):
            raise ValueError(
                f"unknown check ID {token!r}; valid IDs are {', '.join(formulas)} or any full check ID shown by --list"
            )
    return [c for c in checks if any(_matches(t, c.id) for t in tokens)]
