"""The loss policy: a run that loses data fails loudly unless the user accepts the loss.

Checked on the accounting (``fates.py``) once every image is decoded and checked,
before the new dataset replaces the previous one, so a refused run leaves the
previous output as it was. A loss is any of:

* ``no-samples``: the run keeps no sample at all;
* ``split-empty``: a split the source's index names (``data.yaml`` ``val:``, an
  ``ImageSets/Main/val.txt``, ``instances_val2017.json``, a CVAT subset, a ``val/``
  folder) keeps no sample: its files are missing or all refused;
* ``no-objects``: a source of an annotated format has annotation files, but no
  object (and no class label) was read from them;
* ``quarantined``: more than ``ingest.max_loss`` of the inputs (samples and
  quarantined inputs) quarantined;
* ``refused``: more than ``ingest.max_loss`` of the object entries (objects and
  refused entries) refused.

With ``ingest.on_loss: error`` (the default) the run stops with ``DataLossError``
(exit 3) and one line naming what was lost and the knob that accepts it; with
``warn`` (``pipeline ingest --allow-loss``) the same findings go into
``report.json`` (``loss``) and the summary prints the same line. Shares are only
checked above zero: ``max_loss: 1`` accepts any share, never an empty split.
"""

from __future__ import annotations

from pipeline.config import IngestParams
from pipeline.core.errors import DataLossError


def findings(report: dict, params: IngestParams) -> list[dict]:
    """What the run described by ``report`` (``report.json`` being written) lost; [] for nothing."""
    out: list[dict] = []
    if report["accepted"] == 0:
        out.append({"loss": "no-samples"})
    for s in report["sources"]:
        for split, named_by in s.get("named_splits", []):
            if not s["splits"].get(split):
                out.append({"loss": "split-empty", "source": s["name"], "split": split, "named_by": named_by})
        f = s["fates"]
        if (s["format"] != "imagefolder" and f["annotation_files"] and not f["entries"]["objects"]
                and not s["labelled"]):
            out.append({"loss": "no-objects", "source": s["name"], "annotation_files": f["annotation_files"],
                        "entries": f["entries"]["total"]})
    fates = report["fates"]
    share = params.max_loss
    quarantined, inputs = report["quarantined_inputs"], report["inputs"]
    if inputs and quarantined / inputs > share:
        out.append({"loss": "quarantined", "count": quarantined, "of": inputs, "max_loss": share,
                    "reasons": fates["quarantined_by_reason"]})
    refused = fates["entries"]["refused"]
    objects = refused + fates["entries"]["objects"]
    if objects and refused / objects > share:
        out.append({"loss": "refused", "count": refused, "of": objects, "max_loss": share,
                    "reasons": fates["refused_by_reason"]})
    return out


def enforce(report: dict, params: IngestParams) -> list[dict]:
    """The findings, after ``DataLossError`` when there are some and ``ingest.on_loss`` is ``error``."""
    from pipeline.reports.summary import loss_line

    found = findings(report, params)
    if found and params.on_loss == "error":
        raise DataLossError(loss_line(found, accepted=False))
    return found
