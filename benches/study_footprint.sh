#!/bin/sh
# What a study leaves on disk (issue 34): N trials of a tiny MLP 784-128-10 on 640
# images of the bundled MNIST sample, one epoch each, random learning rates; then
# the disk the study folder takes (`du`, 4 KB blocks, what the disk really holds)
# and the bytes of each kind of file in the trial folders.
#
# Usage:  benches/study_footprint.sh [TRIALS ...]      (default: 100 1000)
#         TRAINLAB_BIN=path/to/trainlab benches/study_footprint.sh 100
#         FOOTPRINT_BASE='training: (epochs: 1, batch_size: 64, tensorboard: false)' ...
#         FOOTPRINT_STUDY='trial_weights: F32,' benches/study_footprint.sh 100   (as trained)
# Builds nothing: run `cargo build --release` first (or set TRAINLAB_BIN).
set -eu

bin=${TRAINLAB_BIN:-target/release/trainlab}
training=${FOOTPRINT_BASE:-'training: (epochs: 1, batch_size: 64)'}
extra=${FOOTPRINT_STUDY:-}
[ -x "$bin" ] || { echo "no trainlab at $bin: cargo build --release first" >&2; exit 1; }
[ $# -gt 0 ] || set -- 100 1000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kib() { du -sk "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
bytes() { find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

for n in "$@"; do
    cat >"$work/tiny$n.ron" <<EOF
(
    name: "tiny$n",
    base: Inline(
        name: "tiny",
        seed: 42,
        dataset: Images(name: Mnist, source: Bundled, val_fraction: 0.1, train_limit: Some(640)),
        model: [Flatten, Linear(out: 128), ReLU, Linear(out: 10)],
        optimizer: Adam(lr: 1e-3),
        $training,
    ),
    space: { "optimizer.lr": LogUniform(1e-4, 1e-2) },
    search: Random(trials: $n),
    objectives: [Maximize(ValAccuracy)],
    seed: 1,
    $extra
)
EOF
    out="$work/s$n"
    start=$(date +%s.%N)
    "$bin" study run "$work/tiny$n.ron" --out "$out" >/dev/null 2>"$work/err$n" || {
        cat "$work/err$n" >&2
        exit 1
    }
    end=$(date +%s.%N)
    t="$out/trials"
    total=$(kib "$out")
    echo "== $n trials: $(echo "$end - $start" | bc) s, study folder $((total / 1024)) MiB ($total KiB on disk, $(bytes "$out") bytes in files)"
    printf '%-22s %12s %14s %12s\n' kind "KiB on disk" "bytes in files" "per trial"
    for kind in model.safetensors metrics.jsonl experiment.ron summary.json tb checkpoints; do
        k=$(kib "$t"/*/"$kind")
        b=$(bytes "$t"/*/"$kind")
        printf '%-22s %12s %14s %12s\n' "$kind" "$k" "$b" "$((b / n))"
    done
    dirs=$(find "$t" -maxdepth 1 -type d | wc -l)
    printf '%-22s %12s\n' "trial folders (4 KiB)" "$((dirs * 4))"
    printf '%-22s %12s %14s\n' "study files" "$(kib "$out"/journal.jsonl "$out"/leaderboard.csv "$out"/study.ron "$out"/leases)" "$(bytes "$out"/journal.jsonl "$out"/leaderboard.csv "$out"/study.ron "$out"/leases)"
done
