#!/usr/bin/env bash
# The chaos phase of tests/run-all.sh: one short Jepsen-style run of a real three-node cluster
# in network namespaces (perdura-chaos run), kill + partition + pause + loss + delay, then heal,
# convergence, final read and the nine invariant checkers. Needs root (namespaces, nft) and
# the `nft` tool; both are what CI has (the deps phase installs nftables and faketime).
#
#   tests/chaos-smoke.sh                       # seed 1, 60 s
#   PERDURA_CHAOS_SEED=7 PERDURA_CHAOS_DURATION=90s tests/chaos-smoke.sh
#
# Output (history.jsonl, final-read.json, summary.json, repro.txt, node logs) goes to
# $PERDURA_TEST_TMP/chaos/seed-<seed>. Exit status is perdura-chaos run's: 0 valid,
# 1 an invariant was violated or the healed cluster did not converge, 2 the harness failed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-/var/tmp/perdura-target}"
BIN="${PERDURA_BIN:-$TARGET/debug/perdura}"
CHAOS="${PERDURA_CHAOS_BIN:-$TARGET/debug/perdura-chaos}"
SEED="${PERDURA_CHAOS_SEED:-1}"
DURATION="${PERDURA_CHAOS_DURATION:-60s}"
FAULTS="${PERDURA_CHAOS_FAULTS:-kill,partition,pause,loss,delay}"
OUT="${PERDURA_TEST_TMP:-/var/tmp/perdura-e2e}/chaos/seed-$SEED"

[ "$(id -u)" = 0 ] || { echo "chaos-smoke: needs root (network namespaces, nft)" >&2; exit 2; }
command -v nft >/dev/null || { echo "chaos-smoke: nft not found (apt-get install nftables)" >&2; exit 2; }
for f in "$BIN" "$CHAOS"; do
  [ -x "$f" ] || { echo "chaos-smoke: $f missing: cargo build --workspace" >&2; exit 2; }
done

rm -rf "$OUT"; mkdir -p "$OUT"
# Leftovers of an interrupted earlier run would only waste a net id; remove them.
"$CHAOS" cleanup
set +e
timeout --kill-after=20 280 "$CHAOS" run --nodes 3 --seed "$SEED" --duration "$DURATION" \
  --faults "$FAULTS" --binary "$BIN" --out "$OUT" 2>&1 | tee "$OUT/run.log"
rc=${PIPESTATUS[0]}
set -e
"$CHAOS" cleanup >/dev/null
if [ "$rc" != 0 ]; then
  echo "chaos-smoke: perdura-chaos run exited $rc; artifacts in $OUT (reproduce: $(cat "$OUT/repro.txt" 2>/dev/null))" >&2
  exit 1
fi
echo "chaos-smoke: valid; artifacts in $OUT"
