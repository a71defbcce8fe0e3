#!/usr/bin/env bash
# The whole strong-teacher evidence of the README's "Where AKD starts to pay off", in order, resumable:
#   1. the ResNet-56 teacher (configs/teacher_resnet56.flags, then its second and third LR cycles,
#      configs/teacher_resnet56_cycle{2,3}.flags), copied to benchmarks/teachers/ when it is done, its record
#      (benchmarks/teacher_record.py) in benchmarks/results/teacher_resnet56_cifar10.*;
#   2. the ResNet-20 TAKD assistant (configs/assistant_resnet20.flags), likewise;
#   3. the studies at 45, 15 and 30 student epochs (configs/study_{long,short,mid}.flags), 2 seeds x 4 methods;
#   4. the phase-2 learning-rate ablation at 15 epochs (--phase2_learning_rate=0.01 for every method);
#   5. the budget curve and the ablation table (benchmarks/budget_curve.py).
# Steps 3-4 run in two lanes at once, each pinned to half of the cores, sharing out the runs (see in_lanes below;
# logs in $RUNS/lane_{a,b}.log).
# Every step skips what has finished and resumes what was killed, so run the same command again after a kill:
#   TFDS_DATA_DIR=../shared/tensorflow_datasets nohup bash benchmarks/budget_study.sh > ~/akd_runs/study.log 2>&1 &
# and stop it with: pkill -f budget_study.sh; pkill -f 'benchmarks.cifar_study|akd_tf.main'
# then, before the machine goes, carry the unfinished runs' checkpoints and the teacher views in the work tree
# (restored here at the start): bash benchmarks/study_carry.sh save
# Workdirs live under $AKD_RUNS (default ~/akd_runs), outside the work tree; results land in benchmarks/results/.
# A finished student run's record also lands in benchmarks/results/runs/<study>/<run>/ (commit it): a later
# session on a machine without $AKD_RUNS takes the run from there instead of training it again (it happened).
# Where the study stands, from the workdirs (finished runs, epochs of the others, means so far):
#   python -m benchmarks.study_progress --studies=$HOME/akd_runs/study_long,... --flagfiles=configs/study_long.flags,... \
#       --output=benchmarks/results/budget_study_progress
# About 10 hours on 2 CPU cores after the teacher on the machine whose per-core speeds are given above in_lanes;
# about 27 on the AVX2-only machines of the later sessions (840 epochs at ~230 s per epoch per lane).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${AKD_RUNS:-$HOME/akd_runs}"
VIEWS="$RUNS/teacher_views"
mkdir -p "$RUNS" benchmarks/teachers
say() { echo "[$(date +%H:%M:%S)] budget_study: $*"; }
bash benchmarks/study_carry.sh restore  # what an earlier machine saved, if this one lacks it
RECORD=(metrics.json history_student.csv flags.txt)  # a run's record, kept beside a shipped model

# A shipped model: train it (or resume) unless its file exists, then copy the run's student.keras and record.
ship() {  # ship <flagfile> <workdir name> <file under benchmarks/teachers> [extra flags...]
  local flagfile=$1 name=$2 file=$3; shift 3
  local target="benchmarks/teachers/$file" workdir="$RUNS/$name"
  if [[ -f "$target" ]]; then say "$target exists"; return; fi
  if [[ ! -f "$workdir/metrics.json" ]]; then
    say "training $name ($flagfile)"
    python -m akd_tf.main --flagfile="$flagfile" --workdir="$workdir" "$@"
  fi
  cp "$workdir/student.keras" "$target"
  for f in "${RECORD[@]}"; do cp "$workdir/$f" "benchmarks/teachers/${file%.keras}_$f"; done
  say "shipped $target"
}

# The teacher: 30 epochs, then a second learning-rate cycle of 15 from those weights (the first reached 87.19 %).
if [[ ! -f benchmarks/teachers/resnet56_cifar10.keras && ! -f "$RUNS/teacher_resnet56/metrics.json" ]]; then
  say "training teacher_resnet56 (configs/teacher_resnet56.flags)"
  python -m akd_tf.main --flagfile=configs/teacher_resnet56.flags --workdir="$RUNS/teacher_resnet56"
fi
ship configs/teacher_resnet56_cycle2.flags teacher_resnet56_cycle2 resnet56_cifar10.keras \
  --student_init="$RUNS/teacher_resnet56/student.keras"
for f in "${RECORD[@]}"; do  # the first cycle's record, beside the shipped file (once: $RUNS may be gone since)
  [[ -f "benchmarks/teachers/resnet56_cifar10_cycle1_$f" ]] || cp "$RUNS/teacher_resnet56/$f" "benchmarks/teachers/resnet56_cifar10_cycle1_$f"
done
# The second cycle reached 87.48 %, short of 88 %: a third, 30 epochs from 0.05, replaces it when it has finished
# (the second cycle's record stays beside it as resnet56_cifar10_cycle2_*). It must come before the assistant and
# the studies, which distil from the shipped teacher.
if [[ ! -f benchmarks/teachers/resnet56_cifar10_cycle2_metrics.json ]]; then
  if [[ ! -f "$RUNS/teacher_resnet56_cycle3/metrics.json" ]]; then
    say "training teacher_resnet56_cycle3 (configs/teacher_resnet56_cycle3.flags)"
    python -m akd_tf.main --flagfile=configs/teacher_resnet56_cycle3.flags --workdir="$RUNS/teacher_resnet56_cycle3" \
      --student_init="$RUNS/teacher_resnet56_cycle2/student.keras"
  fi
  # The better cycle by best validation accuracy is shipped (never chosen on test); both records stay.
  if python -c "import json, sys; val = lambda p: json.load(open(p))['phases']['training']['best_val_accuracy']
