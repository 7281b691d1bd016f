"""The model's input size: ``train.image_size``, else the version's one size, else one
chosen from the data (each row at its own size: photos kept at native resolution).

The chosen size is the median train height and width, each rounded to a multiple of
32 (the three 2x2 pools of the models, and the tile sizes conv kernels like) and kept
within 32..224 (the size pretrained backbones take; larger costs memory per batch
for little on a small data set). It is printed and recorded in the checkpoint, so
``evaluate`` and ``predict`` bring images to the same size.
"""

from __future__ import annotations

from pipeline.config import TrainParams
from pipeline.core.errors import InputError
from pipeline.train.data import InputSize, SplitRows, VersionInfo

STEP, SMALLEST, LARGEST = 32, 32, 224


def data_side(values: list[int]) -> int:
    """The median of ``values`` rounded to a multiple of STEP, within SMALLEST..LARGEST."""
    v = sorted(values)
    median = (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2
    return int(min(LARGEST, max(SMALLEST, STEP * round(median / STEP))))


def choose_input(info: VersionInfo, params: TrainParams, train: SplitRows) -> InputSize:
    """The InputSize of a run: size, channels, and the resize (``train.resize`` / ``pad_value``,
    null: the version's own ``augment.resize`` / ``pad_value``)."""
    resize = (params.resize or info.resize[0], info.resize[1] if params.pad_value is None else params.pad_value)
    c = int(info.shape[2])
    if params.image_size is not None:
        return InputSize(*params.image_size, c, resize, "train.image_size")
    if info.shape[0] is not None and info.shape[1] is not None:
        return InputSize(int(info.shape[0]), int(info.shape[1]), c, resize)
    if not train.sizes:
        raise InputError("the train split is empty: no size to choose the model's input from; "
                         "set train.image_size")
    h, w = data_side([s[0] for s in train.sizes]), data_side([s[1] for s in train.sizes])
    return InputSize(h, w, c, resize, "the median train size (set train.image_size to choose)")
