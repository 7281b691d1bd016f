"""``trees``: DeepForest's annotated aerial images, from the ``deepforest`` 2.1.0 wheel (MIT).

The wheel ships, under ``deepforest/data/``, RGB orthophoto crops with labelImg's
Pascal VOC XML beside them: 951 ``Tree`` boxes over four images (two 400x400
NEON plots, a 1249x1035 and a 2299x2472 Yellowstone crop) and one plot without
labels (``SOAP_031.png``, a background image). Only those files are extracted,
through the safe extraction every archive goes through (member names checked,
sizes bounded, no links), into a flat labelImg tree: ``<name>.png`` beside
``<name>.xml``, which ``ingest.format: voc`` reads as it is (an XML whose
``<filename>`` names the GeoTIFF, ``OSBS_029.tif``, finds ``OSBS_029.png`` by its stem).

The wheel is fetched by package name with pip (``pip download --no-deps``), the
ordinary client of the registry (honouring the user's pip configuration; a
``--mirror`` is passed as its ``--index-url``), never installed or imported: its
dependencies are heavy and none is needed. ``--from PATH`` takes a local copy
of the wheel instead. Either way its SHA-256 is checked before it is opened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath

from pipeline.core.atomic import atomic_dir
from pipeline.download import inputs_of
from pipeline.download.archive import safe_extract
from pipeline.download.remote import BadDownload, FetchOptions, Remote, obtain
from pipeline.core.errors import DownloadError

PACKAGE = "deepforest==2.1.0"
WHEEL = "deepforest-2.1.0-py3-none-any.whl"
DIGEST = "sha256:8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54"
DATA = PurePosixPath("deepforest/data")
ANNOTATED = ("OSBS_029", "SOAP_061", "2019_YELL_2_541000_4977000_image_crop",
             "2019_YELL_2_528000_4978000_image_crop2")
FILES = tuple(f"{stem}{ext}" for stem in ANNOTATED for ext in (".png", ".xml")) + ("SOAP_031.png",)
PIP_SECONDS = 600  # the whole pip run; a stalled read is cut off sooner by its own --timeout


def remotes() -> list[Remote]:
    return [Remote(WHEEL, (), DIGEST)]


def _pip_download(remote: Remote, dest: Path, opts: FetchOptions) -> str:
    """``pip download --no-deps deepforest==2.1.0`` into a temporary folder beside ``dest``,
    then the wheel renamed to ``dest`` (a wheel pip left half-written never lands there)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
               "--disable-pip-version-check", "--timeout", str(opts.timeout), "--retries", str(opts.retries),
               "-d", tmp, PACKAGE]
        if opts.mirror:
            cmd[4:4] = ["--index-url", opts.mirror]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise DownloadError(f"pip download {PACKAGE}: {err}; "
                                f"pass a local copy of {remote.name} with --from") from None
        got = Path(tmp) / remote.name
        if done.returncode != 0 or not got.is_file():
            last = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])[-400:]
            raise DownloadError(f"pip download {PACKAGE} failed (exit {done.returncode}): {last or 'no output'}; "
                                "check the network or pip's index (--mirror URL), or pass the wheel with --from")
        os.replace(got, dest)
    return f"pip download {PACKAGE}"


def fetch(out: Path, opts: FetchOptions) -> Path:
    """Write ``out/<name>.png`` + ``out/<name>.xml`` (labelImg's flat layout) from the wheel."""
    archive = obtain("trees", remotes(), opts, fetch_file=_pip_download)[WHEEL]
    wanted = {DATA / name for name in FILES}
    with atomic_dir(Path(out), "download", inputs_of(opts)) as tmp:
        unpacked = safe_extract(archive, tmp / ".archive", keep=lambda rel: rel in wanted)
        missing = [name for name in FILES if not (unpacked / DATA / name).is_file()]
        if missing:
            raise BadDownload(f"{WHEEL}: {DATA}/ lacks {', '.join(missing)}; not the deepforest 2.1.0 wheel", archive)
        for name in FILES:
            os.replace(unpacked / DATA / name, tmp / name)
        shutil.rmtree(tmp / ".archive")
    return Path(out)
