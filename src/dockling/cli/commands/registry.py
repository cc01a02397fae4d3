"""`dockling registry serve|gc`: run the registry program in place of the CLI process.

The registry is a server, not a client of docklingd, so it is its own program
(`python -m dockling.registry`); exec'ing it keeps the CLI's imports to the standard library
(the import-linter contract) and leaves one process whose PID is the server's.
"""

from __future__ import annotations

import os
import sys

from dockling.cli.context import Context


def cmd_registry(ctx: Context, args: list[str], display: str) -> int:
    """Replace this process with `python -m dockling.registry ARGS`; returns only on failure."""
    del ctx, display
    argv = [sys.executable, "-m", "dockling.registry", *args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # never returns; raises OSError on failure
