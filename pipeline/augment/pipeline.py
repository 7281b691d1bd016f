"""An ordered list of ops applied to a batch, with per-sample parameters.

``sample`` draws every op's (B, ...) parameters from the per-sample keys; ``apply``
(images only) and ``transform`` (images and targets) run them: consecutive geometric
ops are composed and warped once, consecutive colour ops fused into one matrix pass,
pixel ops run on the selected samples only (on the CPU; on CUDA the whole batch, to
avoid host syncs). Mixing ops take their partner samples as data (``partners``), or,
without it, from the batch itself at indices drawn from the keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from pipeline.augment import luts, matrices, resample, smallmat
from pipeline.augment.base import Op
from pipeline.augment.target_transform import Rules, transform_masks, transform_targets
from pipeline.augment.targets import Targets

Drawn = list[dict[str, torch.Tensor]]
CHUNK_BYTES = 8 << 20  # measured on 2 cores: 2-8 MiB chunks best at 32x32 and 224x224
# A second chunk per thread only when each chunk still holds this much float32 working copy:
# below it the per-op overhead of the extra chunks costs more than it saves (32x32, batch 512,
# 2 cores: 4 chunks 15.7 ms, 2 chunks 11.8 ms; 224x224, batch 64: 29.0 against 28.8 ms).
MIN_SPLIT_BYTES = 2 << 20
Partner = tuple[torch.Tensor, "Targets | None"]


@dataclass(frozen=True)
class Pipeline:
    ops: tuple[Op, ...]
    rules: Rules = field(default_factory=Rules)
    backend: str = "torch"  # the backend's name, or "auto": the caller picks and runs it (see backend.py)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Pipeline) and [o.params for o in self.ops] == [o.params for o in other.ops]
                and self.rules == other.rules and self.backend == other.backend)

    def sample(self, keys: torch.Tensor, h: int, w: int) -> Drawn:
        """Draw every op's (B, ...) parameters from the per-sample keys."""
        out = []
        for op in self.ops:
            out.append(op.sample(keys, h, w))
            h, w = op.out_hw(h, w)
        return out

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """The output size for inputs of (h, w)."""
        for op in self.ops:
            h, w = op.out_hw(h, w)
        return h, w

    def check_offline(self, h: int, w: int, classification: bool = False) -> None:
        """Fail early when this pipeline cannot produce a packed dataset version:
        those store one image size (originals and copies side by side) and, for
        classification, a label pair per image (``label``, ``mix_label``,
        ``mix_weight``): mixup/cutmix fit, mosaic's four labels do not."""
        from pipeline.core.errors import ConfigError

        mixing = [i for i, op in enumerate(self.ops) if op.kind == "mixing"]
        if classification and len(mixing) > 1:
            names = ", ".join(f"[{i}] {self.ops[i].name}" for i in mixing)
            raise ConfigError(f"augment.pipeline has {len(mixing)} mixing ops ({names}); a classification "
                              "dataset version stores one label pair per image, so a sample blended twice "
                              "would lose a partner's label: keep one mixing op")
        for i, op in enumerate(self.ops):
            if classification and op.kind == "mixing" and op.partners != 1:
                raise ConfigError(f"augment.pipeline[{i}] ({op.name}): mixes {op.partners + 1} images' labels; "
                                  "a classification dataset version stores two (label, mix_label): use "
                                  "mixup/cutmix here, or this op in online (training) augmentation")
        if self.out_hw(h, w) != (h, w):
            raise ConfigError(f"augment.pipeline changes the image size {h}x{w} -> {self.out_hw(h, w)}; "
                              "set the op's size to null or to augment.image_size")

    def partner_slots(self) -> int:
        """How many partner samples per sample the mixing ops consume, in op order."""
        return sum(op.partners for op in self.ops)

    def partner_indices(self, drawn: Drawn, pool_size: int) -> torch.Tensor:
        """(B, partner_slots) indices into a pool of ``pool_size`` samples (a dataset
        or the batch), drawn from the keys: pick partners with these, pass them in."""
        cols = [d["partner_u"] for op, d in zip(self.ops, drawn) if op.partners]
        if not cols:
            return torch.zeros((0, 0), dtype=torch.int64)
        return (torch.cat(cols, 1) * pool_size).long().clamp_max(pool_size - 1)

    def apply(self, images: torch.Tensor, drawn: Drawn, partners: Sequence[Partner] | None = None) -> torch.Tensor:
        """Apply drawn parameters to uint8 or float (B, C, H, W) images.

        uint8 input gives uint8 output, rounded half-to-even after the float work.
        """
        return self.transform(images, None, drawn, partners)[0]

    def transform(self, images: torch.Tensor, targets: Targets | None, drawn: Drawn,
                  partners: Sequence[Partner] | None = None) -> tuple[torch.Tensor, Targets | None]:
        """Apply drawn parameters to images and their targets together: the
        ``torch`` backend (another backend runs through ``pipeline.backends``).

        On the CPU, when torch runs one thread (as the entry points of the batch
        commands set it, ``pipeline.core.device.configure_process``), the batch is split
        into chunks run by one thread per core: per-sample results do not depend on
        the batch (tested), and independent chunks scale across cores without the
        per-op barriers of intra-op threading. With more torch threads (training's
        online augmentation) the batch runs whole on torch's own pool. In-batch mixing
        (no ``partners``) needs the whole batch and runs unsplit. Nothing here changes
        process-wide state.
        """
        if targets is not None:
            check_targets(self.ops, targets.kinds())
        from pipeline.core.device import cpu_cores

        cores = cpu_cores()
        mixing = any(op.kind == "mixing" for op in self.ops)
        if images.device.type == "cpu" and torch.get_num_threads() == 1 and cores > 1 and \
                len(images) >= 2 * cores and (partners is not None or not mixing):
            return _chunked(self, images, targets, drawn, partners, cores)
        return self._transform(images, targets, drawn, partners)

    def _transform(self, images, targets, drawn, partners):
        scale = 255.0 if images.dtype == torch.uint8 else 1.0
        if not (images.dtype == torch.uint8 or images.is_floating_point()):
            raise TypeError(f"augment: images must be uint8 or float, got {images.dtype}")
        parts = [(p.to(torch.float32), pt) for p, pt in partners] if partners is not None else None
        run = _Run(images, targets, self.rules, scale, owned=False)
        slot = 0
        for op, params in zip(self.ops, drawn):
            if op.kind == "geometric":
                run.add_matrix(op, params)
            elif op.kind == "colour":
                run.flush_geometry()
                run.add_colour(op, params)
            else:
                run.flush()
                if not op.exact:
                    run.need_float()
                if op.kind == "pixel":
                    run.pixel(op, params)
                elif op.kind == "mixing":
                    got = parts[slot:slot + op.partners] if parts is not None else run.in_batch(op, params)
                    slot += op.partners
                    run.x, run.t = op.mix(run.x, run.t, params, got, self.rules, run.scale)
                    run.owned, run.out_hw = True, tuple(run.x.shape[-2:])
                else:
                    run.x, run.t = op.apply_external(run.x, run.t, params, scale)
                    run.owned, run.out_hw = True, tuple(run.x.shape[-2:])
        run.flush()
        out = run.x
        if images.dtype == torch.uint8 and out.dtype != torch.uint8:
            out = out.round_().clamp_(0, 255) if run.owned else out.round().clamp(0, 255)
            out = out.to(torch.int16).to(torch.uint8)  # via int16: faster than float -> uint8 on CPUs
        elif out is images:
            out = out.clone()
        return out.contiguous(), run.t


