"""The one guarded way to read a user's input file.

Every reader of user data (images, VOC XML, YOLO labels, ``classes.txt``,
``data.yaml``, labelme, COCO and CreateML JSON, ``params.yaml``, ``--checksums``,
and the files of a dataset directory through ``record.read_json``/``read_jsonl``)
opens through ``open_regular``/``read_bytes`` and decodes with the pure functions
below, so each hazard is handled once, here:

* **Not a regular file.** A FIFO blocks ``open`` forever, a device never ends, a
  dangling or looping link raises a confusing ``OSError``. The path is checked with
  ``lstat``/``stat`` before opening, each case with its own reason, and the file is
  then opened with ``O_NONBLOCK`` and checked again with ``fstat`` (a file swapped
  for a FIFO between the check and the open cannot block us either).
* **Size.** Each kind of file has a size cap (``LIMITS``; callers pass their
  param); a larger file is refused before it is read, and reading stops at the cap
  even if the file grows meanwhile.
* **Text.** UTF-8 with or without a BOM (UTF-16 with its BOM too, as Windows tools
  write it); anything else is refused with the byte offset, never guessed.
* **JSON.** Nesting is limited (a file of 100,000 ``[`` would otherwise exhaust the
  stack), and ``NaN``, ``Infinity`` and numbers that overflow to infinity
  (``1e999``) are refused: no annotation needs them and they poison the maths.
* **YAML.** Safe loading with a budget on alias expansion: a 700-byte "billion
  laughs" document would otherwise expand to gigabytes.

Errors are ``InputRefused(reason, detail)``: ``reason`` is a short stable code for
the quarantine report, ``detail`` a deterministic message (no memory addresses,
no timings). The caller decides whether one file's refusal quarantines a sample or
stops the command.
"""

from __future__ import annotations

import codecs
import errno
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from pipeline.core.errors import Refusal

MiB = 1 << 20

# Default caps per kind of file, in bytes. Real files sit far below these: a COCO
# instances_train2017.json is 448 MiB, a labelme JSON with its imageData a few MiB.
LIMITS: dict[str, int] = {
    "image": 512 * MiB,
    "annotation": 64 * MiB,  # one XML / labelme JSON / YOLO txt
    "index": 2048 * MiB,  # a file covering many images: COCO JSON, CreateML JSON, CVAT XML, image lists
    "config": 1 * MiB,  # data.yaml, classes.txt, params.yaml, checksums
}
MAX_JSON_DEPTH = 64
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 1_000_000
MAX_DETAIL = 300  # characters of a message kept in a refusal's detail


class InputRefused(Refusal):
    """A user's file cannot be read as asked."""

    def __init__(self, reason: str, detail: str):
        if len(detail) > MAX_DETAIL:  # a message never echoes a whole hostile document
            detail = detail[:MAX_DETAIL] + "..."
        super().__init__(reason, detail)


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "directory"
    return "special-file"


def check_regular(path: Path) -> os.stat_result:
    """``stat`` of ``path`` if it is (or links to) a regular file; else ``InputRefused``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputRefused("dangling-link", f"symbolic link to {os.readlink(path)!r}, which does not exist") from None
        raise InputRefused("missing-file", "no such file") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputRefused("link-loop", "symbolic links form a loop") from None
        raise InputRefused("unreadable", describe_os_error(err)) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputRefused("not-a-regular-file", f"is a {_kind_of(st.st_mode)}, not a regular file")
    return st


def describe_os_error(err: OSError) -> str:
    """An OSError as text without the path (callers name it) and without addresses."""
    return err.strerror or type(err).__name__


_ADDRESS = re.compile(r"\s*\bat 0x[0-9a-fA-F]+")


MAX_SHOWN = 40  # characters of a user's value echoed in a message


def shown(value: object) -> str:
    """``repr`` of a user's value for a message, cut to ``MAX_SHOWN`` characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f"...({len(text)} chars)"


