"""fnnjax's benchmarks: each a script (``python -m benchmarks.NAME``) and ``fnnjax bench NAME``."""
