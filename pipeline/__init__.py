"""pipeline: raw images to versioned, augmented, training-ready datasets.

The package is a library first (``pipeline.*``); ``pipeline.cli`` wires it to a
typer CLI and ``stages/`` adapts it to DVC. Heavy imports (torch, PIL, numpy)
happen inside functions so that ``pipeline --help`` stays fast.
"""

__version__ = "0.1.0"
