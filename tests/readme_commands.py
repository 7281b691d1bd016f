"""The shell commands of README.md's fenced ``bash`` blocks, as a user would type them.

A line ending in ``\\`` continues on the next; ``# ...`` comments are dropped (shell
rules, so a ``#`` inside quotes stays); a bracketed ``[--n 8]`` is an optional argument
and is kept, brackets removed, so the command runs with every option it shows.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(bash|sh|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Command:
    text: str  # shell-quoted, comment dropped: for messages
    argv: tuple[str, ...]

    def sets(self) -> list[str]:
        """The ``-S key=value`` overrides of a ``dvc exp run``."""
        return [self.argv[i + 1] for i, a in enumerate(self.argv[:-1]) if a in ("-S", "--set-param")]


def commands(readme: Path) -> list[Command]:
    out = []
    for block in FENCE.finditer(readme.read_text(encoding="utf-8")):
        for line in block.group(2).replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                text = shlex.join(argv)
                argv = [a[1:] if a.startswith("[") else a for a in argv]
                argv = [a[:-1] if a.endswith("]") else a for a in argv]
                out.append(Command(text, tuple(argv)))
    return out
