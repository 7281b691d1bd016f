"""The op contract. Each op separates *sampling* its per-sample parameters from
*applying* them.

``sample(keys, h, w)`` returns a dict of ``(B, ...)`` tensors drawn from the batch's
per-sample keys (always including ``applied``, a bool per sample). Parameters are
plain tensors: logged per sample into the dataset version, replayable, testable. An
op whose output is a random field (noise, an albumentations transform) draws no
parameter for it but keeps the keys the field comes from, under ``SEED_KEYS``: logged
with the rest, so a replay needs nothing else, and never shown as a parameter.

Kinds, which decide how the pipeline runs an op:

* ``geometric``: ``matrix(drawn, h, w)`` -> (B, 3, 3); consecutive ones are composed
  and warped once; targets move by the same matrix.
* ``colour``: ``affine(drawn, mean)`` -> per-sample (B, C, C) matrix and (B, C) offset;
  consecutive ones are fused into one pass. Targets are untouched.
* ``pixel``: ``apply_image(x, drawn)`` on the selected samples only; targets untouched
  unless the op overrides ``apply_targets``.
* ``mixing``: ``mix(x, t, drawn, partners, rules, scale)`` combines a sample with partner
  samples passed in as data (``scale``: 255 when the input was uint8, else 1).
* ``external``: ``apply_external(x, t, drawn, scale)``, a transform another library
  runs per sample on the CPU (``pipeline.backends``: albumentations).

What else an op may do is declared here, on ``Op``, with its default; the pipeline
reads these declarations and never probes an op for methods:

* ``supports``: the target kinds the op handles (a pipeline refuses data with others);
* ``exact``: it runs on uint8 without leaving it, in exact arithmetic (moves, fills,
  integer blur taps, rounded noise);
* ``in_place``: a ``pixel`` op with ``apply_inplace``, which writes the selected
  samples into a CPU batch the pipeline owns, instead of copying them out and back;
* ``apply_targets``: how a ``pixel`` op changes the targets (by default it does not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from pipeline.augment import rng

if TYPE_CHECKING:
    from pipeline.augment.target_transform import Rules
    from pipeline.augment.targets import Targets

SEED_KEYS = "_keys"  # the (B, 2) keys an op's random field is drawn from (see above)
ALL_TARGETS = frozenset({"boxes", "polygons", "keypoints", "masks", "classes"})
Kind = Literal["geometric", "colour", "pixel", "mixing", "external"]


class OpParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    p: float = Field(0.5, ge=0.0, le=1.0, description="probability per sample")
    same_on_batch: bool = Field(False, description="one draw (the first sample's) for the whole batch")


class Op:
    """Base class: ``name``, ``Params`` and ``kind`` identify an op in the registry."""

    name: ClassVar[str]
    Params: ClassVar[type[OpParams]]
    kind: ClassVar[Kind]
    supports: ClassVar[frozenset[str]] = ALL_TARGETS
    partners: ClassVar[int] = 0  # other samples this op consumes (mixing ops)
    exact: ClassVar[bool] = False  # runs on uint8 exactly: stays in uint8
    in_place: ClassVar[bool] = False  # pixel op with apply_inplace (CPU)

    def __init__(self, params: OpParams, stream: int):
        self.params = params
        self.stream = stream  # this op's own random stream (see rng.py)

    def keys(self, keys: torch.Tensor) -> torch.Tensor:
        """The keys draws come from: per sample, or the first sample's for all."""
        return keys[:1].expand(len(keys), 2) if self.params.same_on_batch else keys

    def _applied(self, keys: torch.Tensor) -> torch.Tensor:
        return rng.uniform(self.keys(keys), self.stream, 1)[:, 0] < self.params.p

    def _uniform(self, keys: torch.Tensor, sub: int, n: int, lo: float, hi: float) -> torch.Tensor:
        return rng.uniform(self.keys(keys), self.stream + sub, n, lo, hi)

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        return h, w

    def sample(self, keys: torch.Tensor, h: int, w: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def matrix(self, drawn: dict[str, torch.Tensor], h: int, w: int) -> torch.Tensor:
        """``geometric`` ops: (B, 3, 3) from input pixel coordinates (an h x w image) to
        output ones; the pipeline composes consecutive ones and warps once."""
        raise NotImplementedError

    def affine(self, drawn: dict[str, torch.Tensor], mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``colour`` ops: per-sample (B, C, C) matrix and (B, C) offset on pixel values,
        given the (B, C) channel means of the image the op sees."""
        raise NotImplementedError

    def mix(self, x: torch.Tensor, t: "Targets | None", drawn: dict[str, torch.Tensor],
            partners: list[tuple[torch.Tensor, "Targets | None"]], rules: "Rules",
            scale: float = 1.0) -> tuple[torch.Tensor, "Targets | None"]:
        """``mixing`` ops: the batch combined with its ``partners`` (one (images, targets)
        pair per partner slot, passed in as data); ``scale`` is 255 for uint8 input, else 1."""
        raise NotImplementedError

    def apply_external(self, x: torch.Tensor, t: "Targets | None", drawn: dict[str, torch.Tensor],
                       scale: float) -> tuple[torch.Tensor, "Targets | None"]:
        """``external`` ops: images and targets after a transform another library runs
        per sample (``pipeline.backends``)."""
        raise NotImplementedError

    def apply_image(self, x: torch.Tensor, drawn: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
        """``pixel`` ops: the transformed images of batch ``x`` (a new tensor)."""
        raise NotImplementedError

    def apply_inplace(self, x: torch.Tensor, idx: torch.Tensor | None, drawn: dict[str, torch.Tensor],
                      scale: float) -> None:
        """``in_place`` ops: transform rows ``idx`` of CPU batch ``x`` (None = all) in place,
        ``drawn`` holding those rows' parameters."""
        raise NotImplementedError

    def apply_targets(self, t: "Targets", drawn: dict[str, torch.Tensor], h: int, w: int,
                      rules: "Rules") -> "Targets":
        """``pixel`` ops: the targets after the op (drawn for the whole batch)."""
        return t
