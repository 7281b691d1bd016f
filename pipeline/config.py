"""``params.yaml``: one validated, frozen model per section.

Each stage reads exactly one section (``dvc.yaml`` lists the same keys), validated
up front; an unknown key or out-of-range value is an error naming the key, the
allowed range and the file. Models are frozen: nothing downstream edits config.
The augmentation pipeline's ops are validated by the op registry
(``pipeline.augment.registry``), which owns each op's parameter model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.core.errors import ConfigError
from pipeline.core.formats import INGEST_CHOICES
from pipeline.core.inputfile import LIMITS, InputRefused, parse_yaml, read_bytes, shown
from pipeline.core.resize_modes import DEFAULT_RESIZE, PAD_GREY, RESIZE_MODES

ResizeMode = Literal[RESIZE_MODES]  # the one list (pipeline.core.resize_modes)


MAX_SIDE = 8192  # largest augment.image_size side: a 8192x8192x3 image is 192 MiB
MIN_INPUT_SIDE = 8  # smallest model input side: the models pool three times by 2
PARAMS_MAX_BYTES = LIMITS["config"]  # params.yaml is a few KiB; a larger file is not a params file


def _non_finite_at(value: Any, where: str) -> str | None:
    """The dotted path of the first NaN or infinity inside ``value`` (any nesting), or None."""
    stack = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return at
        if isinstance(v, dict):
            stack.extend((x, f"{at}.{k}") for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((x, f"{at}[{i}]") for i, x in enumerate(v))
    return None


class Section(BaseModel):
    # allow_inf_nan=False covers every float field; the check below also covers values
    # inside free-form dicts and lists (ratios, pipeline ops), whatever their type.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if (at := _non_finite_at(value, str(key))) is not None:
                    raise ValueError(f"{at} is NaN or infinity; only finite numbers are allowed")
        return data


class DownloadParams(Section):
    dataset: str = "mnist5k"
    mirror: str | None = None  # base URL replacing the upstream one
    # {upstream file name: "md5:<hex>" | "sha256:<hex>"} replacing the official digests
    # (a private mirror's own bytes); the CLI's --checksums FILE overrides these.
    checksums: dict[str, str] = Field(default_factory=dict)
    # A stalled or trickling server is cut off (the bytes received so far are kept for
    # the next run): one read may wait `timeout` seconds, and fewer than `min_rate`
    # bytes per second over `rate_window` seconds is too slow (0 = no minimum rate).
    timeout: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False, description="seconds one read may wait")
    min_rate: int = Field(1024, ge=0, description="bytes per second, averaged over rate_window; 0 = none")
    rate_window: float = Field(15.0, gt=0, le=3600, allow_inf_nan=False, description="seconds")

    @field_validator("checksums")
    @classmethod
    def _digests(cls, v: dict[str, str]) -> dict[str, str]:
        from pipeline.core.digests import parse_digest

        try:
            return {name: parse_digest(digest, name) for name, digest in v.items()}
        except ConfigError as err:
            raise ValueError(str(err)) from None


# Kept here, not imported from pipeline.ingest, so validating params stays import-light.
PLACEHOLDER_NAMES = (
    "imagenotfound.*", "image_not_found.*", "image-not-found.*", "notfound.*",
    "placeholder.*", "placeholder_*.*", "no_image.*", "noimage.*", "no-image.*",
    "photo_unavailable.*", "image_unavailable.*", "unavailable.*",
)


def _check_format(v: str) -> str:
    if v not in INGEST_CHOICES:
        raise ValueError(f"unknown format {v!r}; known: {', '.join(INGEST_CHOICES)}")
    return v


class SourceParams(Section):
    """One entry of ``ingest.sources``: a tree in one format, merged with the others."""

    format: str
    path: str
    name: str | None = Field(None, description="id prefix; default: the path's last component")

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        return _check_format(v)


class LabelmeParams(Section):
    flags_as_label: bool = Field(False, description="image-level flags give the class label")


class TileParams(Section):
    """``ingest.tile``: cut images larger than ``size`` into overlapping ``size`` x ``size`` tiles
    (SAHI's slicing, DeepForest's ``split_raster``: the last row and column shifted inwards
    so every tile is full size). An object cut by a tile's edge is clipped to it and kept
    by the augment engine's rules, with these thresholds (as ``augment.min_visibility`` and
    ``augment.min_area`` for its ops)."""

    size: int = Field(..., ge=32, le=MAX_SIDE, description="tile side in pixels")
    overlap: int = Field(0, ge=0, description="pixels shared by neighbouring tiles, below size")
    min_visibility: float = Field(0.0, ge=0.0, le=1.0, description="drop a clipped object showing less of its box")
    min_area: float = Field(1.0, ge=0.0, description="drop a clipped object smaller than this (pixels^2)")

    @model_validator(mode="after")
    def _overlap(self) -> "TileParams":
        if self.overlap >= self.size:
            raise ValueError(f"overlap {self.overlap} must be below size {self.size} (0 <= overlap < size)")
        return self


class IngestParams(Section):
    format: str = "imagefolder"
    min_size: int = Field(8, ge=1, description="smallest accepted width/height in pixels")
    max_pixels: int = Field(178_956_970, ge=1, description="decompression-bomb limit")
    workers: int = Field(0, ge=0, le=256, description="decode processes; 0 = one per core")
    # Several sources, one class map, background images, duplicates.
    sources: tuple[SourceParams, ...] = ()
    classes: tuple[str, ...] | None = Field(None, description="explicit ordered class list")
    aliases: dict[str, str] = Field(default_factory=dict, description="name found -> class name")
    keep_background: bool = Field(True, description="images without annotations are samples")
    near_duplicate_bits: int = Field(
        3, ge=-1, le=16,
        description="dHash Hamming distance counted as a near duplicate; -1 = exact only")
    placeholder_names: tuple[str, ...] = Field(
        PLACEHOLDER_NAMES, description="file-name globs (case-insensitive) quarantined as placeholders")
    labelme: LabelmeParams = Field(default_factory=LabelmeParams)
    max_annotation_bytes: int = Field(
        LIMITS["annotation"], ge=1, description="largest annotation file read (VOC XML, labelme JSON, YOLO txt)")
    max_index_bytes: int = Field(
        LIMITS["index"], ge=1, description="largest file covering many images read (COCO, CreateML JSON, CVAT XML)")
    max_decode_bytes: int | None = Field(
        None, ge=1, description="memory all decode workers together may spend on decoded pixels; an image "
                                "costing more x workers is refused from its header; null = 1 GiB per "
                                "worker, at most half the available memory")
    # The loss policy (pipeline/ingest/loss.py): what a run may lose before it fails with exit 3.
    max_loss: float = Field(0.05, ge=0, le=1, description="largest share of inputs quarantined, or of object "
                                                          "entries refused, that is not a loss")
    on_loss: Literal["error", "warn"] = Field("error", description="a run that loses data: error (exit 3, the "
                                                                   "previous output kept) or warn (say it, go on)")
    tile: TileParams | None = Field(None, description="cut large images into tiles {size, overlap}; null = off")

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if blank := [i for i, name in enumerate(v) if not name.strip()]:
            raise ValueError(f"class names must not be empty (position {blank[0]})")
        if dupes := sorted({name for name in v if v.count(name) > 1}):
            raise ValueError(f"class names must be unique; repeated: {', '.join(map(repr, dupes[:5]))}")
        return v

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        return _check_format(v)


class SplitParams(Section):
    seed: int = 0
    ratios: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    # A source that gives some splits but lacks one the ratios ask for (ants/bees: train
    # and val, no test): "carve" takes it from the given train split, "keep" leaves the
    # given splits untouched (the missing split then stays empty, and split stops).
    given: Literal["carve", "keep"] = "carve"
    # Tiles of one large image (ingest.tile) stay in one split; with a block size they
    # are dealt by square blocks of this many source pixels instead, and tiles that
    # overlap across a split boundary become the buffer, in no split (pipeline.split_blocks).
    block: int | None = Field(None, ge=1, le=1 << 20, description="source pixels per spatial block of a tiled image; "
                                                                  "null = an image's tiles stay in one split")

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: dict[str, float]) -> dict[str, float]:
        allowed = {"train", "val", "test"}
        if unknown := set(v) - allowed:
            raise ValueError(f"unknown split name(s) {sorted(unknown)}; allowed: train, val, test")
        if "train" not in v or not {"val", "test"} & set(v):
            raise ValueError("ratios need train and at least one of val, test")
        if any(r < 0 for r in v.values()):
            raise ValueError("ratios must be >= 0")
        if abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"ratios must sum to 1 (they sum to {sum(v.values()):g})")
        # One order whatever the YAML's: samples are dealt to the splits in this order,
        # so {test, train, val} (as yaml.safe_dump sorts them) once gave other splits.
        return {k: v[k] for k in ("train", "val", "test") if k in v}


class AugmentParams(Section):
    seed: int = 0
    copies: int = Field(1, ge=0, le=100, description="augmented copies of each training image")
    keep_originals: bool = True
    image_size: tuple[Annotated[int, Field(ge=1, le=MAX_SIDE)], Annotated[int, Field(ge=1, le=MAX_SIDE)]] | None = Field(
        None, description=f"(height, width), each 1..{MAX_SIDE}; null = keep")
    # How a source image meets image_size (pipeline.version.resize): stretch, or keep the
    # aspect and pad (letterbox), crop (center_crop) or scale the short side (shortest_side).
    resize: ResizeMode = DEFAULT_RESIZE
    pad_value: int = Field(PAD_GREY, ge=0, le=255, description="grey level of letterbox / shortest_side padding")
    channels: Literal[1, 3] | None = None  # null = from the data
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(256, ge=1, le=65536)
    batch_pixels: int = Field(1 << 25, ge=1, description="most pixels (height x width, summed) in one batch")
    pipeline: tuple[dict[str, Any], ...] = ()
    # Dataset versions: decode threads beside the batched transform, and the
    # image size above which images are written as PNG files instead of packed arrays.
    workers: int = Field(0, ge=0, le=256, description="decode threads; 0 = one per core")
    pack_max_pixels: int = Field(1_048_576, ge=1, description="largest height*width packed into .npy shards")
    backend: Literal["auto", "torch", "albumentations"] = Field(
        "auto", description="auto = fastest correct backend for the device and image size (recorded)")
    min_visibility: float = Field(0.0, ge=0.0, le=1.0, description="drop objects less visible than this")
    min_area: float = Field(1.0, ge=0.0, description="drop objects smaller than this (pixels^2)")

    @model_validator(mode="after")
    def _ops(self) -> "AugmentParams":
        # Validate each op by its own model now, so errors surface before any work.
        import pipeline.backends  # noqa: F401 - registers the backends and ops the params may name
        from pipeline.augment.registry import build_pipeline

        build_pipeline(self.pipeline, min_visibility=self.min_visibility, min_area=self.min_area,
                       backend=self.backend)
        return self


# The models of each task (``train.model``); auto accepts any, and the version decides.
TASK_MODELS = {
    "classify": ("seed_cnn", "resnet_small", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                 "torchvision"),
    "detect": ("fcos_lite0", "retinanet_lite0", "fasterrcnn_lite0", "maskrcnn_lite0"),
    "segment": ("maskrcnn_lite0",),
}
ModelName = Literal[tuple(dict.fromkeys(m for models in TASK_MODELS.values() for m in models))]


class TrainParams(Section):
    seed: int = 0
    # seed_cnn and resnet_small train from scratch; efficientnet_lite0 (lite1, lite2: deeper, slower)
    # starts from the ImageNet weights an installed package ships (offline); torchvision starts from the weights
    # ``pretrained`` names (torchvision downloads them once into its cache).
    model: ModelName = "resnet_small"  # TASK_MODELS, the one list
    # What the model learns: auto follows the version (objects: detect, image labels: classify);
    # segment (instance masks from the objects' polygons) is asked for, never guessed.
    task: Literal["auto", "classify", "detect", "segment"] = "auto"
    backbone_weights: Literal["imagenet", "none"] = Field(
        "imagenet", description="detection models: the EfficientNet-Lite0 backbone's ImageNet weights "
                                "(installed with the package), or none (from scratch)")
    pretrained: str | None = Field(
        None, description="torchvision weights as <architecture>.<weights>, e.g. resnet18.IMAGENET1K_V1; "
                          "only with model: torchvision")
    weights: str | None = Field(
        None, description="a local file to start from instead: a state dict or a pipeline checkpoint of "
                          "the same architecture")
    # Only for a model that starts from trained weights (efficientnet_lite0, torchvision, or
    # any model given train.weights): from scratch every layer trains at train.lr from epoch 1.
    freeze_epochs: int = Field(1, ge=0, le=10_000, description="epochs that train the new head only")
    backbone_lr: float = Field(0.1, gt=0, le=1, description="the backbone's lr as a factor of train.lr")
    width: int = Field(16, ge=1, le=1024, description="resnet_small base width (64 = ResNet-9)")
    optimizer: Literal["adam", "adamw", "sgd"] = "sgd"
    lr: float = Field(0.1, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(128, ge=1, le=65536, description="global batch (split across ranks)")
    schedule: Literal["constant", "cosine", "onecycle"] = "onecycle"
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up before cosine")
    grad_clip: float = Field(0.0, ge=0, description="max gradient norm; 0 = off")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    online_augment: tuple[dict[str, Any], ...] = Field((), description="augment ops per batch")
    mixup_alpha: float = Field(0.0, ge=0, description="Beta(a, a) mixup; 0 = off")
    cutmix_alpha: float = Field(0.0, ge=0, description="Beta(a, a) cutmix; 0 = off")
    mix_p: float = Field(1.0, ge=0, le=1, description="share of samples mixed when mixing is on")
    bf16: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    channels_last: bool = True
    resume: bool = Field(False, description="continue from the last epoch checkpoint")
    log_every: int = Field(10, ge=1, description="steps between per-step TensorBoard points")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, le=1024, description="torch CPU threads; 0 = one per core")
    # The model's input size, whatever the version stores (pipeline.train.inputsize).
    image_size: tuple[Annotated[int, Field(ge=MIN_INPUT_SIDE, le=MAX_SIDE)],
                      Annotated[int, Field(ge=MIN_INPUT_SIDE, le=MAX_SIDE)]] | None = Field(
        None, description=f"model input (height, width), each {MIN_INPUT_SIDE}..{MAX_SIDE}; null = the version's "
                          "one size, or the median of mixed sizes (a multiple of 32, at most 224)")
    resize: ResizeMode | None = Field(None, description="how images meet the input size; null = the version's (augment.resize)")
    pad_value: int | None = Field(None, ge=0, le=255, description="padding grey; null = the version's (augment.pad_value)")
    workers: int = Field(0, ge=0, le=256, description="processes decoding images stored as files; 0 = one per core")

    def recorded(self) -> dict[str, Any]:
        """The params as checkpoints, fingerprints and TensorBoard record them. A classification
        model leaves out the keys that only detection reads (task, backbone_weights): ``auto``
        and ``classify`` train the same classifier, and its files stay byte for byte the same."""
        data = self.model_dump(mode="json")
        if model_task(self.model) == "classify":
            del data["task"], data["backbone_weights"]
        return data

    @model_validator(mode="after")
    def _ops(self) -> "TrainParams":
        import pipeline.backends  # noqa: F401 - registers the ops the params may name
        from pipeline.augment.registry import build_pipeline

        try:
            pipe = build_pipeline(self.online_augment)
        except ConfigError as err:  # the registry names augment.pipeline; say where it really is
            raise ValueError(str(err).replace("augment.pipeline", "train.online_augment")) from None
        for i, op in enumerate(pipe.ops):
            # The trainer mixes (with soft labels) through mixup_alpha / cutmix_alpha; a mixing
            # op here would blend images while the loss kept the hard labels.
            if op.kind == "mixing":
                raise ValueError(f"train.online_augment[{i}] ({op.name}): mixing ops are not run here; "
                                 "set train.mixup_alpha / train.cutmix_alpha / train.mix_p instead")
        for key in ("mixup_alpha", "cutmix_alpha"):
            if getattr(self, key) > 100:  # the engine's mixup/cutmix limit
                raise ValueError(f"train.{key}: {getattr(self, key)} is above 100; use 0 (off) to 100")
        if (self.model == "torchvision") != (self.pretrained is not None):
            raise ValueError("train.pretrained (torchvision weights, e.g. resnet18.IMAGENET1K_V1) goes with "
                             f"train.model: torchvision and only with it (model is {self.model!r}, pretrained "
                             f"{self.pretrained!r})")
        if self.pretrained is not None:
            from pipeline.tvweights import torchvision_weights

            torchvision_weights(self.pretrained)  # a name torchvision does not know fails here, not mid-run
        if (msg := task_model_conflict(self.task, self.model)) is not None:
            raise ValueError(msg)
        if model_task(self.model) == "detect":
            extras = [k for k in ("online_augment", "mixup_alpha", "cutmix_alpha") if getattr(self, k)]
            if extras:  # their ops move pixels only; boxes would no longer match the image
                raise ValueError(f"train.{extras[0]} is for classification; train.model {self.model} learns boxes, "
                                 "which the augment stage's pipeline moves with the image: augment there")
        if self.freeze_epochs > self.epochs:
            raise ValueError(f"train.freeze_epochs: {self.freeze_epochs} is more than train.epochs ({self.epochs})")
        return self


DEFAULT_MODEL = {"detect": "fcos_lite0", "segment": "maskrcnn_lite0"}  # by measurement: docs/benchmarks.md


def model_task(model: str) -> str:
    """The task a model's outputs serve: classify, or detect (masks too: maskrcnn)."""
    return "classify" if model in TASK_MODELS["classify"] else "detect"


