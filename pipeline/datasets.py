"""Open whatever dataset a command is given: a canonical dataset (``pipeline.record``)
or a dataset version (``pipeline.version.dataset``), as one ``Dataset``.

It sits above both, so ``record`` knows canonical datasets only and a version is
read by the version package; commands that take either (``split``, ``augment``,
``stats``, ``export``, ``trace``, ``pipeline.torchdata``) open it here.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.record import Dataset, load_canonical
from pipeline.version.dataset import is_version, load_version


def load_dataset(root: Path) -> Dataset:
    """Load a canonical dataset or a dataset version; a file missing, damaged or not a
    regular file stops with an error naming it (and the line, in a JSON-lines file)."""
    root = Path(root)
    return load_version(root) if is_version(root) else load_canonical(root)
