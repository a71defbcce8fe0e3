"""The command line written beside a result so that anyone can make it again.

Quoted for a POSIX shell: a flag value with spaces or brackets (``--labels=restart at 0.1 (recipe),...``) must
survive being pasted back into one.
"""

from __future__ import annotations

import shlex
import sys


def command_line(module: str, args=None) -> str:
    """``python -m <module>`` followed by ``args`` (default: this process's own arguments), shell-quoted."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if args is None else args)])
