"""Photometric ops: colour ops fuse into one per-sample matrix + offset; blur, noise
and cutout run on the selected samples only. Targets stay put (cutout may drop
boxes it covers). Values are on the input's scale: 0..255 for uint8, 0..1 for float
(``scale`` below), so ``std`` and ``fill`` are fractions of the full range.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator

from pipeline.augment import rng, smallmat
from pipeline.augment.base import SEED_KEYS, Op, OpParams
from pipeline.augment.geometric import Range, _ordered

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL, OpenCV and torchvision


def _luma(c: int, device) -> torch.Tensor:
    return torch.tensor(LUMA if c == 3 else (1.0,) * c, device=device) / (1.0 if c == 3 else c)


YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
YIQ_INV = smallmat.inverse3(YIQ)


def _hue_matrix(turns: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3): rotate chroma in YIQ by ``turns`` of a full circle (luma kept).
    A linear stand-in for the HSV hue shift, so it fuses with the other colour ops."""
    yiq, yiq_inv = YIQ.to(turns.device), YIQ_INV.to(turns.device)
    a = turns * (2 * math.pi)
    rot = torch.zeros(len(a), 3, 3, device=a.device)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2] = torch.cos(a), -torch.sin(a)
    rot[:, 2, 1], rot[:, 2, 2] = torch.sin(a), torch.cos(a)
    return smallmat.matmul(smallmat.matmul(yiq_inv, rot), yiq)


class ColorJitter(Op):
    """Brightness, contrast, saturation and hue factors, in that fixed order, as one
    per-sample affine colour map (intermediate clamps are skipped: one rounding)."""

    name = "color_jitter"
    kind = "colour"

    class Params(OpParams):
        name: Literal["color_jitter"] = "color_jitter"
        brightness: Range = (0.8, 1.2)
        contrast: Range = (0.8, 1.2)
        saturation: Range = (0.8, 1.2)
        hue: Range = Field((-0.05, 0.05), description="shift in turns, within [-0.5, 0.5]")

        @field_validator("brightness", "contrast", "saturation", "hue", mode="before")
        @classmethod
        def _scalar(cls, v, info):
            # torchvision's shorthand: x means factors in [max(0, 1 - x), 1 + x], hue h in [-h, h].
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if v < 0:
                    raise ValueError("a single value must be >= 0")
                return (-v, v) if info.field_name == "hue" else (max(0.0, 1.0 - v), 1.0 + v)
            return v

        @model_validator(mode="after")
        def _ranges(self):
            for k in ("brightness", "contrast", "saturation", "hue"):
                _ordered(getattr(self, k), k)
            if min(self.brightness + self.contrast + self.saturation) < 0 or max(map(abs, self.hue)) > 0.5:
                raise ValueError("factors must be >= 0 and hue within [-0.5, 0.5]")
            return self

    def sample(self, keys, h, w):
        pr = self.params
        u = self._uniform(keys, 1, 4, 0.0, 1.0)
        applied = self._applied(keys)
        out = {"applied": applied}
        for i, k in enumerate(("brightness", "contrast", "saturation", "hue")):
            lo, hi = getattr(pr, k)
            out[k] = torch.where(applied, lo + (hi - lo) * u[:, i], 0.0 if k == "hue" else 1.0)
        return out

    def affine(self, drawn, mean):
        b, c = mean.shape
        dev = mean.device
        w = _luma(c, dev)
        eye = torch.eye(c, device=dev).expand(b, c, c)
        bc = (drawn["brightness"] * drawn["contrast"])[:, None, None]
        m = bc * eye
        g = drawn["brightness"] * smallmat.dot(mean, w)  # mean luma after brightness
        off = ((1 - drawn["contrast"]) * g)[:, None].expand(b, c)
        if c == 3:
            s = drawn["saturation"][:, None, None]
            sat = s * eye + (1 - s) * torch.ones(c, 1, device=dev) * w[None, :]
            m = smallmat.matmul(_hue_matrix(drawn["hue"]), smallmat.matmul(sat, m))  # both keep grey
        return m, off.contiguous()


