"""CPU-vs-CUDA parity of every registered op on the same keys (uint8 in, uint8 out).

    python benchmarks/gpu_parity.py [--size 96] [--batch 16] [--dry]

For each op alone (p = 1, its default parameters) the same images and the same
per-sample keys go through the engine on the CPU and on CUDA; the table gives the
largest absolute difference in grey levels and the share of values that differ.
Keyed draws are exact integer maths on both devices, and on uint8 every op but the
mixing ones (warps, colour, blur, noise, cutout) is exact arithmetic
(``augment/fixedpoint.py``, ``augment/luts.py``): those must show 0, and the script
exits 1 when one does not. Without CUDA (or with --dry) every op still runs on the
CPU twice (a second run must match the first bit for bit) and the CUDA columns say
skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402


def main() -> int:
    from pipeline.augment.registry import REGISTRY, build_pipeline
    from pipeline.augment.rng import keys_tensor
    from pipeline.core.seeding import sample_key

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--dry", action="store_true", help="CPU only (what runs without a GPU)")
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and not args.dry
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.batch, 3, args.size, args.size), generator=g, dtype=torch.uint8)
    ids = [f"img{i}" for i in range(args.batch)]
    print(f"torch {torch.__version__}, {'CUDA ' + torch.cuda.get_device_name() if cuda else 'no CUDA (dry)'}, "
          f"{args.batch} images of {args.size}x{args.size}")
    print(f"{'op':22s} {'cpu repeat':>10s} {'max |cpu-cuda|':>15s} {'share differing':>16s}")
    worst, broken = 0, []
    for name in sorted(REGISTRY):
        pipe = build_pipeline([{"name": name, "p": 1.0}])
        keys = keys_tensor([sample_key(0, i, 1) for i in ids])
        drawn = pipe.sample(keys, args.size, args.size)
        a = pipe.apply(x, drawn)
        again = "equal" if torch.equal(a, pipe.apply(x, pipe.sample(keys, args.size, args.size))) else "DIFFERS"
        if not cuda:
            print(f"{name:22s} {again:>10s} {'skipped':>15s} {'skipped':>16s}")
            continue
        kc = keys_tensor([sample_key(0, i, 1) for i in ids], "cuda")
        b = pipe.apply(x.cuda(), pipe.sample(kc, args.size, args.size)).cpu()
        if a.shape != b.shape:
            print(f"{name:22s} {again:>10s} {'shape ' + str(tuple(b.shape)):>15s}")
            worst = 255
            continue
        d = (a.to(torch.int16) - b.to(torch.int16)).abs()
        worst = max(worst, int(d.max()))
        if pipe.ops[0].kind != "mixing" and int(d.max()):
            broken.append(name)
        print(f"{name:22s} {again:>10s} {int(d.max()):15d} {float((d > 0).float().mean()):16.6f}")
    print(f"largest difference over all ops: {worst} grey level(s)" if cuda else "CUDA rows skipped (no CUDA)")
    if broken:
        print(f"exact ops that differ between CPU and CUDA: {', '.join(broken)}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
