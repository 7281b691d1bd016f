"""A run's one HParams trial: train and evaluate params against train, val and test metrics.

TensorBoard's HParams tab makes a trial of every run directory that holds a session
start, so a run is written once, by evaluate, when all its numbers are known: the
checkpoint's train params and final epoch (train and val), evaluate's params and the
test scores. Train writes none (two sessions per run were two rows, with half the
metrics each).

Which params are seen: TensorBoard orders the experiment's params by ``differs``
first, then by name, and its table shows the first five. A param is marked
``differs`` here when the run changed it from ``pipeline/config.py``'s default, so
those are the visible columns; the rest follow by name, a checkbox away. Params that
say how a run runs rather than what it learns (device, threads, workers, batch size
of evaluation, ...) are not hyperparameters and are left out. TensorBoard reads the
experiment config of one run (the first it finds) for all runs in a log directory:
another run's changes are then among the checkboxes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import EvaluateParams, TrainParams
from pipeline.train.checkpoint import NOT_IN_FINGERPRINT

# Evaluate params that do not change its scores (train's: NOT_IN_FINGERPRINT).
EVALUATE_SETTINGS = {"batch_size", "device", "worst"}

# Event files evaluate writes: a re-evaluation replaces only these (``clear_events``).
EVENTS_SUFFIX = ".evaluate"

# (scalar tag, display name): the scored split first, then the final epoch of training.
# A classifier's run has the accuracy rows, a detector's the COCO ones. Where evaluate
# scores val (``evaluate.split``), its figures fill the val rows.
METRICS = (
    ("hparam/test_accuracy", "test accuracy"), ("hparam/test_macro_f1", "test macro-F1"),
    ("hparam/test_loss", "test loss"),
    ("hparam/test_map", "test mAP"), ("hparam/test_map50", "test mAP50"), ("hparam/test_map75", "test mAP75"),
    ("hparam/test_ar100", "test AR100"), ("hparam/test_mask_map", "test mask mAP"),
    ("hparam/val_accuracy", "val accuracy"), ("hparam/val_macro_f1", "val macro-F1"), ("hparam/val_loss", "val loss"),
    ("hparam/val_map", "val mAP"), ("hparam/val_map50", "val mAP50"), ("hparam/val_map75", "val mAP75"),
    ("hparam/val_ar100", "val AR100"), ("hparam/val_mask_map", "val mask mAP"),
    ("hparam/train_accuracy", "train accuracy"), ("hparam/train_loss", "train loss"),
)
# A detector's headline and epoch record, by the names the tags use.
DETECTION_TEST = ("map", "map50", "map75", "ar100", "mask_map")
DETECTION_EPOCH = ("val_map", "val_map50", "val_mask_map", "train_loss")


@dataclass(frozen=True)
class HParam:
    name: str  # "<section>.<key>", as params.yaml and ``dvc exp show`` name it
    value: bool | int | float | str  # lists, dicts and null as their JSON text
    changed: bool  # differs from pipeline/config.py's default


def _scalar(value) -> bool | int | float | str:
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value)


def run_hparams(train: dict, evaluate: EvaluateParams) -> list[HParam]:
    """The run's params, as TensorBoard lists them: changed ones first, each group by name.

    ``train`` is the checkpoint's record of the train params (JSON values)."""
    sections = (("train", train, TrainParams().model_dump(mode="json"), NOT_IN_FINGERPRINT),
                ("evaluate", evaluate.model_dump(mode="json"), EvaluateParams().model_dump(mode="json"),
                 EVALUATE_SETTINGS))
    out = [HParam(f"{section}.{key}", _scalar(value), value != defaults.get(key))
           for section, values, defaults, settings in sections for key, value in values.items() if key not in settings]
    return sorted(out, key=lambda p: (not p.changed, p.name))


def run_metrics(history: list[dict], scores: dict, split: str = "test") -> dict[str, float]:
    """Scalar tag -> value: ``scores`` (evaluate's headline on ``split``) and the last
    epoch of ``history`` (the checkpoint's records; a checkpoint without them gives the
    scores alone). Scores of val replace the epoch's val figures: the same model on the
    same images, scored as evaluate was asked to (test-time flips, say)."""
    if "accuracy" in scores:
        values = {}
        if history:
            last = history[-1]
            values.update(val_accuracy=last["val_acc"], val_loss=last["val_loss"],
                          train_accuracy=last["train_acc"], train_loss=last["train_loss"])
        values.update({f"{split}_accuracy": scores["accuracy"], f"{split}_macro_f1": scores["macro_f1"],
                       f"{split}_loss": scores["loss"]})
    else:  # a detector: COCO figures (undefined ones, None, are left out)
        values = {k: history[-1].get(k) for k in DETECTION_EPOCH} if history else {}
        values.update({f"{split}_{k}": scores.get(k) for k in DETECTION_TEST})
        values = {k: v for k, v in values.items() if v is not None}
    return {tag: float(values[tag.removeprefix("hparam/")]) for tag, _ in METRICS
            if tag.removeprefix("hparam/") in values}


def _summary(tag: str, data):
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    summary = Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
    return summary


def _type(value) -> int:
    from tensorboard.plugins.hparams import api_pb2

    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    return api_pb2.DATA_TYPE_FLOAT64 if isinstance(value, (int, float)) else api_pb2.DATA_TYPE_STRING


def trial_summaries(name: str, hparams: list[HParam], metrics: dict[str, float]) -> list:
    """The summaries of one trial, in the order they are written: the experiment config
    (params in ``hparams`` order, changed ones marked ``differs``), the session start,
    the metric scalars, the session end."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams.summary_v2 import hparams_pb
    from torch.utils.tensorboard.summary import scalar

    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=p.name, type=_type(p.value), differs=p.changed) for p in hparams],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=shown)
                      for tag, shown in METRICS if tag in metrics])
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
    return [
        _summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
        # the trial id is the run's name: equal params in two runs stay two rows
        hparams_pb({p.name: p.value for p in hparams}, trial_id=name),
        *(scalar(tag, value) for tag, value in metrics.items()),
        _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)),
    ]


def clear_events(run_dir: Path, suffix: str) -> None:
    """Remove the event files ending in ``suffix`` that an earlier evaluation wrote in
    ``run_dir``: a re-evaluation replaces them (TensorBoard keeps the first session start
    it reads in a directory). Other event files (train's, in a shared directory) stay."""
    if run_dir.is_dir():
        for old in run_dir.glob(f"events.out.tfevents.*{suffix}"):
            old.unlink()


def write_trial(file_writer, name: str, hparams: list[HParam], metrics: dict[str, float]) -> None:
    """The trial into ``file_writer``'s run directory (a torch ``FileWriter``)."""
    for summary in trial_summaries(name, hparams, metrics):
        file_writer.add_summary(summary, 0)
    file_writer.flush()


def write_apart(hparams_logdir: Path, name: str, trial: tuple[list[HParam], dict[str, float]]) -> None:
    """The run's trial into ``hparams_logdir/<name>``, replacing an earlier evaluation's.
    Called after the evaluate run's own writer is closed: the two may be one directory."""
    from torch.utils.tensorboard.writer import FileWriter

    clear_events(hparams_logdir / name, EVENTS_SUFFIX)
    trial_writer = FileWriter(str(hparams_logdir / name), filename_suffix=EVENTS_SUFFIX)
    write_trial(trial_writer, name, *trial)
    trial_writer.close()
