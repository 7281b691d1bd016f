"""sin, cos and exp that give the same bits on every CPU kernel and on CUDA.

torch's ``sin``/``cos``/``exp`` come from each device's own library (SLEEF or libm
vector loops on the CPU, CUDA's math library on the GPU), which may differ in the
last place; a matrix or a blur tap built on them could then round to another
fixed-point value on another device. These are float64 polynomials evaluated as
separate elementwise multiplies and adds (each one IEEE rounding, no fusion across
torch operations), cast to float32 at the end: a few ulps of float64 from the true
value, and the same bits everywhere.
"""

from __future__ import annotations

import math

import torch

_SIN = [(-1.0) ** k / math.factorial(2 * k + 1) for k in range(12)]  # x^1 .. x^23
_COS = [(-1.0) ** k / math.factorial(2 * k) for k in range(12)]  # x^0 .. x^22
_EXP = [1.0 / math.factorial(k) for k in range(16)]
_LN2 = math.log(2.0)
_MIN_EXP = -60  # exp below 2**-60 is 0 here: far under float32 weights that matter


_POWERS: dict[str, torch.Tensor] = {}


def _powers(device) -> torch.Tensor:
    """2**e for e in [_MIN_EXP, 128], exact float64, one table per device."""
    key = str(device)
    if key not in _POWERS:
        _POWERS[key] = torch.tensor([2.0 ** e for e in range(_MIN_EXP, 129)], dtype=torch.float64, device=device)
    return _POWERS[key]


def _horner(coeffs: list[float], t: torch.Tensor) -> torch.Tensor:
    acc = torch.full_like(t, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * t + c
    return acc


def sin_cos(radians: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 (sin, cos) of angles within [-4, 4] radians (beyond, less accurate)."""
    x = radians.to(torch.float64)
    x2 = x * x
    return (x * _horner(_SIN, x2)).to(torch.float32), _horner(_COS, x2).to(torch.float32)


def exp(x: torch.Tensor) -> torch.Tensor:
    """float32 ``e**x`` for x <= 88: ``2**k * e**r`` with ``k = round(x / ln 2)`` and a
    Taylor polynomial of ``r`` in [-0.35, 0.35]; ``2**k`` read from a table of exact
    powers of two."""
    xd = x.to(torch.float64).clamp(_MIN_EXP * _LN2, 88.0)
    k = torch.round(xd / _LN2)
    r = xd - k * _LN2
    powers = _powers(x.device)
    scale = powers[(k.to(torch.int64) - _MIN_EXP).clamp(0, len(powers) - 1)]
    return (_horner(_EXP, r) * scale).to(torch.float32)
