"""TensorBoard extras: model graph, image grids, PR curves, and the evaluation figures.

Each run logs into its own subdirectory (``run_name``), so runs line up side by side
when TensorBoard is pointed at the parent directory (the HParams trial: ``hparams.py``).

The evaluation figures are drawn at fixed pixel sizes (``add_figure`` renders at the
figure's dpi), so photos and class names stay readable whatever the data: each
mistake is a tile of TILE_MIN..TILE_MAX px (its image's longer side, within those)
under a two-line caption cut to the tile's width; the confusion matrix has cells of CELL_MIN..CELL_MAX px
and margins that fit the longest class name.
"""

from __future__ import annotations

import os

import torch
from torch import nn


DPI = 100
TILE_MIN, TILE_MAX = 128, 160  # px per mistake: small images enlarged (pixels kept), photos shrunk
FONT_PT = 8
CHAR_PX = FONT_PT * DPI / 72 * 0.62  # a wide average character of matplotlib's sans-serif
CAPTION_PX = 32  # two lines of FONT_PT
NAME_CHARS = 24  # confusion labels: longer class names are cut, ending in "..."
CELL_MIN, CELL_MAX = 14, 64  # px per confusion cell
MATRIX_PX = 640  # the matrix's side when CELL_MIN..CELL_MAX allow it
COUNTS_FROM_CELL = 22  # cells smaller than this show colour alone, no count


def run_name(model: str, fingerprint: str) -> str:
    """``dvc exp run`` names each experiment (DVC_EXP_NAME); plain runs use the params' fingerprint."""
    return os.environ.get("DVC_EXP_NAME") or f"{model}-{fingerprint}"


def evaluation_run(ckpt: dict) -> str:
    """The experiment evaluating (DVC_EXP_NAME: an experiment that changed only evaluate
    params reuses an earlier checkpoint), else the checkpoint's own run."""
    return os.environ.get("DVC_EXP_NAME") or ckpt.get("run", "run")


def short_name(name: str, chars: int = NAME_CHARS) -> str:
    return name if len(name) <= chars else name[:max(chars - 3, 1)] + "..."


def caption(true: str, pred: str, probability: float, tile: int) -> str:
    """Two lines that fit a tile: the true class; the predicted class and its probability."""
    chars = int(tile / CHAR_PX)
    return f"true {short_name(true, chars - 5)}\npred {short_name(pred, chars - 10)} {probability:.2f}"


def image_grid(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """Normalised float (B, C, H, W) back to a [0, 1] (3, H', W') grid, as the model sees it."""
    from torchvision.utils import make_grid

    x = images.detach().float().cpu() * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)
    return make_grid(x.clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)


def log_graph(writer, model: nn.Module, example: torch.Tensor) -> None:
    """The model graph, traced in eval mode so batch-norm statistics are not updated."""
    import warnings

    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings are about the tracer, not the model
            writer.add_graph(model, example[:1].float())
    except Exception as err:  # a graph that will not trace must not stop training
        print(f"train: model graph not logged ({type(err).__name__}: {err})")
    finally:
        model.train(was_training)


def log_pr_curves(writer, probs: torch.Tensor, labels: torch.Tensor, classes: list[str], tag: str) -> None:
    for i, name in enumerate(classes):
        writer.add_pr_curve(f"{tag}/{name}", labels == i, probs[:, i], 0)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def worst_grid(images_u8, labels: torch.Tensor, probs: torch.Tensor, classes: list[str], k: int,
               cols: int = 8):
    """A figure of the ``k`` misclassified images the model was most sure about, each
    captioned with its true class and the predicted one with its probability.

    ``images_u8[i]``: uint8 (C, H, W) of row ``i`` (read only for the rows shown)."""
    pred = probs.argmax(1)
    wrong = (pred != labels).nonzero()[:, 0]
    if k == 0 or len(wrong) == 0:
        return None
    conf = probs[wrong, pred[wrong]]
    chosen = wrong[conf.argsort(descending=True)[:k]].tolist()
    shown = [images_u8[i] for i in chosen]
    tile = min(TILE_MAX, max(TILE_MIN, max(max(x.shape[1:]) for x in shown)))
    cols = min(cols, len(chosen))
    rows = -(-len(chosen) // cols)
    pad = 8
    cell_w, cell_h = tile + pad, tile + CAPTION_PX + pad
    width, height = cols * cell_w, rows * cell_h
    plt = _pyplot()
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    for n, (i, img) in enumerate(zip(chosen, shown)):
        r, c = divmod(n, cols)
        left, bottom = c * cell_w + pad / 2, height - (r + 1) * cell_h + pad / 2
        ax = fig.add_axes((left / width, bottom / height, tile / width, tile / height))
        ax.axis("off")
        a = img.permute(1, 2, 0).numpy()
        small = max(a.shape[:2]) < tile  # enlarged: keep the pixels sharp
        ax.imshow(a[:, :, 0] if a.shape[2] == 1 else a, cmap="gray" if a.shape[2] == 1 else None,
                  vmin=0, vmax=255, interpolation="nearest" if small else "antialiased")
        p = int(pred[i])
        ax.set_title(caption(classes[int(labels[i])], classes[p], float(probs[i, p]), tile), fontsize=FONT_PT,
                     pad=2, loc="left")
    return fig


def confusion_figure(cm: torch.Tensor, classes: list[str], split: str = "test"):
    """Rows: actual class, columns: predicted. Colour: the share of the row (readable
    with unequal classes), text: the count; sized to the number of classes."""
    plt = _pyplot()
    k = len(classes)
    cell = min(CELL_MAX, max(CELL_MIN, MATRIX_PX // max(k, 1)))
    names = [short_name(c) for c in classes]
    font = FONT_PT if cell >= 20 else 7
    char_px = CHAR_PX * font / FONT_PT
    label_px = max(len(n) for n in names) * char_px + 28  # names and the axis title
    side = k * cell
    left, bottom, top, right = label_px + 10, label_px + 10, 40, 20
    width, height = left + side + right, bottom + side + top
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((left / width, bottom / height, side / width, side / height))
    share = cm.double() / cm.sum(1, keepdim=True).clamp(min=1)
    ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 3 else 0, fontsize=font)
    ax.set_yticks(range(k), names, fontsize=font)
    ax.set_xlabel("predicted", fontsize=FONT_PT)
    ax.set_ylabel("actual", fontsize=FONT_PT)
    ax.set_title(f"{split} confusion (colour: share of the actual class)", fontsize=FONT_PT)
    if cell >= COUNTS_FROM_CELL:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=font,
                        color="white" if share[i, j] > 0.5 else "black")
    return fig
