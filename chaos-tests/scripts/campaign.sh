#!/usr/bin/env bash
# Runs a chaos campaign: one `perdura-chaos run` per line of a plan, one after the other, each
# into its own directory, and never stops at a failed run (its exit status is kept in rc.txt).
# Tabulate the results with `perdura-chaos results <out>/*/`.
#
#   chaos-tests/scripts/campaign.sh PLAN OUT
#
# PLAN lines: `nodes seed duration pace faults` (`#` comments allowed), e.g.
#   3 101 300s fast kill,pause,partition,loss
# Binaries: $PERDURA_BIN and $PERDURA_CHAOS_BIN (default: $CARGO_TARGET_DIR/debug/…); copy them
# somewhere stable first if the tree is being rebuilt during the campaign. Needs root.
set -uo pipefail

PLAN="${1:?plan file}"
OUT="${2:?output directory}"
TARGET="${CARGO_TARGET_DIR:-/var/tmp/perdura-target}"
BIN="${PERDURA_BIN:-$TARGET/debug/perdura}"
CHAOS="${PERDURA_CHAOS_BIN:-$TARGET/debug/perdura-chaos}"
mkdir -p "$OUT"

while read -r nodes seed duration pace faults; do
  case "$nodes" in ''|\#*) continue ;; esac
  dir="$OUT/n$nodes-s$seed"
  if [ -f "$dir/rc.txt" ]; then
    echo "campaign: $dir done already (rc $(cat "$dir/rc.txt")), skipped"
    continue
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  "$CHAOS" cleanup >/dev/null
  echo "campaign: $(date -u +%H:%M:%S) nodes $nodes seed $seed $duration $pace [$faults]"
  timeout --kill-after=30 "$(( ${duration%s} + 600 ))" "$CHAOS" run --nodes "$nodes" --seed "$seed" \
    --duration "$duration" --pace "$pace" --faults "$faults" --binary "$BIN" --out "$dir" \
    > "$dir/run.log" 2>&1
  rc=$?
  echo "$rc" > "$dir/rc.txt"
  echo "campaign: $(date -u +%H:%M:%S) nodes $nodes seed $seed rc $rc: $(tail -1 "$dir/run.log")"
done < "$PLAN"
"$CHAOS" cleanup >/dev/null
