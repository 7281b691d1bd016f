"""Hostile annotation files, one row per case: nothing hangs, crashes or is silently wrong.

Every case is a small source tree written by a fixture (no binaries in the repo):
one hostile file and the image it belongs to. All cases are ingested together as
``ingest.sources`` (one source per case, named after it) by the CLI in a
subprocess with a timeout, so a FIFO that blocked a reader would fail the run
instead of hanging the suite. The run is repeated with the sources spelled as
absolute paths: quarantine.jsonl and manifest.jsonl must be byte-identical.

Each row asserts: the run's exit code (module fixture), the file-level reasons,
the object-level reasons with their index, that each detail names the problem,
that accepted + quarantined = the inputs of the tree (every file, minus the
annotation files that were used), and that the source tree is byte-identical
before and after.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import stat
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO

W, H = 50, 40


def png(w: int = W, h: int = H, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def png_header(w: int, h: int, mode_bits: tuple[int, int] = (1, 0)) -> bytes:
    """A small PNG whose header declares w x h (1-bit gray): a mask bomb's header."""
    def chunk(t: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))
    ihdr = struct.pack(">IIBBBBB", w, h, mode_bits[0], mode_bits[1], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + chunk(b"IEND", b""))


def mask_png(a: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8) * 255).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def voc_xml(objects: list[tuple[str, ...]], filename: str = "x.png") -> str:
    o = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                f"<ymax>{d}</ymax></bndbox></object>" for n, a, b, c, d in objects)
    return f"<annotation><filename>{filename}</filename><size><width>{W}</width><height>{H}</height></size>{o}</annotation>"


def labelme(*shapes, **top) -> dict:
    d = {"version": "5.4.1", "flags": {}, "shapes": list(shapes), "imagePath": "x.png", "imageData": None,
         "imageHeight": H, "imageWidth": W}
    d.update(top)
    return d


RECT = {"label": "cat", "shape_type": "rectangle", "points": [[2, 2], [20, 20]], "group_id": None, "flags": {}}


def coco(images=None, annotations=(), categories=None) -> dict:
    return {"images": images if images is not None else [{"id": 1, "file_name": "x.png", "width": W, "height": H}],
            "annotations": list(annotations),
            "categories": categories if categories is not None else [{"id": 1, "name": "cat"}]}


ANN = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "iscrowd": 0}


# --- tree writers -------------------------------------------------------------------------

def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def with_image(fn: Callable[[Path], None], name: str = "x.png") -> Callable[[Path], None]:
    def build(root: Path) -> None:
        write(root / name, png())
        fn(root)
    return build


ALIAS_BOMB = ('a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
              'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n'
              'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n'
              'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n'
              'names: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n')


def yolo_tree(names_file: str, names: str | bytes | None, label: str = "0 0.5 0.5 0.2 0.2") -> Callable:
    def build(root: Path) -> None:
        write(root / "x.png", png())
        write(root / "x.txt", label)
        if names is None:
            fifo(root / names_file)
        else:
            write(root / names_file, names)
    return build


@dataclass(frozen=True)
class Case:
    name: str
    format: str
    build: Callable[[Path], None]
    files: dict[str, str | tuple[str, ...]]  # file-level quarantine rows: path -> reason (or any of these)
    objects: tuple[tuple[str, int, str], ...] = ()  # object-level rows: (path, index, reason)
    accepted: tuple[str, ...] = ()  # paths that become samples
    used: tuple[str, ...] = ()  # annotation files read and paired (not inputs of their own)
    detail: str = ""  # text every row of the case names (the problem, not just the reason)


