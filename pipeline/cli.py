"""The ``pipeline`` command line: every DVC stage as a subcommand, plus tools.

Only typer, the standard library and ``pipeline.core.formats`` (a list, no imports) are
imported at module level; each command imports what it needs, so ``pipeline --help`` answers fast.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer

from pipeline.core.formats import EXPORT_FORMATS, INGEST_FORMATS

app = typer.Typer(
    name="pipeline",
    help="Turn raw images into versioned, augmented, training-ready datasets, and prove them by training a CNN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

PARAMS_HELP = "params file (default params.yaml; built-in defaults when absent)"
JSON_HELP = "print one JSON object (for programs) instead of the summary line"
MIN_CONFIDENCE = 0.5  # predict flags less: under even odds the model's answer is more likely wrong than right


def _friendly(fn: Callable) -> Callable:
    """Print PipelineErrors as one clear message and exit with their code (2; 3 for data
    ingest would lose), no traceback; Ctrl-C or SIGTERM print ``interrupted`` and exit
    130 or 143 (after the cleanup ran)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from pipeline.core import interrupts
        from pipeline.core.errors import PipelineError

        interrupts.install()
        try:
            return fn(*args, **kwargs)
        except PipelineError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt as err:
            typer.echo("interrupted", err=True)
            raise typer.Exit(interrupts.exit_code(err)) from None

    return wrapper


@contextlib.contextmanager
def _reporting(as_json: bool) -> Iterator[None]:
    """With --json stdout carries the one JSON object alone: what the run prints on the
    way (epochs, per-source lines) goes to stderr meanwhile."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _report(facts: dict, line: Callable[[dict], str], as_json: bool) -> None:
    """The command's result: its summary line, or with --json its facts as one JSON object."""
    from pipeline.reports.summary import as_json as to_json

    typer.echo(to_json(facts) if as_json else line(facts))


@contextlib.contextmanager
def _replacing(out: Path) -> Iterator[None]:
    """Around a command writing the directory ``out`` and reporting it: when ``out`` is an
    output that the repository's dvc.lock tracks, say after the report (on stderr) that it
    was replaced and how to restore it (``pipeline.core.dvclock``)."""
    from pipeline.core.dvclock import replaced_notice, tracked_output

    tracked = tracked_output(out)
    yield
    if tracked is not None and _main_rank():
        typer.echo(replaced_notice(out, tracked), err=True)


def _section(name: str, params: Optional[Path]):
    from pipeline.config import load_section, parse_section

    if params is None:
        import os

        default = Path("params.yaml")
        # Built-in defaults only when there is no params.yaml at all: one that is a FIFO,
        # a dangling link or a directory is refused by the guarded reader, not ignored.
        return load_section(name, default) if os.path.lexists(default) else parse_section(name, {})
    return load_section(name, params)