def describe_exception(err: BaseException) -> str:
    """``Type: message`` without memory addresses, cut to ``MAX_DETAIL`` characters.

    Deterministic for equal inputs, so quarantine rows give equal bytes run after run
    (``<_io.BytesIO object at 0x7f...>`` becomes ``<_io.BytesIO object>``).
    """
    text = _ADDRESS.sub("", " ".join(str(err).split()))
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL] + "..."


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor of ``path`` and its ``fstat`` if it is (or links to) a
    regular file; else ``InputRefused``. Opened with ``O_NONBLOCK`` (opening a FIFO for
    reading would wait for a writer forever) and checked again with ``fstat`` (a file
    swapped for a special one between the check and the open). The caller closes it."""
    check_regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputRefused("link-loop", "symbolic links form a loop") from None
        raise InputRefused("unreadable", describe_os_error(err)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped since the check
            raise InputRefused("not-a-regular-file", "changed into a special file while being opened")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_bytes(path: Path, kind: str, limit: int | None = None) -> bytes:
    """All bytes of a regular file of at most ``limit`` bytes (default ``LIMITS[kind]``)."""
    cap = LIMITS[kind] if limit is None else limit
    fd, st = open_regular(path)
    try:
        if st.st_size > cap:
            raise InputRefused("file-too-large", f"{st.st_size} bytes exceeds the {kind} file limit of {cap} bytes")
        chunks, got = [], 0
        while True:
            chunk = os.read(fd, min(8 * MiB, cap + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            if got > cap:
                raise InputRefused("file-too-large", f"grew past the {kind} file limit of {cap} bytes while read")
        return b"".join(chunks)
    except OSError as err:
        raise InputRefused("unreadable", describe_os_error(err)) from None
    finally:
        os.close(fd)


def read_head(path: Path, size: int) -> bytes:
    """At most the first ``size`` bytes of a regular file (to sniff a format), guarded like ``read_bytes``."""
    fd, _ = open_regular(path)
    try:
        return os.read(fd, size)
    except OSError as err:
        raise InputRefused("unreadable", describe_os_error(err)) from None
    finally:
        os.close(fd)


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM optional) or BOM-marked UTF-16 text; anything else is refused."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise InputRefused("not-utf8", f"invalid UTF-16 at byte {err.start}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputRefused("not-utf8", f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}") from None


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} overflows to infinity")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from bytes: UTF-8 (BOM optional), nesting at most ``max_depth``, finite numbers only."""
    text = decode_text(data)
    try:
        value = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise InputRefused("json-too-deep", f"nesting deeper than {max_depth} levels") from None
    except ValueError as err:  # JSONDecodeError, and the number checks above
        raise InputRefused("malformed-json", str(err)) from None
    check_json_depth(value, max_depth)
    return value


def check_json_depth(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a parsed document nested deeper than ``max_depth`` (iterative walk)."""
    stack = [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (list, dict)):
            if d > max_depth:
                raise InputRefused("json-too-deep", f"nesting deeper than {max_depth} levels")
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))


def parse_yaml(data: bytes, max_aliases: int = MAX_YAML_ALIASES, max_nodes: int = MAX_YAML_NODES) -> Any:
    """YAML from bytes with the safe loader, refusing alias bombs and huge documents.

    Each alias reference counts against ``max_aliases``; the composed node graph is
    measured as it would be expanded (a node reached through aliases counts every
    time), so nested aliases cannot multiply past ``max_nodes``.
    """
    import yaml

    text = decode_text(data)

    class _Budgeted(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent, index):  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > max_aliases:
                    event = self.peek_event()
                    raise InputRefused("yaml-alias-bomb",
                                       f"more than {max_aliases} alias references (line {event.start_mark.line + 1})")
            return super().compose_node(parent, index)

    try:
        loader = _Budgeted(text)  # the reader checks characters here already (NUL, ...)
    except yaml.YAMLError as err:
        raise InputRefused("malformed-yaml", " ".join(str(err).split())) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expanded_size(node, max_nodes)
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        raise InputRefused("malformed-yaml", " ".join(str(err).split())) from None
    except RecursionError:
        raise InputRefused("yaml-too-deep", "nesting too deep") from None
    finally:
        loader.dispose()


def _check_expanded_size(root: Any, max_nodes: int) -> None:
    import yaml

    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a recursive structure counts once per cycle
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(n) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            total = 1
        sizes[key] = total
        if total > max_nodes:
            raise InputRefused("yaml-too-large", f"expands to more than {max_nodes} values")
        return total

    size(root)