CASES = [
    # --- VOC ------------------------------------------------------------------------------
    Case("voc_fifo", "voc", with_image(lambda r: fifo(r / "x.xml")),
         {"x.xml": "not-a-regular-file", "x.png": "annotation-unusable"}, detail="fifo"),
    Case("voc_dangling", "voc", with_image(lambda r: link(r / "x.xml", "gone.xml")),
         {"x.xml": "dangling-link", "x.png": "annotation-unusable"}, detail="gone.xml"),
    Case("voc_dangling_non_utf8_target", "voc", with_image(
        lambda r: os.symlink(b"caf\xe9.xml", os.path.join(os.fsencode(r), b"x.xml"))),
         {"x.xml": "dangling-link", "x.png": "annotation-unusable"}, detail="caf|x.xml"),
    Case("voc_link_loop", "voc", with_image(lambda r: link(r / "x.xml", "x.xml")),
         {"x.xml": "link-loop", "x.png": "annotation-unusable"}, detail="loop"),
    Case("voc_too_large", "voc", with_image(lambda r: write(r / "x.xml", voc_xml([("cat", 1, 1, 9, 9)]) + " " * 300_000)),
         {"x.xml": "file-too-large", "x.png": "annotation-unusable"}, detail="300"),
    Case("voc_directory_named_xml", "voc", with_image(lambda r: (r / "x.xml").mkdir()), {}, accepted=("x.png",)),
    Case("voc_strict_numbers", "voc", with_image(lambda r: write(r / "x.xml", voc_xml([
        ("cat", "1_0", 1, 9, 9), ("cat", "\uff11", 1, 9, 9), ("cat", "\xa01", 1, 9, 9), ("cat", "nan", 1, 9, 9),
        ("cat", "1e999", 1, 9, 9), ("cat", "0x1", 1, 9, 9), ("cat", 2, 2, 20, 20)]))),
         {}, tuple(("x.xml", i, "bad-coordinate") for i in range(6)), accepted=("x.png",), used=("x.xml",),
         detail="not a number|overflows"),
    # --- YOLO -----------------------------------------------------------------------------
    Case("yolo_fifo_label", "yolo", lambda r: (write(r / "x.png", png()), write(r / "classes.txt", "cat"),
                                               fifo(r / "x.txt")),
         {"x.txt": "not-a-regular-file", "x.png": "annotation-unusable"}, used=("classes.txt",), detail="fifo"),
    Case("yolo_fifo_classes", "yolo", yolo_tree("classes.txt", None),
         {"classes.txt": "not-a-regular-file", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail="fifo|classes.txt"),
    Case("yolo_fifo_data_yaml", "yolo", yolo_tree("data.yaml", None),
         {"data.yaml": "not-a-regular-file", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail="fifo|data.yaml"),
    Case("yolo_data_yaml_dangling", "yolo", lambda r: (write(r / "x.png", png()), write(r / "x.txt", "0 .5 .5 .2 .2"),
                                                       link(r / "data.yaml", "elsewhere.yaml")),
         {"data.yaml": "dangling-link", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail="elsewhere.yaml|data.yaml"),
    Case("yolo_data_yaml_latin1", "yolo", yolo_tree("data.yaml", "names: [caf\xe9]\n".encode("latin-1")),
         {"data.yaml": "not-utf8", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail="0xe9|data.yaml"),
    Case("yolo_data_yaml_nested_aliases", "yolo", yolo_tree("data.yaml", ALIAS_BOMB),
         {"data.yaml": "yaml-too-large", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail="expands|data.yaml"),
    Case("yolo_data_yaml_many_aliases", "yolo", yolo_tree("data.yaml", "a: &a [x]\nnames: [" + "*a, " * 500 + "*a]\n"),
         {"data.yaml": "yaml-alias-bomb", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail="alias|data.yaml"),
    Case("yolo_names_null", "yolo", yolo_tree("data.yaml", "names: [cat, null]\n"),
         {"data.yaml": "bad-class-names", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail="None|data.yaml"),
    Case("yolo_names_list", "yolo", yolo_tree("data.yaml", "names: [[1, 2]]\n"),
         {"data.yaml": "bad-class-names", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail=r"\[1, 2\]|data.yaml"),
    Case("yolo_names_duplicate", "yolo", yolo_tree("classes.txt", "cat\ndog\ncat\n"),
         {"classes.txt": "bad-class-names", "x.txt": "class-names-unusable", "x.png": "annotation-unusable"},
         detail="'cat'|classes.txt"),
    Case("yolo_strict_numbers", "yolo", yolo_tree(
        "classes.txt", "cat", "0 1_0 0.5 0.2 0.2\n0 \uff10.5 0.5 0.2 0.2\n0 0.5\xa00.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n"
        "0 0.5 0.5 0.2 0.2\n"),
         {}, tuple(("x.txt", i, "bad-number") for i in (1, 2, 3, 4)), accepted=("x.png",), used=("x.txt", "classes.txt"),
         detail="not a number"),
    # --- labelme --------------------------------------------------------------------------
    Case("labelme_fifo", "labelme", with_image(lambda r: fifo(r / "x.json")),
         {"x.json": "not-a-regular-file", "x.png": "annotation-unusable"}, detail="fifo|x.json"),
    Case("labelme_dangling", "labelme", with_image(lambda r: link(r / "x.json", "nowhere.json")),
         {"x.json": "dangling-link", "x.png": "annotation-unusable"}, detail="nowhere.json|x.json"),
    Case("labelme_deep_json", "labelme", with_image(lambda r: write(r / "x.json", "[" * 100_000)),
         {"x.json": "json-too-deep", "x.png": "annotation-unusable"}, detail="nesting|x.json"),
    Case("labelme_group_id_list", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(
        labelme({**RECT, "group_id": [1]}, RECT)))),
         {}, (("x.json", 0, "bad-group-id"),), accepted=("x.png",), used=("x.json",), detail=r"\[1\]"),
    Case("labelme_mask_number", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(
        labelme({**RECT, "shape_type": "mask", "mask": 5}, RECT)))),
         {}, (("x.json", 0, "bad-mask"),), accepted=("x.png",), used=("x.json",), detail="5"),
    Case("labelme_mask_bomb", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(labelme(
        {**RECT, "shape_type": "mask", "points": [[0, 0], [20000, 20000]],
         "mask": base64.b64encode(png_header(20000, 20000)).decode()}, RECT)))),
         {}, (("x.json", 0, "bad-mask"),), accepted=("x.png",), used=("x.json",), detail="20000x20000"),
    Case("labelme_mask_not_png", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(labelme(
        {**RECT, "shape_type": "mask", "mask": base64.b64encode(b"GIF89a not a png").decode()}, RECT)))),
         {}, (("x.json", 0, "bad-mask"),), accepted=("x.png",), used=("x.json",), detail="not a PNG"),
    Case("labelme_mask_larger_than_box", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(labelme(
        {**RECT, "shape_type": "mask", "points": [[0, 0], [5, 5]], "mask": mask_png(np.ones((30, 30)))}, RECT)))),
         {}, (("x.json", 0, "bad-mask"),), accepted=("x.png",), used=("x.json",), detail="30x30"),
    Case("labelme_width_1e999", "labelme", with_image(lambda r: write(
        r / "x.json", json.dumps(labelme(RECT)).replace(f'"imageWidth": {W}', '"imageWidth": 1e999'))),
         {"x.json": "malformed-json", "x.png": "annotation-unusable"}, detail="1e999|x.json"),
    Case("labelme_width_text", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(
        labelme(RECT, imageWidth="50")))),
         {"x.json": "bad-image-size", "x.png": "annotation-unusable"}, detail="imageWidth|x.json"),
    Case("labelme_flags_list", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(
        labelme(RECT, flags=["a"])))),
         {"x.json": "bad-flags", "x.png": "annotation-unusable"}, detail=r"\['a'\]|x.json"),
    Case("labelme_shapes_not_list", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(
        labelme(shapes={"a": 1})))),
         {"x.json": "not-labelme", "x.png": "annotation-unusable"}, detail="shapes|x.json"),
    Case("labelme_points_text", "labelme", with_image(lambda r: write(r / "x.json", json.dumps(labelme(
        {**RECT, "points": [["2", "2"], [20, 20]]}, {**RECT, "shape_type": "polygon", "points": [[1, 1], 5]}, RECT)))),
         {}, (("x.json", 0, "bad-points"), ("x.json", 1, "bad-points")), accepted=("x.png",), used=("x.json",),
         detail="not a number|not \\[x, y\\]"),
    Case("labelme_latin1", "labelme", with_image(lambda r: write(
        r / "x.json", json.dumps(labelme({**RECT, "label": "caf\xe9"}), ensure_ascii=False).encode("latin-1"))),
         {"x.json": "not-utf8", "x.png": "annotation-unusable"}, detail="0xe9|x.json"),
    # --- COCO -----------------------------------------------------------------------------
    Case("coco_list_id", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(
        images=[{"id": [1], "file_name": "x.png", "width": W, "height": H}], annotations=[ANN])))),
         {"x.png": "annotation-unusable"}, (("c.json", 0, "bad-image-entry"), ("c.json", 0, "annotation-without-image")),
         used=("c.json",), detail=r"\[1\]|c.json"),
    Case("coco_categories_text", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(
        annotations=[ANN], categories=["x"])))),
         {"x.png": "annotation-unusable"}, (("c.json", 0, "bad-category"), ("c.json", 0, "unknown-category-id")),
         accepted=(), used=("c.json",), detail="category"),
    Case("coco_category_without_name", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(
        annotations=[ANN], categories=[{"id": 1}])))),
         {"x.png": "annotation-unusable"}, (("c.json", 0, "bad-category"), ("c.json", 0, "unknown-category-id")),
         accepted=(), used=("c.json",), detail="category"),
    Case("coco_width_1e999", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(
        annotations=[ANN])).replace(f'"width": {W}', '"width": 1e999'))),
         {"c.json": "malformed-json", "x.png": "annotation-unusable"}, detail="1e999|c.json"),
    Case("coco_width_huge", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(
        images=[{"id": 1, "file_name": "x.png", "width": 300000, "height": 300000}], annotations=[ANN])))),
         {"x.png": "annotation-unusable"}, (("c.json", 0, "bad-image-entry"), ("c.json", 0, "annotation-without-image")),
         used=("c.json",), detail="300000|image_id"),
    Case("coco_rle_bomb", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(annotations=[
        {**ANN, "segmentation": {"size": [30000, 30000], "counts": "0" + "o" * 170 + "1"}}])))),
         {"x.png": "annotation-unusable"}, (("c.json", 0, "bad-rle"),),
         accepted=(), used=("c.json",), detail="30000x30000"),
    Case("coco_rle_without_image_size", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(
        images=[{"id": 1, "file_name": "x.png"}],
        annotations=[{**ANN, "segmentation": {"size": [200000, 200000], "counts": [0, 5]}}])))),
         {"x.png": "annotation-unusable"}, (("c.json", 0, "bad-rle"),),
         accepted=(), used=("c.json",), detail="max_pixels"),
    Case("coco_odd_polygon", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(annotations=[
        {**ANN, "segmentation": [[1, 1, 20, 1, 20, 20, 1, 20], [0, 0, 10, 0, 10]]}])))),
         {"x.png": "annotation-unusable"}, (("c.json", 0, "bad-annotation"),),
         accepted=(), used=("c.json",), detail="part 1.*odd"),
    Case("coco_bad_bbox", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(annotations=[
        {**ANN, "bbox": [1, 2, 3]}, {**ANN, "bbox": ["1", 2, 3, 4]}, {**ANN, "bbox": [[1], 2, 3, 4]}, ANN])))),
         {}, (("c.json", 0, "bad-annotation"), ("c.json", 1, "bad-annotation"), ("c.json", 2, "bad-annotation")),
         accepted=("x.png",), used=("c.json",), detail="bbox|not a number"),
    Case("coco_list_category_id", "coco", with_image(lambda r: write(r / "c.json", json.dumps(coco(annotations=[
        {**ANN, "category_id": [1]}, {**ANN, "image_id": {"a": 1}}, ANN])))),
         {}, (("c.json", 0, "unknown-category-id"), ("c.json", 1, "annotation-without-image")),
         accepted=("x.png",), used=("c.json",), detail=r"\[1\]|\{'a': 1\}"),
    Case("coco_fifo", "coco", with_image(lambda r: fifo(r / "c.json")),
         {"c.json": "not-a-regular-file", "x.png": "annotation-unusable"}, detail="fifo|c.json"),
    Case("coco_deep_json", "coco", with_image(lambda r: write(r / "c.json", "[" * 100_000)),
         {"c.json": "json-too-deep", "x.png": "annotation-unusable"}, detail="nesting|c.json"),
    # --- CreateML -------------------------------------------------------------------------
    Case("createml_bad_entry", "createml", with_image(lambda r: write(r / "a.json", json.dumps(
        [{"image": "x.png", "annotations": 5}]))),
         {"x.png": "annotation-unusable"}, (("a.json", 0, "bad-entry"),), used=("a.json",), detail="annotations"),
    Case("createml_wrong_types", "createml", with_image(lambda r: write(r / "a.json", json.dumps([{
        "image": "x.png", "annotations": [
            {"label": 5, "coordinates": {"x": 10, "y": 10, "width": 4, "height": 4}},
            {"label": "cat", "coordinates": {"x": "10", "y": 10, "width": 4, "height": 4}},
            {"label": "cat", "coordinates": [10, 10, 4, 4]},
            {"label": "cat", "coordinates": {"x": 10, "y": 10, "width": 4, "height": 4}}]}]))),
         {}, (("a.json", 0, "bad-annotation"), ("a.json", 1, "bad-annotation"), ("a.json", 2, "bad-annotation")),
         accepted=("x.png",), used=("a.json",), detail="label|not a number|coordinates"),
    Case("createml_fifo", "createml", with_image(lambda r: fifo(r / "a.json")),
         {"a.json": "not-a-regular-file", "x.png": "annotation-unusable"}, detail="fifo|a.json"),
    # --- trees ----------------------------------------------------------------------------
    Case("tree_dir_link_loop", "imagefolder", lambda r: (write(r / "cat" / "a.png", png()),
                                                         link(r / "cat" / "again", "..")),
         {"cat/again": "linked-directory"}, accepted=("cat/a.png",), detail="link"),
    Case("tree_class_dir_links", "imagefolder", lambda r: (
        write(r / "cat" / "a.png", png()), write(r.parent / "tree_outside" / "b.png", png(seed=1)),
        link(r / "dog", "../tree_outside"), link(r / "kitten", "cat"),
        write(r / "zz" / "c.png", png(seed=2)), link(r / "bird", "zz")),
         {"dog": "path-outside-root", "kitten": "linked-directory", "bird": "linked-directory"},
         accepted=("cat/a.png", "zz/c.png"), detail="outside|'cat'|'zz'"),
    # The image read itself (decode step) names these; the tree walk must not crash on them.
    Case("tree_file_link_loop", "imagefolder", lambda r: (write(r / "cat" / "a.png", png()),
                                                          link(r / "cat" / "loop.png", "loop.png")),
         {"cat/loop.png": ("link-loop", "not-a-regular-file")}, accepted=("cat/a.png",)),
    Case("tree_dangling_image_link", "imagefolder", lambda r: (write(r / "cat" / "a.png", png()),
                                                               link(r / "cat" / "gone.png", "nowhere.png")),
         {"cat/gone.png": ("dangling-link", "not-a-regular-file")}, accepted=("cat/a.png",)),
    Case("tree_non_utf8_name", "imagefolder", lambda r: (
        write(r / "cat" / "a.png", png()),
        Path(os.fsdecode(os.path.join(os.fsencode(r / "cat"), b"caf\xe9.png"))).write_bytes(png(seed=3))),
         {}, accepted=("cat/a.png", "cat/caf%E9.png")),
    Case("voc_non_utf8_names", "voc", lambda r: (
        Path(os.fsdecode(os.path.join(os.fsencode(r), b"caf\xe9.png"))).write_bytes(png(seed=4)),
        Path(os.fsdecode(os.path.join(os.fsencode(r), b"caf\xe9.xml"))).write_text(voc_xml([("cat", 1, 1, 9, 9)], "nope"))),
         {}, accepted=("caf%E9.png",), used=("caf%E9.xml",)),
]

