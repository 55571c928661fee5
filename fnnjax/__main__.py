import sys

from fnnjax.cli import main

sys.exit(main())
