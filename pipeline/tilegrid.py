"""Where the tiles of a large image start: one grid for ingest tiling and tiled prediction.

Tiles are ``tile`` x ``tile`` pixels and step by ``tile - overlap``; the last tile of a
row or column is shifted inward so it ends at the image border (every tile full size,
as SAHI and DeepForest cut them): it overlaps its neighbour by more than ``overlap``.
A side shorter than the tile has one tile, at 0, as long as that side.
"""

from __future__ import annotations


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def tile_origins(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """``(y, x)`` of every tile's top-left corner, row by row. Tile ``(y, x)`` covers rows
    ``y .. y + min(tile, height)`` and columns ``x .. x + min(tile, width)``."""
    if height < 1 or width < 1:
        raise ValueError(f"an image of {height}x{width} pixels has no tiles")
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"tiles of {tile} pixels overlapping by {overlap}: give tile >= 1 and 0 <= overlap < tile")
    step = tile - overlap
    return [(y, x) for y in _starts(height, tile, step) for x in _starts(width, tile, step)]