def snapshot(root: Path) -> dict[str, str]:
    """Every entry under root (links and FIFOs included, never opened unless regular)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            key = os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                out[key] = "link:" + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                out[key] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            else:
                out[key] = f"mode:{stat.S_IFMT(st.st_mode)}"
    return out


def inputs_of(root: Path, used: tuple[str, ...]) -> list[str]:
    """What accepted + quarantined must add up to: every entry that is not a real directory
    (files, FIFOs, links of any kind), minus the annotation files that were used."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            if os.path.isdir(p) and not os.path.islink(p):
                continue
            rel = os.path.relpath(p, root)
            out.append("".join(f"%{ord(ch) - 0xDC00:02X}" if 0xDC80 <= ord(ch) <= 0xDCFF else ch for ch in rel))
    return sorted(r for r in out if r not in used)


def _run(cwd: Path, params: Path, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pipeline", "ingest", "--params", str(params), "--out", str(out)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    trees = base / "trees"
    for c in CASES:
        (trees / c.name).mkdir(parents=True)
        c.build(trees / c.name)
    before = {c.name: snapshot(trees / c.name) for c in CASES}
    # Every case quarantines on purpose: the loss is accepted, and still reported (report.json).
    common = ("ingest:\n  workers: 2\n  labelme: {flags_as_label: true}\n  max_annotation_bytes: 200000\n"
              "  on_loss: warn\n  sources:\n")
    rel_params, abs_params = base / "rel.yaml", base / "abs.yaml"
    rel_params.write_text(common + "".join(f"    - {{format: {c.format}, path: trees/{c.name}}}\n" for c in CASES))
    abs_params.write_text(common + "".join(f"    - {{format: {c.format}, path: {trees / c.name}, name: {c.name}}}\n"
                                           for c in CASES))
    first = _run(base, rel_params, base / "ds")
    second = _run(base, abs_params, base / "ds_abs")
    rows = [json.loads(line) for line in (base / "ds" / "quarantine.jsonl").read_text().splitlines()] \
        if first.returncode == 0 else []
    samples = [json.loads(line) for line in (base / "ds" / "manifest.jsonl").read_text().splitlines()] \
        if first.returncode == 0 else []
    report = json.loads((base / "ds" / "report.json").read_text()) if first.returncode == 0 else {}
    return {"base": base, "trees": trees, "before": before, "runs": (first, second), "rows": rows,
            "samples": samples, "report": report}


def test_the_corpus_ingests_and_is_deterministic(corpus):
    first, second = corpus["runs"]
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    base = corpus["base"]
    for name in ("quarantine.jsonl", "manifest.jsonl"):
        a, b = (base / "ds" / name).read_bytes(), (base / "ds_abs" / name).read_bytes()
        assert a == b, f"{name} differs between the relative and the absolute spelling"
        assert b" at 0x" not in a and str(base).encode() not in a  # no addresses, no typed paths
    report = json.loads((base / "ds" / "report.json").read_text())
    assert report["inputs"] == report["accepted"] + report["quarantined_inputs"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(corpus, case):
    assert corpus["runs"][0].returncode == 0
    root = corpus["trees"] / case.name
    assert snapshot(root) == corpus["before"][case.name]  # the source is never modified
    rows = [r for r in corpus["rows"] if r.get("source") == case.name]
    samples = [s for s in corpus["samples"] if s["source"]["root"] == case.name]
    files = {r["path"]: r["reason"] for r in rows if "index" not in r}
    objects = sorted((r["path"], r["index"], r["reason"]) for r in rows if "index" in r)
    assert set(files) == set(case.files)
    for path, reason in case.files.items():
        assert files[path] in ((reason,) if isinstance(reason, str) else reason), (path, files[path])
    assert objects == sorted(case.objects)
    assert sorted(s["source"]["path"] for s in samples) == sorted(case.accepted)
    # accepted + quarantined = inputs: every entry of the tree exactly once
    got = sorted([s["source"]["path"] for s in samples] + list(files))
    assert got == inputs_of(root, case.used)
    # and report.json gives every entry of the tree one fate
    (fates,) = [s["fates"] for s in corpus["report"]["sources"] if s["name"] == case.name]
    f = fates["files"]
    assert f["total"] == sum(v for k, v in f.items() if k != "total") == len(inputs_of(root, ()))
    assert (f["samples"], f["quarantined"]) == (len(samples), len(files))
    e = fates["entries"]
    assert e["total"] == sum(v for k, v in e.items() if k != "total")
    for r in rows:
        assert r["detail"] and len(r["detail"]) < 600, r
        assert " at 0x" not in r["detail"]
    if case.detail:
        hostile = [r for r in rows if r["reason"] not in ("annotation-unusable", "class-names-unusable")] or rows
        assert all(re.search(case.detail, r["detail"]) or re.search(case.detail, r["path"]) for r in hostile), hostile
