"""The same train under torchrun: 2 CPU processes (gloo on 127.0.0.1) match one process,
on packed rows, on images stored as files (streamed), and from trained weights with the
backbone frozen for the first epochs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, make_version

# seed_cnn has no batch norm, so the only difference between 1 and 2 processes is
# the order of floating-point sums in the gradient all-reduce. Online augmentation
# is keyed per sample, so it is identical on any number of ranks.
PARAMS = """
train:
  model: seed_cnn
  optimizer: sgd
  lr: 0.05
  epochs: 2
  batch_size: 10
  threads: 1
  online_augment: [{name: crop, padding: 2, p: 0.5}]
"""


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    return make_version(tmp_path_factory.mktemp("ddp"), 14, {"train": 0.6, "val": 0.2, "test": 0.2})


def run_stage(launcher: list[str], version, out, params):
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("DVC_EXP_NAME", None)
    cmd = [*launcher, "stages.train", "--params", str(params), "--version", str(version),
           "--checkpoint", str(out / "m.pt"), "--logdir", str(out / "tb"), "--metrics", str(out / "train.json"),
           "--curve", str(out / "curve.csv")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_two_processes_match_one(version, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    one = run_stage([sys.executable, "-m"], version, tmp_path / "one", params)
    assert "1 process(es)" in one.stdout
    two = run_stage([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                     "-m"], version, tmp_path / "two", params)
    assert "2 process(es)" in two.stdout and two.stdout.count("epoch 2:") == 1  # rank 0 alone prints
    a = torch.load(tmp_path / "one/m.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two/m.pt", weights_only=True)["state_dict"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    ma = json.loads((tmp_path / "one/train.json").read_text())
    mb = json.loads((tmp_path / "two/train.json").read_text())
    for k in ("val_accuracy", "train_accuracy", "val_loss", "train_loss"):
        assert mb[k] == pytest.approx(ma[k], abs=1e-4), k  # reduced over ranks, not rank 0's share
    runs = list((tmp_path / "two/tb").iterdir())
    assert len(runs) == 1 and len(list(runs[0].glob("events.out.tfevents.*"))) == 1


def test_two_processes_match_one_on_images_stored_as_files(tmp_path_factory, tmp_path):
    """The streamed path: mixed-size files decoded in loader workers, resized to the median
    size; each rank reads only its shard of every global batch."""
    from tests.test_train_any_version import make_mixed_version

    version = make_mixed_version(tmp_path_factory.mktemp("ddp-files"))
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS + "  workers: 1\n")
    one = run_stage([sys.executable, "-m"], version, tmp_path / "one", params)
    assert "resized to 32x32" in one.stdout
    run_stage([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"],
              version, tmp_path / "two", params)
    a = torch.load(tmp_path / "one/m.pt", weights_only=True)
    b = torch.load(tmp_path / "two/m.pt", weights_only=True)
    assert a["shape"] == b["shape"] == [32, 32, 3]
    for k in a["state_dict"]:
        assert torch.allclose(a["state_dict"][k], b["state_dict"][k], atol=1e-5, rtol=1e-4), k
    ma = json.loads((tmp_path / "one/train.json").read_text())
    mb = json.loads((tmp_path / "two/train.json").read_text())
    for k in ("val_accuracy", "train_accuracy", "val_loss", "train_loss"):
        assert mb[k] == pytest.approx(ma[k], abs=1e-4), k


def test_frozen_backbone_first_under_two_processes_matches_one(version, tmp_path):
    """A start from weights (train.weights) trains the head alone for freeze_epochs, then
    everything: DDP is rebuilt when the set of parameters taking gradients changes, and 2
    processes still end with the weights of one (seed_cnn: no batch norm)."""
    from pipeline.train.models import build_model

    torch.save(build_model("seed_cnn", 1, 16, 16, 3, seed=7).state_dict(), tmp_path / "start.pth")
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS + f"  weights: {tmp_path / 'start.pth'}\n  freeze_epochs: 1\n")
    one = run_stage([sys.executable, "-m"], version, tmp_path / "one", params)
    assert "starting from" in one.stdout
    run_stage([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"],
              version, tmp_path / "two", params)
    start = torch.load(tmp_path / "start.pth", weights_only=True)
    a = torch.load(tmp_path / "one/m.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two/m.pt", weights_only=True)["state_dict"]
    assert [k for k in a if not torch.equal(a[k], start[k])] == list(a)  # epoch 2 moved the backbone too
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k


@pytest.mark.slow
def test_pretrained_efficientnet_freezes_then_trains_under_two_processes(tmp_path_factory, tmp_path):
    """EfficientNet-Lite0 from its package's weights on an RGB version: the frozen epoch
    (backbone batch norm in eval mode) gives one process's head exactly; the unfrozen
    epoch runs (its batch norm sees each rank's share, so no equality is claimed)."""
    rgb = make_version(tmp_path_factory.mktemp("ddp-rgb"), 4, {"train": 0.6, "val": 0.2, "test": 0.2},
                       channels=3)
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.replace("seed_cnn", "efficientnet_lite0") + "  freeze_epochs: 1\n")
    frozen = tmp_path / "frozen.yaml"
    frozen.write_text(params.read_text().replace("epochs: 2", "epochs: 1"))
    one = run_stage([sys.executable, "-m"], rgb, tmp_path / "one", frozen)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    run_stage(launcher, rgb, tmp_path / "two", frozen)
    a = torch.load(tmp_path / "one/m.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two/m.pt", weights_only=True)["state_dict"]
    assert "ImageNet weights" in one.stdout
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    both = run_stage(launcher, rgb, tmp_path / "both", params)
    assert "2 process(es)" in both.stdout and both.stdout.count("epoch 2:") == 1
    c = torch.load(tmp_path / "both/m.pt", weights_only=True)["state_dict"]
    assert not torch.equal(c["conv_stem.weight"], a["conv_stem.weight"])  # the backbone trained in epoch 2
