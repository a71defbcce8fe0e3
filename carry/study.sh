#!/usr/bin/env bash
# Operations, not the product: keeps the 90-epoch CIFAR-10 study (configs/study_xlong.flags) going across working
# sessions whose machines, and their $HOME, do not outlive them. Nothing in akd_tf/, export/ or benchmarks/ imports
# or calls this folder; a user resumes a study by running its command again (benchmarks/cifar_study.py).
#
#   bash carry/study.sh start [extra cifar_study flags]   # pinned checkout, restore carry/state/, start in the background
#   bash carry/study.sh status                              # the log's last lines and each unfinished run's epochs
#   bash carry/study.sh save [--running]                    # stop it (or not); unfinished runs' checkpoints -> carry/state/
#
# The study runs from a checkout pinned at $PIN (the commit its first runs were made with), outside the work tree,
# with its workdirs in $RUNS; finished runs' records go straight into this work tree's
# benchmarks/results/runs/study_xlong/ (commit them), where the study also finds the runs already done.
# carry/state/ holds what an unfinished run needs to resume (its newest checkpoint, config, history and attempt
# times, ~1 MB a run), never models, TensorBoard events or the teacher views (~15 MB a seed, made again on resume).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIN=3a591aa94df41e8aefe6b64b0ae889e0a29f7399
STUDY="${AKD_STUDY:-$HOME/akd_study}"
RUNS="${AKD_RUNS:-$HOME/akd_runs}"
STATE="$ROOT/carry/state"
LOG="$RUNS/study_xlong.log"
say() { echo "[$(date -u +%H:%M:%S)] carry/study: $*"; }

pinned_checkout() {
  if [[ ! -d "$STUDY" ]]; then
    git -C "$ROOT" worktree prune
    git -C "$ROOT" worktree add --detach "$STUDY" "$PIN" >/dev/null
    say "pinned checkout $STUDY at ${PIN:0:7}"
  fi
  local head; head=$(git -C "$STUDY" rev-parse HEAD)
  [[ "$head" == "$PIN" ]] || { say "$STUDY is at $head, not $PIN"; exit 1; }
}

case "${1:-}" in
  start)
    shift
    pinned_checkout
    if pgrep -f "benchmarks.cifar_study.*study_xlong" >/dev/null; then say "already running (see $LOG)"; exit 0; fi
    mkdir -p "$RUNS"
    if [[ -d "$STATE" ]]; then  # what this machine already has (its own newer state) wins
      tar -C "$STATE" -cpf - . | tar -xpf - --skip-old-files -C "$RUNS"
      say "restored $STATE into $RUNS"
    fi
    cd "$STUDY"
    TFDS_DATA_DIR="${TFDS_DATA_DIR:-$ROOT/../shared/tensorflow_datasets}" setsid nohup python -m benchmarks.cifar_study \
      --flagfile=configs/study_xlong.flags --workdir="$RUNS/study_xlong" --teacher_views_cache="$RUNS/teacher_views" \
      --records="$ROOT/benchmarks/results/runs/study_xlong" --output="$RUNS/tables/cifar_study_xlong" "$@" \
      >> "$LOG" 2>&1 < /dev/null &
    say "started (pid $!), log $LOG"
    ;;
  status)
    grep -v "^I0000\|^W0000\|^E0000\|WARNING\|To enable" "$LOG" 2>/dev/null | tail -5 || true
    for run in "$RUNS"/study_xlong/*/; do
      [[ -f "$run/study_run.json" || ! -d "$run/checkpoints" ]] && continue
      say "$(basename "$run"): $(cd "$run/checkpoints" && ls -d */epoch-* 2>/dev/null | tail -1) (epoch index from 0)"
    done
    ;;
  save)
    if [[ "${2:-}" != "--running" ]]; then  # --running: a snapshot of the newest checkpoints, the study goes on
      pkill -f "benchmarks.cifar_study.*study_xlong" || true
      pkill -f "akd_tf.main --flagfile=$RUNS/study_xlong" || true
      sleep 5
    fi
    rm -rf "$STATE.new" && mkdir -p "$STATE.new"
    for run in "$RUNS"/study_xlong/*/; do
      name=$(basename "$run")
      [[ -f "$run/study_run.json" || ! -d "$run/checkpoints" ]] && continue  # finished (its record is committed) or not begun
      (cd "$RUNS" && find "study_xlong/$name" -path '*/tensorboard' -prune -o -type f ! -name '*.keras' \
        ! -name '*.lock' ! -name '*.npz' -print0; find "study_xlong/$name/checkpoints" -name callbacks.npz -print0) \
        | (cd "$RUNS" && tar --null -cpf - -T -) | tar -xpf - -C "$STATE.new"
    done
    rm -rf "$STATE" && mv "$STATE.new" "$STATE"
    say "saved $(du -sh "$STATE" | cut -f1) into $STATE (commit it)"
    ;;
  *)
    echo "usage: bash carry/study.sh start|status|save" >&2
    exit 2
    ;;
esac
