"""Per-sample, counter-based random numbers on any device.

A batch carries one 64-bit key per sample (``pipeline.seeding.sample_key``), held
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
