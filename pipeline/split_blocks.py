"""Splitting one large image by spatial blocks (``split.block``), with a buffer.

By default the tiles of one image stay in one split (``pipeline.split``): overlapping
tiles share pixels. That leaves a user with one orthomosaic, or a few large images,
without a split at all, or with a val split from another site that cannot choose a
recipe (the trees example: docs/benchmarks.md). With ``split.block: N`` the tiles of an
image are grouped by the square block of N source pixels their centre falls in, and the
blocks are the units the split deals (stratified like any unit). Neighbouring blocks can
then land in different splits, and tiles that overlap across that boundary would put
the same pixels in both: the lower-ranked tile of each such pair goes to the
**buffer** (test keeps all its tiles, val gives up those touching test, train those
touching what val and test kept). A buffered tile is in no split (``buffer`` in
``splits.json``, counted with its objects in the summary line): the loss the user chose
with the block size, as spatial cross-validation does (Roberts et al., 2017, "Cross-validation
strategies for data with temporal, spatial, hierarchical, or phylogenetic structure").
"""

from __future__ import annotations

from collections import defaultdict

from pipeline.core.errors import InputError
from pipeline.record import BUFFER, SPLITS, Dataset, Sample

# Which tile of an overlapping pair stays: the higher rank (test, then val, then train);
# a split of another name (given by the source) ranks below train.
KEEP_RANK = {name: i for i, name in enumerate(SPLITS)}
MAX_BUFFER_SHARE = 0.5  # more than this share of the tiles as buffer: the block is too small


def block_of(s: Sample, block: int) -> str:
    """The unit key of a tile: its source and the block its centre lies in."""
    assert s.tile is not None
    cx, cy = s.tile.x + s.width // 2, s.tile.y + s.height // 2
    return f"{s.tile.source_id}#block{cy // block},{cx // block}"


def _overlap(a: Sample, b: Sample) -> bool:
    ta, tb = a.tile, b.tile
    return (ta.x < tb.x + b.width and tb.x < ta.x + a.width and
            ta.y < tb.y + b.height and tb.y < ta.y + a.height)


def add_buffer(dataset: Dataset, assignment: dict[str, str], block: int) -> int:
    """Move to ``BUFFER`` the tiles that overlap a kept tile of a higher-ranked split (in
    place): test keeps every tile, val loses those that overlap test, train those that
    overlap what val and test kept. So no two kept tiles of different splits overlap, and
    every buffered tile overlaps one that stays. Returns how many moved; raises when the
    block leaves more than half the tiles as buffer."""
    by_source: dict[str, list[Sample]] = defaultdict(list)
    for s in dataset.samples:
        if s.tile is not None:
            by_source[s.tile.source_id].append(s)
    moved = 0
    for tiles in by_source.values():
        side = max(max(s.width, s.height) for s in tiles)
        kept: dict[tuple[int, int], list[Sample]] = defaultdict(list)  # by grid cell: neighbours only
        rank = lambda s: KEEP_RANK.get(assignment[s.id], -1)  # noqa: E731
        for s in sorted(tiles, key=lambda s: (-rank(s), s.id)):  # the scored splits first
            cy, cx = s.tile.y // side, s.tile.x // side
            if any(rank(t) > rank(s) and _overlap(s, t)
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1) for t in kept.get((cy + dy, cx + dx), ())):
                assignment[s.id] = BUFFER
                moved += 1
            else:
                kept[(cy, cx)].append(s)
    tiled = sum(len(t) for t in by_source.values())
    if tiled and moved > MAX_BUFFER_SHARE * tiled:
        side = max(max(s.width, s.height) for t in by_source.values() for s in t)
        raise InputError(f"{dataset.root}: split.block {block} leaves {moved} of {tiled} tiles as the buffer "
                         f"between splits (tiles up to {side} px overlap across every block edge); use a block "
                         f"of several tiles (e.g. {4 * side}) or null to keep each image in one split")
    return moved


def objects_in_no_kept_tile(dataset: Dataset, assignment: dict[str, str]) -> int:
    """How many objects of buffered tiles the splits lose outright. Tiles overlap, so most
    objects of a buffered tile also lie in a kept neighbour; one counts as lost unless a
    kept tile of its image holds an object of its label whose box (in the source image's
    pixels) contains its centre: a tree cut to a sliver at a kept tile's edge, centre
    outside, counts as lost."""
    tiles = [s for s in dataset.samples if s.tile is not None]
    if not tiles:
        return 0
    # Kept boxes by the grid cell of their centre, cells a tile wide: a box (within one
    # tile) that contains a point has its centre in that point's cell or a neighbour.
    side = max(max(s.width, s.height) for s in tiles)
    kept: dict[tuple, list[tuple[float, ...]]] = defaultdict(list)
    buffered: list[tuple[str, str, float, float]] = []
    for s in tiles:
        dx, dy = s.tile.x, s.tile.y
        for o in s.objects:
            x0, y0, x1, y1 = o.box
            cx, cy = dx + (x0 + x1) / 2, dy + (y0 + y1) / 2
            if assignment[s.id] == BUFFER:
                buffered.append((s.tile.source_id, o.label, cx, cy))
            else:
                kept[(s.tile.source_id, o.label, int(cx // side), int(cy // side))].append(
                    (dx + x0, dy + y0, dx + x1, dy + y1))

    def held(src: str, label: str, cx: float, cy: float) -> bool:
        i, j = int(cx // side), int(cy // side)
        return any(x0 <= cx <= x1 and y0 <= cy <= y1
                   for di in (-1, 0, 1) for dj in (-1, 0, 1)
                   for x0, y0, x1, y1 in kept.get((src, label, i + di, j + dj), ()))

    return sum(not held(*b) for b in buffered)
