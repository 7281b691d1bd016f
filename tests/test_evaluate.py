"""evaluate: metrics JSON, confusion CSV, flip TTA and the TensorBoard run."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.config import AugmentParams, EvaluateParams, IngestParams, SplitParams, TrainParams
from pipeline.version import write_version
from pipeline.core.errors import InputError
from pipeline.ingest import ingest
from pipeline.split import assign_splits
from pipeline.train import board
from pipeline.train.board import worst_grid
from pipeline.train.evaluate import evaluate
from pipeline.train.loop import train
from tests.conftest import make_imagefolder, make_version


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    make_version(root, 12, {"train": 0.5, "val": 0.25, "test": 0.25}, channels=3)
    train(root / "v", TrainParams(width=4, epochs=2, batch_size=6), root / "m.pt", root / "tb",
          root / "t.json", root / "c.csv")
    return root


def run(root, out, **kw):
    return evaluate(root / "v", root / "m.pt", EvaluateParams(**kw), out / "eval.json", out / "confusion.csv",
                    out / "tb", out / "report.json")


def test_metrics_file_has_what_dvc_compares(trained, tmp_path):
    result = run(trained, tmp_path)
    saved = json.loads((tmp_path / "eval.json").read_text())
    report = json.loads((tmp_path / "report.json").read_text())
    assert {**saved, **report, "split": "test"} == result
    # the headline leads (dvc exp show's first columns); per-class scores go to the report
    assert list(saved) == ["accuracy", "macro_f1", "loss", "test_samples", "tta_hflip"]
    for key in ("accuracy", "loss", "macro_f1"):
        assert isinstance(saved[key], float)
    assert set(report["per_class"]) == {"class0", "class1", "class2"}
    assert set(report["per_class"]["class0"]) == {"precision", "recall", "f1", "support"}
    assert sum(v["support"] for v in report["per_class"].values()) == saved["test_samples"] == 9
    rows = (tmp_path / "confusion.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted" and len(rows) == 10


def test_flip_tta_changes_the_scores_and_is_recorded(trained, tmp_path):
    plain = run(trained, tmp_path / "a")
    tta = run(trained, tmp_path / "b", tta_hflip=True)
    assert tta["tta_hflip"] and not plain["tta_hflip"]
    assert tta["loss"] != plain["loss"]


def test_tensorboard_run_has_confusion_pr_curves_and_hparams(trained, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(trained, tmp_path)
    ckpt = torch.load(trained / "m.pt", weights_only=True)
    run_dir = tmp_path / "tb" / ckpt["run"]  # the same run name as the training logs
    assert (trained / "tb" / ckpt["run"]).is_dir()
    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "test/confusion_matrix" in tags["images"]
    assert {f"test/pr/class{i}" for i in range(3)} <= set(tags["tensors"])
    assert "hparam/test_accuracy" in tags["scalars"]


def test_evaluate_scores_val_when_asked_and_names_it_everywhere(trained, tmp_path):
    """evaluate.split: val (the user's own val folder as the held-out set): the val rows
    are scored, every key, tag and line says val, and the figure is the last epoch's."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from pipeline.reports.summary import evaluate_line

    result = run(trained, tmp_path, split="val")
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert list(saved) == ["accuracy", "macro_f1", "loss", "val_samples", "tta_hflip"] and saved["val_samples"] == 9
    ckpt = torch.load(trained / "m.pt", weights_only=True)
    last = ckpt["history"][-1]
    assert result["accuracy"] == pytest.approx(last["val_acc"], abs=1e-6)
    assert result["loss"] == pytest.approx(last["val_loss"], abs=1e-4)
    assert evaluate_line(result).startswith("evaluate: val accuracy") and "on 9 images" in evaluate_line(result)
    acc = EventAccumulator(str(tmp_path / "tb" / ckpt["run"]), size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "val/confusion_matrix" in tags["images"] and "test/confusion_matrix" not in tags["images"]
    assert "hparam/val_macro_f1" in tags["scalars"] and "hparam/test_accuracy" not in tags["scalars"]
    assert acc.Scalars("hparam/val_accuracy")[0].value == pytest.approx(result["accuracy"])


def hparams_view(logdir):
    """What TensorBoard's HParams tab gets for ``logdir``: its own backend's experiment
    (params in display order, with ``differs``) and session groups (rows, with metrics)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    tb = base_plugin.TBContext(logdir=str(logdir), multiplexer=mux,
                               data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir)))
    backend = backend_context.Context(tb)
    experiment = get_experiment.Handler(context.RequestContext(), backend, "",
                                        api_pb2.GetExperimentRequest(hparams_limit=1000)).run()
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100,
                                               allowed_statuses=[api_pb2.STATUS_SUCCESS, api_pb2.STATUS_UNKNOWN])
    groups = list_session_groups.Handler(context.RequestContext(), backend, "", request).run().session_groups
    return experiment, groups


def test_one_hparams_trial_per_run_with_train_and_test_metrics_and_changed_params_first(trained, tmp_path,
                                                                                          monkeypatch):
    """Train's logs, evaluate's and the HParams directory side by side under one TensorBoard
    root (as dvc.yaml lays them out): one row, holding the train, val and test metrics; the
    params changed from config.py's defaults (the fixture's width, epochs, batch_size, and
    tta_hflip here) lead, so they are TensorBoard's first columns."""
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(trained / "tb", runs / "train")
    out = evaluate(trained / "v", trained / "m.pt", EvaluateParams(tta_hflip=True, worst=2), tmp_path / "e.json",
                   tmp_path / "c.csv", runs / "evaluate", None, runs / "hparams")
    experiment, groups = hparams_view(runs)
    name = torch.load(trained / "m.pt", weights_only=True)["run"]
    assert [(g.name, [s.name for s in g.sessions]) for g in groups] == [(name, [f"hparams/{name}"])]
    shown = [(h.name, h.differs) for h in experiment.hparam_infos]
    assert shown[:4] == [("evaluate.tta_hflip", True), ("train.batch_size", True), ("train.epochs", True),
                         ("train.width", True)]
    assert not any(d for _, d in shown[4:]) and [n for n, _ in shown[4:]] == sorted(n for n, _ in shown[4:])
    assert "train.lr" in dict(shown) and "train.threads" not in dict(shown)  # settings are not hparams
    metrics = {m.name.tag: m.value for m in groups[0].metric_values}
    train_json = json.loads((trained / "t.json").read_text())
    assert metrics == pytest.approx({
        "hparam/test_accuracy": out["accuracy"], "hparam/test_macro_f1": out["macro_f1"],
        "hparam/test_loss": out["loss"], "hparam/val_accuracy": train_json["val_accuracy"],
        "hparam/val_loss": train_json["val_loss"], "hparam/train_accuracy": train_json["train_accuracy"],
        "hparam/train_loss": train_json["train_loss"]}, abs=1e-5)
    values = {k: v.bool_value if v.HasField("bool_value") else v.number_value
              for k, v in groups[0].hparams.items() if k in ("evaluate.tta_hflip", "train.width")}
    assert values == {"evaluate.tta_hflip": True, "train.width": 4}

    # Re-evaluating replaces the run's trial; another experiment is another row.
    evaluate(trained / "v", trained / "m.pt", EvaluateParams(), tmp_path / "e.json", tmp_path / "c.csv",
             runs / "evaluate", None, runs / "hparams")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-b")
    evaluate(trained / "v", trained / "m.pt", EvaluateParams(tta_hflip=True), tmp_path / "e.json",
             tmp_path / "c.csv", runs / "evaluate", None, runs / "hparams")
    _, groups = hparams_view(runs)
    tta = {g.name: g.hparams["evaluate.tta_hflip"].bool_value for g in groups}
    assert tta == {name: False, "exp-b": True}
    assert len(list((runs / "hparams" / name).iterdir())) == len(list((runs / "evaluate" / name).iterdir())) == 1
    # Evaluated into train's own log directory (twice): train's events stay.
    monkeypatch.delenv("DVC_EXP_NAME")
    train_events = sorted((runs / "train" / name).iterdir())
    for _ in range(2):
        evaluate(trained / "v", trained / "m.pt", EvaluateParams(), tmp_path / "e.json", tmp_path / "c.csv",
                 runs / "train", None, runs / "hparams")
    assert set(train_events) < set((runs / "train" / name).iterdir())
    assert len(list((runs / "train" / name).iterdir())) == len(train_events) + 1


def captions(fig) -> list[str]:
    return [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]


def rendered(fig) -> tuple[int, int]:
    """(width, height) in px of the figure as TensorBoard's add_figure renders it."""
    from torch.utils.tensorboard._utils import figure_to_image

    image = figure_to_image(fig)  # (3, H, W); closes the figure
    return image.shape[2], image.shape[1]


def test_worst_grid_picks_the_most_confident_mistakes():
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 0, 1])
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    fig = worst_grid(images, labels, probs, ["a", "b"], k=1)
    assert captions(fig) == ["true a\npred b 0.80"]
    assert worst_grid(images, labels, torch.tensor([[1.0, 0.0], [0.0, 1.0]] * 2), ["a", "b"], 4) is None


