#!/usr/bin/env bash
# The bundled model pcdms-street from a fresh clone: the recipe of docs/street-benchmark.md, every step
# in order. Each training command resumes from its last checkpoint when run again, so after an interruption
# run this script again: finished steps are skipped (their outputs exist), the current one resumes.
#
# Where torch sees a GPU, training runs in bf16 there; on a CPU the configs' steps take days. The bundled
# model had 10.5 minutes of one H200, with time limits that stopped each stage early (docs/street-benchmark.md).
#   STAGE_SECONDS=N  stop each training stage after N seconds at the latest ("prior=60 inpaint=240": per
#                    stage): it writes a checkpoint where it stands, and the stage's model is exported from it
#                    (for a GPU lent for a fixed time)
#   TRAIN_ARGS=...   more arguments for every training command ("--set training.max_steps=20": a dry run)
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "+ $*"; "$@"; }
precision=()
if python3 -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    precision=(--set training.mixed_precision=bf16)
fi
read -r -a extra <<<"${TRAIN_ARGS:-}"

train() {  # train STAGE: configs/STAGE-street.yaml into runs/STAGE-street, unless its model is there
    local stage=$1 out=runs/$1-street step limit="${STAGE_SECONDS:-}" setting
    [ -f "$out/model/model_index.json" ] && return
    local command=(pcdms train "$stage" --config "configs/$stage-street.yaml" "${precision[@]}" "${extra[@]}")
    for setting in $limit; do
        case $setting in "$stage="*) limit=${setting#*=} ;; *=*) ;; *) limit=$setting ;; esac
    done
    case $limit in *=* | "") run "${command[@]}"; return ;; esac
    echo "+ timeout -s INT $limit ${command[*]}"
    local status=0
    timeout -s INT "$limit" "${command[@]}" || status=$?
    [ "$status" -eq 0 ] && return
    [ "$status" -eq 124 ] || exit "$status"
    # Stopped by the time limit (Ctrl-C's signal): export the model from the checkpoint it wrote.
    step=$(find "$out/checkpoints" -maxdepth 1 -name 'step-*' 2>/dev/null | sed 's/.*step-//' | sort -n | tail -1)
    [ -n "$step" ] || { echo "$stage: stopped before its first checkpoint" >&2; exit 1; }
    run "${command[@]}" --set "training.max_steps=$step"
}

[ -f street/street.json ] || run pcdms data street --out street
[ -f street-encoders/dinov2/config.json ] || run pcdms encoders street-encoders --inception --data street --clip-dim 64
[ -f runs/vae-street/model/config.json ] || run pcdms train vae --config configs/vae-street.yaml
train prior
train inpaint
# Stage 3 learns from stage 2's images of all 6,287 training pairs, sampled as the model samples them
# (unguided, 20 steps); a rerun skips those already written.
run pcdms sample inpaint --model runs/inpaint-street/model --clip street-encoders/clip --data street --split train \
    --steps 20 --guidance 1 --batch-size 256 --out samples/street-coarse-train
train refine
# The settings it samples best with, chosen on 80 training pairs (benchmarks/street_settings.py,
# docs/street-benchmark.md); weights stored in float16, which halves the package.
run pcdms convert trained --prior runs/prior-street/model --inpaint runs/inpaint-street/model \
    --refine runs/refine-street/model --clip street-encoders/clip --out src/pcdms/assets/models/pcdms-street \
    --dtype float16 --sampling inpaint_guidance=1 --sampling refine_strength=0.1
