"""A loopback HTTP server and small archives in the real upstream formats, for the
download tests. Nothing here touches the internet: the server binds 127.0.0.1 on
an ephemeral port."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import struct
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class Loopback:
    """What the server serves and how it misbehaves; ``log`` records (path, Range header)."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # "/path" -> bytes
    drop_once: set[str] = field(default_factory=set)  # cut the next transfer of these halfway
    no_range: bool = False  # ignore Range headers (always answer 200 with the whole file)
    fail: dict[str, int] = field(default_factory=dict)  # path -> number of 503s to answer first
    trickle: dict[str, float] = field(default_factory=dict)  # path -> seconds between single body bytes
    stall_after: dict[str, int] = field(default_factory=dict)  # path -> send this many bytes, then nothing
    release: threading.Event = field(default_factory=threading.Event)  # set at teardown: ends held connections
    log: list[tuple[str, str | None]] = field(default_factory=list)

    def serve(self, prefix: str, files: dict[str, bytes]) -> str:
        """Serve ``files`` under ``/<prefix>/``; return that mirror URL."""
        for name, data in files.items():
            self.files[f"/{prefix}/{name}"] = data
        return f"{self.url}/{prefix}"

    def requests(self, name: str) -> list[str | None]:
        """Range headers of every request for a path ending in ``name``."""
        return [rng for path, rng in self.log if path.endswith("/" + name)]


def _handler(state: Loopback):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            state.log.append((self.path, rng))
            if state.fail.get(self.path, 0) > 0:
                state.fail[self.path] -= 1
                return self._status(503, "Service Unavailable")
            data = state.files.get(self.path)
            if data is None:
                return self._status(404, "Not Found")
            start = 0
            if rng and not state.no_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    return self._status(416, "Range Not Satisfiable")
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
                self.send_header("Accept-Ranges", "none" if state.no_range else "bytes")
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path in state.stall_after:  # a server that stops sending, connection held open
                self.wfile.write(body[: state.stall_after[self.path]])
                self.wfile.flush()
                state.release.wait(60)
                self.close_connection = True
                return
            if self.path in state.trickle:  # one byte at a time, slowly
                for i in range(len(body)):
                    if state.release.wait(state.trickle[self.path]):
                        break
                    try:
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        break
                self.close_connection = True
                return
            if self.path in state.drop_once:
                state.drop_once.discard(self.path)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True  # the client sees the connection end early
                return
            self.wfile.write(body)

        def _status(self, code: int, text: str):
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def loopback():
    state = Loopback()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def sha256_checksums(path: Path, files: dict[str, bytes]) -> Path:
    """Write a --checksums JSON file for ``files``; return its path."""
    path.write_text(json.dumps({n: "sha256:" + hashlib.sha256(b).hexdigest() for n, b in files.items()}))
    return path


# --- MNIST / Fashion-MNIST: gzip'd IDX ---------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    header = b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_files(train_per_class: int = 2, test_per_class: int = 1) -> dict[str, bytes]:
    """The four gzip'd IDX files with ``n`` images of each of the 10 classes per split."""
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.tile(np.arange(10), n)
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        out[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images), mtime=0)
        out[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels), mtime=0)
    return out


# --- CIFAR-10 / CIFAR-100: pickled batches in the python tar.gz -------------------------

