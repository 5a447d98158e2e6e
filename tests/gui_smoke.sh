#!/usr/bin/env bash
# Smoke test of the real window: starts trainlab under a virtual X server, lets it
# draw, saves a screenshot and checks that the app is still running and the picture
# is not blank. Needs: xvfb, imagemagick, libgl1-mesa-dri (apt-get install ...).
# Usage: tests/gui_smoke.sh [screenshot.png]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
shot="${1:-target/gui-smoke.png}"
cargo build --release --quiet
display=":$((90 + RANDOM % 9))"
Xvfb "$display" -screen 0 1400x900x24 >/dev/null 2>&1 &
xvfb=$!
home="$(mktemp -d)"
trap 'kill "$app" "$xvfb" 2>/dev/null || true; rm -rf "$home"' EXIT
sleep 1
# A fresh HOME so the window starts from its defaults, not a saved session.
DISPLAY="$display" HOME="$home" XDG_DATA_HOME="$home" target/release/trainlab gui &
app=$!
sleep "${SMOKE_WAIT:-6}"
if ! kill -0 "$app" 2>/dev/null; then
    echo "FAIL: trainlab exited early" >&2
    exit 1
fi
import -display "$display" -window root "$shot"
spread=$(convert "$shot" -colorspace Gray -format '%[fx:standard_deviation]' info:)
if awk -v s="$spread" 'BEGIN { exit !(s < 0.02) }'; then
    echo "FAIL: the screenshot is blank (deviation $spread)" >&2
    exit 1
fi
echo "ok: window drawn, screenshot in $shot"
