"""Augmentation ops. Each op separates *sampling* its per-sample parameters from
*applying* them.

``sample(keys, h, w)`` returns a dict of ``(B, ...)`` tensors drawn from the batch's
per-sample keys (always including ``applied``, a bool per sample); geometric ops
turn those into ``(B, 3, 3)`` matrices with ``matrix``; the pipeline warps once
for a run of consecutive geometric ops. Parameters are plain tensors: logged per
sample into the dataset version, replayable, testable.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from pipeline.augment import geometry, rng


class OpParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    p: float = Field(0.5, ge=0.0, le=1.0, description="probability per sample")


class Op:
    """Base class: ``name``, ``Params`` and ``kind`` identify an op in the registry."""

    name: ClassVar[str]
    Params: ClassVar[type[OpParams]]
    kind: ClassVar[Literal["geometric", "photometric"]]

    def __init__(self, params: OpParams, stream: int):
        self.params = params
        self.stream = stream  # this op's own random stream (see rng.py)

    def _applied(self, keys: torch.Tensor) -> torch.Tensor:
        return rng.uniform(keys, self.stream, 1)[:, 0] < self.params.p

    def sample(self, keys: torch.Tensor, h: int, w: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def matrix(self, drawn: dict[str, torch.Tensor], h: int, w: int) -> torch.Tensor:
        raise NotImplementedError


class HFlip(Op):
    """Mirror left-right. Not for digits or text, where it changes the class."""

    name = "hflip"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["hflip"] = "hflip"

    def sample(self, keys, h, w):
        return {"applied": self._applied(keys)}

    def matrix(self, drawn, h, w):
        return geometry.hflip_matrix(drawn["applied"], float(w))


class VFlip(Op):
    """Mirror top-bottom."""

    name = "vflip"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["vflip"] = "vflip"

    def sample(self, keys, h, w):
        return {"applied": self._applied(keys)}

    def matrix(self, drawn, h, w):
        return geometry.vflip_matrix(drawn["applied"], float(h))


class Rotate(Op):
    """Rotate about the image centre by an angle uniform in [-degrees, degrees]."""

    name = "rotate"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["rotate"] = "rotate"
        degrees: float = Field(15.0, gt=0.0, le=180.0)

    def sample(self, keys, h, w):
        d = self.params.degrees
        angle = rng.uniform(keys, self.stream + 1, 1, -d, d)[:, 0]
        applied = self._applied(keys)
        return {"applied": applied, "angle": torch.where(applied, angle, 0.0)}

    def matrix(self, drawn, h, w):
        return geometry.rotation_about(drawn["angle"], w / 2.0, h / 2.0)


class Crop(Op):
    """Pad by ``padding`` pixels (zeros) and crop back to size at a random offset:
    an integer shift in [-padding, padding] on each axis."""

    name = "crop"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["crop"] = "crop"
        padding: int = Field(4, ge=1, le=4096)

    def sample(self, keys, h, w):
        pad = self.params.padding
        shift = rng.randint(keys, self.stream + 1, 2, -pad, pad).to(torch.float32)
        applied = self._applied(keys)
        shift = torch.where(applied[:, None], shift, 0.0)
        return {"applied": applied, "dx": shift[:, 0], "dy": shift[:, 1]}

    def matrix(self, drawn, h, w):
        return geometry.translation(drawn["dx"], drawn["dy"])