class Grayscale(Op):
    """Replace colour by luma (the channel count is kept)."""

    name = "grayscale"
    kind = "colour"

    class Params(OpParams):
        name: Literal["grayscale"] = "grayscale"

    def sample(self, keys, h, w):
        return {"applied": self._applied(keys)}

    def affine(self, drawn, mean):
        b, c = mean.shape
        eye = torch.eye(c, device=mean.device).expand(b, c, c)
        grey = torch.ones(c, 1, device=mean.device) * _luma(c, mean.device)[None, :]
        m = torch.where(drawn["applied"][:, None, None], grey, eye)
        return m, torch.zeros(b, c, device=mean.device)


class GaussianBlur(Op):
    """Separable Gaussian blur with a per-sample sigma (pixels); reflect borders."""

    name = "gaussian_blur"
    kind = "pixel"
    in_place = True

    class Params(OpParams):
        name: Literal["gaussian_blur"] = "gaussian_blur"
        sigma: Range = (0.1, 2.0)
        kernel_size: int | None = Field(None, ge=3, le=63, description="odd; null = 2*ceil(3*sigma_max)+1")

        @model_validator(mode="after")
        def _ranges(self):
            _ordered(self.sigma, "sigma")
            if self.sigma[0] <= 0 or (self.kernel_size is not None and self.kernel_size % 2 == 0):
                raise ValueError("sigma must be > 0 and kernel_size odd")
            return self

    def radius(self) -> int:
        k = self.params.kernel_size or 2 * math.ceil(3 * self.params.sigma[1]) + 1
        return k // 2

    def sample(self, keys, h, w):
        lo, hi = self.params.sigma
        applied = self._applied(keys)
        return {"applied": applied, "sigma": torch.where(applied, self._uniform(keys, 1, 1, lo, hi)[:, 0], 0.0)}

    def _weights(self, sigma: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, int]:
        r = min(self.radius(), h - 1, w - 1)
        t = torch.arange(-r, r + 1, device=sigma.device, dtype=torch.float32)
        wts = torch.exp(-0.5 * (t[None, :] / sigma.clamp_min(1e-3)[:, None]) ** 2)
        return wts / wts.sum(1, keepdim=True), r  # (B, 2r+1)

    def apply_inplace(self, x, idx, drawn, scale):
        """CPU float images above 64 px: blur rows ``idx`` (None = all) of ``x`` in
        place with OpenCV (its separable filter supports src == dst), no gather or
        scatter; elsewhere the out-of-place path."""
        b, c, h, w = x.shape
        if max(h, w) <= 64 or x.dtype != torch.float32 or not x.is_contiguous():
            y = self.apply_image(x if idx is None else x.index_select(0, idx), drawn, scale)
            x.copy_(y) if idx is None else x.index_copy_(0, idx, y)
            return
        import cv2

        wts = self._weights(drawn["sigma"], h, w)[0].numpy()
        xn = x.numpy()
        for j, row in enumerate(range(b) if idx is None else idx.tolist()):
            for ch in range(c):
                cv2.sepFilter2D(xn[row, ch], -1, wts[j], wts[j], dst=xn[row, ch], borderType=cv2.BORDER_REFLECT_101)

    def apply_image(self, x, drawn, scale):
        b, c, h, w = x.shape
        wts, r = self._weights(drawn["sigma"], h, w)
        if max(h, w) <= 64:
            # Small images: each axis one batched product with a banded per-sample
            # matrix (reflect borders folded in): BLAS speed, O(side) per pixel.
            x = torch.matmul(x, _band(wts, w, r).transpose(1, 2)[:, None])
            return torch.matmul(_band(wts, h, r)[:, None], x)
        if x.device.type == "cpu" and x.dtype == torch.float32:
            return _blur_cv2(x, wts)
        # Large images elsewhere: two depthwise convolutions with each (sample, channel)'s own
        # 1-D kernel, O(k) per pixel. (Channels-last convolves faster, but converting
        # the layout in and out costs more than it saves.)
        k = wts.repeat_interleave(c, 0)  # (B*C, 2r+1)
        y = torch.nn.functional.pad(x.reshape(1, b * c, h, w), (r, r, r, r), mode="reflect")
        y = torch.nn.functional.conv2d(y, k.view(b * c, 1, 1, 2 * r + 1), groups=b * c)
        y = torch.nn.functional.conv2d(y, k.view(b * c, 1, 2 * r + 1, 1), groups=b * c)
        return y.view(b, c, h, w)

