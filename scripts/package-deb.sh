#!/usr/bin/env bash
# Builds trainlab's .deb into target/debian/ (under CARGO_TARGET_DIR if set): the release binary, then its man
# pages and shell completions generated from the command line itself
# (`trainlab generate man|completions DIR`, a hidden subcommand, so they never
# fall behind the CLI), then `cargo deb --no-build`, which packs what
# [package.metadata.deb] in Cargo.toml lists, with the binary stripped of the
# release profile's line tables (240 MB -> about 40). Needs cargo-deb
# (`cargo install --locked cargo-deb`). Extra arguments go to cargo deb.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release
# The binary is where cargo put it (CARGO_TARGET_DIR, if set); the generated
# pages stay in this checkout's target/, where Cargo.toml's asset list names them.
bin="${CARGO_TARGET_DIR:-target}/release/trainlab"
generated=target/generated
rm -rf "$generated"
"$bin" generate man "$generated/man" >/dev/null
"$bin" generate completions "$generated/completions" >/dev/null
cargo deb --no-build --strip "$@"