def _chunked(pipe: Pipeline, images, targets, drawn, partners, threads):
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.augment.targets import concat

    b = len(images)
    # At most CHUNK_BYTES of float32 working copy per chunk, and two chunks per thread
    # where each still holds MIN_SPLIT_BYTES (a descheduled thread on a shared machine then
    # delays a small piece of work, not half the batch); smaller chunks lose to per-op
    # Python overhead, so a small batch gets one chunk per thread.
    # The chunk count is a multiple of the threads: 5 chunks on 2 threads left one
    # thread idle for a fifth of the batch (measured at 224x224, batch 64).
    per_sample = images[0].numel() * 4
    split = 2 if b * per_sample >= 2 * threads * MIN_SPLIT_BYTES else 1
    n = max(split * threads, -(-b * per_sample // CHUNK_BYTES))
    n = min(b, -(-n // threads) * threads)
    step = -(-b // n)
    bounds = [(i, min(i + step, b)) for i in range(0, b, step)]

    def one(lo_hi):
        lo, hi = lo_hi
        idx = torch.arange(lo, hi)
        sub_drawn = [{k: v[lo:hi] for k, v in d.items()} for d in drawn]
        sub_parts = None if partners is None else [(p[lo:hi], None if pt is None else pt.select(idx))
                                                   for p, pt in partners]
        return pipe._transform(images[lo:hi], None if targets is None else targets.select(idx),
                               sub_drawn, sub_parts)

    with ThreadPoolExecutor(threads) as ex:  # torch runs one thread: ops stay in their chunk's thread
        results = list(ex.map(one, bounds))
    out = torch.cat([r[0] for r in results])
    return out, (None if targets is None else concat([r[1] for r in results]))


def check_targets(ops: Sequence[Op], kinds: set[str]) -> None:
    """Fail loudly when an op cannot handle a target kind the data carries."""
    from pipeline.core.errors import ConfigError

    for i, op in enumerate(ops):
        missing = sorted(kinds - op.supports)
        if missing:
            raise ConfigError(f"augment.pipeline[{i}] ({op.name}) cannot transform target(s) "
                              f"{', '.join(missing)}; remove the op or those targets")


class _Run:
    """The state of one ``transform`` call: images, targets, pending matrix/colour."""

    def __init__(self, x, t, rules, scale, owned):
        self.x, self.t, self.rules, self.scale = x, t, rules, scale
        self.owned = owned  # may self.x be written in place (not the caller's tensor)?
        self.m = None  # pending (B, 3, 3) geometry
        self.geo_applied = None
        self.out_hw = tuple(x.shape[-2:])
        self.colour = None  # pending (M, offset, applied)

    def selection(self, applied: torch.Tensor) -> torch.Tensor | None:
        """Indices of the samples to process, or None for the whole batch: on CUDA
        (no host sync) or when most samples are selected (unselected parameters are
        the identity, so gathering and scattering would cost more than they save)."""
        if self.x.is_cuda:
            return None
        idx = torch.nonzero(applied)[:, 0]
        return None if len(idx) > 0.75 * len(applied) else idx

    def need_float(self):
        """Leave the input dtype for float32 (once): uint8 stays uint8 while pixels
        only move or get filled, which is exact."""
        if not self.x.is_floating_point():
            self.x, self.owned = self.x.to(torch.float32), True

    def put(self, idx, y):
        """Write rows ``idx``: in place once the tensor is ours, else one copy."""
        if self.owned:
            self.x.index_copy_(0, idx, y)
        else:
            self.x, self.owned = self.x.index_copy(0, idx, y), True

    def add_matrix(self, op, params):
        h, w = self.out_hw
        step = op.matrix(params, h, w)
        self.m = step if self.m is None else smallmat.matmul(step, self.m)
        self.out_hw = op.out_hw(h, w)
        a = params["applied"] | (self.out_hw != (h, w))
        self.geo_applied = a if self.geo_applied is None else self.geo_applied | a

    def flush_geometry(self):
        if self.m is None:
            return
        m, a, oh_ow = self.m, self.geo_applied, self.out_hw
        self.m = self.geo_applied = None
        if self.x.is_cuda:
            self.x, self.owned = resample.warp(self.x, m, oh_ow), True
        elif oh_ow == tuple(self.x.shape[-2:]):
            # Chosen per sample: a flip or integer shift only moves pixels (any dtype, so
            # uint8 stays uint8), cheaper than resampling it, which would give the same
            # values (its taps fall on pixel centres with weights 1 and 0).
            exact = matrices.integer_exact(m)
            moved, rest = a & exact, a & ~exact
            idx = self.selection(moved)
            if idx is None:
                eye = matrices.identity(len(m), m.device)
                self.x, self.owned = matrices.move_pixels(self.x, torch.where(moved[:, None, None], m, eye)), True
            elif len(idx):
                self.put(idx, matrices.move_pixels(self.x.index_select(0, idx), m[idx]))
            if bool(rest.any()):
                self._warp_split(m, rest, oh_ow)
        else:
            self._warp_split(m, a, oh_ow)
        if self.t is not None:
            t = transform_targets(self.t, m, oh_ow, self.rules)
            if t.masks is not None:
                from dataclasses import replace

                t = replace(t, masks=transform_masks(t.masks, m, oh_ow))
            self.t = t

    def _warp_split(self, m, a, oh_ow):
        """Resample the samples selected by ``a`` (every one when the size changes);
        the rest are left as they are: some may have been moved exactly already. The
        warp gives uint8 for uint8 (integer arithmetic), float32 for float."""
        idx = torch.nonzero(a)[:, 0]
        if oh_ow != tuple(self.x.shape[-2:]) or len(idx) == len(self.x):
            self.x, self.owned = resample.warp(self.x, m, oh_ow), True
        elif len(idx):
            y = resample.warp(self.x.index_select(0, idx), m[idx], oh_ow)  # uint8 stays uint8
            if y.dtype != self.x.dtype:
                self.need_float()
            self.put(idx, y.to(self.x.dtype))

    def add_colour(self, op, params):
        b, c = self.x.shape[:2]
        if self.colour is None:
            eye = torch.eye(c, device=self.x.device).expand(b, c, c)
            self.colour = (eye, torch.zeros(b, c, device=self.x.device), params["applied"], luts.channel_means(self.x))
        m0, o0, a0, mean0 = self.colour
        mean = smallmat.matvec(m0, mean0) + o0
        m, o = op.affine(params, mean)
        self.colour = (smallmat.matmul(m, m0), smallmat.matvec(m, o0) + o, a0 | params["applied"], mean0)

    def flush_colour(self):
        if self.colour is None:
            return
        m, o, a, _ = self.colour
        self.colour = None
        x = self.x
        idx = self.selection(a)
        if idx is not None:
            if len(idx) == 0:
                return
            x, m, o = x[idx], m[idx], o[idx]
        else:
            # Unselected samples ride along only if their map is exactly the identity
            # (a zero hue turn is inv(YIQ) @ YIQ, off by ~1e-7): then being processed
            # in a batch or skipped gives the same bytes.
            c = m.shape[-1]
            m = torch.where(a[:, None, None], m, torch.eye(c, device=m.device))
            o = torch.where(a[:, None], o, 0.0)
        b, c, h, w = x.shape
        # bmm then add: baddbmm's broadcast copy of the bias costs more than the product.
        # Each sample is its own (C, C) @ (C, H*W) product, whatever the batch: the same
        # bits in a batch of 1 (MKL SGEMM) or many (SGEMM_BATCH); tests/test_smallmat.py
        # checks it. (Written elementwise, this pass cost 3.5x as much.)
        if x.dtype == torch.uint8:
            y = luts.apply_affine(x, m, o)  # exact: uint8 stays uint8
        else:
            y = torch.bmm(m, x.reshape(b, c, h * w)).add_(o[:, :, None]).view(b, c, h, w)
        if idx is None:
            self.x, self.owned = y, True
        else:
            self.put(idx, y)

    def flush(self):
        self.flush_geometry()
        self.flush_colour()

    def pixel(self, op, params):
        a = params["applied"]
        idx = self.selection(a)
        if op.in_place and not self.x.is_cuda:
            if not self.owned:
                self.x, self.owned = self.x.clone(), True
            if idx is None or len(idx):
                sub = params if idx is None else {k: v[idx] for k, v in params.items()}
                op.apply_inplace(self.x, idx, sub, self.scale)
        elif idx is None:  # unselected samples carry identity parameters
            self.x, self.owned = op.apply_image(self.x, params, self.scale), True
        else:
            if len(idx):
                sub = {k: v[idx] for k, v in params.items()}
                self.put(idx, op.apply_image(self.x.index_select(0, idx), sub, self.scale))
        if self.t is not None:
            self.t = op.apply_targets(self.t, params, *self.x.shape[-2:], self.rules)

    def in_batch(self, op, params):
        """Partners from the batch itself, at indices drawn from the keys."""
        b = len(self.x)
        idx = (params["partner_u"] * b).long().clamp_max(b - 1)
        return [(self.x[idx[:, j]], None if self.t is None else self.t.select(idx[:, j]))
                for j in range(op.partners)]
