"""Dataset versions: the augment stage's output, reproducible to the byte.

Layout of a version directory::

    <split>_images.npy   uint8 (N, H, W, C), memory-mappable (np.load(mmap_mode="r"));
                         absent when images are larger than ``augment.pack_max_pixels``,
                         which are written as ``images/<split>/<index>.png`` instead
    <split>_labels.npy   int64 (N,)
    manifest.jsonl       one row per output sample (see ``manifest.py``)
    classes.json         ordered class names (label i = classes[i])
    card.json            source hashes, params, seed, pipeline, lineage, counts, pixel stats
    CARD.md              the card, for people

Modules: ``plan`` (which rows, in which order), ``decode`` (source images, in
threads), ``shards`` (sequential .npy/PNG writers that hash as they write),
``manifest`` (exact per-sample op parameters, and replaying them), ``objects``
(objects through the geometric ops), ``card`` (card.json and CARD.md),
``render`` (the one render path of the writer, the preview and trace), ``dataset``
(a version read as a ``Dataset`` of its rows), ``job`` (the streaming machinery
both writers share), ``writer`` (the atomic stage in one process), ``sharded`` (the
same bytes rendered by every ``torchrun`` rank); ``trace`` lives in ``pipeline.reports.trace``.
"""

__all__ = ["write_version"]


def __getattr__(name: str):
    # Lazy: reading a dataset (``pipeline.version.dataset``) must not import torch.
    if name == "write_version":
        from pipeline.version.writer import write_version

        return write_version
    raise AttributeError(name)
