"""The formats ``ingest`` reads and ``export`` writes: written once, here, for the
params check, the readers and writers, ``--format auto`` and the CLI help.

No imports: the CLI builds its help text from this list without loading
pydantic or any reader (``pipeline --help`` stays fast).
"""

INGEST_FORMATS = ("imagefolder", "voc", "yolo", "createml", "labelme", "coco", "cvat")  # one reader each
INGEST_CHOICES = INGEST_FORMATS + ("auto",)  # auto: detected from the tree's shape (ingest/detect.py)
EXPORT_FORMATS = ("imagefolder", "voc", "yolo", "labelme", "coco")  # one writer each (pipeline/export/)
