"""RNN Shape Explorer: `python main.py [args]` (see README.md)."""

import sys

from explorer.cli import main

if __name__ == "__main__":
    sys.exit(main())
