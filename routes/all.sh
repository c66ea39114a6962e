#!/usr/bin/env bash
# `make routes`: every route a class takes, each rebuilt from the repository alone in a fresh environment (no pip
# cache, no browser) with every lesson run through plain papermill in smoke mode: Colab (routes/colab.sh), a wheel
# installed outside the clone (routes/wheel.sh), Binder (binder/verify.sh). One after the other (two cores); each
# route's log in OUT (default runs/routes), and a table of their times at the end.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$REPO/runs/routes}"
mkdir -p "$OUT"
rows=() status=0 json=""
for route in colab:routes/colab.sh wheel:routes/wheel.sh binder:binder/verify.sh; do
  name="${route%%:*}" script="${route#*:}" t=$SECONDS
  echo "[routes] $name: bash $script (log: $OUT/$name.log)"
  bash "$REPO/$script" >"$OUT/$name.log" 2>&1
  rc=$?
  secs=$(( SECONDS - t ))
  passed="$(sed -n "s/.*done: the .* route \([0-9]*\/[0-9]*\).*/\1/p" "$OUT/$name.log" | tail -1)"
  rows+=("| $name | ${passed:-0/0} lessons | $(( secs / 60 )) min $(( secs % 60 )) s | $([ $rc = 0 ] && echo passed || echo "FAILED ($rc)") |")
  [ $rc = 0 ] || { status=1; tail -n 30 "$OUT/$name.log"; }
  load="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)"
  json="$json${json:+, }\"$name\": {\"seconds\": $secs, \"ok\": $([ $rc = 0 ] && echo true || echo false), \"load\": $load}"
done
echo "{$json}" > "$OUT/routes.json"  # python -m r3lab.course.syllabus --routes OUT/routes.json records it (RECORD=1)
{ echo "| route | lessons (smoke, papermill) | time | result |"; echo "|---|---|---|---|"; printf '%s\n' "${rows[@]}"; } \
  | tee "$OUT/summary.md"
exit $status