@pytest.mark.parametrize("side,tile", [(28, board.TILE_MIN), (144, 144), (224, board.TILE_MAX)])
def test_worst_grid_tiles_are_readable_for_digits_and_photos(side, tile):
    """Each mistake is a tile of its image's side within TILE_MIN..TILE_MAX px (digits
    enlarged, photos shrunk), 8 a row, with a caption above; long class names are cut."""
    from matplotlib.text import Text

    n = 10
    images = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(n, dtype=torch.int64)
    probs = torch.tensor([[0.1, 0.9 - i / 100] for i in range(n)])
    names = ["honey_bee_on_a_sunflower_in_the_garden", "ant"]  # the first is cut to fit, the second is not
    fig = worst_grid(images, labels, probs, names, k=n)
    fig.canvas.draw()
    boxes = [ax.get_window_extent() for ax in fig.axes]
    assert len(boxes) == n and all(round(b.width) == round(b.height) == tile for b in boxes)
    true, pred = captions(fig)[0].split("\n")
    assert true.startswith("true honey_bee") and true.endswith("...") and pred == "pred ant 0.90"
    text = [next(t for t in ax.get_children() if isinstance(t, Text) and t.get_text() == ax.get_title(loc="left"))
            .get_window_extent() for ax in fig.axes]
    # each caption sits above its own tile and inside the figure (not over the row above)
    assert all(t.y0 >= b.y1 and t.y1 <= fig.bbox.height and b.x0 <= t.x0 and t.x1 <= b.x1 + 4
               for t, b in zip(text, boxes))
    assert rendered(fig) == (8 * (tile + 8), 2 * (tile + board.CAPTION_PX + 8))


