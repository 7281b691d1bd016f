"""Training: models, schedules, mixing, determinism and exact resume, on a tiny version."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pipeline.config import TrainParams, parse_section
from pipeline.core.errors import ConfigError
from pipeline.train import checkpoint as ckpt_io
from pipeline.train.loop import train
from pipeline.train.data import load_split
from pipeline.train.soft_labels import mix_batch, mixers, one_hot, soft_targets
from pipeline.train.models import build_model
from pipeline.train.optim import make_optimizer, make_schedule, warmup_cosine
from pipeline.augment.rng import keys_tensor
from tests.conftest import make_version

# Everything that draws randomness or carries state across epochs is on.
FULL = dict(model="resnet_small", width=4, epochs=3, batch_size=16, lr=0.05, label_smoothing=0.1,
            online_augment=({"name": "crop", "padding": 2, "p": 0.5},), mixup_alpha=0.4,
            cutmix_alpha=1.0, mix_p=0.5, grad_clip=5.0, schedule="cosine", warmup_epochs=1)


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    return make_version(tmp_path_factory.mktemp("tv"), 16, {"train": 0.5, "val": 0.25, "test": 0.25},
                        out="version")


def run(version, out, **kw):
    p = TrainParams(**kw)
    hist = train(version, p, out / "m.pt", out / "tb", out / "train.json", out / "curve.csv")
    return hist, torch.load(out / "m.pt", weights_only=True)


@pytest.mark.parametrize("name,size,channels", [("seed_cnn", 28, 1), ("resnet_small", 32, 3),
                                                 ("resnet_small", 28, 1), ("resnet_small", 64, 3),
                                                 ("resnet_small", 9, 1)])
def test_models_take_the_versions_shape(name, size, channels):
    m = build_model(name, channels, size, size, 7, seed=0, base=4)
    assert m(torch.zeros(2, channels, size, size)).shape == (2, 7)


def test_init_is_a_function_of_the_seed():
    a, b, c = (build_model("resnet_small", 3, 32, 32, 10, seed=s).state_dict() for s in (1, 1, 2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.0.0.weight"], c["features.0.0.weight"])


def test_warmup_cosine_shape():
    f = [warmup_cosine(s, 100, 10) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0 and f[10] == 1.0
    assert all(x >= y for x, y in zip(f[10:], f[11:])) and f[-1] < 0.01


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
@pytest.mark.parametrize("total", [1, 2, 3, 4, 5, 8, 94])
def test_schedules_run_any_number_of_steps(schedule, total):
    # A tiny dataset with few epochs makes a handful of steps: OneCycleLR divided by
    # zero at exactly 4 (its warmup phase was empty).
    model = torch.nn.Linear(2, 2)
    params = TrainParams(schedule=schedule, epochs=1, lr=0.1, warmup_epochs=0)
    opt = make_optimizer(params, model)
    sched = make_schedule(params, opt, total)
    lrs = []
    for _ in range(total):
        opt.step()
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert all(math.isfinite(x) and 0 <= x <= 0.1 + 1e-12 for x in lrs)
    if schedule == "onecycle" and total >= 3:
        assert max(lrs) > 0.099 and lrs[-1] < lrs[0] < 0.1  # warm up to the peak, anneal below the start


@pytest.mark.parametrize("momentum,low,high", [(0.9, 0.85, 0.95), (0.5, 0.45, 0.55), (0.0, 0.0, 0.0)])
def test_onecycle_cycles_momentum_around_the_knob(momentum, low, high):
    # OneCycleLR overwrites SGD's momentum every step; centred on train.momentum the
    # knob counts, and 0.9 keeps torch's own 0.85-0.95 (the committed metrics).
    params = TrainParams(momentum=momentum, epochs=1)
    opt = make_optimizer(params, torch.nn.Linear(2, 2))
    sched = make_schedule(params, opt, 20)
    seen = []
    for _ in range(20):
        seen.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert seen[0] == high and min(seen) == pytest.approx(low) and max(seen) == high


def test_soft_targets_of_offline_mixed_rows():
    labels, mix, w = torch.tensor([0, 2, 1]), torch.tensor([1, 2, 1]), torch.tensor([0.6, 1.0, 1.0])
    t = soft_targets(labels, 3, 0.0, mix, w)
    assert torch.allclose(t[0], torch.tensor([0.6, 0.4, 0.0]))
    assert torch.equal(t[1:], one_hot(labels[1:], 3))  # unmixed rows: exactly the hard target
    s = soft_targets(labels, 3, 0.3, mix, w)  # smoothing still applies: 0.1 to every class
    assert torch.allclose(s[0], torch.tensor([0.6 * 0.7 + 0.1, 0.4 * 0.7 + 0.1, 0.1]))
    assert torch.equal(s[1:], one_hot(labels[1:], 3, 0.3))


@pytest.mark.parametrize("mixup,cutmix", [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixing_keeps_label_mass_and_pixel_share(mixup, cutmix):
    b, k = 8, 3
    # Image i is constant i + 1: a mixed image's mean gives its own share lam.
    x = (torch.arange(b, dtype=torch.float32) + 1).view(b, 1, 1, 1).expand(b, 1, 8, 8).contiguous()
    labels = torch.arange(b) % k
    y = one_hot(labels, k, smoothing=0.1)
    keys = keys_tensor(list(range(b)))
    out, t = mix_batch(x, y, labels, keys, mixers(mixup, cutmix, 1.0))
    assert torch.allclose(t.sum(1), torch.ones(b))
    assert not torch.equal(out, x)
    # Partners are the keyed ones from the engine; the target is lam * own + (1 - lam) * partner.
    for pipe in mixers(mixup, cutmix, 1.0):
        if pipe is None:
            continue
        partner = pipe.partner_indices(pipe.sample(keys, 8, 8), b)[:, 0]
        for i in range(b):
            own, other = x[i, 0, 0, 0], x[partner[i], 0, 0, 0]
            lam = ((out[i].mean() - other) / (own - other)).item() if own != other else 1.0
            if mixup and cutmix or own == other:
                continue  # which op took sample i is a separate keyed draw
            assert torch.allclose(t[i], lam * y[i] + (1 - lam) * y[partner[i]], atol=1e-5)
    # A sample's result depends on its key and its batch only: the same batch gives the same result.
    again, t2 = mix_batch(x, y, labels, keys, mixers(mixup, cutmix, 1.0))
    assert torch.equal(again, out) and torch.equal(t2, t)


def test_mixing_ops_are_refused_in_online_augment():
    with pytest.raises(ConfigError, match=r"train.online_augment\[0\] \(mixup\).*mixup_alpha"):
        parse_section("train", {"online_augment": [{"name": "mixup"}]})
    with pytest.raises(ConfigError, match=r"cutmix_alpha"):
        parse_section("train", {"cutmix_alpha": 500})


def test_offline_mixup_version_trains_on_soft_labels(tmp_path):
    make_version(tmp_path, 12, {"train": 0.5, "val": 0.25, "test": 0.25}, [{"name": "mixup", "alpha": 0.4}],
                 copies=1)
    tr = load_split(tmp_path / "v", "train")
    assert tr.mix_weights is not None and (tr.mix_weights < 1).any()
    assert (load_split(tmp_path / "v", "val").mix_weights == 1).all()
    hist, _ = run(tmp_path / "v", tmp_path / "run", model="seed_cnn", epochs=2, batch_size=8, lr=0.01)
    assert len(hist) == 2 and all(math.isfinite(s.train_loss) for s in hist)
    # Without the mix arrays (an older version) the same rows train on hard labels: a different run.
    for name in ("train_mix_labels.npy", "train_mix_weights.npy"):
        (tmp_path / "v" / name).unlink()
    assert load_split(tmp_path / "v", "train").mix_labels is None
    hard, _ = run(tmp_path / "v", tmp_path / "hard", model="seed_cnn", epochs=2, batch_size=8, lr=0.01)
    assert hard[0].train_loss != hist[0].train_loss


def test_online_augment_is_validated_by_the_registry():
    with pytest.raises(ConfigError, match=r"train.online_augment\[0\].*unknown op"):
        parse_section("train", {"online_augment": [{"name": "nope"}]})


def test_training_is_deterministic_with_every_random_feature(version, tmp_path):
    _, a = run(version, tmp_path / "a", **FULL)
    _, b = run(version, tmp_path / "b", **FULL)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # The DVC outputs hold no wall time: two equal runs write equal bytes (a clean `git status`).
    for name in ("m.pt", "train.json", "curve.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert "seconds" not in (tmp_path / "a" / "train.json").read_text()


def test_killed_run_resumes_to_the_same_weights(version, tmp_path, monkeypatch):
    _, whole = run(version, tmp_path / "whole", **FULL)

    saves = []
    real_save = ckpt_io.save_state

    def save_then_die(path, state):
        real_save(path, state)
        saves.append(path)
        if len(saves) == 2:  # killed right after epoch 2's checkpoint
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_io, "save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(version, tmp_path / "cut", **FULL)
    monkeypatch.setattr(ckpt_io, "save_state", real_save)
    assert not (tmp_path / "cut/m.pt").exists() and ckpt_io.resume_path(tmp_path / "cut/m.pt").exists()

    hist, resumed = run(version, tmp_path / "cut", **FULL, resume=True)
    assert [h.epoch for h in hist] == [1, 2, 3]
    assert all(torch.equal(whole["state_dict"][k], resumed["state_dict"][k]) for k in whole["state_dict"])
    assert not ckpt_io.resume_path(tmp_path / "cut/m.pt").exists()  # finished: nothing left to resume
    curve = (tmp_path / "cut/curve.csv").read_text().splitlines()
    assert curve == (tmp_path / "whole/curve.csv").read_text().splitlines()


def test_resume_state_from_other_params_is_ignored(version, tmp_path, monkeypatch):
    def die(path, state):
        ckpt_io.save_atomic(state, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_io, "save_state", die)
    with pytest.raises(KeyboardInterrupt):
        run(version, tmp_path, **dict(FULL, lr=0.01))
    monkeypatch.undo()
    hist, _ = run(version, tmp_path, **FULL, resume=True)
    assert [h.epoch for h in hist] == [1, 2, 3]  # started afresh, not from lr=0.01's epoch 1


@pytest.mark.parametrize("opt,sched", [("sgd", "onecycle"), ("adamw", "cosine"), ("adam", "constant")])
def test_recipes_learn(version, tmp_path, opt, sched):
    lr = 0.05 if opt == "sgd" else 3e-3
    hist, ck = run(version, tmp_path, model="resnet_small", width=4, epochs=4, batch_size=8, lr=lr,
                   optimizer=opt, schedule=sched, warmup_epochs=1)
    assert hist[-1].train_loss < hist[0].train_loss
    assert ck["classes"] == ["class0", "class1", "class2"] and ck["width"] == 4
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["epochs"] == 4 and 0 <= metrics["val_accuracy"] <= 1


def test_tensorboard_run_has_scalars_images_and_graph_but_no_hparams_trial(version, tmp_path):
    """The run's HParams trial is evaluate's (train, val and test metrics in one row)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(version, tmp_path, model="resnet_small", width=4, epochs=2, batch_size=8, log_every=2)
    (run_dir,) = (tmp_path / "tb").iterdir()
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("step/loss", "step/accuracy", "step/lr", "loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"):
        assert tag in tags["scalars"], tag
    assert "train/batch_as_seen_by_model" in tags["images"]
    assert tags["graph"]
    assert not [t for t in tags["tensors"] if acc.SummaryMetadata(t).plugin_data.plugin_name == "hparams"]


