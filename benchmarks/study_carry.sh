#!/usr/bin/env bash
# Carries a study's unfinished work to the next machine: the checkpoints of runs not yet finished (~1 MB each)
# and the teacher views (~15 MB per seed, ~17 min of one core to make again), without TensorBoard events or
# models. On this project's machines a session's $HOME has not always outlived it, while the work tree's
# uncommitted files came back with the next session; finished runs need none of this (their records are
# committed, see --records in benchmarks/cifar_study.py).
#   bash benchmarks/study_carry.sh save      # before a session ends, with the study stopped: $RUNS -> .study_carry/
#   bash benchmarks/study_carry.sh restore   # on a new machine, before the study starts: what $RUNS lacks
# .study_carry/ is never committed (binary, replaced at every save). budget_study.sh restores by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${AKD_RUNS:-$HOME/akd_runs}"
CARRY="${AKD_CARRY:-.study_carry}"
say() { echo "[$(date +%H:%M:%S)] study_carry: $*"; }

case "${1:-}" in
  save)
    [[ -d "$RUNS" ]] || { say "nothing to save: $RUNS does not exist"; exit 0; }
    # While the files have their own times: the last attempt of a run started by an older runner (no heartbeats)
    # ends at its directory's last write, which the copy would move to the time of the copy.
    python -m benchmarks.attempts seal "$RUNS"
    rm -rf "$CARRY.new" && mkdir -p "$CARRY.new"
    CARRY_NEW=$(cd "$CARRY.new" && pwd)
    # Modification times are kept (-p), but the work tree's copy between sessions does not keep them: a killed
    # attempt's duration is read from its heartbeats in study_attempts.json (benchmarks/attempts.py).
    (cd "$RUNS" && find . -path '*/tensorboard' -prune -o -type f ! -name '*.keras' ! -name '*.lock' \
      ! -path './partial/*' -print0 | tar --null -cpf - -T -) | tar -xpf - -C "$CARRY_NEW"
    rm -rf "$CARRY" && mv "$CARRY.new" "$CARRY"
    say "saved $(du -sh "$CARRY" | cut -f1) from $RUNS into $CARRY/"
    ;;
  restore)
    [[ -d "$CARRY" ]] || { say "nothing to restore: no $CARRY/"; exit 0; }
    mkdir -p "$RUNS"
    # --skip-old-files: what $RUNS already has (this machine's own newer state) wins.
    tar -C "$CARRY" -cpf - . | tar -xpf - --skip-old-files -C "$RUNS"
    say "restored $CARRY/ into $RUNS (files it already had were kept)"
    ;;
  *)
    echo "usage: bash benchmarks/study_carry.sh save|restore" >&2
    exit 2
    ;;
esac
