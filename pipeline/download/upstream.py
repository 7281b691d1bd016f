"""Official URLs and MD5s of the torchvision datasets, taken from torchvision itself.

They are read from the installed torchvision's source text (``datasets/mnist.py``,
``datasets/cifar.py``) as literal class attributes, not retyped here, so they stay
whatever torchvision ships. The module is parsed rather than imported because
``import torchvision.datasets`` imports torch (~8 s), too slow for a download.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import Any

from pipeline.core.errors import DownloadError


@functools.lru_cache(maxsize=None)
def _class_attributes(module: str) -> dict[str, dict[str, Any]]:
    spec = importlib.util.find_spec("torchvision")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DownloadError("torchvision is not installed; it provides the official dataset URLs "
                            "and checksums (pip install the project's pinned dependencies)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    classes: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        attrs: dict[str, Any] = {}
        for stmt in node.body:
            target, value = None, None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                target, value = stmt.target, stmt.value
            if isinstance(target, ast.Name):
                try:
                    attrs[target.id] = ast.literal_eval(value)
                except ValueError:  # not a literal (a computed attribute): not ours
                    pass
        classes[node.name] = attrs
    return classes


def torchvision_attr(module: str, cls: str, name: str) -> Any:
    """Literal class attribute ``cls.name`` of ``torchvision.datasets.<module>``."""
    try:
        return _class_attributes(module)[cls][name]
    except KeyError:
        raise DownloadError(f"torchvision.datasets.{module}.{cls}.{name} not found as a literal in the "
                            "installed torchvision; this torchvision version is not supported") from None