sys.exit(val('$RUNS/teacher_resnet56_cycle3/metrics.json') < val('benchmarks/teachers/resnet56_cifar10_metrics.json'))"; then
    for f in "${RECORD[@]}"; do
      mv "benchmarks/teachers/resnet56_cifar10_$f" "benchmarks/teachers/resnet56_cifar10_cycle2_$f"
    done
    rm -f benchmarks/teachers/resnet56_cifar10.keras
    ship configs/teacher_resnet56_cycle3.flags teacher_resnet56_cycle3 resnet56_cifar10.keras
  else
    say "cycle 3 validated below cycle 2: cycle 2 stays shipped"
    for f in "${RECORD[@]}"; do
      cp "benchmarks/teachers/resnet56_cifar10_$f" "benchmarks/teachers/resnet56_cifar10_cycle2_$f"
      cp "$RUNS/teacher_resnet56_cycle3/$f" "benchmarks/teachers/resnet56_cifar10_cycle3_$f"
    done
  fi
fi
# The teacher's record among the results: a table row per cycle and the accuracy over all 75 epochs.
T=benchmarks/teachers/resnet56_cifar10
python -m benchmarks.teacher_record --cycles="${T}_cycle1,${T}_cycle2,$T" --output=benchmarks/results/teacher_resnet56_cifar10
# The assistant (95 ResNet-20 epochs), alone: TAKD's students need it.
ship configs/assistant_resnet20.flags assistant_resnet20 assistant_resnet20_cifar10.keras --teacher_views_cache="$VIEWS"
# The studies and the ablation: 840 ResNet-8 epochs. TensorFlow spreads one small ResNet poorly over cores
# (measured here: ResNet-8 trains at 1,080 img/s on both cores, at 654 + 670 img/s as two processes pinned to one
# core each), so two lanes run at once, each pinned to half of the cores, and share out the runs: both walk the
# same studies in the same order, longest runs first, and each run is trained by the first lane to reach it (the
# other skips it: study_runs.run_main's lock). No lane waits for the other until the last runs; a study's table is
# written by the lane that finishes its last run, and again below. AKD_LANES=1 runs one lane.
study() {  # study <flagfile budget> <workdir name> [extra flags...]
  local budget=$1 name=$2; shift 2
  say "study $name (configs/study_$budget.flags) $*"
  python -m benchmarks.cifar_study --flagfile="configs/study_$budget.flags" --workdir="$RUNS/$name" \
    --teacher_views_cache="$VIEWS" --records="benchmarks/results/runs/$name" \
    --output="benchmarks/results/cifar_$name" "$@"
}
# Each: <flagfile budget> <workdir name> [extra flags]. The ablation: every method restarts at 0.01 at the
# phase-2 epoch, at 15 epochs.
STUDIES=("long study_long" "mid study_mid" "short study_short" "short study_short_phase2_lr0.01 --phase2_learning_rate=0.01")
lane() {  # a failed run stops its study in this lane, not the lane: the other studies go on
  local spec
  for spec in "${STUDIES[@]}"; do
    # shellcheck disable=SC2086  # the spec's words are the arguments
    study $spec || say "study ${spec#* } stopped in this lane (a run failed: see its study.log); going on"
  done
}
lane_a() { lane; }
lane_b() { lane; }
in_lanes() {  # in_lanes <function> <function>: both at once, each pinned to half of the cores, logged apart
  local cores; cores=$(nproc)
  if (( cores < 2 )) || [[ "${AKD_LANES:-2}" == 1 ]]; then "$1"; return; fi
  local half=$((cores / 2)) a b
  ( taskset -pc "0-$((half - 1))" "$BASHPID" > /dev/null; "$1" ) > "$RUNS/$1.log" 2>&1 & a=$!
  ( taskset -pc "$half-$((cores - 1))" "$BASHPID" > /dev/null; "$2" ) > "$RUNS/$2.log" 2>&1 & b=$!
  say "$1 on cores 0-$((half - 1)) (log: $RUNS/$1.log), $2 on cores $half-$((cores - 1)) (log: $RUNS/$2.log)"
  wait "$a" "$b"
  say "$1 and $2 done"
}
in_lanes lane_a lane_b
for spec in "${STUDIES[@]}"; do  # the tables, from the finished runs (a run a lane left unfinished is trained here)
  # shellcheck disable=SC2086
  study $spec
done

python -m benchmarks.budget_curve --studies=benchmarks/results/cifar_study_short.json,benchmarks/results/cifar_study_mid.json,benchmarks/results/cifar_study_long.json \
  --output=benchmarks/results/budget_curve
python -m benchmarks.budget_curve --noplot --ablation --labels="restart at 0.1 (recipe),restart at 0.01" \
  --studies=benchmarks/results/cifar_study_short.json,benchmarks/results/cifar_study_short_phase2_lr0.01.json \
  --output=benchmarks/results/phase2_lr_ablation
say "done"
