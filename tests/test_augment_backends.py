"""The CPU fast paths and backend choice: large-image paths (OpenCV blur in place,
per-row noise, cutout slices) give each sample the same output in any batch; the
albumentations backend over worker processes equals its serial run; ``auto``
picks the faster backend of the measured table."""

import pytest
import torch

from pipeline.augment.registry import build_pipeline
from pipeline.augment.rng import keys_tensor
from pipeline.backends import ALBUMENTATIONS, resolve
from pipeline.backends.choice import CPU_MEASURED, choose_backend, cpu_speed_ratio
from pipeline.core.seeding import sample_key

BENCH = [{"name": "hflip", "p": 0.5}, {"name": "random_resized_crop", "p": 1.0, "scale": [0.5, 1.0]},
         {"name": "rotate", "p": 0.5, "degrees": 15}, {"name": "color_jitter", "p": 0.8},
         {"name": "gaussian_blur", "p": 0.5, "sigma": [0.1, 1.0]},
         {"name": "gaussian_noise", "p": 0.5, "std": [0.01, 0.05]},
         {"name": "cutout", "p": 0.5, "holes": [1, 2], "size": [0.1, 0.3]}]


def _keys(n):
    return keys_tensor([sample_key(3, f"s{i}") for i in range(n)])


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_large_images_same_output_in_any_batch(two_threads):
    pipe = build_pipeline(BENCH)
    n, h, w = 12, 72, 80  # above the 64 px small-image paths
    x = torch.randint(0, 256, (n, 3, h, w), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    k = _keys(n)
    full = pipe.apply(x, pipe.sample(k, h, w))  # chunked over two threads
    assert not torch.equal(full, x)
    torch.set_num_threads(1)
    for i in range(n):
        one = pipe.apply(x[i:i + 1], pipe.sample(k[i:i + 1], h, w))
        assert torch.equal(one[0], full[i]), i


def test_blur_in_place_matches_out_of_place_and_cutout_slices_match_the_mask():
    pipe = build_pipeline([{"name": "gaussian_blur", "p": 1.0, "sigma": [0.3, 2.0]},
                           {"name": "cutout", "p": 1.0, "holes": [0, 3], "size": [0.1, 0.6]}])
    blur, cut = pipe.ops
    x = torch.rand(6, 3, 70, 90) * 255
    drawn = pipe.sample(_keys(6), 70, 90)
    ref = blur.apply_image(x, drawn[0], 255.0)
    y = x.clone()
    blur.apply_inplace(y, torch.tensor([1, 4]), {k: v[[1, 4]] for k, v in drawn[0].items()}, 255.0)
    assert torch.allclose(y[[1, 4]], ref[[1, 4]], atol=1e-3) and torch.equal(y[[0, 2, 3, 5]], x[[0, 2, 3, 5]])
    z = x.clone()
    cut.apply_inplace(z, None, drawn[1], 255.0)
    assert torch.equal(z, cut.apply_image(x, drawn[1], 255.0))


def test_albumentations_backend_in_processes_equals_serial(two_threads):
    pipe = build_pipeline(BENCH, backend="albumentations")
    n = 6
    x = torch.randint(0, 256, (n, 3, 40, 48), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    k = _keys(n)
    pooled = ALBUMENTATIONS.run(pipe, x, None, k, pipe.sample(k, 40, 48))[0]  # 2 worker processes
    torch.set_num_threads(1)
    serial = ALBUMENTATIONS.run(pipe, x, None, k, pipe.sample(k, 40, 48))[0]
    assert pooled.dtype == torch.uint8 and torch.equal(pooled, serial)
    assert torch.equal(ALBUMENTATIONS.run(pipe, x[3:4], None, k[3:4], pipe.sample(k[3:4], 40, 48))[0][0], serial[3])


@pytest.mark.parametrize("side", [32, 224, 448, 640])
def test_auto_picks_the_faster_backend_of_the_table_on_cpu(side):
    pixels, torch_rate, albu_rate = next(row for row in CPU_MEASURED if row[0] == side * side)
    faster = "torch" if torch_rate >= albu_rate else "albumentations"
    pipe = build_pipeline(BENCH, backend="auto")
    assert resolve(pipe, torch.device("cpu"), side, side) == faster
    assert cpu_speed_ratio(pixels) == pytest.approx(torch_rate / albu_rate)


def test_auto_extrapolates_the_trend_and_keeps_torch_on_cuda():
    table = ((100, 10.0, 1.0), (10_000, 2.0, 1.0))  # ratio falls 5x per 100x pixels
    assert cpu_speed_ratio(1_000, table) == pytest.approx(10 / 5 ** 0.5)
    assert cpu_speed_ratio(1_000_000, table) == pytest.approx(0.4)
    ops = build_pipeline(BENCH).ops
    assert choose_backend(ops, torch.device("cpu"), 1000, 1000, table) == "albumentations"
    assert choose_backend(ops, torch.device("cpu"), 100, 100, table) == "torch"
    assert choose_backend(ops, torch.device("cuda"), 1000, 1000, table) == "torch"


def test_cpu_path_sets_glibc_thresholds_once_unless_the_user_did():
    import os
    import platform
    import sys

    from pipeline.core.allocator import retain_freed_memory

    pipe = build_pipeline(BENCH)
    pipe.apply(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), pipe.sample(_keys(2), 8, 8))
    user_set = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ)
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is (glibc and not user_set)
    assert retain_freed_memory() is retain_freed_memory()


def test_transform_changes_no_process_state_and_chunking_changes_no_byte(monkeypatch):
    """Process-wide settings belong to entry points: a transform leaves torch's thread
    count as it found it, and the chunked run (one torch thread, a chunk per core) gives
    the bytes of the whole-batch run on torch's own pool."""
    import torch

    from pipeline.augment import pipeline as engine

    pipe = build_pipeline(BENCH)
    x = torch.randint(0, 256, (40, 3, 24, 24), dtype=torch.uint8)
    keys = keys_tensor([sample_key(0, f"s{i}", 1) for i in range(40)])
    drawn = pipe.sample(keys, 24, 24)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        whole = pipe.apply(x, drawn)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        monkeypatch.setattr("pipeline.core.device.cpu_cores", lambda: 4)
        calls = []
        real = engine._chunked
        monkeypatch.setattr(engine, "_chunked", lambda *a: calls.append(1) or real(*a))
        chunked = pipe.apply(x, drawn)
        assert calls and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert torch.equal(whole, chunked)
