"""Before augment starts: a version that cannot fit in memory or on disk is refused with the numbers."""

from __future__ import annotations

import pytest

from pipeline.config import AugmentParams, IngestParams, SplitParams
from pipeline.core.errors import InputError
from pipeline.ingest import ingest
from pipeline.split import assign_splits
from pipeline.version import preflight
from pipeline.version.writer import write_version
from tests.conftest import make_imagefolder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("pf")
    ds = ingest(make_imagefolder(root / "src", classes=2, per_class=5), root / "canonical", IngestParams(workers=1))
    return ds, assign_splits(ds, SplitParams())


def test_a_fitting_version_passes(dataset, tmp_path):
    ds, assignment = dataset
    preflight.check_fits(ds, assignment, AugmentParams(image_size=(32, 32)), tmp_path / "v")


def test_memory_and_disk_are_checked_before_any_work(dataset, tmp_path, monkeypatch):
    ds, assignment = dataset
    # A pixel budget as large as the count: 256 of these images per batch.
    big = AugmentParams(image_size=(8192, 8192), copies=100, batch_size=256, batch_pixels=1 << 40)
    monkeypatch.setattr(preflight, "available_memory", lambda: 8 << 30)
    with pytest.raises(InputError, match=r"a batch of \d+ images of 8192x8192x1 needs about .* GiB.*batch_size"):
        write_version(ds, assignment, big, tmp_path / "v")
    monkeypatch.setattr(preflight, "available_memory", lambda: 1 << 50)
    monkeypatch.setattr(preflight, "free_disk", lambda p: 1 << 30)
    with pytest.raises(InputError, match=r"holds \d+ images of 8192x8192x1, about .* GiB.*1.0 GiB free"):
        write_version(ds, assignment, big, tmp_path / "v")
    assert not (tmp_path / "v").exists() and list(tmp_path.iterdir()) == []


def test_batches_are_cut_by_a_pixel_budget_as_well_as_a_count():
    from pipeline.version.plan import batches

    rows = list(range(10))
    sizes = [4, 4, 4, 100, 1, 1, 1, 1, 1, 1]
    got = list(batches(iter(rows), 4, max_pixels=10, pixels=lambda r: sizes[r]))
    # a row larger than the budget still goes, alone; a count of 4 still cuts
    assert got == [[0, 1], [2], [3], [4, 5, 6, 7], [8, 9]]
    assert list(batches(iter(rows), 3)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_the_default_pixel_budget_keeps_a_batch_of_huge_images_within_memory(dataset, tmp_path, monkeypatch):
    """The default budget cuts batches of 8192x8192 images to one image: no refusal
    for memory where a count of 256 would need about 200 GiB."""
    ds, assignment = dataset
    monkeypatch.setattr(preflight, "available_memory", lambda: 8 << 30)
    monkeypatch.setattr(preflight, "free_disk", lambda p: 1 << 30)
    big = AugmentParams(image_size=(8192, 8192), copies=100, batch_size=256)
    with pytest.raises(InputError, match=r"holds \d+ images of 8192x8192x1"):  # disk, not memory
        write_version(ds, assignment, big, tmp_path / "v")
