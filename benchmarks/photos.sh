#!/usr/bin/env bash
# The photo benchmark (benchmarks/RESULTS.md, "Photos"): cross-design emoji, one run per recipe.
#
#   scripts/fetch_emoji.sh /work/emoji/data
#   benchmarks/photos.sh /work/emoji/data OUT [OMNIGLOT_ZIP...]
#
# Training recipes get equal CPU time: each one's iterations are the budget (BUDGET_S seconds,
# default 480) over its seconds per meta-step as measured on this machine (STEP_S_* below, from
# the auto speed line of `anil-edge train`, Xeon Sapphire Rapids, 2 cores). Every score is per
# image through the exported ONNX model and the runtime (`anil-edge evaluate`, `bench openset`).
set -euo pipefail
emoji=${1:?usage: benchmarks/photos.sh EMOJI_DIR OUT [OMNIGLOT_ZIP...]}
out=${2:?usage: benchmarks/photos.sh EMOJI_DIR OUT [OMNIGLOT_ZIP...]}
shift 2
omniglot=("$@")
bin=${ANIL_EDGE:-.venv/bin/anil-edge}
budget=${BUDGET_S:-480}
STEP_S_CONV4=0.285 STEP_S_MNV3=0.351 STEP_S_LITE0=2.12  # s/it, 10-way 1-shot, meta-batch 4 (64 / 128 / 128 px)
its() { python3 -c "print(max(1, round($budget / $1)))"; }
data=("$emoji"/*)
common=(--dataset emoji --data "${data[@]}" --channels 3 --ways 10 --shots 1 --queries 1 --meta-batch 4
        --eval-tasks 200 --no-progress)
lite0=(--backbone timm:tf_efficientnet_lite0 --pretrained efficientnet-lite0 --input-size 128)
mnv3=(--backbone timm:mobilenetv3_small_100 --input-size 128)
mkdir -p "$out"
lscpu | grep "Model name" | tee "$out/cpu.txt"

train() {  # NAME ARGS...: train (unless done) and export with INT8
    local name=$1; shift
    [ -f "$out/$name/best.pt" ] || "$bin" train "${common[@]}" "$@" --out-dir "$out/$name" 2>&1 | tail -3
    [ -f "$out/$name/model.onnx" ] || { "$bin" export "$out/$name/best.pt" --int8 2>&1 \
        || "$bin" export "$out/$name/best.pt" 2>&1; } | grep -v "^wrote" | tail -4  # FP32 only if INT8 is refused
}
train conv4-scratch --backbone conv4 --input-size 64 --iterations "$(its $STEP_S_CONV4)" --eval-every 200
train lite0-imprint "${lite0[@]}" --iterations 0
train lite0-anil "${lite0[@]}" --iterations "$(its $STEP_S_LITE0)" --eval-every 50 --freeze-stages 2 \
    --backbone-lr-scale 0.1
train mnv3s-anil-scratch "${mnv3[@]}" --iterations "$(its $STEP_S_MNV3)" --eval-every 200

for name in conv4-scratch lite0-imprint lite0-anil mnv3s-anil-scratch; do
    for precision in model model.int8; do
        [ -f "$out/$name/$precision.onnx" ] || continue
        for ways in 5 20; do
            "$bin" evaluate "$out/$name/$precision.onnx" --split test --within-group --distinct-drawers \
                --ways "$ways" --shots 1 --queries 1 --tasks 600 --json > "$out/$name/$precision.eval$ways.json"
        done
    done
    "$bin" bench openset "$out/$name/model.onnx" --episodes 600 --ways 5 --shots 1 --queries 1 > "$out/$name/openset.txt"
done
if [ ${#omniglot[@]} -gt 0 ]; then  # does ImageNet pretraining help handwriting? (no meta-training)
    "$bin" train --dataset omniglot --data "${omniglot[@]}" --channels 3 "${lite0[@]}" --ways 20 --iterations 0 \
        --eval-tasks 200 --no-progress --out-dir "$out/omniglot-lite0-imprint" 2>&1 | tail -1
    "$bin" export "$out/omniglot-lite0-imprint/best.pt" 2>&1 | tail -1
    "$bin" evaluate "$out/omniglot-lite0-imprint/model.onnx" --split test --within-group --distinct-drawers \
        --ways 20 --shots 1 --tasks 600 --json > "$out/omniglot-lite0-imprint/eval20.json"
fi
.venv/bin/python benchmarks/photos_table.py "$out"