@pytest.mark.parametrize("k", [2, 10, 120])
def test_confusion_figure_fits_the_class_names_and_the_number_of_classes(k):
    names = [f"class_{i}_of_a_photo_collection" if i % 2 else f"c{i}" for i in range(k)]
    cm = torch.arange(k * k).reshape(k, k) % 7
    fig = board.confusion_figure(cm, names)
    fig.canvas.draw()
    (ax,) = fig.axes
    cell = ax.get_window_extent().width / k
    assert board.CELL_MIN <= cell <= board.CELL_MAX and (k > 10 or cell >= 48)
    whole = fig.bbox
    labels = [t.get_window_extent() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    assert all(b.x0 >= 0 and b.y0 >= 0 and b.x1 <= whole.width and b.y1 <= whole.height for b in labels)
    assert all(t.get_text().endswith("...") or len(t.get_text()) <= board.NAME_CHARS for t in ax.get_xticklabels())
    counts = [t for t in ax.texts]
    assert len(counts) == (k * k if cell >= board.COUNTS_FROM_CELL else 0)
    width, height = rendered(fig)
    assert max(width, height) <= k * board.CELL_MAX + 400 and max(width, height) <= 2200


def test_version_of_another_shape_is_a_clear_error(trained, tmp_path):
    ds_src = make_imagefolder(tmp_path / "src", classes=3, per_class=4, size=20, channels=3)
    ds = ingest(ds_src, tmp_path / "canonical", IngestParams(workers=1))
    write_version(ds, assign_splits(ds, SplitParams(ratios={"train": 0.5, "test": 0.5})), AugmentParams(copies=0),
                  tmp_path / "v")
    with pytest.raises(InputError, match="trained on"):
        evaluate(tmp_path / "v", trained / "m.pt", EvaluateParams(), tmp_path / "e.json", tmp_path / "c.csv",
                 tmp_path / "tb")


def test_photos_get_readable_figures_in_tensorboard(tmp_path):
    """A small version of photo-sized RGB images (150..230 px, several aspects, stored as
    files) trained at 144x144: TensorBoard's worst-mistakes image has 144 px tiles under
    their captions, and the confusion matrix 64 px cells."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.conftest import class_image

    for c in range(3):
        (tmp_path / "src" / f"class{c}").mkdir(parents=True)
        for i in range(6):
            w, h = 150 + 16 * i, 150 + 16 * ((i + c) % 5)
            Image.fromarray(class_image(c, i, 16, channels=3)).resize((w, h)).save(
                tmp_path / "src" / f"class{c}" / f"{i}.jpg", quality=90)
    ds = ingest(tmp_path / "src", tmp_path / "canonical", IngestParams(workers=1))
    write_version(ds, assign_splits(ds, SplitParams(ratios={"train": 0.5, "test": 0.5})), AugmentParams(copies=0),
                  tmp_path / "v")
    train(tmp_path / "v", TrainParams(model="seed_cnn", epochs=1, batch_size=8, lr=1e-4, threads=1,
                                      image_size=(144, 144)),
          tmp_path / "m.pt", tmp_path / "tb", tmp_path / "t.json", tmp_path / "c.csv")
    result = evaluate(tmp_path / "v", tmp_path / "m.pt", EvaluateParams(worst=8), tmp_path / "e.json",
                      tmp_path / "cf.csv", tmp_path / "etb")
    wrong = round((1 - result["accuracy"]) * result["test_samples"])
    assert wrong >= 1  # an untrained model: mistakes to show
    (run_dir,) = (tmp_path / "etb").iterdir()
    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    acc.Reload()
    (grid,) = acc.Images("test/worst_misclassified")
    cols = min(8, wrong)
    rows = -(-min(8, wrong) // cols)
    assert (grid.width, grid.height) == (cols * (144 + 8), rows * (144 + board.CAPTION_PX + 8))
    (confusion,) = acc.Images("test/confusion_matrix")
    assert confusion.width >= 3 * board.CELL_MAX and confusion.height >= 3 * board.CELL_MAX