def _pickle_batch(obj: dict) -> bytes:
    # The real files were pickled by numpy 1.x, which names the array reconstructor
    # numpy.core.multiarray; write the same name.
    return pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def _cifar_batch(labels: list[int], key: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    return {"batch_label": "testing batch", key: labels, "data": data,
            "filenames": [f"img_{seed}_{i}.png" for i in range(len(labels))]}


def tar_gz(members: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    # mtime=0: the same members give the same bytes (and checksums) on every call
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tf:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def cifar10_archive() -> bytes:
    """cifar-10-python.tar.gz: 5 train batches of 4 (2 per class in all), test 1 per class."""
    members = {}
    for b in range(5):
        labels = [(4 * b + i) % 10 for i in range(4)]
        members[f"cifar-10-batches-py/data_batch_{b + 1}"] = _pickle_batch(_cifar_batch(labels, "labels", b))
    members["cifar-10-batches-py/test_batch"] = _pickle_batch(_cifar_batch(list(range(10)), "labels", 9))
    members["cifar-10-batches-py/batches.meta"] = _pickle_batch(
        {"num_cases_per_batch": 4, "label_names": CIFAR10_NAMES, "num_vis": 3072})
    return tar_gz(members, dirs=("cifar-10-batches-py",))


def cifar100_archive() -> bytes:
    """cifar-100-python.tar.gz: train and test 1 image per fine class."""
    def batch(seed: int) -> dict:
        b = _cifar_batch(list(range(100)), "fine_labels", seed)
        b["coarse_labels"] = [k // 5 for k in range(100)]
        return b

    members = {
        "cifar-100-python/train": _pickle_batch(batch(1)),
        "cifar-100-python/test": _pickle_batch(batch(2)),
        "cifar-100-python/meta": _pickle_batch({"fine_label_names": [f"fine{k:02d}" for k in range(100)],
                                                "coarse_label_names": [f"coarse{k:02d}" for k in range(20)]}),
    }
    return tar_gz(members, dirs=("cifar-100-python",))


# --- hymenoptera: the tutorial's zip -----------------------------------------------------

HYMENOPTERA_COUNTS = {("train", "ants"): 3, ("train", "bees"): 2, ("val", "ants"): 2, ("val", "bees"): 1}


def jpeg(seed: int, size: int = 16) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def hymenoptera_archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hymenoptera_data/", b"")
        for k, ((split, cls), n) in enumerate(HYMENOPTERA_COUNTS.items()):
            zf.writestr(f"hymenoptera_data/{split}/{cls}/", b"")
            for i in range(n):
                zf.writestr(f"hymenoptera_data/{split}/{cls}/{i}_{cls}.jpg", jpeg(10 * k + i))
        # Like the real tree: a web server's stand-in, a valid GIF filed as an ant.
        zf.writestr(f"hymenoptera_data/{HYMENOPTERA_PLACEHOLDER}", gif_placeholder())
    return buf.getvalue()


HYMENOPTERA_PLACEHOLDER = "train/ants/imageNotFound.gif"


def gif_placeholder() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("P", (80, 40), 0)
    ImageDraw.Draw(img).rectangle((10, 10, 70, 30), fill=1)
    buf = io.BytesIO()
    img.save(buf, "GIF")
    return buf.getvalue()


# --- archive bombs, small on disk ----------------------------------------------------------

def tar_gz_of_zeros(size: int, name: str = "data/zeros.bin") -> bytes:
    """A valid tar.gz holding one member of ``size`` zero bytes (a multiple of 16 MiB),
    built without compressing it all: deflate's full flush restarts the stream, so
    every 16 MiB block of zeros compresses to the same bytes, compressed once."""
    import zlib

    block = bytes(16 << 20)
    assert size % len(block) == 0
    info = tarfile.TarInfo(name)
    info.size = size
    head, tail = info.tobuf(format=tarfile.USTAR_FORMAT), bytes(1024)  # header; end-of-archive blocks
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    seg = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(size // len(block)):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    body = first + seg * (size // len(block)) + c.compress(tail) + c.flush()
    total = len(head) + size + len(tail)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body
            + struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF))


def tar_gz_of_many(count: int) -> bytes:
    """A tar.gz of ``count`` empty files (``d/00000`` ...): one header each, patched from
    a template (tarfile's own writer takes seconds for 50,000 members)."""
    template = bytearray(tarfile.TarInfo("d/00000").tobuf(format=tarfile.USTAR_FORMAT))
    template[148:156] = b" " * 8
    base = sum(template) - sum(b"d/00000")
    headers = bytearray()
    for i in range(count):
        name = f"d/{i:05d}".encode()
        h = bytearray(template)
        h[0:len(name)] = name
        h[148:156] = b"%06o\0 " % (base + sum(name))
        headers += h
    return gzip.compress(bytes(headers) + bytes(1024), compresslevel=6, mtime=0)
