#!/usr/bin/env bash
# Omniglot Conv-4, within one alphabet, support and query by different drawers, with the head rule
# calibrated at export and with the trained rule (RESULTS.md, "Omniglot Conv-4 within one alphabet").
#
#   benchmarks/omniglot_head_rule.sh CHECKPOINT OUT_DIR ZIP...
#
# CHECKPOINT: a best.pt of the default recipe, e.g. from
#   anil-edge bench recipes --minutes 15 --data ZIP... --out /tmp/om ways-60-cosine
set -euo pipefail
checkpoint=${1:?usage: omniglot_head_rule.sh CHECKPOINT OUT_DIR ZIP...}
out=${2:?usage: omniglot_head_rule.sh CHECKPOINT OUT_DIR ZIP...}
shift 2
mkdir -p "$out/calibrated" "$out/trained"
anil-edge export "$checkpoint" --out "$out/calibrated/model.onnx" --data "$@"
anil-edge export "$checkpoint" --out "$out/trained/model.onnx" --data "$@" --head-rule trained
echo "# $(lscpu | sed -n 's/^Model name:[[:space:]]*//p')"
for rule in calibrated trained; do
  for ways in 5 20; do
    for shots in 1 3; do
      printf '%s %s-way %s-shot: ' "$rule" "$ways" "$shots"
      anil-edge evaluate "$out/$rule/model.onnx" --data "$@" --ways "$ways" --shots "$shots" \
          --within-group --distinct-drawers --tasks 600 2>/dev/null | tail -1
    done
  done
done
