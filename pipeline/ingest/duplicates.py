"""Exact and near-duplicate groups, within and across sources.

Exact: equal ``pixel_hash`` (decoded pixels, mode and size). Near: 64-bit dHashes
within ``ingest.near_duplicate_bits`` Hamming distance (re-encodes, resizes,
consecutive video frames). Pairs are found by the pigeonhole trick: two hashes
within ``t`` bits agree exactly on at least one of ``t + 1`` bands, so only hashes
sharing a band are compared, not all n^2 pairs. Groups are connected components
(union-find), so ``split`` can keep each group inside one split.
"""

from __future__ import annotations

from collections import defaultdict

from pipeline.record import Sample


class _Union:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _bands(h: int, t: int) -> list[tuple[int, int]]:
    n = t + 1
    width = 64 // n
    out = []
    for k in range(n):
        lo = k * width
        hi = 64 if k == n - 1 else lo + width
        out.append((k, (h >> lo) & ((1 << (hi - lo)) - 1)))
    return out


def duplicate_groups(samples: list[Sample] | tuple[Sample, ...], near_bits: int) -> list[dict]:
    """Groups of 2+ sample ids: ``{"ids": [...], "kind": "exact" | "near"}``, sorted.

    A group whose members carry different image-level labels also lists them
    (``"labels": [...]``, sorted): the same picture filed under two classes is
    label noise (or a placeholder) the user should look at.
    """
    samples = sorted(samples, key=lambda s: s.id)
    u = _Union(len(samples))
    exact: dict[str, int] = {}
    for i, s in enumerate(samples):
        if s.pixel_hash:
            if s.pixel_hash in exact:
                u.join(exact[s.pixel_hash], i)
            else:
                exact[s.pixel_hash] = i
    exact_root = {i: u.find(i) for i in range(len(samples))}
    if near_bits >= 0:
        hashes = [int(s.dhash, 16) if s.dhash else None for s in samples]
        buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, h in enumerate(hashes):
            if h is not None:
                for band in _bands(h, near_bits):
                    buckets[band].append(i)
        for members in buckets.values():
            same: dict[int, int] = {}  # equal hashes joined in one pass (blank images share one)
            for i in members:
                if hashes[i] in same:
                    u.join(same[hashes[i]], i)  # type: ignore[index]
                else:
                    same[hashes[i]] = i  # type: ignore[index]
            uniq = list(same.items())
            for a_pos, (ha, a) in enumerate(uniq):
                for hb, b in uniq[a_pos + 1:]:
                    if (ha ^ hb).bit_count() <= near_bits and u.find(a) != u.find(b):
                        u.join(a, b)
    comps: dict[int, list[int]] = defaultdict(list)
    for i in range(len(samples)):
        comps[u.find(i)].append(i)
    groups = []
    for members in comps.values():
        if len(members) < 2:
            continue
        kind = "exact" if len({exact_root[i] for i in members}) == 1 else "near"
        group: dict = {"ids": [samples[i].id for i in members], "kind": kind}
        labels = {samples[i].label for i in members if samples[i].label is not None}
        if len(labels) > 1:
            group["labels"] = sorted(labels)
        groups.append(group)
    return sorted(groups, key=lambda g: g["ids"][0])
