"""Detection under torchrun: 2 CPU processes (gloo on 127.0.0.1) end with the weights of
one, on a global batch split unevenly and on one smaller than the world (a rank with no
image), and each detector's losses recombine from a batch's parts as the loop assumes."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from tests.test_train_distributed import run_stage

# The ImageNet backbone (the default) has frozen batch norm and FCOS draws no random
# numbers, so 1 and 2 processes differ only in the order of floating-point sums: 3e-8 at
# most, measured. SGD, not Adam: Adam divides out a gradient's scale, which would hide a
# wrongly scaled loss. At lr 0.01 the loss climbs and the step on the last batch (one
# image) amplifies summation order to 4e-4 (one process on 2 threads against 1, as much
# as 2 processes against 1), so the lr is 0.001. bf16 autocast is CUDA only.
PARAMS = """
train:
  model: fcos_lite0
  optimizer: sgd
  lr: 0.001
  schedule: constant
  epochs: 2
  batch_size: 5
  threads: 1
  device: cpu
"""
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """11 train images of 64x80 (global batches of 5, 5, 1: shards of 3 and 2, then 1 and
    none), 2 val, 1 test."""
    from pipeline.config import AugmentParams, SplitParams
    from pipeline.record import load_canonical as load_dataset
    from pipeline.split import assign_splits
    from pipeline.version import write_version
    from tests.version_data import make_annotated

    root = tmp_path_factory.mktemp("ddp-detect")
    ds = load_dataset(make_annotated(root / "canonical", n=14, h=64, w=80))
    splits = assign_splits(ds, SplitParams(ratios={"train": 0.8, "val": 0.1, "test": 0.1}))
    write_version(ds, splits, AugmentParams(copies=0), root / "version")
    return root / "version"


def test_two_processes_train_a_detector_to_the_weights_of_one(shapes, tmp_path):
    from pipeline.train.pretrained import packaged_state

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    one = run_stage([sys.executable, "-m"], shapes, tmp_path / "one", params)
    assert "on 11 train / 2 val images" in one.stdout and "1 process(es)" in one.stdout
    two = run_stage(TORCHRUN, shapes, tmp_path / "two", params)
    assert "2 process(es)" in two.stdout and two.stdout.count("epoch 2:") == 1  # rank 0 alone prints
    a = torch.load(tmp_path / "one/m.pt", weights_only=True)
    b = torch.load(tmp_path / "two/m.pt", weights_only=True)
    assert a["task"] == b["task"] == "detect" and a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.allclose(v, b["state_dict"][k], atol=1e-5, rtol=1e-4), k
    imagenet, _ = packaged_state("efficientnet_lite0")  # epoch 1 trains the head; epoch 2 the backbone too
    assert not torch.equal(imagenet["conv_stem.weight"], b["state_dict"]["backbone.body.conv_stem.weight"])
    ma = json.loads((tmp_path / "one/train.json").read_text())
    mb = json.loads((tmp_path / "two/train.json").read_text())
    assert ma.keys() == mb.keys() and ma["epochs"] == mb["epochs"] == 2
    for k, v in ma.items():  # the train loss reduced over ranks, not rank 0's share
        assert mb[k] == pytest.approx(v, abs=1e-5), k
    ca = (tmp_path / "one/curve.csv").read_text().splitlines()
    cb = (tmp_path / "two/curve.csv").read_text().splitlines()
    assert ca[0] == cb[0] and len(ca) == len(cb) == 3
    # rank 0 alone writes: the same files as one process, one TensorBoard event file
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    runs = list((tmp_path / "two/tb").iterdir())
    assert len(runs) == 1 and len(list(runs[0].glob("events.out.tfevents.*"))) == 1


def _batch():
    """Three 64x80 images: one object, two objects, none."""
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 64, 80, generator=g) for _ in range(3)]
    boxes = ([[10.0, 12.0, 30.0, 30.0]], [[5.0, 20.0, 60.0, 40.0], [40.0, 4.0, 76.0, 26.0]], [])
    targets = [{"boxes": torch.tensor(b).reshape(-1, 4), "labels": torch.tensor([1, 2][:len(b)], dtype=torch.int64)}
               for b in boxes]
    return images, targets


@pytest.mark.parametrize("model", ["fcos_lite0", "retinanet_lite0"])
def test_a_batch_loss_is_its_parts_losses_undivided_over_the_whole_divisor(model):
    """What DetectTask.step relies on, in one process: a batch's loss equals the sum over its
    parts (ranks' shards) of each part's loss times its divisor over the parts' summed counts
    (``detmodels.loss_divisor``), an image without objects alone in its part included."""
    from pipeline.train.detmodels import DetectorSpec, build_detector, loss_divisor

    net = build_detector(DetectorSpec(model, 2, 3, (64, 80), (0.5,) * 3, (0.5,) * 3, True), seed=0).train()
    images, targets = _batch()
    with torch.no_grad():
        whole = float(sum(net(images, targets).values()))
        parts, counts, images_only = [], [], 0.0
        for sl in (slice(0, 2), slice(2, 3)):
            loss = float(sum(net(images[sl], targets[sl]).values()))
            divisor, count = loss_divisor(net, len(images[sl]))
            parts.append(loss * divisor)
            counts.append(count)
            images_only += loss * len(images[sl]) / len(images)
    assert sum(parts) / max(1, sum(counts)) == pytest.approx(whole, rel=1e-5)
    if model == "fcos_lite0":  # divided by foreground locations, so the images' share is wrong
        assert images_only != pytest.approx(whole, rel=1e-3)


@pytest.mark.parametrize("model", ["fcos_lite0", "retinanet_lite0", "fasterrcnn_lite0", "maskrcnn_lite0"])
def test_the_blank_image_of_an_empty_shard_reaches_every_parameter_with_zero(model):
    """A rank without images runs ``DetectTask.blank`` weighted 0: its losses are finite and
    every trained parameter gets a gradient (DDP without find_unused_parameters waits for
    each one), all zero."""
    from types import SimpleNamespace

    from pipeline.train.detect import DetectTask
    from pipeline.train.detmodels import DetectorSpec, build_detector

    net = build_detector(DetectorSpec(model, 2, 3, (64, 80), (0.5,) * 3, (0.5,) * 3, True), seed=0).train()
    x, y = DetectTask.blank(SimpleNamespace(size=(64, 80), channels=3, masks=model == "maskrcnn_lite0",
                                            device=torch.device("cpu")))
    loss = sum(net(x, y).values())
    assert torch.isfinite(loss)
    (loss * 0).backward()
    trained = [(n, q) for n, q in net.named_parameters() if q.requires_grad]
    assert trained and [n for n, q in trained if q.grad is None or q.grad.abs().max() != 0] == []
