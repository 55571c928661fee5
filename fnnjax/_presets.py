"""Named training recipes for ``fnnjax train --preset NAME``, the learning-rate schedules and the
checkpoint interval (public as :mod:`fnnjax.presets`).

A preset is a set of ``fnnjax train`` option values; ``--preset NAME`` fills every option the
command line does not give explicitly (an explicit flag always wins, wherever it stands):

- ``notes``: the notes' experiment (d2l): 784-256-10 ReLU, weights N(0, 0.01^2), plain SGD at a
  constant learning rate 0.1, batch 256, 50 epochs. These are also the command's defaults, so
  ``--preset notes`` changes nothing; it names the recipe.
- ``fast``: the quickest recipe to 0.89 test accuracy on Fashion-MNIST found for a 2-core CPU:
  784-256-10 ReLU, He initialisation, Adam with a peak learning rate of 0.003 decayed to 0 by a
  cosine over the run, batch 256, 12 epochs. It ends at 0.891-0.892 test accuracy for seeds 0-2
  and first passes 0.89 after epoch 9 or 10 (``benchmarks/time_to_accuracy.py`` measures it
  against PyTorch running the same recipe).

Schedules (``--schedule``): ``constant`` (``--lr`` throughout) or ``cosine`` (``--lr`` at the
first step, decayed to 0 by a half cosine over every step of the run, ``optax.cosine_decay_
schedule``: ``lr_t = lr (1 + cos(pi t / T)) / 2`` for T = epochs x batches per epoch).
"""

from __future__ import annotations

import argparse

__all__ = [
    "PRESETS",
    "SCHEDULES",
    "CHECKPOINT_EVERY",
    "learning_rate",
    "checkpoint_policy",
    "add_preset_argument",
    "apply_preset",
]

PRESETS: dict[str, dict] = {
    "notes": {
        "sizes": "784,256,10",
        "hidden": "relu",
        "init": "normal:0.01",
        "optimizer": "sgd",
        "lr": 0.1,
        "schedule": "constant",
        "batch_size": 256,
        "epochs": 50,
        "dropout": 0.0,
        "l2": 0.0,
    },
    "fast": {
        "sizes": "784,256,10",
        "hidden": "relu",
        "init": "he",
        "optimizer": "adam",
        "lr": 0.003,
        "schedule": "cosine",
        "batch_size": 256,
        "epochs": 12,
        "dropout": 0.0,
        "l2": 0.0,
    },
}
"""``fnnjax train`` option values (argparse destinations) of every preset."""

SCHEDULES = ("constant", "cosine")
"""``--schedule`` names (see the module docstring)."""

CHECKPOINT_EVERY = "30s"
"""``--checkpoint-every``'s default: at most one checkpoint every 30 seconds of training."""

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def learning_rate(schedule: str, lr: float, total_steps: int):
    """The learning rate to give an optax optimizer: ``lr`` itself, or a schedule of the step.

    Args:
      schedule: one of :data:`SCHEDULES`.
      lr: the (peak) learning rate.
      total_steps: the optimizer steps of the whole run (epochs x batches per epoch).

    Returns:
      A float (``constant``) or an optax schedule ``step -> learning rate``.

    Raises:
      ValueError: for an unknown schedule.

    Example:
      >>> from fnnjax.presets import learning_rate
      >>> s = learning_rate("cosine", 0.1, 100)
      >>> round(float(s(0)), 6), round(float(s(50)), 6), round(float(s(100)), 6)
      (0.1, 0.05, 0.0)
    """
    import optax

    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return optax.cosine_decay_schedule(lr, max(int(total_steps), 1))
    raise ValueError(f"unknown schedule {schedule!r}; valid schedules are {', '.join(SCHEDULES)}")


def checkpoint_policy(text: str) -> dict | None:
    """``--checkpoint-every``: ``N`` epochs, or a duration ``30s``, ``5m``, ``1h`` (the least time
    between saves); ``0``: never.

    Returns:
      The :class:`fnnjax.Checkpointer` keywords (``{"every": N}`` or ``{"seconds": s}``), or None
      for ``0``.

    Raises:
      fnnjax.errors.UsageError: for text that is neither.

    Example:
      >>> from fnnjax.presets import CHECKPOINT_EVERY, checkpoint_policy
      >>> checkpoint_policy(CHECKPOINT_EVERY), checkpoint_policy("2"), checkpoint_policy("0")
      ({'seconds': 30.0}, {'every': 2}, None)
    """
    from fnnjax.errors import UsageError

    text = str(text).strip().lower()
    try:
        if text and text[-1] in _UNITS:
            seconds = float(text[:-1]) * _UNITS[text[-1]]
            if seconds > 0 and seconds != float("inf"):
                return {"seconds": seconds}
        elif (epochs := int(text)) >= 0:
            return {"every": epochs} if epochs else None
    except ValueError:
        pass
    raise UsageError(
        f"--checkpoint-every {text!r} is neither a number of epochs (1, 2, ...; 0: no checkpoints) "
        "nor a positive duration (30s, 5m, 1h), e.g. --checkpoint-every 1"
    )


class _Default:
    """Marks a value argparse filled in from a default (a flag the user did not give)."""


_MARKED = {cls: type(f"Default{cls.__name__.title()}", (cls, _Default), {}) for cls in (str, int, float)}


def add_preset_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--preset`` to ``parser`` (call it after every other option is added): the defaults of
    the options a preset sets are marked, so :func:`apply_preset` can tell them from explicit flags."""
    names = ", ".join(f"{name} ({_describe(values)})" for name, values in PRESETS.items())
    parser.add_argument(
        "--preset", default=None, help=f"a named recipe filling every option not given explicitly: {names}"
    )
    keys = {k for values in PRESETS.values() for k in values}
    marked = {}
    for key in keys:
        value = parser.get_default(key)
        if type(value) in _MARKED:
            marked[key] = _MARKED[type(value)](value)
    parser.set_defaults(**marked)


def _describe(values: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in values.items())


def apply_preset(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options ``args.preset`` sets that the command line did not give; return ``args``.

    Raises:
      fnnjax.errors.UsageError: for an unknown preset name.
    """
    from fnnjax.errors import UsageError

    name = getattr(args, "preset", None)
    if name is not None and name not in PRESETS:
        raise UsageError(f"unknown --preset {name!r}; valid presets are {', '.join(PRESETS)}")
    preset = PRESETS[name] if name is not None else {}
    for key, value in vars(args).items():
        if isinstance(value, _Default):  # not given explicitly: the preset's value, else the default
            setattr(args, key, preset.get(key, type(value).__mro__[1](value)))
    return args
