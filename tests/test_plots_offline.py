"""`dvc plots show` and `dvc plots diff` write a page that renders without a network.

`.dvc/config` points `plots.html_template` at plots/template/offline.html, which holds
vega, vega-lite and vega-embed inline (plots/template/build.py writes it from npm).
These checks need neither npm nor a browser: the page may load no script from
anywhere, must carry the three libraries and the plots' data, and the template's
versions must be the pinned ones, which are the ones dvc_render's default page asks for.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
from pathlib import Path

from dvc_render.vega import VegaRenderer

from tests.clone import BIN, REPO, clone_env, make_clone

TEMPLATE = REPO / "plots" / "template"
# One banner line per inlined script: name@version, file in the package, sha256, licence.
BANNER = re.compile(r"^ *(?P<name>[a-z-]+)@(?P<version>\S+) (?P<file>\S+) sha256:(?P<sha>[0-9a-f]{64}) \S+$", re.M)
INLINE = re.compile(r"<script>\n(.*?)\n *</script>", re.S)
SCRIPT_SRC = re.compile(r"<script[^>]*\ssrc\s*=", re.I)


def template() -> str:
    return (TEMPLATE / "offline.html").read_text(encoding="utf8")


def inline_scripts(page: str) -> list[str]:
    return INLINE.findall(page)


def test_template_inlines_the_pinned_versions_dvc_render_asks_for():
    page = template()
    banner = [m.groupdict() for m in BANNER.finditer(page)]
    pinned = json.loads((TEMPLATE / "package.json").read_text())["dependencies"]
    locked = json.loads((TEMPLATE / "package-lock.json").read_text())["packages"]
    dvc_default = dict(re.findall(r"cdn\.jsdelivr\.net/npm/([a-z-]+)@([\d.]+)", VegaRenderer.SCRIPTS))
    in_page = {b["name"]: b["version"] for b in banner}
    assert in_page == pinned == dvc_default, "rebuild the template: python plots/template/build.py [--relock]"
    assert {name: locked[f"node_modules/{name}"]["version"] for name in pinned} == pinned
    # The scripts are the banner's, byte for byte, in load order (vega first).
    scripts = inline_scripts(page)
    assert [b["name"] for b in banner] == ["vega", "vega-lite", "vega-embed"]
    assert [hashlib.sha256(s.encode()).hexdigest() for s in scripts] == [b["sha"] for b in banner]
    # DVC fills {plot_divs}; a {scripts} would bring back its CDN tags.
    assert "{plot_divs}" in page and "{scripts}" not in page
    assert not SCRIPT_SRC.search(page)


def _check_page(page: str, clone: Path, revs: list[str]) -> None:
    assert not SCRIPT_SRC.search(page), "the page loads a script from elsewhere"
    assert "cdn.jsdelivr.net" not in page
    for script in inline_scripts(template()):
        assert script in page
    with open(clone / "plots" / "train_curve.csv", newline="") as f:
        curve = list(csv.DictReader(f))
    with open(clone / "plots" / "confusion.csv", newline="") as f:
        confusion = list(csv.DictReader(f))
    for row in curve:  # every epoch, as the spec's data holds it
        assert json.dumps(row)[1:-1] in page
    for plot in ("loss", "accuracy", "plots_train_curve_csv", "plots_confusion_csv"):
        assert f'<div id = "{plot}">' in page
    assert page.count('"actual": ') == len(confusion) * len(revs)
    for rev in revs:
        assert f'"rev": "{rev}"' in page


def test_dvc_plots_show_and_diff_in_a_clone_load_nothing_from_the_network(tmp_path):
    clone = make_clone(tmp_path)
    env = clone_env(clone)

    def dvc(*args: str) -> str:
        res = subprocess.run([str(BIN / "dvc"), *args], cwd=clone, env=env, capture_output=True, text=True,
                             timeout=120, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return (clone / "dvc_plots" / "index.html").read_text(encoding="utf8")

    _check_page(dvc("plots", "show"), clone, ["workspace"])
    _check_page(dvc("plots", "diff", "HEAD"), clone, ["HEAD", "workspace"])
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == "", "dvc_plots/ is git-ignored: " + status.stdout
