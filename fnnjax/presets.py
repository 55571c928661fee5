"""``fnnjax.presets``: the recipes and defaults of ``fnnjax train``, for code that runs them too.

- :data:`PRESETS`: the option values of every ``--preset`` (``notes``: the notes' recipe, which is
  also the command's defaults; ``fast``: the quickest recipe to 0.89 test accuracy on Fashion-MNIST).
- :data:`SCHEDULES` and :func:`learning_rate`: the ``--schedule`` names and the learning rate (or
  optax schedule) each gives an optimizer.
- :data:`CHECKPOINT_EVERY` and :func:`checkpoint_policy`: ``--checkpoint-every``'s default and the
  :class:`fnnjax.Checkpointer` keywords of any of its values.

The benchmarks use these to run the same recipes as the command.

Example:
  >>> from fnnjax import presets
  >>> presets.PRESETS["fast"]["optimizer"], presets.checkpoint_policy(presets.CHECKPOINT_EVERY)
  ('adam', {'seconds': 30.0})
"""

from fnnjax._presets import CHECKPOINT_EVERY, PRESETS, SCHEDULES, checkpoint_policy, learning_rate

__all__ = ["CHECKPOINT_EVERY", "PRESETS", "SCHEDULES", "checkpoint_policy", "learning_rate"]
