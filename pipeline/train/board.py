"""TensorBoard extras: model graph, image grids, hparams, PR curves.

Each run logs into its own subdirectory (``run_name``), so the HParams tab lists
``dvc exp`` runs side by side when TensorBoard is pointed at the parent directory.
"""

from __future__ import annotations

import os

import torch
from torch import nn


def run_name(model: str, fingerprint: str) -> str:
    """``dvc exp run`` names each experiment (DVC_EXP_NAME); plain runs use the params' fingerprint."""
    return os.environ.get("DVC_EXP_NAME") or f"{model}-{fingerprint}"


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


def log_hparams(writer, params: dict, metrics: dict[str, float]) -> None:
    """Params against final metrics in this run's own directory (HParams tab).

    Written with the low-level summary API rather than ``add_hparams``, which
    would create yet another timestamped subdirectory per call.
    """
    from torch.utils.tensorboard.summary import hparams

    flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in params.items()}
    exp, ssi, sei = hparams(flat, {f"hparam/{k}": v for k, v in metrics.items()})
    fw = writer._get_file_writer()
    for s in (exp, ssi, sei):
        fw.add_summary(s)
    for k, v in metrics.items():
        writer.add_scalar(f"hparam/{k}", v)


def log_pr_curves(writer, probs: torch.Tensor, labels: torch.Tensor, classes: list[str], tag: str) -> None:
    for i, name in enumerate(classes):
        writer.add_pr_curve(f"{tag}/{name}", labels == i, probs[:, i], 0)


def worst_grid(images_u8: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, classes: list[str],
               k: int):
    """A figure of the ``k`` misclassified images the model was most sure about."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred = probs.argmax(1)
    wrong = (pred != labels).nonzero()[:, 0]
    if k == 0 or len(wrong) == 0:
        return None
    conf = probs[wrong, pred[wrong]]
    chosen = wrong[conf.argsort(descending=True)[:k]]
    cols = min(8, len(chosen))
    rows = -(-len(chosen) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen.tolist()):
        img = images_u8[i].permute(1, 2, 0).numpy()
        ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray" if img.shape[2] == 1 else None)
        ax.set_title(f"pred {classes[pred[i]]} {probs[i, pred[i]]:.2f}\ntrue {classes[labels[i]]}",
                     fontsize=7)
    fig.tight_layout()
    return fig
