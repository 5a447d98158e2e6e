#!/usr/bin/env bash
# Mutation testing of trainlab's core modules with cargo-mutants, run the same
# way every time (see docs/testing.md).
#
#   scripts/mutants.sh src/train/clip.rs src/study/lease.rs   # those modules
#   scripts/mutants.sh --list src/quant/steps.rs              # only list the mutants
#   scripts/mutants.sh --in-diff FILE.diff                    # mutants in a diff's lines
#   scripts/mutants.sh --last-commit   # CI: the last commit's core changes, if small
#
# Per module, in two passes: first every mutant of that one file against the
# library tests of its area (lib_filter_for below: a few seconds of tests, so a
# mutant costs about one incremental rebuild); then only the mutants that
# survived, against every library test plus the integration tests that exercise
# the module (tests_for below). A mutant is reported missed only if it survives
# the second pass. MUTANTS_LIB_ONLY=1 leaves the integration tests out of it.
# The int8 kernels (src/quant/{kernel,steps,fused}.rs) and the experiment spec
# (src/spec/, serde data and its checks) need no candle, so their first pass runs
# in a crate of copies of their files alone (target/mutants/alone-quant and
# alone-spec: 2-4 s a mutant instead of 15-60 s), with the same tests as in
# trainlab (quant::, spec::). MUTANTS_ALONE=0 runs it in the whole crate instead.
#
# The tree is never mutated in place: cargo-mutants copies it to a scratch
# directory. Its builds go to a private target directory (target/mutants/target,
# seeded once from target/release so only trainlab itself is recompiled per
# mutant), never into target/release, so other builds of this tree are neither
# blocked nor invalidated. One job at a time. Results: target/mutants/out/<module>.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

if ! command -v cargo-mutants >/dev/null; then
    echo "cargo-mutants is not installed: run  cargo install --locked cargo-mutants" >&2
    exit 2
fi

# The core modules (docs/testing.md): a change to one runs its mutants first.
CORE=(src/train/optim.rs src/train/clip.rs src/train/schedule.rs
      src/train/early_stopping.rs src/train/loss_watch.rs src/train/checkpoint.rs
      src/train/rl/tabular.rs src/train/rl/dqn.rs src/study src/quant
      src/data/maze/solve.rs src/data/maze/env.rs src/spec/validate.rs
      src/spec/validate_rl.rs)
# --last-commit runs only when the core lines the last commit changed are at
# most this many; a larger change runs scripts/mutants.sh on its modules by hand.
MAX_CI_LINES="${MUTANTS_MAX_LINES:-200}"
# ...and gives cargo-mutants at most this long (CI's time budget).
CI_TIMEOUT="${MUTANTS_TIMEOUT:-15m}"

