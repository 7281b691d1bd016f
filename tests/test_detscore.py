"""Detection scoring against pycocotools' own COCOeval, the detection confusion matrix,
COCO results, drawing, and tiled prediction stitched with NMS."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pipeline.train.detscore import (CONFUSION_HEADER, PR_HEADER, coco_results, confusion, confusion_rows, csv_text,
                                     draw, score, tile_origins, tiled_predict)

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))
CLASSES = ["cat", "dog"]
SIZE = (100, 120)  # (height, width) of every image here


def target(boxes, labels, masks: bool = False, size=SIZE) -> dict:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    t = {"boxes": boxes, "labels": np.asarray(labels, dtype=np.int64)}
    if masks:
        t["masks"] = box_masks(boxes, size)
    return t


def pred(boxes, labels, scores, masks: bool = False, size=SIZE) -> dict:
    return {**target(boxes, labels, masks, size), "scores": np.asarray(scores, dtype=np.float64)}


def box_masks(boxes: np.ndarray, size) -> np.ndarray:
    """Each (integer) box filled: the mask whose COCO box is that box."""
    m = np.zeros((len(boxes), *size), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        m[i, y1:y2, x1:x2] = 1
    return m


def direct(gt: dict, results: list[dict], iou_type: str = "bbox") -> COCOeval:
    """COCOeval run by hand, as its README shows, on COCO dicts written out here."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def headline(ev: COCOeval) -> dict:
    return {"map": ev.stats[0], "map50": ev.stats[1], "map75": ev.stats[2], "ar100": ev.stats[8]}


# --- score ------------------------------------------------------------------------------

SCENE_T = [target([[10, 10, 50, 40], [60, 20, 100, 90]], [0, 1]), target([], []),
           target([[0, 0, 30, 30], [5, 50, 45, 95], [70, 10, 115, 60]], [1, 1, 0])]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_perfect_predictions_score_one(iou_type):
    masks = iou_type == "segm"
    targets = [target(t["boxes"], t["labels"], masks) for t in SCENE_T]
    preds = [pred(t["boxes"], t["labels"], np.linspace(0.9, 0.5, len(t["labels"])), masks) for t in SCENE_T]
    s = score(targets, preds, [SIZE] * 3, CLASSES, iou_type)
    assert s.headline() == {"map": 1.0, "map50": 1.0, "map75": 1.0, "ar100": 1.0}
    assert s.per_class == {"cat": 1.0, "dog": 1.0} and s.per_class50 == {"cat": 1.0, "dog": 1.0}
    assert (s.n_images, s.n_objects, s.objects) == (3, 5, {"cat": 2, "dog": 3})
    prefix = "mask_" if masks else ""
    assert set(s.headline(prefix)) == {f"{prefix}{k}" for k in ("map", "map50", "map75", "ar100")}


# One 10x10 ground-truth box, one prediction shifted right by `dx`: IoU (10-dx)/(10+dx).
# COCOeval matches at IoU >= t for t in .50:.05:.95, so the AP is the share of thresholds
# at or under the IoU: dx=1 -> .818 (7 of 10), dx=2 -> .667 (4 of 10), dx=4 -> .43 (none).
@pytest.mark.parametrize("dx, ap, ap50, ap75", [(0, 1.0, 1.0, 1.0), (1, 0.7, 1.0, 1.0), (2, 0.4, 1.0, 0.0),
                                                (4, 0.0, 0.0, 0.0)])
def test_one_shifted_box_by_hand(dx, ap, ap50, ap75):
    s = score([target([[20, 20, 30, 30]], [1])], [pred([[20 + dx, 20, 30 + dx, 30]], [1], [0.9])], [SIZE], CLASSES)
    assert (s.map, s.map50, s.map75) == pytest.approx((ap, ap50, ap75))
    assert s.per_class50["dog"] == pytest.approx(ap50)
    assert math.isnan(s.per_class["cat"])


SHIFTS = [  # (image index, box index, dx, dy): one box moved, the rest perfect
    (0, 0, 3, 0), (0, 1, 0, 7), (2, 1, 5, 5), (2, 2, -9, 2), (2, 0, 30, 30)]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("image, index, dx, dy", SHIFTS)