@app.command()
@_friendly
def download(
    name: Optional[str] = typer.Argument(None, help="dataset name (see --list); default from params.yaml"),
    out: Optional[Path] = typer.Option(None, "--out", help="directory to write the dataset into"),
    list_: bool = typer.Option(False, "--list", help="list the known datasets and exit"),
    mirror: Optional[str] = typer.Option(
        None, "--mirror", help="fetch every file as URL/<upstream file name> (default from params.yaml)"),
    checksums: Optional[Path] = typer.Option(
        None, "--checksums", help='JSON {file name: "md5:<hex>" or "sha256:<hex>"} replacing the official checksums'),
    from_: Optional[Path] = typer.Option(
        None, "--from", help="use this archive (or directory of the upstream files) instead of downloading"),
    cache: Optional[Path] = typer.Option(
        None, "--cache", help="download cache (default $PIPELINE_CACHE or ~/.cache/pipeline/downloads)"),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", help="seconds one read may wait before the transfer is cut off (default download.timeout)"),
    min_rate: Optional[int] = typer.Option(
        None, "--min-rate", help="bytes/s below which a transfer is cut off; 0 = none (default download.min_rate)"),
    rate_window: Optional[float] = typer.Option(
        None, "--rate-window", help="seconds the rate is averaged over (default download.rate_window)"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Download an open dataset (or write the offline mnist5k) as a tree ingest reads.

    Files are verified against the official checksums (or --checksums) before use,
    cached, resumed after an interruption, and extracted safely; DIR appears only
    when everything succeeded.
    """
    from pipeline.reports import summary
    from pipeline.config import parse_section
    from pipeline.download import CATALOG, FetchOptions, download as run, get_info

    if list_:
        _report(summary.catalog_facts(CATALOG.values()), summary.catalog_lines, as_json)
        return
    p = _section("download", params)
    if out is None:
        raise typer.BadParameter("--out DIR is required", param_hint="--out")
    flags = {"timeout": timeout, "min_rate": min_rate, "rate_window": rate_window}
    pace = parse_section("download", {**p.model_dump(), **{k: v for k, v in flags.items() if v is not None}},
                         source="--timeout/--min-rate/--rate-window")
    opts = FetchOptions(mirror=mirror or p.mirror, checksums=checksums, digests=tuple(p.checksums.items()),
                        source=from_, cache=cache, timeout=pace.timeout, min_rate=pace.min_rate,
                        rate_window=pace.rate_window)
    name = name or p.dataset
    with _replacing(out):
        with _reporting(as_json):
            path = run(name, out, opts)
        _report(summary.download_facts(name, path, get_info(name).classes), summary.download_line, as_json)


def _main_rank() -> bool:
    """Under torchrun (augment, ingest) rank 0 alone reports."""
    from pipeline.core.ranks import main_rank

    return main_rank()


@app.command()
@_friendly
def ingest(
    src: Optional[Path] = typer.Argument(
        None, help="source directory (read only; never modified); default: ingest.sources from params"),
    out: Path = typer.Option(..., "--out", help="canonical dataset directory to write"),
    format: Optional[str] = typer.Option(
        None, "--format", help=f"{', '.join(INGEST_FORMATS)}, or auto: detected from "
                               "the tree (default from params.yaml)"),
    allow_loss: bool = typer.Option(
        False, "--allow-loss", help="accept data the run loses (an empty named split, no objects read, more "
                                    "than ingest.max_loss quarantined or refused): say it and go on, as "
                                    "ingest.on_loss: warn does; without it such a run exits 3"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Ingest a source tree (or ingest.sources) into the canonical dataset; bad inputs are quarantined.

    Every file and annotation entry is accounted for (report.json, fates). A run that
    loses data exits 3 with one line saying what, and leaves the previous output as it
    was, unless --allow-loss (or ingest.on_loss: warn) accepts it.
    """
    from pipeline.reports import summary
    from pipeline.core.device import configure_process
    from pipeline.ingest import ingest as run

    configure_process()

    p = _section("ingest", params)
    if src is not None:  # an explicit tree replaces the sources listed in params
        p = p.model_copy(update={"sources": ()})
    if allow_loss:
        p = p.model_copy(update={"on_loss": "warn"})
    with _replacing(out):
        with _reporting(as_json):
            ds = run(src, out, p, fmt=format)
        if _main_rank():
            _report(summary.ingest_facts(ds, out), summary.ingest_lines, as_json)


@app.command()
@_friendly
def split(
    dataset: Path = typer.Argument(..., help="canonical dataset directory"),
    out: Path = typer.Option(..., "--out", help="directory for splits.json"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Assign every sample to train/val/test: stratified and deterministic."""
    from pipeline.reports import summary
    from pipeline.datasets import load_dataset
    from pipeline.split import write_splits

    p = _section("split", params)  # validated before any data is read
    with _replacing(out):
        with _reporting(as_json):
            written = write_splits(load_dataset(dataset), p, out)
        _report(summary.split_facts(written, out), summary.split_line, as_json)


@app.command()
@_friendly
def augment(
    dataset: Optional[Path] = typer.Argument(None, help="canonical dataset directory"),
    splits: Optional[Path] = typer.Option(None, "--splits", help="directory holding splits.json"),
    out: Optional[Path] = typer.Option(None, "--out", help="dataset version directory to write"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
    preview: bool = typer.Option(False, "--preview", help="write a TensorBoard preview instead of a version"),
    source: Optional[Path] = typer.Option(None, "--source", help="canonical dataset to preview (or DATASET)"),
    n: int = typer.Option(8, "--n", min=1, max=256, help="samples in the preview"),
    logdir: Path = typer.Option(Path("runs/preview"), "--logdir", help="TensorBoard directory of the preview"),
    port: int = typer.Option(6006, "--port", help="port in the printed tensorboard command"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Write a dataset version: the train split augmented, all splits packed for training.

    With --preview: show N train samples through each op and the full pipeline in
    TensorBoard (outside DVC, in seconds; nothing else is written). The full
    pipeline's panels are copy 1 of those samples exactly as the version holds it
    (the split from --splits, else as the split stage would assign it).
    """
    from pipeline.reports import summary
    from pipeline.core.device import configure_process
    from pipeline.datasets import load_dataset

    p = _section("augment", params)  # validated before any data is read
    configure_process(torch_threads=1)  # the engine splits batches over the cores itself
    if preview:
        from pipeline.reports.preview import preview as run_preview, tensorboard_command

        src = source or dataset
        if src is None:
            raise typer.BadParameter("--source DIR (a canonical dataset) is required", param_hint="--source")
        ds = load_dataset(src)
        if splits is not None:  # the split stage's assignment, as the version uses it
            from pipeline.split import read_splits

            assignment = read_splits(splits)
        else:  # the assignment the split stage would make with these params
            from pipeline.split import assign_splits

            assignment = assign_splits(ds, _section("split", params))
        with _reporting(as_json):
            res = run_preview(ds, assignment, p, n, logdir)
        _report(summary.preview_facts(res, tensorboard_command(res.logdir, port)), summary.preview_line, as_json)
        return
    from pipeline.split import read_splits
    from pipeline.version import write_version

    for value, hint in ((dataset, "DATASET"), (splits, "--splits"), (out, "--out")):
        if value is None:
            raise typer.BadParameter(f"{hint} is required (or use --preview)", param_hint=hint)
    with _replacing(out):
        with _reporting(as_json):
            card = write_version(load_dataset(dataset), read_splits(splits), p, out, inputs=[splits])
        if _main_rank():
            _report(summary.augment_facts(card, out), summary.augment_line, as_json)


@app.command()
@_friendly
def trace(
    version: Path = typer.Argument(..., help="dataset version directory"),
    sample_id: str = typer.Argument(..., metavar="ID", help="output sample id, '<source id>#<copy>'"),
    dataset: Optional[Path] = typer.Option(
        None, "--dataset", help="canonical dataset (default: the one recorded in card.json)"),
    save: Optional[Path] = typer.Option(None, "--save", help="also write the re-rendered image as PNG"),
    as_json: bool = typer.Option(False, "--json", help="print the trace as one JSON object (for programs)"),
) -> None:
    """Trace an output sample to its source file and op parameters, and re-render it.

    The source file is the user's original image, found from here or from a folder
    above the dataset (the path as given to ingest); when it is gone, the stored
    copy is named as PACK:MEMBER, e.g. canonical/images/00000.tar:<member>.png
    (tar -xf PACK MEMBER extracts it). Ops list the parameters each drew; an op
    whose probability did not fire reads 'not applied'. Exit 1 when the
    re-rendered pixels or record differ from the version.
    """
    from pipeline.core.device import configure_process
    from pipeline.reports.summary import as_json as to_json
    from pipeline.reports.trace import format_trace, trace as run, trace_facts

    configure_process(torch_threads=1)

    t = run(version, sample_id, dataset)
    typer.echo(to_json(trace_facts(t)) if as_json else format_trace(t))
    if save is not None:
        import io

        from PIL import Image

        from pipeline.core.atomic import atomic_write_bytes

        png = io.BytesIO()
        Image.fromarray(t.rendered[:, :, 0] if t.rendered.shape[2] == 1 else t.rendered).save(png, "PNG")
        atomic_write_bytes(save, png.getvalue(), inputs=[version])
    if not t.identical:
        raise typer.Exit(1)


@app.command()
@_friendly
def train(
    version: Path = typer.Argument(..., help="dataset version directory"),
    checkpoint: Path = typer.Option(..., help="checkpoint to write"),
    logdir: Path = typer.Option(..., help="TensorBoard log directory"),
    metrics: Path = typer.Option(..., help="metrics JSON"),
    curve: Path = typer.Option(..., help="per-epoch CSV"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train the CNN on a dataset version."""
    from pipeline.reports import summary
    from pipeline.train.loop import train as run

    with _reporting(as_json):
        history = run(version, _section("train", params), checkpoint, logdir, metrics, curve)
    if _main_rank():
        if hasattr(history[-1], "val_map"):  # a detector's epochs
            _report(summary.detection_train_facts(history, checkpoint), summary.detection_train_line, as_json)
        else:
            _report(summary.train_facts(history, checkpoint), summary.train_line, as_json)


@app.command()
@_friendly
def evaluate(
    version: Path = typer.Argument(..., help="dataset version directory"),
    checkpoint: Path = typer.Option(..., help="checkpoint to evaluate"),
    metrics: Path = typer.Option(..., help="metrics JSON"),
    confusion: Path = typer.Option(..., help="confusion CSV"),
    logdir: Path = typer.Option(..., help="TensorBoard log directory"),
    report: Optional[Path] = typer.Option(None, help="also write per-class scores and the confusion matrix here"),
    hparams: Optional[Path] = typer.Option(
        None, help="TensorBoard HParams directory for the run's one trial (train and evaluate params against "
                   "train, val and test metrics); without it the trial goes into the --logdir run"),
    pr: Optional[Path] = typer.Option(None, help="detectors: also write the precision-recall CSV here"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Evaluate a checkpoint on the test split: accuracy, per-class scores, confusion (COCO mAP for a detector)."""
    from pipeline.reports import summary
    from pipeline.core.device import configure_process
    from pipeline.train.checkpoint import checkpoint_task

    configure_process(torch_threads=0)

    with _reporting(as_json):
        if checkpoint_task(checkpoint) == "classify":
            from pipeline.train.evaluate import evaluate as run

            if pr is not None:
                from pipeline.core.errors import InputError

                raise InputError(f"{pr}: --pr is a detector's precision-recall CSV; {checkpoint} is a classifier "
                                 "(its PR curves are in TensorBoard)")

            result = run(version, checkpoint, _section("evaluate", params), metrics, confusion, logdir, report,
                         hparams)
            line = summary.evaluate_line
        else:
            from pipeline.train.detevaluate import evaluate_detection

            result = evaluate_detection(version, checkpoint, _section("evaluate", params), metrics, confusion,
                                        logdir, report, pr, hparams)
            line = summary.detection_evaluate_line
    _report(result, line, as_json)


@app.command()
@_friendly
def stats(
    dataset: Path = typer.Argument(..., help="canonical dataset directory"),
    splits: Optional[Path] = typer.Option(None, "--splits", help="directory holding splits.json"),
    as_json: bool = typer.Option(False, "--json", help="print the report as one JSON object (for programs)"),
    png: Optional[Path] = typer.Option(None, "--png", help="also write the picture (PNG) here"),
    csv: Optional[Path] = typer.Option(
        None, "--csv", help="also write one row per object (per image for classification data) here: a DVC plot"),
) -> None:
    """Health report of a dataset or version: samples per split and class, objects, box sizes,
    duplicates, quarantine; --png/--csv draw the objects (what Ultralytics' labels.jpg shows),
    or for classification data the images per class and split and their sizes."""
    import json

    from pipeline.datasets import load_dataset
    from pipeline.split import read_splits
    from pipeline.reports.stats import compute, render

    ds = load_dataset(dataset)
    assignment = read_splits(splits) if splits else None
    report = compute(ds, assignment)
    typer.echo(json.dumps(report, sort_keys=True) if as_json else render(report))
    if png is not None or csv is not None:
        from pipeline.core.atomic import atomic_write_bytes
        from pipeline.reports.stats_plot import csv_bytes, describe, png_bytes, table

        if png is not None:
            atomic_write_bytes(png, png_bytes(ds, assignment), inputs=(dataset,))
        if csv is not None:
            atomic_write_bytes(csv, csv_bytes(*table(ds, assignment)), inputs=(dataset,))
        written = ", ".join(str(p) for p in (png, csv) if p is not None)
        typer.echo(f"{written}: {describe(ds)}", err=as_json)  # --json keeps stdout one JSON object


@app.command()
@_friendly
def export(
    dataset: Path = typer.Argument(..., help="canonical dataset or dataset version directory"),
    out: Path = typer.Option(
        ..., "--out", help="directory to write: new, empty or an earlier export (replaced atomically)"),
    format: str = typer.Option(..., "--format", help=", ".join(EXPORT_FORMATS)),
    splits: Optional[Path] = typer.Option(None, "--splits", help="directory holding splits.json"),
    task: str = typer.Option("detect", "--task",
                             help="yolo, coco: detect (YOLO: boxes) or segment (polygons; a box-only "
                                  "object becomes its rectangle)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Write a canonical dataset or a version out in a layout its trainers read, splits kept."""
    from pipeline.reports import summary
    from pipeline.export import export as run
    from pipeline.datasets import load_dataset
    from pipeline.split import read_splits

    ds = load_dataset(dataset)
    with _replacing(out):
        with _reporting(as_json):
            written = run(ds, out, format, read_splits(splits) if splits else None,
                          inputs=[splits] if splits else [], task=task)
        _report(summary.export_facts(written, out, len(ds.classes)), summary.export_line, as_json)


@app.command()
@_friendly
def predict(
    checkpoint: Path = typer.Argument(..., help="checkpoint written by train"),
    images: list[Path] = typer.Argument(
        ..., help="image files (any size, mode, EXIF orientation) or folders: a folder gives every image file "
                  "under it, in subfolders too (by extension), sorted; hidden files and folders skipped, "
                  "other files skipped with a note"),
    top: int = typer.Option(1, "--top", min=1, help="show the N most likely classes"),
    min_confidence: float = typer.Option(
        MIN_CONFIDENCE, "--min-confidence", min=0.0, max=1.0,
        help="flag predictions less probable than this as 'low confidence'"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object: a prediction per image, and errors"),
    out: Optional[Path] = typer.Option(
        None, "--out", help="detectors: write results.json (COCO results format), images.json and drawn overlays here"),
    tile: Optional[int] = typer.Option(
        None, "--tile", min=0, help="detectors: predict images larger than this by tiles stitched with NMS "
                                    "(default: the training images' long side; 0: never)"),
    overlap: float = typer.Option(0.25, "--overlap", min=0.0, max=0.9, help="detectors: share of a tile its neighbour covers"),
    min_score: float = typer.Option(0.25, "--min-score", min=0.0, max=1.0,
                                    help="detectors: objects counted and drawn from this score"),
) -> None:
    """Predict the class of images (or, with a detector, their objects) with a trained checkpoint.

    Each image goes through the checkpoint's own resize (the one its training data
    had) and normalisation. Prints a table with a header: image, class,
    probability (and the next classes with --top), flagged 'low confidence' below
    --min-confidence. An image that cannot be read is an error line on stderr; the
    others are still predicted, and the exit status is 2.
    """
    from pipeline.reports import summary
    from pipeline.core.device import configure_process
    from pipeline.train.checkpoint import checkpoint_task
    from pipeline.train.predict import image_files, predict as run

    configure_process(torch_threads=0)

    found = image_files(images)
    files = list(found.images)
    if found.skipped:
        shown = ", ".join(str(p) for p in found.skipped[:3]) + (", ..." if len(found.skipped) > 3 else "")
        typer.echo(f"note: {len(found.skipped)} file(s) without an image extension skipped ({shown})", err=True)
    if checkpoint_task(checkpoint) != "classify":
        _predict_detections(checkpoint, files, out, tile, overlap, min_score, as_json)
        return
    if out is not None:  # an output never written would look like an empty result
        from pipeline.core.errors import InputError

        raise InputError(f"{out}: --out takes a detector's results; {checkpoint} is a classifier (its "
                         "predictions print, with --json as JSON)")
    predictions, errors = [], []
    for path, r in zip(files, run(checkpoint, files, top=top)):
        if isinstance(r, Exception):
            typer.echo(f"error: {r}", err=True)
            errors.append({"path": str(path), "error": str(r)})
            continue
        predictions.append(summary.prediction_facts(r, min_confidence))
        if any(n.startswith(("first-frame", "orientation-ignored")) for n in r.notes):
            typer.echo(f"note: {r.path}: {', '.join(r.notes)}", err=True)
    if predictions or as_json:
        _report(summary.predict_facts(checkpoint, predictions, errors, min_confidence), summary.predict_table,
                as_json)
    if errors:
        raise typer.Exit(2)


def _predict_detections(checkpoint: Path, files: list[Path], out: Optional[Path], tile: Optional[int],
                        overlap: float, min_score: float, as_json: bool) -> None:
    from pipeline.reports import summary
    from pipeline.train.detpredict import detection_facts, predict_detections, write_outputs

    results, ckpt = predict_detections(checkpoint, files, tile, overlap)
    done, errors = [], []
    for path, r in zip(files, results):
        if isinstance(r, Exception):
            typer.echo(f"error: {r}", err=True)
            errors.append({"path": str(path), "error": str(r)})
        else:
            done.append(r)
    written = str(write_outputs(done, list(ckpt["classes"]), out, min_score)) if out is not None and done else None
    facts = {"checkpoint": str(checkpoint), "min_score": min_score, "results": written,
             "predictions": [detection_facts(r, list(ckpt["classes"]), min_score) for r in done], "errors": errors}
    if done or as_json:
        _report(facts, summary.detections_table, as_json)
    if errors:
        raise typer.Exit(2)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="pipeline")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
