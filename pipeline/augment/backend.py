"""What runs a pipeline's ops on a batch: a ``Backend``.

The engine (``Pipeline.transform``) is one backend, ``torch``: it applies the
parameters the ops drew, batched, on any device. Another backend may run the same
op list its own way (``pipeline.backends``: albumentations, per sample on the CPU)
and registers itself here; the caller that renders a batch picks the backend by the
pipeline's ``backend`` name and passes it the batch with its per-sample keys. The
engine never imports a backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    import torch

    from pipeline.augment.base import Op
    from pipeline.augment.pipeline import Drawn, Partner, Pipeline
    from pipeline.augment.targets import Targets


class Backend(Protocol):
    name: str

    def check(self, ops: Sequence["Op"]) -> None:
        """Refuse (``ConfigError``, naming the op's index) a pipeline this backend cannot run."""

    def run(self, pipe: "Pipeline", images: "torch.Tensor", targets: "Targets | None", keys: "torch.Tensor",
            drawn: "Drawn", partners: "Sequence[Partner] | None" = None) -> tuple["torch.Tensor", "Targets | None"]:
        """The batch's images and targets after the pipeline: ``keys`` are the per-sample
        keys ``drawn`` came from (``pipe.sample(keys, h, w)``)."""

    def seeds(self, keys: "torch.Tensor") -> list[int] | None:
        """Per-sample seeds a backend draws its own parameters from, which a version's
        manifest records in place of the engine's draws; None: the draws are the record."""


class TorchBackend:
    """The engine itself: the ops' own draws, applied batched (``Pipeline.transform``)."""

    name = "torch"

    def check(self, ops) -> None:
        return None

    def run(self, pipe, images, targets, keys, drawn, partners=None):
        return pipe.transform(images, targets, drawn, partners)

    def seeds(self, keys) -> None:
        return None


TORCH = TorchBackend()
BACKENDS: dict[str, Backend] = {TORCH.name: TORCH}  # by name; others add themselves (register_backend)
AUTO = "auto"  # not a backend: the caller resolves it per device and image size


def register_backend(backend: Backend) -> None:
    BACKENDS[backend.name] = backend


def get_backend(name: str) -> Backend:
    """The registered backend of that name (``auto`` must be resolved first)."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise KeyError(f"augment backend {name!r} is not registered (known: {', '.join(sorted(BACKENDS))})") from None
