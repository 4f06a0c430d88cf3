#!/usr/bin/env bash
# The bundled model pcdms-street from a fresh clone: the recipe of docs/street-benchmark.md, every step
# in order. Each training command resumes from its last checkpoint when run again, so after an interruption
# run this script again: finished steps are skipped (their outputs exist), the current one resumes.
# On a GPU, add accelerate's launcher or --set training.mixed_precision=bf16 as you like; nothing else changes.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "+ $*"; "$@"; }
[ -f street/street.json ] || run pcdms data street --out street
[ -f street-encoders/dinov2/config.json ] || run pcdms encoders street-encoders --inception --data street --clip-dim 64
[ -f runs/vae-street/model/config.json ] || run pcdms train vae --config configs/vae-street.yaml
[ -f runs/prior-street/model/model_index.json ] || run pcdms train prior --config configs/prior-street.yaml
[ -f runs/inpaint-street/model/model_index.json ] || run pcdms train inpaint --config configs/inpaint-street.yaml
# Stage 3 learns from stage 2's images of all 6,287 training pairs (a rerun skips those already written).
run pcdms sample inpaint --model runs/inpaint-street/model --clip street-encoders/clip --data street --split train \
    --steps 10 --guidance 1 --batch-size 64 --out samples/street-coarse-train
[ -f runs/refine-street/model/model_index.json ] || run pcdms train refine --config configs/refine-street.yaml
# The settings it samples best with, chosen on 80 training pairs (docs/street-benchmark.md): stage 2 unguided,
# stage 3 from stage 2's image noised to 0.3 of the schedule.
run pcdms convert trained --prior runs/prior-street/model --inpaint runs/inpaint-street/model \
    --refine runs/refine-street/model --clip street-encoders/clip --out src/pcdms/assets/models/pcdms-street \
    --sampling inpaint_guidance=1 --sampling refine_strength=0.3
