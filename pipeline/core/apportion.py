"""Whole numbers in given proportions: split sizes, then split sizes per class.

Rounding each class on its own cannot see the other classes: 2 classes of 6 at
0.8/0.1/0.1 round to 5/1/0 or 5/0/1 each, and when both break the tie the same way
one split stays empty although 10/1/1 exists. So the sizes are fixed for the whole
set first, then shared out per class within them, as scikit-learn's
``StratifiedShuffleSplit`` fixes ``n_train``/``n_test`` before drawing per class:

1. ``split_sizes``: largest remainder over all units; when that leaves a split with
   a non-zero ratio empty and there are at least as many units as such splits, the
   split most over its share gives it one (a split smaller than one unit exists
   only this way).
2. ``per_class``: each class gets ``floor`` or ``ceil`` of its exact share of each
   split (``units * size / total``), and the counts add up to the class's units and
   to each split's size. Such a rounding always exists (the fractional parts form a
   flow, so an integral one exists: Bacharach, 1966); the largest remainders are
   taken first, so whenever rounding each class on its own adds up to the split
   sizes, that is the answer, and augmenting paths settle the rest.

Counts are integers throughout (a share's remainder is ``units * size mod total``),
so no float decides a tie; ties go to the split named first and, between classes,
to the caller's key order.
"""

from __future__ import annotations

from collections import deque
from typing import Hashable, Sequence


def largest_remainder(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """``n`` split by ``ratios`` (largest remainder; ties to the name that sorts first).

    Only splits with a positive ratio get anything; ratios are normalised, so a sum
    a rounding error away from 1 cannot make or lose a unit.
    """
    live = [k for k, r in ratios.items() if r > 0]
    counts = {k: 0 for k in ratios}
    if not live or n <= 0:
        return counts
    total = sum(ratios[k] for k in live)
    raw = {k: n * ratios[k] / total for k in live}
    for k in live:
        counts[k] = min(int(raw[k]), n)
    order = sorted(live, key=lambda k: (-(raw[k] - counts[k]), k))
    left = n - sum(counts.values())
    for i in range(max(left, 0)):
        counts[order[i % len(order)]] += 1
    for i in range(max(-left, 0)):  # a float just above a whole number: take back the smallest remainders
        k = [k for k in reversed(order) if counts[k] > 0][0]
        counts[k] -= 1
    return counts


def split_sizes(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """Units per split for ``n`` units: largest remainder, then every split with a
    positive ratio at least one unit when ``n`` allows it."""
    counts = largest_remainder(n, ratios)
    for donor, taker in moves_to_fill(counts, ratios):
        counts[donor] -= 1
        counts[taker] += 1
    return counts


def moves_to_fill(counts: dict[str, int], ratios: dict[str, float]) -> list[tuple[str, str]]:
    """``(from, to)`` moves of one unit each that give every split with a positive ratio
    a unit, as far as the units go: each empty split (largest ratio first) takes from
    the split with more than one unit that is most over its share."""
    live = [k for k, r in ratios.items() if r > 0]
    n = sum(counts[k] for k in counts)
    total = sum(ratios[k] for k in live)
    have = dict(counts)
    moves = []
    for k in sorted(live, key=lambda k: (-ratios[k], k)):
        if have[k]:
            continue
        donors = [j for j in live if have[j] > 1]
        if not donors:
            break  # fewer units than splits: the caller says so
        donor = max(donors, key=lambda j: (have[j] - n * ratios[j] / total, have[j], -live.index(j)))
        have[donor] -= 1
        have[k] += 1
        moves.append((donor, k))
    return moves


def per_class(units: dict[Hashable, int], sizes: dict[str, int], order: Sequence[Hashable]) -> dict[Hashable, dict[str, int]]:
    """``{class: {split: count}}``: each count the floor or ceil of ``units[c] * sizes[k] / N``;
    rows sum to ``units``, columns to ``sizes``. ``order`` lists the classes in the order
    ties go to them."""
    n = sum(units.values())
    if n != sum(sizes.values()):
        raise ValueError(f"{n} units but split sizes sum to {sum(sizes.values())}")
    splits = list(sizes)
    out = {c: {k: (units[c] * sizes[k]) // n if n else 0 for k in splits} for c in order}
    row_need = {c: units[c] - sum(out[c].values()) for c in order}
    col_need = {k: sizes[k] - sum(out[c][k] for c in order) for k in splits}
    # Cells that may round up: a non-zero remainder. Largest remainder first; ties to
    # the split named first, then to the class first in ``order``.
    rank = {c: i for i, c in enumerate(order)}
    cells = sorted(((c, k) for c in order for k in splits if n and (units[c] * sizes[k]) % n),
                   key=lambda ck: (-((units[ck[0]] * sizes[ck[1]]) % n), ck[1], rank[ck[0]]))
    up: set[tuple[Hashable, str]] = set()
    for c, k in cells:
        if row_need[c] and col_need[k]:
            up.add((c, k))
            row_need[c] -= 1
            col_need[k] -= 1
    open_cells: dict[Hashable, list[str]] = {c: [] for c in order}
    for c, k in cells:
        open_cells[c].append(k)
    while any(row_need.values()):
        _augment(row_need, col_need, open_cells, up, order)
    for c, k in up:
        out[c][k] += 1
    return out


def _augment(row_need: dict, col_need: dict, open_cells: dict, up: set, order: Sequence) -> None:
    """Round one more cell up along an augmenting path: from a class still short, via
    a cell not yet rounded up to a split, then back via a rounded-up cell of that split
    to another class, ... until a split still short is reached; flip the path's cells."""
    start = next(c for c in order if row_need[c])
    came: dict[object, object] = {("row", start): None}
    queue = deque([("row", start)])
    while queue:
        node = queue.popleft()
        kind, name = node
        if kind == "row":
            nexts = [("col", k) for k in open_cells[name] if (name, k) not in up]
        else:
            if col_need[name]:
                break
            nexts = [("row", c) for c in order if (c, name) in up]
        for nxt in nexts:
            if nxt not in came:
                came[nxt] = node
                queue.append(nxt)
    else:  # pragma: no cover - a fractional rounding exists, so an integral one does
        raise AssertionError("no rounding of the class shares fits the split sizes")
    end = node[1]
    col_need[end] -= 1
    row_need[start] -= 1
    while came[node] is not None:
        prev = came[node]
        cell = (prev[1], node[1]) if prev[0] == "row" else (node[1], prev[1])
        up.symmetric_difference_update({cell})
        node = prev
