"""The op registry: pipelines are data (``[{name, p, ...}]``), built and dumped here.

``build_pipeline(spec)`` validates every entry against its op's parameter model
(errors name the entry index, the op and the key); ``dump_pipeline`` writes it back
with a schema version, and ``build_pipeline(dump_pipeline(p)) == p``.
"""

from __future__ import annotations

from typing import Any, Iterable

from pydantic import ValidationError

from pipeline.augment.ops import Crop, HFlip, Op, Rotate, VFlip
from pipeline.augment.pipeline import Pipeline
from pipeline.errors import ConfigError
from pipeline.seeding import key64

SCHEMA_VERSION = 1
REGISTRY: dict[str, type[Op]] = {op.name: op for op in (HFlip, VFlip, Rotate, Crop)}


def build_pipeline(spec: Iterable[dict[str, Any]] | dict[str, Any]) -> Pipeline:
    if isinstance(spec, dict):  # a dump: {"schema_version": 1, "ops": [...]}
        if spec.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(f"augment pipeline schema_version {spec.get('schema_version')!r} "
                              f"is not supported (expected {SCHEMA_VERSION})")
        spec = spec["ops"]
    ops = []
    for i, entry in enumerate(spec):
        where = f"augment.pipeline[{i}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"{where}: each op is a mapping with a `name` (got {entry!r})")
        name = entry["name"]
        if name not in REGISTRY:
            raise ConfigError(f"{where}: unknown op {name!r}; known ops: {', '.join(sorted(REGISTRY))}")
        op_cls = REGISTRY[name]
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
    return Pipeline(tuple(ops))


def dump_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION,
            "ops": [op.params.model_dump() for op in pipeline.ops]}
