"""Detection and instance-segmentation models: torchvision's detectors on EfficientNet-Lite0.

The backbone is timm's ``tf_efficientnet_lite0`` cut after its stride-8, 16 and 32
stages (40, 112, 320 channels), with the ImageNet weights of
``pipeline.train.pretrained`` (the installed package's file, offline) or from scratch;
a feature pyramid (``torchvision.ops.FeaturePyramidNetwork``) turns the three into
maps of ``FPN_CHANNELS`` each, the shape torchvision's detection heads take:

* ``fcos_lite0``: FCOS (anchor-free), P3-P7;
* ``retinanet_lite0``: RetinaNet, P3-P7, three scales and three aspects per level;
* ``fasterrcnn_lite0``: Faster R-CNN, P3-P5 plus a pooled level, RoIAlign 7x7;
* ``maskrcnn_lite0``: Mask R-CNN, the same with a 14x14 mask head (``train.task: segment``),
  its logits started small (every mask pixel near even odds).

Anchor sizes start at 16 pixels (torchvision's start at 32 for 800-pixel COCO images):
aerial trees and drone objects are small. A pretrained backbone keeps its batch-norm
statistics frozen (timm's ``FrozenBatchNormAct2d``), as torchvision's detectors do,
because detection batches are a few images. Images go in as float [0, 1]; each
detector's own transform normalises and resizes them to ``size`` (short side, long side).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from pipeline.config import TASK_MODELS

FPN_CHANNELS = 96
OUT_INDICES = (2, 3, 4)  # timm feature stages: strides 8, 16, 32
BACKBONE = "tf_efficientnet_lite0"


@dataclass(frozen=True)
class DetectorSpec:
    """What a detector is rebuilt from (the checkpoint stores each field)."""

    model: str
    classes: int  # without the background
    channels: int
    size: tuple[int, int]  # (min_size, max_size) of the detector's resize
    mean: tuple[float, ...]
    std: tuple[float, ...]
    frozen_norms: bool  # the backbone's batch norm is frozen (a pretrained start)


class LiteFPN(nn.Module):
    """EfficientNet-Lite0 features through a feature pyramid: ``OrderedDict`` of maps."""

    def __init__(self, channels: int, extra: str):
        import timm
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

        super().__init__()
        self.body = timm.create_model(BACKBONE, features_only=True, out_indices=OUT_INDICES, pretrained=False,
                                      in_chans=channels, drop_rate=0.0, drop_path_rate=0.0)
        blocks = LastLevelP6P7(FPN_CHANNELS, FPN_CHANNELS) if extra == "p6p7" else LastLevelMaxPool()
        self.fpn = FeaturePyramidNetwork(self.body.feature_info.channels(), FPN_CHANNELS, extra_blocks=blocks)
        self.out_channels = FPN_CHANNELS

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(self.body(x))))


def _anchors(levels: int, scales: int, aspects: tuple[float, ...]):
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sizes = tuple(tuple(round(16 * 2 ** (i + j / scales)) for j in range(scales)) for i in range(levels))
    return AnchorGenerator(sizes, (aspects,) * levels)


@functools.cache
def counting_fcos_head() -> type:
    """The class below, made on first use: torchvision is imported when a detector is built."""
    from torchvision.models.detection.fcos import FCOSHead

    class CountingFCOSHead(FCOSHead):
        """torchvision's FCOS head, keeping how many foreground locations its last training
        batch had: its losses are sums over the batch divided by that count (at least 1)."""

        foreground = 0

        def compute_loss(self, targets, head_outputs, anchors, matched_idxs):
            self.foreground = sum(int((m >= 0).sum()) for m in matched_idxs)
            return super().compute_loss(targets, head_outputs, anchors, matched_idxs)

    return CountingFCOSHead


def _fcos(backbone, num_classes, **kw):
    from torchvision.models.detection import FCOS

    anchors = _anchors(5, 1, (1.0,))
    # Made where FCOS would make it (after the backbone), so the seed gives the same weights.
    head = counting_fcos_head()(backbone.out_channels, anchors.num_anchors_per_location()[0], num_classes)
    # Boxes down to a score of 0.05 (torchvision's default for FCOS is 0.2): COCO mAP ranks
    # every detection, and a cut at 0.2 hides the recall of a model still unsure of itself
    # (RetinaNet's and the R-CNNs' defaults are 0.05 already). Drawn overlays and predict
    # apply their own min_score.
    return FCOS(backbone, num_classes, anchor_generator=anchors, head=head, score_thresh=0.05, **kw)


def _retinanet(backbone, num_classes, **kw):
    from torchvision.models.detection import RetinaNet

    return RetinaNet(backbone, num_classes, anchor_generator=_anchors(5, 3, (0.5, 1.0, 2.0)), **kw)


def _rcnn(backbone, num_classes, masks: bool = False, **kw):
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.ops import MultiScaleRoIAlign

    common = dict(rpn_anchor_generator=_anchors(4, 1, (0.5, 1.0, 2.0)),
                  box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], 7, 2), **kw)
    if masks:
        model = MaskRCNN(backbone, num_classes, mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], 14, 2), **common)
        # torchvision's fan-out Kaiming gives the 1x1 logits conv std sqrt(2 / (classes + 1)): 1 for one
        # class, logits of tens and a first mask loss of 3 to 54 that, under gradient clipping,
        # starved the box and RPN heads. Small, as Detectron2 starts it: every pixel near even odds.
        logits = model.roi_heads.mask_predictor.mask_fcn_logits
        nn.init.normal_(logits.weight, std=0.001)
        nn.init.zeros_(logits.bias)
        return model
    return FasterRCNN(backbone, num_classes, **common)


# name -> (pyramid's extra levels, constructor); the names are config.TASK_MODELS["detect"]'s.
DETECTORS = {
    "fcos_lite0": ("p6p7", _fcos),
    "retinanet_lite0": ("p6p7", _retinanet),
    "fasterrcnn_lite0": ("pool", _rcnn),
    "maskrcnn_lite0": ("pool", lambda b, n, **kw: _rcnn(b, n, masks=True, **kw)),
}
assert tuple(DETECTORS) == TASK_MODELS["detect"], "one list of detection models"


def build_detector(spec: DetectorSpec, seed: int) -> nn.Module:
    """The detector of ``spec``, initialised from ``seed``. torchvision's heads and timm draw
    their initial weights from the global RNG: it is forked and seeded here, so the weights
    are a function of the seed and the process's random state is left as it was."""
    extra, make = DETECTORS[spec.model]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = LiteFPN(spec.channels, extra)
        if spec.frozen_norms:
            from timm.layers import freeze_batch_norm_2d

            backbone.body = freeze_batch_norm_2d(backbone.body)
        # num_classes counts the background (label 0): the version's classes are labels 1..K.
        return make(backbone, spec.classes + 1, min_size=spec.size[0], max_size=spec.size[1],
                    image_mean=list(spec.mean), image_std=list(spec.std))


