"""The import graph of ``pipeline/``: no circle, and no import that climbs a layer.

The graph is built from the source (every ``import``, lazy ones inside functions and
``TYPE_CHECKING`` ones too). Modules that reach each other are a circle: none may
exist. The layer order is the numbered list in docs/ARCHITECTURE.md ("Import
layers"); each module belongs to the most specific entry naming it or a package
above it, and may import only from its own layer or a lower one.
"""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO


def _graph() -> dict[str, set[str]]:
    files = {p: ".".join(p.relative_to(REPO).with_suffix("").parts) for p in (REPO / "pipeline").rglob("*.py")}
    modules = {m.removesuffix(".__init__") for m in files.values()}

    def known(name: str) -> str | None:  # the longest module prefix of an imported name
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for path, dotted in files.items():
        me = dotted.removesuffix(".__init__")
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            deps |= {m for n in names if (m := known(n)) and m != me and m != "pipeline"
                     and not me.startswith(m + ".")}
        graph[me] = deps
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_circle():
    graph = _graph()
    reach = {m: _reach(graph, m) for m in graph}
    circles = {frozenset({m} | {o for o in reach[m] if m in reach[o]}) for m in graph if m in reach[m]}
    assert len(graph) > 100  # the walk found the package
    assert not circles, f"import circles: {[sorted(c) for c in circles]}"


def _layers() -> list[tuple[str, list[str]]]:
    """The documented layers, lowest first: (name, module prefixes)."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("<!-- layers: read by tests/test_import_graph.py -->")[1].split("<!-- /layers -->")[0]
    layers = []
    for line in block.strip().splitlines():
        m = re.fullmatch(r"\d+\. ([\w ]+): (.+)", line.strip())
        assert m, f"docs/ARCHITECTURE.md import layers: cannot read {line!r}"
        names = [n.strip() for n in m.group(2).split(",")]
        layers.append((m.group(1), ["pipeline" if n == "(package)" else f"pipeline.{n}" for n in names]))
    return layers


def _layer_of(module: str, layers) -> int | None:
    """Index of the layer of the most specific entry naming ``module`` or a package above it."""
    best: tuple[int, int] | None = None  # (length of the entry, layer)
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            # "(package)" is the package's own __init__, not everything in it
            hit = module == p or (p != "pipeline" and module.startswith(p + "."))
            if hit and (best is None or len(p) > best[0]):
                best = (len(p), i)
    return None if best is None else best[1]


def test_every_module_has_a_layer_and_no_import_climbs():
    graph, layers = _graph(), _layers()
    unplaced = sorted(m for m in graph if _layer_of(m, layers) is None)
    assert not unplaced, f"modules with no layer in docs/ARCHITECTURE.md (Import layers): {unplaced}"
    climbs = [f"{m} ({layers[_layer_of(m, layers)][0]}) imports {d} ({layers[_layer_of(d, layers)][0]})"
              for m, deps in sorted(graph.items()) for d in sorted(deps)
              if _layer_of(d, layers) > _layer_of(m, layers)]
    assert not climbs, "imports that climb a layer:\n" + "\n".join(climbs)


def test_the_layer_check_fails_on_a_climb():
    """The check can fail: a record module importing the version package is refused."""
    layers = _layers()
    assert _layer_of("pipeline.version.dataset", layers) > _layer_of("pipeline.record", layers)
    assert _layer_of("pipeline.tvweights", layers) < _layer_of("pipeline.train.loop", layers)
    assert _layer_of("pipeline.nowhere", layers) is None