def task_model_conflict(task: str, model: str) -> str | None:
    """Why ``train.task`` and ``train.model`` cannot go together, or None."""
    if task == "auto" or model in TASK_MODELS[task]:
        return None
    return (f"train.model {model} cannot do train.task {task}; models for {task}: "
            f"{', '.join(TASK_MODELS[task])}")


class EvaluateParams(Section):
    batch_size: int = Field(512, ge=1, le=65536)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # The split scored: test, or val where the user's own val folder is the held-out set
    # (ants/bees: train on every given train photo, score the given val; train picks no
    # epoch by val, so val is as unseen as test).
    split: Literal["test", "val"] = "test"
    tta_hflip: bool = Field(False, description="average with the mirrored image (not for digits)")
    worst: int = Field(32, ge=0, le=1024, description="misclassified images of the scored split shown in TensorBoard")


SECTIONS: dict[str, type[Section]] = {
    "download": DownloadParams,
    "ingest": IngestParams,
    "split": SplitParams,
    "augment": AugmentParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
}


def _format_error(source: str, section: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid `{section}` section:"]
    errors = err.errors()
    for e in errors[:MAX_ERRORS]:
        loc = ".".join(str(p) for p in (section, *e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            model = SECTIONS.get(section)
            known = ", ".join(model.model_fields) if model and len(e["loc"]) == 1 else ""
            msg = "unknown key" + (f" (known keys: {known})" if known else "")
        got = e.get("input")
        # Echo the value, cut short: a hostile file must not become a huge message.
        got_txt = f" (got {shown(got)})" if got is not None and e["type"] != "extra_forbidden" and not isinstance(got, dict) else ""
        lines.append(f"  {loc[:200]}: {msg[:300]}{got_txt}")
    if len(errors) > MAX_ERRORS:
        lines.append(f"  ... and {len(errors) - MAX_ERRORS} more")
    return "\n".join(lines)


MAX_ERRORS = 20  # validation errors listed in one message


def parse_section(section: str, data: Any, source: str = "params.yaml") -> Section:
    """Validate one section's raw data; ConfigError names the key and the file."""
    model = SECTIONS[section]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: `{section}` must be a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(source, section, err)) from None


def read_params_file(path: Path) -> dict[str, Any]:
    """The sections of a params file, read through the guarded reader (``pipeline.core.inputfile``):
    a regular file of at most ``PARAMS_MAX_BYTES``, UTF-8, YAML with a small alias budget."""
    path = Path(path)
    try:
        data = parse_yaml(read_bytes(path, "config", PARAMS_MAX_BYTES)) or {}
    except InputRefused as err:
        if err.reason == "missing-file":
            raise ConfigError(f"{path}: params file not found (run from the repository root or pass --params)") from None
        what = "not valid YAML" if err.reason == "malformed-yaml" else "refused"
        raise ConfigError(f"{path}: {what} ({err.reason}): {err.detail}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    if unknown := sorted(set(map(str, data)) - set(SECTIONS)):
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(shown(u) for u in unknown[:10])}; known: {', '.join(SECTIONS)}"
        )
    return data


def check_together(data: dict[str, Any], source: str = "params.yaml") -> None:
    """Checks that need two sections, run whichever stage loads the file: a combination
    that cannot train stops the first stage, not the train stage after augment ran."""
    aug, tr = data.get("augment"), data.get("train")
    ing, spl, ev = data.get("ingest"), data.get("split"), data.get("evaluate")
    if isinstance(ev, dict) or isinstance(spl, dict):
        scored = parse_section("evaluate", ev, source).split
        ratios = parse_section("split", spl, source).ratios
        if scored not in ratios:
            raise ConfigError(
                f"{source}: evaluate.split is {scored} but split.ratios has no {scored} entry ({dict(ratios)}), so "
                f"evaluate would find it empty after training ran; add a {scored} share or set evaluate.split")
    if isinstance(tr, dict) and isinstance(ing, dict):
        train_p = parse_section("train", tr, source)
        ingest_p = parse_section("ingest", ing, source)
        formats = {s.format for s in ingest_p.sources} or {ingest_p.format}
        wants_objects = train_p.task in ("detect", "segment") or (
            train_p.task == "auto" and model_task(train_p.model) == "detect")
        if wants_objects and formats == {"imagefolder"}:
            raise ConfigError(
                f"{source}: train.task {train_p.task} with train.model {train_p.model} needs objects (boxes or "
                "polygons), but ingest.format imagefolder gives image labels only; use an annotation format "
                "(voc, yolo, coco, labelme, createml, cvat) or a classification model")
    aug_size = aug.get("image_size") if isinstance(aug, dict) else None
    tr_size = tr.get("image_size") if isinstance(tr, dict) else None
    if aug_size is not None and tr_size is None:
        h, w = parse_section("augment", aug, source).image_size  # type: ignore[misc]
        if min(h, w) < MIN_INPUT_SIDE:
            raise ConfigError(
                f"{source}: augment.image_size [{h}, {w}] is smaller than the models take "
                f"({MIN_INPUT_SIDE}x{MIN_INPUT_SIDE}: they pool three times by 2) and train.image_size is null, "
                f"so training would stop after augment ran; set train.image_size (e.g. [{max(h, 32)}, {max(w, 32)}]) "
                "or a larger augment.image_size")


def load_section(section: str, path: Path | str = "params.yaml") -> Section:
    """Read ``path``, check the sections that depend on each other (``check_together``), and
    return the validated model for ``section``."""
    data = read_params_file(Path(path))
    check_together(data, source=str(path))
    return parse_section(section, data.get(section), source=str(path))
