"""``python -m verify [options]``: the same as ``fnnjax verify [options]``."""

import sys

from fnnjax.cli import main

sys.exit(main(["verify", *sys.argv[1:]]))
