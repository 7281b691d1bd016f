"""Detection health as a picture and a table: what Ultralytics' ``labels.jpg`` shows,
for any canonical dataset or version (``pipeline stats DS --png F --csv F``).

The PNG has four panels: objects per class and split, box centres (normalised),
box width against height (normalised) and objects per image. The CSV has one row
per object (split, class, normalised centre and size, pixel area) for
``dvc plots show objects.csv --template scatter -x width -y height``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter

from pipeline.record import Dataset

COLUMNS = ("split", "label", "x_center", "y_center", "width", "height", "area_px")


def object_rows(ds: Dataset, assignment: dict[str, str] | None = None) -> list[dict]:
    rows = []
    for s in ds.samples:
        split = (assignment or {}).get(s.id) or s.split or "unassigned"
        for o in s.objects:
            x1, y1, x2, y2 = o.box
            rows.append({"split": split, "label": o.label, "x_center": round((x1 + x2) / 2 / s.width, 5),
                         "y_center": round((y1 + y2) / 2 / s.height, 5), "width": round((x2 - x1) / s.width, 5),
                         "height": round((y2 - y1) / s.height, 5), "area_px": round((x2 - x1) * (y2 - y1), 2)})
    return rows


def csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    out = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    out.writeheader()
    out.writerows(rows)
    return buf.getvalue().encode("utf-8")


def png_bytes(ds: Dataset, assignment: dict[str, str] | None = None) -> bytes:
    """The four-panel picture as PNG bytes (deterministic for the same data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = object_rows(ds, assignment)
    splits = sorted({r["split"] for r in rows}) or ["(none)"]
    classes = list(ds.classes)
    fig, ax = plt.subplots(2, 2, figsize=(10, 8), dpi=80)
    per = {sp: Counter(r["label"] for r in rows if r["split"] == sp) for sp in splits}
    width = 0.8 / len(splits)
    for k, sp in enumerate(splits):
        ax[0, 0].bar([i + k * width for i in range(len(classes))], [per[sp].get(c, 0) for c in classes],
                     width, label=sp)
    ax[0, 0].set_xticks([i + 0.4 - width / 2 for i in range(len(classes))], classes, rotation=45, ha="right")
    ax[0, 0].set_title("objects per class and split")
    ax[0, 0].legend()
    ax[0, 1].scatter([r["x_center"] for r in rows], [r["y_center"] for r in rows], s=4, alpha=0.4)
    ax[0, 1].set(xlim=(0, 1), ylim=(1, 0), title="box centres (normalised)", xlabel="x", ylabel="y")
    ax[1, 0].scatter([r["width"] for r in rows], [r["height"] for r in rows], s=4, alpha=0.4)
    ax[1, 0].set(xlim=(0, 1), ylim=(0, 1), title="box width vs height (normalised)", xlabel="width",
                 ylabel="height")
    per_image = Counter(len(s.objects) for s in ds.samples)
    ax[1, 1].bar(list(per_image), list(per_image.values()))
    ax[1, 1].set(title="objects per image", xlabel="objects", ylabel="images")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
