"""The op registry: pipelines are data (``[{name, p, ...}]``), built and dumped here.

``build_pipeline(spec)`` validates every entry against its op's parameter model
(errors name the entry index, the op and the key); ``dump_pipeline`` writes it back
with a schema version, and ``build_pipeline(dump_pipeline(p)) == p``. A backend
package may add ops under a name prefix (``register_external``): ``pipeline.backends``
makes ``albumentations.<Transform>`` run that albumentations transform per sample.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from pydantic import ValidationError

from pipeline.augment.backend import AUTO, BACKENDS
from pipeline.augment.ops import ALL_OPS, Op
from pipeline.augment.pipeline import Pipeline, check_targets
from pipeline.augment.target_transform import Rules
from pipeline.core.errors import ConfigError
from pipeline.core.seeding import key64

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1: ops only (rules and backend at their defaults)
REGISTRY: dict[str, type[Op]] = {op.name: op for op in ALL_OPS}
# name prefix -> (name, where) -> op class: ops a backend package provides by name
EXTERNAL: dict[str, Callable[[str, str], type[Op]]] = {}


def register_external(prefix: str, op_class: Callable[[str, str], type[Op]]) -> None:
    """Let ``build_pipeline`` build ops named ``<prefix><anything>`` through ``op_class``."""
    EXTERNAL[prefix] = op_class


def _op_class(name: str, where: str) -> type[Op]:
    if name in REGISTRY:
        return REGISTRY[name]
    for prefix, op_class in EXTERNAL.items():
        if isinstance(name, str) and name.startswith(prefix):
            return op_class(name, where)
    raise ConfigError(f"{where}: unknown op {name!r}; known ops: {', '.join(sorted(REGISTRY))}"
                      + "".join(f", or {prefix}<Transform>" for prefix in EXTERNAL))


def build_pipeline(spec: Iterable[dict[str, Any]] | dict[str, Any], *, min_visibility: float = 0.0,
                   min_area: float = 1.0, backend: str = "torch", targets: Iterable[str] = ()) -> Pipeline:
    """Build and validate a pipeline. ``targets``: the target kinds the data carries
    (boxes, polygons, keypoints, masks, classes); an op that cannot handle one fails here."""
    if isinstance(spec, dict):  # a dump: {"schema_version": 2, "ops": [...], ...}
        if spec.get("schema_version") not in READABLE_SCHEMAS:
            raise ConfigError(f"augment pipeline schema_version {spec.get('schema_version')!r} "
                              f"is not supported (expected one of {READABLE_SCHEMAS})")
        min_visibility = spec.get("min_visibility", min_visibility)
        min_area = spec.get("min_area", min_area)
        backend = spec.get("backend", backend)
        spec = spec["ops"]
    if backend != AUTO and backend not in BACKENDS:
        raise ConfigError(f"augment.backend: {backend!r} is not one of {', '.join([AUTO, *BACKENDS])}")
    ops = []
    for i, entry in enumerate(spec):
        where = f"augment.pipeline[{i}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"{where}: each op is a mapping with a `name` (got {entry!r})")
        name = entry["name"]
        op_cls = _op_class(name, where)
        try:
            params = op_cls.Params.model_validate(entry)
        except ValidationError as err:
            msgs = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: "
                + ("unknown key (known: " + ", ".join(op_cls.Params.model_fields) + ")"
                   if e["type"] == "extra_forbidden" else f"{e['msg']} (got {e.get('input')!r})")
                for e in err.errors()
            )
            raise ConfigError(f"{where} ({name}): {msgs}") from None
        # Each op's stream depends on its position and name only.
        ops.append(op_cls(params, stream=key64("op", i, name) & 0xFFFFFFF))
    check_targets(ops, set(targets))
    if backend != AUTO:
        BACKENDS[backend].check(ops)
    return Pipeline(tuple(ops), Rules(min_visibility, min_area), backend)


def dump_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION,
            "ops": [op.params.model_dump(mode="json") for op in pipeline.ops],
            "min_visibility": pipeline.rules.min_visibility, "min_area": pipeline.rules.min_area,
            "backend": pipeline.backend}
