"""Each network dataset, served from a loopback mirror in its real format: downloaded,
verified, written as an ImageFolder tree and ingested with the right counts."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pipeline.config import IngestParams
from pipeline.download import download
from pipeline.download.upstream import torchvision_attr
from pipeline.core.errors import ConfigError, DownloadError
from pipeline.ingest import ingest
from tests.conftest import REPO
from tests.download_fixtures import (CIFAR10_NAMES, HYMENOPTERA_COUNTS, HYMENOPTERA_PLACEHOLDER, cifar10_archive,
                                     cifar100_archive, hymenoptera_archive, loopback, mnist_files,
                                     sha256_checksums)

__all__ = ["loopback"]  # the fixture, imported for pytest
FASHION = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _expected(name: str) -> tuple[dict[str, bytes], Counter]:
    """Files the mirror serves and the (split, class) counts ingest must find."""
    if name in ("mnist", "fashion-mnist"):
        classes = [str(d) for d in range(10)] if name == "mnist" else FASHION
        return mnist_files(2, 1), Counter({**{("train", c): 2 for c in classes}, **{("test", c): 1 for c in classes}})
    if name == "cifar10":
        return ({"cifar-10-python.tar.gz": cifar10_archive()},
                Counter({**{("train", c): 2 for c in CIFAR10_NAMES}, **{("test", c): 1 for c in CIFAR10_NAMES}}))
    if name == "cifar100":
        names = [f"fine{k:02d}" for k in range(100)]
        return ({"cifar-100-python.tar.gz": cifar100_archive()},
                Counter({(s, c): 1 for s in ("train", "test") for c in names}))
    return {"hymenoptera_data.zip": hymenoptera_archive()}, Counter(HYMENOPTERA_COUNTS)


def _opts(tmp_path: Path, **kw) -> dict:
    return dict(cache=tmp_path / "cache", backoff=0.01, retries=1, **kw)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "cifar100", "hymenoptera"])
def test_dataset_from_mirror_verifies_and_ingests(tmp_path, loopback, name):
    files, counts = _expected(name)
    mirror = loopback.serve("mirror", files)
    sums = sha256_checksums(tmp_path / "sums.json", files)
    out = download(name, tmp_path / "raw", **_opts(tmp_path, mirror=mirror, checksums=sums))
    assert sorted(p.name for p in out.iterdir()) == [".pipeline-output.json"] + (
        ["train", "val"] if name == "hymenoptera" else ["test", "train"])
    # The miniature hymenoptera's placeholder is 1 of 9 inputs (the real tree's, 1 of 398): accepted.
    ds = ingest(out, tmp_path / "canonical", IngestParams(workers=1, on_loss="warn"), fmt="imagefolder")
    placeholders = [HYMENOPTERA_PLACEHOLDER] if name == "hymenoptera" else []
    assert [(r.path, r.reason) for r in ds.quarantine] == [(p, "placeholder") for p in placeholders]
    assert Counter((s.split, s.label) for s in ds.samples) == counts
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".raw")]  # no temp dir left


def test_second_run_uses_the_cache(tmp_path, loopback):
    files = {"cifar-10-python.tar.gz": cifar10_archive()}
    opts = _opts(tmp_path, mirror=loopback.serve("m", files),
                 checksums=sha256_checksums(tmp_path / "sums.json", files))
    download("cifar10", tmp_path / "a", **opts)
    download("cifar10", tmp_path / "b", **opts)
    assert len(loopback.log) == 1
    assert sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")) == \
        sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))


def test_from_local_archive_needs_no_network(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    data = cifar10_archive()
    archive.write_bytes(data)
    sums = sha256_checksums(tmp_path / "sums.json", {archive.name: data})
    out = download("cifar10", tmp_path / "raw", **_opts(tmp_path, source=archive, checksums=sums))
    assert len(list((out / "train").rglob("*.png"))) == 20
    assert archive.read_bytes() == data and not (tmp_path / "cache").exists()  # used in place


def test_from_local_archive_still_checked_against_official_md5(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(cifar10_archive())
    with pytest.raises(DownloadError, match="expected md5:" + torchvision_attr("cifar", "CIFAR10", "tgz_md5")):
        download("cifar10", tmp_path / "raw", **_opts(tmp_path, source=archive))
    assert not (tmp_path / "raw").exists()


def test_official_checksums_reject_a_mirror_with_other_bytes(tmp_path, loopback):
    """Show 2: exit code != 0, the file and both digests named, no DIR left behind."""
    mirror = loopback.serve("evil", mnist_files(1, 1))
    env = dict(os.environ, PYTHONPATH=str(REPO), PIPELINE_NO_PROGRESS="1", PIPELINE_CACHE=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-m", "pipeline", "download", "mnist", "--out", "raw", "--mirror", mirror],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    official = dict(torchvision_attr("mnist", "MNIST", "resources"))["train-images-idx3-ubyte.gz"]
    assert "checksum mismatch for train-images-idx3-ubyte.gz" in r.stderr
    assert f"expected md5:{official}" in r.stderr and "got md5:" in r.stderr
    for option in ("--checksums", "--mirror", "--from"):
        assert option in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "raw").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".raw")]
    assert not list((tmp_path / "cache").rglob("*.gz"))  # unverified bytes are not cached


def test_checksums_file_naming_an_unknown_file_is_refused(tmp_path):
    sums = tmp_path / "sums.json"
    sums.write_text('{"cifar10.tgz": "md5:' + "0" * 32 + '"}')
    with pytest.raises(ConfigError, match="unknown file name.*cifar10.tgz.*cifar-10-python.tar.gz"):
        download("cifar10", tmp_path / "raw", **_opts(tmp_path, checksums=sums, source=tmp_path / "files"))


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="cifar10, cifar100, fashion-mnist, hymenoptera, mnist, mnist5k"):
        download("imagenet", tmp_path / "raw")


def test_hymenoptera_without_checksums_warns_that_it_is_unverified(tmp_path, loopback, caplog):
    files = {"hymenoptera_data.zip": hymenoptera_archive()}
    download("hymenoptera", tmp_path / "raw", **_opts(tmp_path, mirror=loopback.serve("m", files)))
    assert "NOT verified" in caplog.text and "sha256:" in caplog.text


def test_upstream_urls_are_tried_in_order_and_stale_cache_is_refetched(tmp_path, loopback):
    from pipeline.download.checksums import file_digest
    from pipeline.download.remote import FetchOptions, Remote, obtain

    data = mnist_files(1, 1)["t10k-labels-idx1-ubyte.gz"]
    good = loopback.serve("second", {"f.gz": data}) + "/f.gz"
    (tmp_path / "f.gz").write_bytes(data)
    remote = Remote("f.gz", (loopback.url + "/first/f.gz", good), file_digest(tmp_path / "f.gz", "md5"))
    opts = FetchOptions(cache=tmp_path / "cache", backoff=0.01)
    path = obtain("ds", [remote], opts)["f.gz"]
    assert path.read_bytes() == data
    assert [p for p, _ in loopback.log] == ["/first/f.gz", "/second/f.gz"]
    path.write_bytes(b"stale")  # a cached copy that no longer verifies is fetched again
    assert obtain("ds", [remote], opts)["f.gz"].read_bytes() == data
    assert len(loopback.log) == 4


def test_official_md5s_are_read_from_torchvision():
    assert torchvision_attr("cifar", "CIFAR10", "tgz_md5") == "c58f30108f718f92721af3b95e74349a"
    assert dict(torchvision_attr("mnist", "MNIST", "resources"))["t10k-labels-idx1-ubyte.gz"] == \
        "ec29112dd5afa0611ce80d1b7f02629c"


def test_list_shows_size_classes_licence_and_network(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipeline", "download", "--list"], cwd=tmp_path, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 0
    for name in ("mnist5k", "mnist", "fashion-mnist", "cifar10", "cifar100", "hymenoptera"):
        assert f"\n{name} " in "\n" + r.stdout
    assert "100 classes, needs network, 161 MB" in r.stdout and "10 classes, offline" in r.stdout
    assert "Krizhevsky" in r.stdout and "arXiv:1708.07747" in r.stdout


def test_dvc_stage_uses_the_mirror_from_params(tmp_path, loopback):
    mirror = loopback.serve("m", {"cifar-10-python.tar.gz": cifar10_archive()})
    (tmp_path / "params.yaml").write_text(f"download: {{dataset: cifar10, mirror: '{mirror}'}}\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), PIPELINE_CACHE=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-m", "stages.download", "--out", "raw"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2  # the mirror's bytes are not the official ones
    assert r.stderr.startswith("download: error: checksum mismatch for cifar-10-python.tar.gz")
    assert loopback.requests("cifar-10-python.tar.gz") == [None]
    assert not (tmp_path / "raw").exists()
    digest = "sha256:" + hashlib.sha256(cifar10_archive()).hexdigest()
    (tmp_path / "params.yaml").write_text(f"download: {{dataset: cifar10, mirror: '{mirror}', "
                                          f"checksums: {{cifar-10-python.tar.gz: '{digest.upper()}'}}}}\n")
    r = subprocess.run([sys.executable, "-m", "stages.download", "--out", "raw"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "raw").rglob("*.png"))) == 30


def test_params_checksums_are_validated():
    from pipeline.config import parse_section

    with pytest.raises(ConfigError, match=r"download.checksums: a.gz: 'md5:123' is not a digest"):
        parse_section("download", {"checksums": {"a.gz": "md5:123"}})
