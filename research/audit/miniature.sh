#!/usr/bin/env bash
# The audit of the shipped checkpoints on the miniature (issue 76, item 6): 1,000 held-out questions per family on a
# seed no stage of the recipe draws from (2026), `r3lab eval --audit` on r3-tiny-sft and r3-tiny-rgrpo (without tool
# necessity's swaps, which the card's oracle and random rows cover), then `r3lab report diff` between the two runs.
# The results.json files are copied to assets/checkpoints/audit/ (what the card's audit block and lesson 47 read),
# the block written into the card.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/audit-miniature}
R3LAB=${R3LAB:-.venv/bin/r3lab}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
[ -f "$OUT/data/samples.jsonl" ] || $R3LAB data build --out "$OUT/data" --n 3000 --seed 2026 \
    --families read_one compare_two control --filter false
for m in sft rgrpo; do
  [ -f "$OUT/$m/results.json" ] || /usr/bin/time -v $R3LAB eval --policy assets/checkpoints/r3-tiny-$m \
      --data "$OUT/data" --audit --necessity false --batch-rows 64 --out "$OUT/$m" 2> "$OUT/$m.time"
  mkdir -p assets/checkpoints/audit && cp "$OUT/$m/results.json" "assets/checkpoints/audit/$m.json"
done
$R3LAB report diff "$OUT/sft" "$OUT/rgrpo" --out "$OUT/diff"
.venv/bin/python -m r3lab.replication.audit_card
