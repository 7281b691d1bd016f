#!/usr/bin/env bash
# Screenshot the page `dvc plots show` wrote, in headless Chromium with no network
# (a network namespace of its own: unshare -rn), as docs/img/dvc_plots_offline.png.
# A page that still needs a CDN comes out blank.
#
#   dvc plots show && bash plots/template/screenshot.sh [page.html] [out.png]
#
# Needs chromium (Debian: apt-get install chromium) and unshare (util-linux).
set -euo pipefail
cd "$(dirname "$0")/../.."
page=$(realpath "${1:-dvc_plots/index.html}")
out=$(realpath -m "${2:-docs/img/dvc_plots_offline.png}")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The window fits the four plots of dvc.yaml; the time budget lets vega-embed draw.
unshare -rn chromium --headless --no-sandbox --disable-gpu --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1000,840 --virtual-time-budget=10000 \
  --hide-scrollbars --screenshot="$out" "file://$page" 2>"$profile/chromium.log" \
  || { tail -20 "$profile/chromium.log" >&2; exit 1; }
echo "$out"
