"""``python -m tracesieve``: run the built-in demo."""

import sys

from tracesieve._demo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
