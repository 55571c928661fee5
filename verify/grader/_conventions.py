"""Every convention a backprop can be written in, by its ``--convention`` name.

One small adapter per course over the shared checker (see :mod:`fnnjax.verify.grader._convention`):
``fnnjax`` (:mod:`fnnjax.verify.grader._convention_fnnjax`),
``cs231n`` (:mod:`fnnjax.verify.grader._convention_cs231n`),
``deeplearning-ai`` (:mod:`fnnjax.verify.grader._convention_deeplearning_ai`) and ``nielsen``
(:mod:`fnnjax.verify.grader._convention_nielsen`).
"""

from ._convention import BATCH_SIZE, Case, Convention, Entry
from ._convention_cs231n import CS231N
from ._convention_deeplearning_ai import DEEPLEARNING_AI
from ._convention_fnnjax import FNNJAX
from ._convention_nielsen import NIELSEN

__all__ = ["BATCH_SIZE", "CASES", "CONVENTIONS", "Case", "Convention", "Entry"]

CONVENTIONS: dict[str, Convention] = {c.name: c for c in (FNNJAX, CS231N, DEEPLEARNING_AI, NIELSEN)}
"""Every convention by its ``--convention`` name, the default (fnnjax) first."""

CASES = FNNJAX.all_cases
"""The fnnjax convention's cases, in order: depth 1-4; every hidden activation (step has f' = 0, so its
layer's gradient is exactly zero); softmax and sigmoid cross-entropy, identity/tanh/sigmoid with mse
and squared_error; l2 on and off; nonsquare layers (a transposed dW has the wrong shape) and a
square one."""
