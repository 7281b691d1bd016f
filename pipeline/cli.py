"""The ``pipeline`` command line: every DVC stage as a subcommand, plus tools.

Only typer and the standard library are imported at module level; each command
imports what it needs, so ``pipeline --help`` answers fast.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

app = typer.Typer(
    name="pipeline",
    help="Turn raw images into versioned, augmented, training-ready datasets, and prove them by training a CNN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PARAMS_HELP = "params file (default params.yaml; built-in defaults when absent)"


def _friendly(fn: Callable) -> Callable:
    """Print PipelineErrors as one clear message and exit 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from pipeline.errors import PipelineError

        try:
            return fn(*args, **kwargs)
        except PipelineError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _section(name: str, params: Optional[Path]):
    from pipeline.config import load_section, parse_section

    if params is None:
        default = Path("params.yaml")
        return load_section(name, default) if default.is_file() else parse_section(name, {})
    return load_section(name, params)


@app.command()
@_friendly
def download(
    name: Optional[str] = typer.Argument(None, help="dataset name (see --list); default from params.yaml"),
    out: Optional[Path] = typer.Option(None, "--out", help="directory to write the dataset into"),
    list_: bool = typer.Option(False, "--list", help="list the known datasets and exit"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
) -> None:
    """Download an open dataset (or write the offline mnist5k) as a tree ingest reads."""
    from pipeline.download import CATALOG, download as run

    if list_:
        for info in CATALOG.values():
            net = "network" if info.needs_network else "offline"
            typer.echo(f"{info.name:14} {info.classes:4} classes  {info.size:40} {net}\n"
                       f"{'':14} {info.layout}\n{'':14} {info.licence}")
        return
    p = _section("download", params)
    if out is None:
        raise typer.BadParameter("--out DIR is required", param_hint="--out")
    path = run(name or p.dataset, out, mirror=p.mirror)
    typer.echo(f"download: wrote {path}")


@app.command()
@_friendly
def ingest(
    src: Path = typer.Argument(..., help="source directory (read only; never modified)"),
    out: Path = typer.Option(..., "--out", help="canonical dataset directory to write"),
    format: Optional[str] = typer.Option(None, "--format", help="source format (default from params.yaml)"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
) -> None:
    """Ingest a source tree into the canonical dataset (bad inputs are quarantined)."""
    from pipeline.ingest import ingest as run

    ds = run(src, out, _section("ingest", params), fmt=format)
    typer.echo(f"ingest: {len(ds.samples)} samples, {len(ds.classes)} classes, "
               f"{len(ds.quarantine)} quarantined (see {out / 'quarantine.jsonl'})")


@app.command()
@_friendly
def split(
    dataset: Path = typer.Argument(..., help="canonical dataset directory"),
    out: Path = typer.Option(..., "--out", help="directory for splits.json"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
) -> None:
    """Assign every sample to train/val/test: stratified and deterministic."""
    from pipeline.record import load_dataset
    from pipeline.split import write_splits

    p = _section("split", params)  # validated before any data is read
    summary = write_splits(load_dataset(dataset), p, out)
    typer.echo(f"split: {summary['counts']}")


@app.command()
@_friendly
def augment(
    dataset: Path = typer.Argument(..., help="canonical dataset directory"),
    splits: Path = typer.Option(..., "--splits", help="directory holding splits.json"),
    out: Path = typer.Option(..., "--out", help="dataset version directory to write"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
) -> None:
    """Write a dataset version: the train split augmented, all splits packed for training."""
    from pipeline.dataset_version import write_version
    from pipeline.record import load_dataset
    from pipeline.split import read_splits

    p = _section("augment", params)  # validated before any data is read
    card = write_version(load_dataset(dataset), read_splits(splits), p, out)
    typer.echo("augment: " + ", ".join(f"{k} {v['samples']}" for k, v in card["splits"].items()))


@app.command()
@_friendly
def train(
    version: Path = typer.Argument(..., help="dataset version directory"),
    checkpoint: Path = typer.Option(..., help="checkpoint to write"),
    logdir: Path = typer.Option(..., help="TensorBoard log directory"),
    metrics: Path = typer.Option(..., help="metrics JSON"),
    curve: Path = typer.Option(..., help="per-epoch CSV"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
) -> None:
    """Train the CNN on a dataset version."""
    from pipeline.train.loop import train as run

    run(version, _section("train", params), checkpoint, logdir, metrics, curve)


@app.command()
@_friendly
def evaluate(
    version: Path = typer.Argument(..., help="dataset version directory"),
    checkpoint: Path = typer.Option(..., help="checkpoint to evaluate"),
    metrics: Path = typer.Option(..., help="metrics JSON"),
    confusion: Path = typer.Option(..., help="confusion CSV"),
    logdir: Path = typer.Option(..., help="TensorBoard log directory"),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
) -> None:
    """Evaluate a checkpoint on the test split: accuracy, per-class scores, confusion."""
    from pipeline.train.evaluate import evaluate as run

    run(version, checkpoint, _section("evaluate", params), metrics, confusion, logdir)


@app.command()
@_friendly
def predict(
    checkpoint: Path = typer.Argument(..., help="checkpoint written by train"),
    images: list[Path] = typer.Argument(..., help="image files (any size, mode, EXIF orientation)"),
    top: int = typer.Option(1, "--top", min=1, help="show the N most likely classes"),
) -> None:
    """Predict the class of images with a trained checkpoint."""
    from pipeline.train.predict import predict as run

    failed = 0
    for r in run(checkpoint, images, top=top):
        if isinstance(r, Exception):
            typer.echo(f"error: {r}", err=True)
            failed += 1
            continue
        others = "  ".join(f"{name} {p:.3f}" for name, p in r.top[1:])
        typer.echo(f"{r.path}\t{r.label}\t{r.probability:.3f}" + (f"\t({others})" if others else ""))
    if failed:
        raise typer.Exit(2)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="pipeline")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
