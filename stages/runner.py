"""Shared entry point for stage modules: argument parsing and user-facing errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from pipeline.core.errors import PipelineError


def stage_main(name: str, paths: dict[str, str], run: Callable[..., object],
               argv: list[str] | None = None, torch_threads: int | None = None,
               optional: tuple[str, ...] = ()) -> int:
    """Parse ``--params`` and the stage's path options, then call ``run``.

    A PipelineError is printed as ``<stage>: error: <message>`` and exits with its code
    (2; 3 when ingest would lose data), so DVC
    shows the user what to fix instead of a traceback; Ctrl-C (SIGTERM) prints
    ``<stage>: interrupted`` and exits 130 (143) once the cleanup has run.
    ``torch_threads``: torch's CPU pool for this stage (1 for batch transforms, 0 one
    per core, None: torch unused, or sized by the trainer itself). ``optional``: path options
    that may be left out (``run`` gets None), e.g. an output only some runs write.
    """
    from pipeline.core import interrupts

    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}")
    parser.add_argument("--params", default="params.yaml", type=Path, help="params file")
    for opt, help_text in paths.items():
        parser.add_argument(f"--{opt}", required=opt not in optional, type=Path, help=help_text)
    args = parser.parse_args(argv)
    from pipeline.core.device import configure_process

    configure_process(torch_threads)  # process-wide settings: here, never in library calls
    interrupts.install()
    try:
        run(**vars(args))
    except PipelineError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:
        print(f"{name}: interrupted", file=sys.stderr)
        return interrupts.exit_code(err)
    return 0