def test_one_shifted_box_gives_what_cocoeval_gives(iou_type, image, index, dx, dy):
    masks = iou_type == "segm"
    targets = [target(t["boxes"], t["labels"], masks) for t in SCENE_T]
    moved = [t["boxes"].copy() for t in SCENE_T]
    moved[image][index] += [dx, dy, dx, dy]
    moved[image] = moved[image].clip(0, [SIZE[1], SIZE[0], SIZE[1], SIZE[0]])
    scores = [np.linspace(0.9, 0.5, len(t["labels"])) for t in SCENE_T]
    preds = [pred(b, t["labels"], sc, masks) for b, t, sc in zip(moved, SCENE_T, scores)]
    # the same scene written out by hand in COCO's own format
    gt = {"images": [{"id": i + 1, "height": SIZE[0], "width": SIZE[1]} for i in range(3)],
          "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}], "annotations": []}
    results = []
    for i, (t, b, sc) in enumerate(zip(targets, moved, scores)):
        for j, ((x1, y1, x2, y2), label) in enumerate(zip(t["boxes"].tolist(), t["labels"].tolist())):
            ann = {"id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": label + 1,
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
            if masks:  # a filled rectangle, as a COCO polygon
                ann["segmentation"] = [[x1, y1, x2, y1, x2, y2, x1, y2]]
            gt["annotations"].append(ann)
            px1, py1, px2, py2 = b[j].tolist()
            res = {"image_id": i + 1, "category_id": label + 1, "bbox": [px1, py1, px2 - px1, py2 - py1],
                   "score": float(sc[j])}
            if masks:
                from pycocotools import mask as mask_utils

                res = {k: v for k, v in res.items() if k != "bbox"}
                res["segmentation"] = mask_utils.frPyObjects([[px1, py1, px2, py1, px2, py2, px1, py2]],
                                                             *SIZE)[0]
            results.append(res)
    ev = direct(gt, results, iou_type)
    s = score(targets, preds, [SIZE] * 3, CLASSES, iou_type)
    assert s.headline() == pytest.approx({k: round(v, 6) for k, v in headline(ev).items()}, abs=1e-6)
    assert s.map < 1.0
    for k, name in enumerate(CLASSES):  # per class: COCOeval's precision slice for that class
        p = ev.eval["precision"][:, :, k, 0, -1]
        assert s.per_class[name] == pytest.approx(p[p > -1].mean())


def test_empty_predictions_score_zero():
    s = score(SCENE_T, [{}, pred([], [], []), {}], [SIZE] * 3, CLASSES)
    assert s.headline() == {"map": 0.0, "map50": 0.0, "map75": 0.0, "ar100": 0.0}
    assert s.per_class == {"cat": 0.0, "dog": 0.0}
    assert all(p == 0.0 for row in s.pr_rows() for p in [row["precision"]])


def test_a_class_without_ground_truth_is_null_and_left_out_of_the_mean():
    classes = ["cat", "dog", "bird"]
    # a perfect cat, and a bird predicted where no bird is: bird's AP is undefined
    s = score([target([[10, 10, 50, 40]], [0])], [pred([[10, 10, 50, 40], [60, 60, 90, 90]], [0, 2], [0.9, 0.8])],
              [SIZE], classes)
    assert s.headline()["map"] == 1.0 and math.isnan(s.per_class["bird"]) and math.isnan(s.per_class["dog"])
    report = s.report()
    assert report["per_class"]["bird"] == {"ap": None, "ap50": None, "objects": 0}
    assert {row["class"] for row in s.pr_rows()} == {"cat"}  # no curve without ground truth
    json.loads(json.dumps(report, allow_nan=False))


@pytest.mark.parametrize("targets, preds", [
    ([target([], []), {}], [{}, {}]),  # images, no objects, no predictions
    ([{}], [pred([[1, 1, 9, 9]], [0], [0.9])]),  # only false alarms
    ([], []),  # no images
])
def test_no_ground_truth_at_all_is_null_headline(targets, preds):
    s = score(targets, preds, [SIZE] * len(targets), CLASSES)
    assert s.headline("mask_") == {"mask_map": None, "mask_map50": None, "mask_map75": None, "mask_ar100": None}
    json.loads(json.dumps(s.report(), allow_nan=False))
    assert s.pr_rows() == []


def test_pr_rows_are_the_recall_grid_with_precision_at_iou_50():
    s = score(SCENE_T, [pred(t["boxes"], t["labels"], [0.9] * len(t["labels"])) for t in SCENE_T], [SIZE] * 3,
              CLASSES)
    rows = s.pr_rows()
    assert len(rows) == 2 * 101 and tuple(rows[0]) == PR_HEADER
    assert [r["recall"] for r in rows[:101]] == [round(i / 100, 6) for i in range(101)]
    assert all(r["precision"] == 1.0 for r in rows)
    assert csv_text(rows, PR_HEADER).splitlines()[:2] == ["class,recall,precision", "cat,0.0,1.0"]


@pytest.mark.parametrize("call, message", [
    (lambda: score([target([[1, 1, 5, 5]], [0])], [{}], [SIZE], CLASSES, "segm"), "needs masks"),
    (lambda: score([target([[1, 1, 5, 5]], [0])], [{}], [SIZE], CLASSES, "keypoints"), "iou_type"),
    (lambda: score([target([[1, 1, 5, 5]], [2])], [{}], [SIZE], CLASSES), "label 2 outside 0..1"),
    (lambda: score([{}], [{}, {}], [SIZE], CLASSES), "one each per image"),
    (lambda: score([target([[1, 1, 5, 5]], [0, 1])], [{}], [SIZE], CLASSES), "1 boxes but 2 labels"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- coco_results -----------------------------------------------------------------------

@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_results_load_in_loadres_and_score_the_same(iou_type):
    masks = iou_type == "segm"
    targets = [target(t["boxes"], t["labels"], masks) for t in SCENE_T]
    preds = [pred(t["boxes"] + [2, 1, 3, 0], t["labels"], [0.8] * len(t["labels"]), masks) for t in SCENE_T]
    ids = [7, 8, 9]
    results = json.loads(json.dumps(coco_results(preds, ids, CLASSES)))  # through JSON, as predict writes it
    assert len(results) == 5 and {r["category_id"] for r in results} == {1, 2}
    assert ("segmentation" in results[0]) == masks
    gt = {"images": [{"id": i, "height": SIZE[0], "width": SIZE[1]} for i in ids],
          "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)], "annotations": []}
    for i, t in zip(ids, SCENE_T):
        for (x1, y1, x2, y2), label in zip(t["boxes"].tolist(), t["labels"].tolist()):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": label + 1,
                                      "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                      "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]], "iscrowd": 0})
    ev = direct(gt, results, iou_type)
    s = score(targets, preds, [SIZE] * 3, CLASSES, iou_type)
    assert 0 < s.map < 1
    assert s.map == pytest.approx(ev.stats[0], abs=1e-6)


def test_coco_results_fields():
    p = pred([[10.5, 20, 30, 60]], [1], [0.75], masks=True)
    (row,) = coco_results([p], [42], CLASSES)
    assert row["image_id"] == 42 and row["category_id"] == 2 and row["score"] == 0.75
    assert row["bbox"] == [10.5, 20.0, 19.5, 40.0]
    assert isinstance(row["segmentation"]["counts"], str) and row["segmentation"]["size"] == list(SIZE)
    assert coco_results([{}], [1], CLASSES) == []


# --- confusion --------------------------------------------------------------------------

BG = 2  # the background row and column with CLASSES
CAT_BOX = [[10, 10, 50, 50]]


@pytest.mark.parametrize("t, p, cell", [
    (target(CAT_BOX, [0]), pred(CAT_BOX, [0], [0.9]), (0, 0)),  # correct: (predicted cat, true cat)
    (target(CAT_BOX, [0]), pred(CAT_BOX, [1], [0.9]), (1, 0)),  # wrong class: (predicted dog, true cat)
    (target(CAT_BOX, [0]), pred([], [], []), (BG, 0)),  # missed: (background, true cat)
    (target([], []), pred(CAT_BOX, [1], [0.9]), (1, BG)),  # false alarm: (predicted dog, background)
    (target(CAT_BOX, [0]), pred(CAT_BOX, [0], [0.25]), (BG, 0)),  # at the confidence cut: dropped, so missed
    (target(CAT_BOX, [0]), pred([[30, 10, 70, 50]], [0], [0.9]), None),  # IoU 1/3: a miss and a false alarm
])
def test_confusion_cells(t, p, cell):
    cm = confusion([t], [p], CLASSES)
    expected = np.zeros((3, 3), dtype=np.int64)
    if cell is None:
        expected[BG, 0] = expected[0, BG] = 1
    else:
        expected[cell] = 1
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matches_best_iou_one_to_one_and_adds_up():
    # two cats side by side, three predictions: each cat taken by its best box, the third a false alarm
    t = target([[0, 0, 20, 20], [30, 0, 50, 20]], [0, 0])
    p = pred([[1, 0, 21, 20], [29, 0, 49, 20], [2, 0, 22, 20]], [0, 1, 0], [0.9, 0.8, 0.7])
    cm = confusion([t, target([], [])], [p, pred([[5, 5, 9, 9]], [0], [0.3])], CLASSES)
    np.testing.assert_array_equal(cm, [[1, 0, 2], [1, 0, 0], [0, 0, 0]])
    rows = confusion_rows(cm, CLASSES)
    assert len(rows) == cm.sum() and tuple(rows[0]) == CONFUSION_HEADER
    assert sorted((r["actual"], r["predicted"]) for r in rows) == [
        ("background", "cat"), ("background", "cat"), ("cat", "cat"), ("cat", "dog")]
    assert csv_text(rows, CONFUSION_HEADER).splitlines()[0] == "actual,predicted"


def test_background_name_never_a_class_name():
    cm = np.zeros((2, 2), dtype=np.int64)
    cm[1, 0] = 1
    assert confusion_rows(cm, ["background"]) == [{"actual": "background", "predicted": "_background"}]


# --- draw -------------------------------------------------------------------------------

def test_draw_marks_truth_and_predictions_in_two_colours_on_a_copy():
    from pipeline.train.detdraw import PREDICTED, TRUTH

    image = np.full((*SIZE, 3), 128, dtype=np.uint8)
    before = image.copy()
    out = draw(image, target([[10, 10, 50, 50]], [0]), pred([[60, 40, 110, 90], [5, 60, 40, 95]], [1, 0], [0.9, 0.1]),
               CLASSES)
    np.testing.assert_array_equal(image, before)
    assert out.shape == image.shape and out.dtype == np.uint8
    colours = {tuple(c) for c in out.reshape(-1, 3)}
    assert TRUTH in colours and PREDICTED in colours
    # under min_score nothing is drawn; grey images come back as RGB
    np.testing.assert_array_equal(draw(image, None, pred([[5, 60, 40, 95]], [0], [0.1]), CLASSES), image)
    assert draw(image[:, :, 0], None, None, CLASSES).shape == image.shape


def test_draw_tints_masks():
    from pipeline.train.detdraw import MASK_ALPHA, TRUTH

    image = np.zeros((*SIZE, 3), dtype=np.uint8)
    out = draw(image, target([[20, 20, 60, 60]], [0], masks=True), None, CLASSES)
    assert tuple(out[40, 40]) == tuple(round(c * MASK_ALPHA) for c in TRUTH)
    assert tuple(out[80, 100]) == (0, 0, 0)


# --- tiles ------------------------------------------------------------------------------

def painted(height: int, width: int, boxes, labels) -> np.ndarray:
    """An image where object k is the value k + 1 in channel 0 and its class in channel 1."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    for k, ((x1, y1, x2, y2), label) in enumerate(zip(boxes, labels)):
        image[y1:y2, x1:x2, 0] = k + 1
        image[y1:y2, x1:x2, 1] = label
    return image


def detector(calls: list | None = None, masks: bool = False):
    """A perfect detector of ``painted`` objects, in the coordinates of what it is shown."""

    def predict(tile: np.ndarray) -> dict:
        if calls is not None:
            calls.append(tile.shape)
        found = [v for v in np.unique(tile[:, :, 0]) if v]
        boxes, labels, ms = [], [], []
        for v in found:
            ys, xs = np.nonzero(tile[:, :, 0] == v)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(int(tile[ys[0], xs[0], 1]))
            ms.append(tile[:, :, 0] == v)
        out = {"boxes": np.array(boxes, dtype=np.float32).reshape(-1, 4), "labels": np.array(labels, dtype=np.int64),
               "scores": np.full(len(found), 0.9, dtype=np.float32)}
        if masks:
            out["masks"] = np.array(ms, dtype=np.uint8).reshape(-1, *tile.shape[:2])
        return out
    return predict


def as_set(p: dict) -> set:
    return {(tuple(b), int(label)) for b, label in zip(p["boxes"].astype(int).tolist(), p["labels"])}


# 200x200, tiles of 128 overlapping by 32: origins 0 and 72 on both axes.
OBJECTS = [((20, 20, 100, 60), 0),  # crosses x=72: the right tile sees a sliver (IoU .35 with the whole)
           ((80, 90, 120, 126), 1),  # inside the overlap: both tiles see it whole
           ((180, 180, 200, 200), 1),  # in the bottom-right corner
           ((150, 10, 200, 40), 0)]  # on the right border


@pytest.mark.parametrize("masks", [False, True])
def test_tiled_predict_finds_each_object_once(masks):
    boxes, labels = zip(*OBJECTS)
    image = painted(200, 200, boxes, labels)
    calls: list = []
    out = tiled_predict(detector(calls, masks), image, tile=128, overlap=32)
    assert calls == [(128, 128, 3)] * 4
    assert as_set(out) == set(OBJECTS)
    assert out["boxes"].dtype == np.float32 and out["scores"].dtype == np.float32
    if masks:
        assert out["masks"].shape == (4, 200, 200)
        for b, m in zip(out["boxes"].astype(int), out["masks"]):
            np.testing.assert_array_equal(np.argwhere(m).min(0), [b[1], b[0]])
            assert m.sum() == (b[2] - b[0]) * (b[3] - b[1])


def test_tiled_predict_keeps_neighbours_of_one_class():
    # two objects of one class touching across a tile edge are two objects, not duplicates
    objects = [((40, 40, 72, 70), 0), ((72, 40, 110, 70), 0)]
    boxes, labels = zip(*objects)
    assert as_set(tiled_predict(detector(), painted(200, 200, boxes, labels), 128, 32)) == set(objects)


def test_tiled_predict_small_image_is_one_call():
    image = painted(60, 90, [(10, 10, 30, 30)], [1])
    calls: list = []
    out = tiled_predict(detector(calls), image, tile=128, overlap=32)
    assert calls == [(60, 90, 3)]
    assert as_set(out) == {((10, 10, 30, 30), 1)}


def test_tiled_predict_with_tensors_and_nothing_found():
    import torch

    def predict(tile):
        return {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}

    out = tiled_predict(predict, np.zeros((300, 300, 3), dtype=np.uint8), 128, 16)
    assert out["boxes"].shape == (0, 4) and out["labels"].shape == (0,)


@pytest.mark.parametrize("height, width, tile, overlap, origins", [
    (200, 200, 128, 32, [(0, 0), (0, 72), (72, 0), (72, 72)]),
    (100, 300, 100, 0, [(0, 0), (0, 100), (0, 200)]),
    (50, 70, 128, 32, [(0, 0)]),
    (128, 129, 128, 64, [(0, 0), (0, 1)]),
])
def test_tile_origins_table(height, width, tile, overlap, origins):
    assert tile_origins(height, width, tile, overlap) == origins


@pytest.mark.parametrize("args", [(0, 10, 8, 0), (10, 10, 8, 8), (10, 10, 0, 0), (10, 10, 8, -1)])
def test_tile_origins_refuses_impossible_grids(args):
    with pytest.raises(ValueError):
        tile_origins(*args)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(height=st.integers(1, 300), width=st.integers(1, 300), tile=st.integers(1, 160), data=st.data())
def test_tile_origins_cover_every_pixel_inside_the_image(height, width, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    origins = tile_origins(height, width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    covered = np.zeros((height, width), dtype=np.int64)
    for y, x in origins:
        assert 0 <= y and y + th <= height and 0 <= x and x + tw <= width  # full tiles, inside
        covered[y:y + th, x:x + tw] += 1
    assert (covered > 0).all()
    assert len(set(origins)) == len(origins)
    ys, xs = sorted({y for y, _ in origins}), sorted({x for _, x in origins})
    assert len(origins) == len(ys) * len(xs)
    for axis in (ys, xs):  # neighbours overlap by at least `overlap`
        assert all(0 < b - a <= tile - overlap for a, b in zip(axis, axis[1:]))
