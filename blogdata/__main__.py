"""``python -m blogdata``: the same as the ``blogdata`` command."""

from __future__ import annotations

import sys

from blogdata.cli import main

if __name__ == "__main__":
    sys.exit(main())
