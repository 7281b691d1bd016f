"""Compatibility import: the dataset version writer lives in ``pipeline.version``."""

from pipeline.version.plan import SPLITS, Row, output_geometry
from pipeline.version.writer import write_version

__all__ = ["SPLITS", "Row", "output_geometry", "write_version"]
