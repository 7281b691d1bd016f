"""Every op, in one list for the registry (``ALL_OPS``), by family: geometric.py,
photometric.py, cutout.py, mixing.py, mosaic.py; the contract is in base.py."""

from pipeline.augment.base import Op, OpParams
from pipeline.augment.cutout import Cutout
from pipeline.augment.geometric import Affine, Crop, HFlip, RandomResizedCrop, Rot90, Rotate, VFlip
from pipeline.augment.mixing import CutMix, MixUp
from pipeline.augment.mosaic import Mosaic
from pipeline.augment.photometric import ColorJitter, GaussianBlur, GaussianNoise, Grayscale

ALL_OPS: tuple[type[Op], ...] = (HFlip, VFlip, Rot90, Rotate, Crop, RandomResizedCrop, Affine, ColorJitter, Grayscale,
                                 GaussianBlur, GaussianNoise, Cutout, MixUp, CutMix, Mosaic)

__all__ = ["ALL_OPS", "Op", "OpParams", *(op.__name__ for op in ALL_OPS)]
