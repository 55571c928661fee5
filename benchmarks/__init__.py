"""fnnjax's benchmarks: each a script (``python -m fnnjax.benchmarks.NAME``) and ``fnnjax bench NAME``."""