def load_backbone_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """ImageNet weights (timm's names, classifier included) into the backbone's body: every
    body weight must be there with its shape; the classifier and last conv are not used."""
    from pipeline.core.errors import InputError

    body = model.backbone.body
    own = body.state_dict()
    state = dict(state)
    stem = "conv_stem.weight"
    if stem in state and own[stem].shape[1] == 1 and state[stem].shape[1] == 3:  # gray: the sum of R, G, B
        state[stem] = state[stem].sum(1, keepdim=True)
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    shapes = sorted(k for k in own if k in state and own[k].shape != state[k].shape)
    if missing or shapes:
        raise InputError(f"{source}: does not fit the {BACKBONE} backbone (missing {missing[:3]}, "
                         f"other shape {shapes[:3]})")
    body.load_state_dict({k: state.get(k, own[k]) for k in own}, strict=True)


def loss_divisor(model: nn.Module, images: int) -> tuple[int, int]:
    """What the last training forward divided its losses by, and this batch's part of the
    count one batch of many parts would divide by. FCOS divides its sums by the batch's
    foreground locations (at least 1); RetinaNet averages per-image losses and the R-CNNs
    sample a fixed number of anchors and proposals per image, so theirs are means over
    ``images`` (the R-CNNs' only about: an image may have fewer proposals to sample)."""
    head = getattr(model, "head", None)
    if isinstance(head, counting_fcos_head()):
        return max(1, head.foreground), head.foreground
    return images, images


def freeze_body(model: nn.Module, frozen: bool) -> None:
    """The backbone's body stops (or resumes) taking gradients; the pyramid and heads train."""
    for p in model.backbone.body.parameters():
        p.requires_grad_(not frozen)