list=()
diff_file=""
last_commit=0
while [ $# -gt 0 ]; do
    case "$1" in
        --list) list=(--list); shift ;;
        --last-commit) last_commit=1; shift ;;
        --in-diff)
            [ $# -ge 2 ] || usage
            diff_file="$2"; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
if [ -z "$diff_file" ] && [ $last_commit = 0 ] && [ $# -eq 0 ]; then
    usage
fi

if [ $last_commit = 1 ]; then
    if ! git rev-parse --verify -q HEAD~1 >/dev/null; then
        echo "mutants: no parent commit in this clone (shallow clone or first commit): nothing to compare, skipped" >&2
        exit 0
    fi
    mkdir -p target/mutants
    diff_file="target/mutants/last-commit.diff"
    git diff HEAD~1 HEAD -- "${CORE[@]}" >"$diff_file"
    changed=$(git diff --numstat HEAD~1 HEAD -- "${CORE[@]}" | awk '{n += $1 + $2} END {print n + 0}')
    if [ "$changed" -eq 0 ]; then
        echo "mutants: the last commit changes no core module: skipped" >&2
        exit 0
    fi
    if [ "$changed" -gt "$MAX_CI_LINES" ]; then
        echo "mutants: the last commit changes $changed lines of core modules (over $MAX_CI_LINES): too many for CI; run scripts/mutants.sh on them before landing (docs/testing.md)" >&2
        exit 0
    fi
    echo "mutants: testing the mutants in the last commit's $changed changed core lines" >&2
    # The build the README's test command reuses: the mutants' target is seeded from it.
    cargo test --release --no-run -q
fi

# The integration test binaries that exercise a module (every library test
# runs for every mutant: all of them take about 13 s). `faults` fills a disk
# under a run (checkpoints that cannot be written); it needs root for its
# tmpfs mounts and skips itself otherwise.
tests_for() {
    case "$1" in
        src/train/rl/*) echo "rl_runs resume_runs" ;;
        src/train/*)  echo "train_runs resume_runs faults" ;;
        src/quant/*)  echo "compress_runs" ;;
        src/study/slurm.rs) echo "study_runs slurm_runs" ;;
        src/study/tensorboard.rs) echo "study_runs tensorboard" ;;
        src/study/controller/*) echo "study_runs controller" ;;
        src/study/*)  echo "study_runs" ;;
        src/data/maze/*) echo "rl_runs" ;;
        src/spec/*)   echo "cli" ;;
        *)            echo "" ;;
    esac
}

# The library tests of a module's area (test-name filters): the module's own
# tests and those of its direct users. The first, quick pass.
lib_filter_for() {
    case "$1" in
        src/train/rl/*) echo "train:: data::maze" ;;
        src/train/*)  echo "train::" ;;
        src/quant/*)  echo "quant:: compress::" ;;
        src/study/controller/*) echo "study::controller" ;;
        src/study/*)  echo "study::" ;;
        src/data/maze/*) echo "data::maze train::rl spec::maze" ;;
        src/spec/*)   echo "spec::" ;;
        *)            echo "" ;;
    esac
}

base="target/mutants"

# For a module of the int8 kernels or of the spec, makes the crate of copies
# (see the top) and prints its folder; fails for any other module, or with
# MUTANTS_ALONE=0. Copies come from MUTANTS_DIR when it is set; module paths
# stay as in trainlab, so the tests compile unchanged.
alone_crate() { # MODULE
    local kind files deps
    case "$1" in
        src/quant/kernel.rs|src/quant/steps.rs|src/quant/fused.rs)
            kind=quant
            files="quant/kernel.rs quant/steps.rs quant/fused.rs util/simd.rs util/rng.rs"
            deps="rayon" ;;
        src/spec/*)
            kind=spec
            files="spec util/rng.rs util/atomic.rs"
            deps="ron serde serde_json thiserror safetensors" ;;
        *) return 1 ;;
    esac
    [ "${MUTANTS_ALONE:-1}" != 0 ] || return 1
    local from="${MUTANTS_DIR:-$PWD}" dir="$PWD/$base/alone-$kind" f d
    rm -rf "$dir/src" "$dir/experiments"
    mkdir -p "$dir/src/util" "$dir/.cargo"
    for f in $files; do
        mkdir -p "$(dirname "$dir/src/$f")"
        cp -r "$from/src/$f" "$dir/src/$f"
    done
    # The spec's tests load the example experiments.
    [ $kind = spec ] && cp -r "$from/experiments" "$dir/experiments"
    cp "$from/.cargo/mutants.toml" "$dir/.cargo/mutants.toml"
    cp Cargo.lock "$dir/Cargo.lock"
    {
        printf '%s\n' '[package]' 'name = "trainlab"' 'version = "0.0.0"' 'edition = "2024"' '' '[dependencies]'
        # Each dependency as trainlab's Cargo.toml gives it (versions, features).
        for d in $deps; do grep -E "^$d *=" Cargo.toml; done
        printf '%s\n' '' '[dev-dependencies]'
        grep -E '^tempfile *=' Cargo.toml
        printf '%s\n' '' '[profile.release]' 'debug = "line-tables-only"'
    } >"$dir/Cargo.toml"
    {
        printf '%s\n' '//! trainlab modules alone, for mutation testing (scripts/mutants.sh).' '#![allow(dead_code)]'
        if [ $kind = quant ]; then
            printf '%s\n' 'pub mod quant {' '    pub mod fused;' '    pub mod kernel;' '    pub mod steps;' '}' \
                'pub mod util {' '    pub mod rng;' '    pub mod simd;' '}'
        else
            printf '%s\n' 'pub mod spec;' 'pub mod util {' '    pub mod atomic;' '    pub mod rng;' '}'
        fi
    } >"$dir/src/lib.rs"
    echo "$dir"
}
private_target="$base/target"
# Seed the private target with the dependencies built in target/release once,
# so the first build there compiles trainlab alone (plain copy, not links:
# rebuilt artifacts must never overwrite target/release's files).
if [ ${#list[@]} -eq 0 ] && [ ! -d "$private_target/release" ] && [ -d target/release ]; then
    echo "seeding $private_target from target/release (once)" >&2
    mkdir -p "$private_target"
    cp -a target/release "$private_target/"
fi
export CARGO_TARGET_DIR="$PWD/$private_target"

# Profile, timeouts, copy rules: .cargo/mutants.toml.
common=(--jobs 1 --no-shuffle)
# MUTANTS_DIR=DIR tests that tree instead of this one (e.g. a `git archive`
# export of a commit while this working tree is mid-edit and does not build).
tree=()
if [ -n "${MUTANTS_DIR:-}" ]; then
    tree=(--dir "$MUTANTS_DIR")
fi

# cargo-mutants exits 3 when any mutant timed out, even if others were missed
# (a timeout outranks a miss): a hang counts as caught, so the verdict is read
# off missed.txt. Prints 2 (some missed), 0 (every mutant caught, some by a
# hang) or the exit code unchanged (0, or an error).
verdict() { # RC, MISSED-FILE
    case $1 in
        2|3) if [ -s "$2" ]; then echo 2; else echo 0; fi ;;
        *) echo "$1" ;;
    esac
}

run() { # NAME, cargo-mutants arguments...
    local name="$1"; shift
    echo "== cargo mutants: $name${CARGO_TARGET_DIR:+ (builds in $CARGO_TARGET_DIR)}" >&2
    mkdir -p "$base/out/$name"
    cargo mutants "${common[@]}" "${list[@]}" -o "$base/out/$name" "$@"
}

if [ -n "$diff_file" ]; then
    # Every test of the library and the integration tests of the touched areas.
    args=(--cargo-arg=--lib)
    for t in $(grep -E '^\+\+\+ b/' "$diff_file" | sed 's|^+++ b/||' | while read -r f; do
        tests_for "$f" | tr ' ' '\n'
    done | sort -u); do
        args+=("--cargo-arg=--test=$t")
    done
    rc=0
    if [ $last_commit = 1 ]; then
        mkdir -p "$base/out/in-diff"
        timeout "$CI_TIMEOUT" cargo mutants "${common[@]}" "${tree[@]}" -o "$base/out/in-diff" \
            --in-diff "$diff_file" "${args[@]}" || rc=$?
    else
        run in-diff "${tree[@]}" --in-diff "$diff_file" "${args[@]}" || rc=$?
    fi
    out="$base/out/in-diff/mutants.out"
    [ $rc = 3 ] && [ -s "$out/missed.txt" ] && rc=2
    case $rc in
        0) echo "mutants: every mutant of the changed lines was caught" >&2 ;;
        1) echo "mutants: cargo-mutants could not run (bad arguments or the tree does not build)" >&2 ;;
        2) echo "mutants: these mutants of the changed core lines survived every test:" >&2
           sed 's/^/    /' "$out/missed.txt" >&2
           echo "  add a test that pins the value each one changes, or list it as equivalent in docs/testing.md" >&2 ;;
        3) echo "mutants: every mutant was caught; some by making the tests hang past the timeout ($out/timeout.txt)" >&2
           rc=0 ;;
        4) echo "mutants: the tests fail on the unmutated tree; fix them first" >&2 ;;
        124) echo "mutants: stopped after $CI_TIMEOUT (CI's budget), not a verdict; run scripts/mutants.sh on the changed modules locally" >&2
             rc=0 ;;
        *) echo "mutants: cargo-mutants exited with $rc (see $out/debug.log)" >&2 ;;
    esac
    exit $rc
fi

status=0
for module in "$@"; do
    module="${module#./}"
    case "$module" in src/*) ;; *) module="src/$module" ;; esac
    case "$module" in *.rs) ;; *) module="$module.rs" ;; esac
    if [ ! -f "$module" ]; then
        echo "no such module: $module (give a path like src/train/clip.rs)" >&2
        status=2
        continue
    fi
    name="$(echo "${module#src/}" | tr '/' '_' | sed 's/\.rs$//')"
    # Pass 1: the library test binary alone (no integration test, no binary,
    # no bench is built per mutant), only the tests of the module's area.
    filter=($(lib_filter_for "$module"))
    rc=0
    where=("${tree[@]}") target_dir="$CARGO_TARGET_DIR"
    if alone=$(alone_crate "$module"); then
        where=(--dir "$alone") target_dir="$alone/target"
    fi
    CARGO_TARGET_DIR="$target_dir" run "$name" "${where[@]}" --file "$module" \
        --cargo-arg=--lib -- -- "${filter[@]}" || rc=$?
    missed="$base/out/$name/mutants.out/missed.txt"
    rc=$(verdict $rc "$missed")
    if [ ${#list[@]} -gt 0 ] || [ $rc != 2 ]; then
        [ $rc -gt $status ] && status=$rc
        continue
    fi
    # Pass 2: the survivors against every library test and the integration
    # tests of the area. Each name is matched exactly (regex-escaped).
    echo "mutants: $(wc -l <"$missed") survived the $name area's library tests; re-checking them with the whole library and its integration tests" >&2
    args=(--cargo-arg=--lib)
    if [ "${MUTANTS_LIB_ONLY:-0}" != 1 ]; then
        for t in $(tests_for "$module"); do args+=("--cargo-arg=--test=$t"); done
    fi
    while read -r m; do
        args+=(--re "^$(printf '%s' "$m" | sed 's/[][\\.*^$(){}+?|]/\\&/g')\$")
    done <"$missed"
    rc=0
    run "$name-wide" "${tree[@]}" --file "$module" "${args[@]}" || rc=$?
    rc=$(verdict $rc "$base/out/$name-wide/mutants.out/missed.txt")
    [ $rc -gt $status ] && status=$rc
done
exit $status