def _blur_cv2(x: torch.Tensor, wts: torch.Tensor) -> torch.Tensor:
    """CPU, large images: OpenCV's separable filter per (sample, channel) plane,
    reflect-101 borders as ``pad(mode="reflect")``: ~4x faster than grouped conv2d
    at 224x224 and, per sample, independent of the batch. OpenCV releases the GIL,
    so the pipeline's chunk threads overlap."""
    import cv2

    x = x.contiguous()
    out = torch.empty_like(x)
    xn, on, kn = x.numpy(), out.numpy(), wts.numpy()
    for i in range(x.shape[0]):
        k = kn[i]
        for c in range(x.shape[1]):
            cv2.sepFilter2D(xn[i, c], -1, k, k, dst=on[i, c], borderType=cv2.BORDER_REFLECT_101)
    return out


def _band(wts: torch.Tensor, n: int, r: int) -> torch.Tensor:
    """(B, n, n) matrix applying 1-D kernels ``wts`` (B, 2r+1) with reflect borders."""
    i = torch.arange(n, device=wts.device)
    src = i[:, None] + torch.arange(-r, r + 1, device=wts.device)[None, :]  # (n, k)
    src = src.abs()
    src = torch.where(src > n - 1, 2 * (n - 1) - src, src)  # reflect (edge not repeated)
    band = torch.zeros(len(wts), n, n, device=wts.device)
    band.scatter_add_(2, src.expand(len(wts), n, 2 * r + 1), wts[:, None, :].expand(-1, n, -1).contiguous())
    return band


class GaussianNoise(Op):
    """Add zero-mean Gaussian noise with a per-sample std (fraction of the range)."""

    name = "gaussian_noise"
    kind = "pixel"
    in_place = True

    class Params(OpParams):
        name: Literal["gaussian_noise"] = "gaussian_noise"
        std: Range = (0.01, 0.05)

        @model_validator(mode="after")
        def _ranges(self):
            _ordered(self.std, "std")
            if self.std[0] < 0 or self.std[1] > 1:
                raise ValueError("std must lie within [0, 1]")
            return self

    def sample(self, keys, h, w):
        lo, hi = self.params.std
        applied = self._applied(keys)
        return {"applied": applied, "std": torch.where(applied, self._uniform(keys, 1, 1, lo, hi)[:, 0], 0.0),
                SEED_KEYS: self.keys(keys)}

    def apply_inplace(self, x, idx, drawn, scale):
        """CPU: add the selected samples' noise into ``x`` rows ``idx`` (None = all)."""
        # Add each sample's bank windows straight into its row: no gathered copy of
        # the noise, no scatter (one fused pass per window).
        n = x[0].numel()
        _, length = rng.noise_windows(n)
        offset, sign = rng.noise_offsets(drawn[SEED_KEYS], self.stream + 2, n)
        bank = rng.noise_bank(x.device)
        alpha = (drawn["std"][:, None] * scale * sign).tolist()
        rows = range(len(alpha)) if idx is None else idx.tolist()
        for row, offs, alphas in zip(rows, offset.tolist(), alpha):
            flat = x[row].view(-1)
            for k, (off, a) in enumerate(zip(offs, alphas)):
                lo = k * length
                m = min(length, n - lo)
                flat[lo:lo + m].add_(bank[off:off + m], alpha=a)

    def apply_image(self, x, drawn, scale):
        b = x.shape[0]
        noise = rng.noise_field(drawn[SEED_KEYS], self.stream + 2, x[0].numel())
        return torch.addcmul(x, noise.view(x.shape), (drawn["std"] * scale).view(b, 1, 1, 1))
