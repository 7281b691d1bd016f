"""How an image meets an output size: the mode names and the padding grey, written
once here for the params check, the one resize (``pipeline.version.resize``), the
version card and the trainer. No imports: params validation reads it cheaply.
"""

RESIZE_MODES = ("stretch", "letterbox", "center_crop", "shortest_side")
DEFAULT_RESIZE = "stretch"
PAD_GREY = 114  # letterbox / shortest_side padding, and mosaic's empty canvas, as Ultralytics fills
DEFAULT_FIT = (DEFAULT_RESIZE, PAD_GREY)  # (augment.resize, augment.pad_value) at their defaults