def test_shards_partition_the_global_batch_and_keys_follow_the_epoch():
    from pipeline.train.data import epoch_order, online_keys, shard

    order = epoch_order(23, seed=3, epoch=2)
    assert torch.equal(order, epoch_order(23, seed=3, epoch=2))
    assert not torch.equal(order, epoch_order(23, seed=3, epoch=3))
    batch = order[:10]
    parts = [shard(batch, r, 3) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())
    ids = [f"s{i}#0" for i in range(23)]
    k = online_keys(ids, torch.tensor([4, 7]), 0, 1, "cpu")
    assert torch.equal(k[1], online_keys(ids, torch.tensor([7]), 0, 1, "cpu")[0])  # not batch-dependent
    assert not torch.equal(k, online_keys(ids, torch.tensor([4, 7]), 0, 2, "cpu"))  # new draws each epoch


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_training_runs_and_is_deterministic(version, tmp_path):
    gpu = dict(FULL, device="cuda", bf16=True)
    hist, a = run(version, tmp_path / "a", **gpu)
    _, b = run(version, tmp_path / "b", **gpu)
    assert hist[-1].train_loss < hist[0].train_loss
    assert all(torch.allclose(a["state_dict"][k].float(), b["state_dict"][k].float(), atol=1e-5)
               for k in a["state_dict"])


def test_divergence_is_a_clear_error(version, tmp_path):
    with pytest.raises(ConfigError, match="diverged; lower train.lr"):
        run(version, tmp_path, model="seed_cnn", optimizer="sgd", lr=10.0, momentum=0.99, epochs=2,
            batch_size=4, schedule="constant")
