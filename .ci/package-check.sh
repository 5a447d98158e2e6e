#!/usr/bin/env bash
# The .deb end to end (run by .ci/run, as root): build it, install it with dpkg,
# use the installed binary from outside the repository (version, checking a
# bundled example, its man page, its desktop entry), remove it and check that
# every file it installed is gone. Usage: .ci/package-check.sh [PACKAGE.deb]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# cargo-deb from crates.io, kept in ~/.cargo/bin between runs; man-db for `man -w`.
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
command -v man >/dev/null || apt-get install -y -qq --no-install-recommends man-db >/dev/null

# An already built .deb may be given as $1; otherwise build one.
if [ $# -ge 1 ]; then
    deb=$1
else
    scripts/package-deb.sh
    deb=$(ls -t "${CARGO_TARGET_DIR:-target}"/debian/trainlab_*.deb | head -n 1)
fi
echo "package: $deb"
dpkg -i "$deb"
# Whatever happens below, the machine does not keep the package.
trap 'dpkg -r trainlab >/dev/null 2>&1 || true' EXIT
installed=$(dpkg -L trainlab)

cd /
# The one on the PATH is the package's.
test "$(command -v trainlab)" = /usr/bin/trainlab
trainlab --version
trainlab check /usr/share/trainlab/experiments/mnist_mlp.ron
for lesson in /usr/share/trainlab/experiments/lessons/*.ron; do
    trainlab check "$lesson" >/dev/null
done
man -w trainlab
man -w trainlab-export-onnx
test -s /usr/share/bash-completion/completions/trainlab
test -s /usr/share/zsh/vendor-completions/_trainlab
test -s /usr/share/fish/vendor_completions.d/trainlab.fish
test -s /usr/share/icons/hicolor/scalable/apps/trainlab.svg
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate /usr/share/applications/trainlab.desktop
fi
# With the build tree out of sight (a private mount namespace hides it under an
# empty tmpfs), the binary trains on the data the package installed.
if unshare -m true 2>/dev/null; then
    unshare -m sh -c "mount -t tmpfs none '$repo' && cd / && trainlab run \
        /usr/share/trainlab/experiments/mnist_mlp.ron --no-record \
        --set training.epochs=1 --set 'dataset.train_limit=Some(500)'" >/dev/null
    echo "trained from /usr/share/trainlab/assets with the build tree hidden"
else
    echo "(no mount namespaces here: the run without the build tree is skipped)"
fi
cd "$repo"

dpkg -r trainlab
trap - EXIT
left=0
while IFS= read -r f; do
    # Shared folders (/usr, /usr/share/man/man1, ...) stay; files must not.
    if [ -e "$f" ] && [ ! -d "$f" ]; then
        echo "left behind after dpkg -r: $f"
        left=1
    fi
done <<<"$installed"
if [ -e /usr/share/trainlab ]; then
    echo "left behind after dpkg -r: /usr/share/trainlab"
    left=1
fi
test "$left" = 0
echo "package check: ok"
