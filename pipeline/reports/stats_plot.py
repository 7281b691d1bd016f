"""A dataset's health as a picture and a table (``pipeline stats DS --png F --csv F``),
for any canonical dataset or version.

Detection data (any sample with objects) gets what Ultralytics' ``labels.jpg`` shows:
four panels, objects per class and split, box centres (normalised), box width against
height (normalised) and objects per image; the CSV has one row per object (split, class,
normalised centre and size, pixel area). Classification data has no boxes to draw, so it
gets what it has: images per class and split, and image sizes in pixels, with one CSV
row per image (split, class, width, height). Either CSV is a DVC plot:
``dvc plots show F --template scatter -x width -y height``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter

from pipeline.record import Dataset, Sample

OBJECT_COLUMNS = ("split", "label", "x_center", "y_center", "width", "height", "area_px")
IMAGE_COLUMNS = ("split", "label", "width", "height")


def _split(s: Sample, assignment: dict[str, str] | None) -> str:
    return (assignment or {}).get(s.id) or s.split or "unassigned"


def object_rows(ds: Dataset, assignment: dict[str, str] | None = None) -> list[dict]:
    rows = []
    for s in ds.samples:
        split = _split(s, assignment)
        for o in s.objects:
            x1, y1, x2, y2 = o.box
            rows.append({"split": split, "label": o.label, "x_center": round((x1 + x2) / 2 / s.width, 5),
                         "y_center": round((y1 + y2) / 2 / s.height, 5), "width": round((x2 - x1) / s.width, 5),
                         "height": round((y2 - y1) / s.height, 5), "area_px": round((x2 - x1) * (y2 - y1), 2)})
    return rows


def image_rows(ds: Dataset, assignment: dict[str, str] | None = None) -> list[dict]:
    return [{"split": _split(s, assignment), "label": s.label or "", "width": s.width, "height": s.height}
            for s in ds.samples]


def table(ds: Dataset, assignment: dict[str, str] | None = None) -> tuple[tuple[str, ...], list[dict]]:
    """The CSV's columns and rows: one row per object for detection data, per image otherwise."""
    if ds.kind == "detection":
        return OBJECT_COLUMNS, object_rows(ds, assignment)
    return IMAGE_COLUMNS, image_rows(ds, assignment)


def csv_bytes(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    buf = io.StringIO()
    out = csv.DictWriter(buf, columns, lineterminator="\n")
    out.writeheader()
    out.writerows(rows)
    return buf.getvalue().encode("utf-8")


def describe(ds: Dataset) -> str:
    """One line saying what the picture and the table hold, or why they are empty."""
    if not ds.samples:
        return "nothing to draw: the dataset has no samples (the CSV holds its header only)"
    if ds.kind == "detection":
        n = sum(len(s.objects) for s in ds.samples)
        return (f"detection data, {n:,} objects in {len(ds.samples):,} images: objects per class and split, "
                "box centres and sizes, objects per image; the CSV has one row per object")
    return (f"classification data, {len(ds.samples):,} images and no boxes: images per class and split, "
            "image sizes; the CSV has one row per image")


def _bars(ax, per_split: dict[str, Counter], classes: list[str], title: str) -> None:
    """Grouped bars: one group per class, one bar per split."""
    splits = sorted(per_split) or ["(none)"]
    width = 0.8 / len(splits)
    for k, sp in enumerate(splits):
        counts = per_split.get(sp, Counter())
        ax.bar([i + k * width for i in range(len(classes))], [counts.get(c, 0) for c in classes], width, label=sp)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(classes))], classes, rotation=45, ha="right")
    ax.set_title(title)
    ax.legend()


def _objects_figure(ds: Dataset, assignment: dict[str, str] | None, plt):
    rows = object_rows(ds, assignment)
    fig, ax = plt.subplots(2, 2, figsize=(10, 8), dpi=80)
    per = {sp: Counter(r["label"] for r in rows if r["split"] == sp) for sp in {r["split"] for r in rows}}
    _bars(ax[0, 0], per, list(ds.classes), "objects per class and split")
    ax[0, 1].scatter([r["x_center"] for r in rows], [r["y_center"] for r in rows], s=4, alpha=0.4)
    ax[0, 1].set(xlim=(0, 1), ylim=(1, 0), title="box centres (normalised)", xlabel="x", ylabel="y")
    ax[1, 0].scatter([r["width"] for r in rows], [r["height"] for r in rows], s=4, alpha=0.4)
    ax[1, 0].set(xlim=(0, 1), ylim=(0, 1), title="box width vs height (normalised)", xlabel="width",
                 ylabel="height")
    per_image = Counter(len(s.objects) for s in ds.samples)
    ax[1, 1].bar(list(per_image), list(per_image.values()))
    ax[1, 1].set(title="objects per image", xlabel="objects", ylabel="images")
    return fig


def _images_figure(ds: Dataset, assignment: dict[str, str] | None, plt):
    from matplotlib.ticker import MaxNLocator

    rows = image_rows(ds, assignment)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    per = {sp: Counter(r["label"] for r in rows if r["split"] == sp) for sp in {r["split"] for r in rows}}
    classes = list(ds.classes) or sorted({r["label"] for r in rows})
    _bars(ax[0], per, classes, "images per class and split")
    # One marker per distinct size, its area growing with the count: a dataset of one
    # size (MNIST's 28x28) is one labelled dot rather than thousands stacked unseen.
    sizes = Counter((r["width"], r["height"]) for r in rows)
    most = max(sizes.values(), default=1)
    ax[1].scatter([w for w, _ in sizes], [h for _, h in sizes], s=[20 + 400 * n / most for n in sizes.values()],
                  alpha=0.5)
    for (w, h), n in sizes.most_common(5):
        ax[1].annotate(f"{w}x{h}: {n:,}", (w, h), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax[1].set(title="image sizes (pixels)", xlabel="width", ylabel="height")
    ax[1].margins(0.3)
    for axis in (ax[1].xaxis, ax[1].yaxis):
        axis.set_major_locator(MaxNLocator(integer=True))
    return fig


def png_bytes(ds: Dataset, assignment: dict[str, str] | None = None) -> bytes:
    """The picture as PNG bytes (deterministic for the same data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    draw = _objects_figure if ds.kind == "detection" else _images_figure
    fig = draw(ds, assignment, plt)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
