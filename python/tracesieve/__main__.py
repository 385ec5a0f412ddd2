"""``python -m tracesieve``: the ``tracesieve`` command (``simulate`` by default)."""

import sys

from tracesieve.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
