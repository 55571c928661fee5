"""``python -m fnnjax.verify [options]`` (``python -m verify`` in a checkout): ``fnnjax verify [options]``."""

import sys

from fnnjax.cli import main

sys.exit(main(["verify", *sys.argv[1:]]))
