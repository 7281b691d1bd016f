"""Per-sample, counter-based random numbers on any device.

A batch carries one 64-bit key per sample (``pipeline.core.seeding.sample_key``), held
as two 32-bit words. A draw is a pure hash of (key, stream, counter): no generator
state, so a sample gets the same numbers whether it sits in a batch of 1, 7 or 64,
in any order, on CPU or CUDA (integer arithmetic is exact on both). Each op draws
from its own stream, so adding an op does not change the draws of the others.

The mixer is the 32-bit integer hash with multiplier 0x45d9f3b (constants below
2^31, so every product fits in int64 and no overflow semantics are relied upon).
"""

from __future__ import annotations

import torch

M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B1


def _mix32(x: torch.Tensor) -> torch.Tensor:
    x = (((x >> 16) ^ x) * 0x45D9F3B) & M32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & M32
    return (x >> 16) ^ x


def keys_tensor(keys: list[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, 2) int64 tensor of the low and high 32-bit words of 64-bit keys."""
    words = [[k & M32, (k >> 32) & M32] for k in keys]
    return torch.tensor(words, dtype=torch.int64, device=device).reshape(-1, 2)


def random_bits(keys: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) int64 of uniformly distributed 32-bit values."""
    counter = torch.arange(n, device=keys.device, dtype=torch.int64)
    s = _mix32((counter + (stream & M32) * _GOLDEN) & M32)  # (n,)
    h = _mix32(keys[:, 1:2] ^ s[None, :])
    return _mix32(keys[:, 0:1] ^ h)


def uniform(keys: torch.Tensor, stream: int, n: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """(B, n) float32 uniform in [low, high)."""
    u = (random_bits(keys, stream, n) >> 8).to(torch.float32) * (1.0 / (1 << 24))
    return low + (high - low) * u


def randint(keys: torch.Tensor, stream: int, n: int, low: int, high: int) -> torch.Tensor:
    """(B, n) int64 uniform in [low, high] inclusive."""
    span = high - low + 1
    return low + (random_bits(keys, stream, n) % span)


def normal(keys: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) float32 standard normal (Box-Muller on two keyed uniforms)."""
    u = uniform(keys, stream, 2 * n)
    u1 = u[:, :n].clamp_min(1.0 / (1 << 24))
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * torch.pi) * u[:, n:])


def gamma(keys: torch.Tensor, stream: int, alpha: float, tries: int = 12) -> torch.Tensor:
    """(B,) Gamma(alpha, 1) by Marsaglia-Tsang with a fixed number of vectorised tries.

    Each try is accepted with probability > 0.95, so 12 tries fail with odds below
    1e-15; a sample that still fails gets the mean ``alpha``. ``alpha < 1`` uses the
    boost ``Gamma(a) = Gamma(a + 1) * U^(1/a)``.
    """
    a = alpha + 1.0 if alpha < 1.0 else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / (9.0 * d) ** 0.5
    z = normal(keys, stream, tries)
    u = uniform(keys, stream + 1, tries + 1).clamp_min(1e-12)
    v = (1.0 + c * z) ** 3
    ok = (v > 0) & (torch.log(u[:, :tries]) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp_min(1e-12)))
    first = torch.where(ok.any(1), ok.to(torch.int8).argmax(1), -1)
    val = (d * v).gather(1, first.clamp_min(0)[:, None])[:, 0]
    val = torch.where(first >= 0, val, torch.full_like(val, alpha))
    if alpha < 1.0:
        # exp(log(u) / alpha), not u ** (1 / alpha): torch's vectorised pow rounds
        # differently from its scalar tail, so a value would depend on its lane.
        val = val * torch.exp(torch.log(u[:, tries]) * (1.0 / alpha))
    return val


def beta(keys: torch.Tensor, stream: int, alpha: float) -> torch.Tensor:
    """(B,) Beta(alpha, alpha) as a ratio of two keyed gammas."""
    x = gamma(keys, stream, alpha)
    y = gamma(keys, stream + 7, alpha)
    return x / (x + y).clamp_min(1e-12)


_BANK_SIZE = 1 << 22
_banks: dict[str, torch.Tensor] = {}


def noise_bank(device: torch.device) -> torch.Tensor:
    """A fixed table of 2^22 standard normals, the same on every device.

    Per-pixel keyed hashing costs ~20 integer passes per pixel; instead each sample
    copies a window of this table at a keyed offset (``noise_field``), one memcpy.
    Built once from a fixed seed on the CPU, so CPU and CUDA agree.
    """
    key = str(device)
    if key not in _banks:
        g = torch.Generator().manual_seed(0x5EED)
        _banks[key] = torch.randn(_BANK_SIZE, generator=g).to(device)
    return _banks[key]


# A field larger than half the bank is cut into windows of WINDOW values, each at its
# own keyed offset and sign: any image size, one memcpy-speed add per window. Values
# then repeat within a field at random shifts (a 4000x3000 RGB field reuses the bank
# about 9 times), as they already do across samples: harmless for augmentation.
WINDOW = 1 << 16


def noise_windows(n: int) -> tuple[int, int]:
    """(count, length) of the windows a field of ``n`` values is drawn from: one window
    of ``n`` up to half the bank (the bytes of small images are as they always were),
    else ``ceil(n / WINDOW)`` windows of ``WINDOW`` (the last one cut short)."""
    if n <= _BANK_SIZE // 2:
        return 1, n
    return -(-n // WINDOW), WINDOW


def noise_offsets(keys: torch.Tensor, stream: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K) keyed start of each of the K windows (``noise_windows``) of a field of
    ``n`` values in ``noise_bank``, and (B, K) keyed signs (+-1): draw 2k is window k's
    offset, 2k + 1 its sign, so a field's first window is drawn as before windows existed."""
    k, length = noise_windows(n)
    r = random_bits(keys, stream, 2 * k).view(-1, k, 2)
    return r[..., 0] % (_BANK_SIZE - length + 1), (r[..., 1] & 1).to(torch.float32) * 2 - 1


def noise_field(keys: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) standard normal noise, signed: each sample's windows of ``noise_bank`` at
    keyed offsets, laid end to end (the out-of-place twin of adding them one by one).
    Windows of two samples overlap with odds ~ 2n / 2^22 (then one is a shifted copy of
    the other, harmless for augmentation)."""
    bank = noise_bank(keys.device)
    k, length = noise_windows(n)
    offset, sign = noise_offsets(keys, stream, n)
    windows = bank.unfold(0, length, 1)  # (L - length + 1, length) view: every window, no copy
    noise = windows.index_select(0, offset.reshape(-1)).view(len(keys), k, length) * sign[..., None]
    return noise.view(len(keys), k * length)[:, :n]
