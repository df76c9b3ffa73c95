#!/usr/bin/env bash
# THE one command: install what the tests need and run them all (Rust unit/integration tests,
# then the Python and TypeScript SDK end-to-end suites against the perdura binary).
#
#   tests/run-all.sh                         # everything (what CI runs, via .ci/run)
#   tests/run-all.sh --only python           # one phase, or a comma list: --only build,python
#   tests/run-all.sh --skip cargo-test       # everything but some phases
#   tests/run-all.sh --list                  # list the phases
#   PERDURA_ONLY=python,typescript tests/run-all.sh
#
# Phases, in order: deps build cargo-test py-setup ts-setup python typescript cluster chaos
#
# Environment:
#   CARGO_TARGET_DIR    cargo target dir, default /var/tmp/perdura-target (kept across runs so the
#                       bundled RocksDB is built once per machine)
#   PERDURA_VENV        Python venv for the e2e tests, default /var/tmp/perdura-venv
#   PERDURA_SERVER_CMD  server command the e2e tests start, default
#                       "$CARGO_TARGET_DIR/debug/perdura server start-dev"; e.g.
#                       PERDURA_SERVER_CMD="temporal server start-dev" runs the same tests against
#                       the reference Temporal dev server
#   PERDURA_TEST_TMP    where e2e tests keep server logs and data, default /var/tmp/perdura-e2e
#   PYTEST_ARGS         extra pytest arguments (e.g. "-k order -x"), for the python and cluster phases
#   PERDURA_BIN         perdura binary of the cluster phase (three `perdura server start` nodes),
#                       default "$CARGO_TARGET_DIR/debug/perdura"
#
# Runs as root non-interactively on a fresh Debian machine (CI=true, no stdin). Fails fast.
set -euo pipefail

ALL_PHASES=(deps build cargo-test py-setup ts-setup python typescript cluster chaos)

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/perdura-target}"
export PERDURA_VENV="${PERDURA_VENV:-/var/tmp/perdura-venv}"
export PERDURA_TEST_TMP="${PERDURA_TEST_TMP:-/var/tmp/perdura-e2e}"
export CI="${CI:-}"
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

only="${PERDURA_ONLY:-}"
skip=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    --skip) skip="$2"; shift 2 ;;
    --skip=*) skip="${1#--skip=}"; shift ;;
    --list) printf '%s\n' "${ALL_PHASES[@]}"; exit 0 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run-all.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
for p in ${only//,/ } ${skip//,/ }; do
  [[ " ${ALL_PHASES[*]} " == *" $p "* ]] || { echo "run-all.sh: unknown phase '$p' (phases: ${ALL_PHASES[*]})" >&2; exit 2; }
done
wanted() {
  local p="$1"
  if [ -n "$only" ]; then [[ ",$only," == *",$p,"* ]] || return 1; fi
  if [ -n "$skip" ]; then [[ ",$skip," == *",$p,"* ]] && return 1; fi
  return 0
}

LOGDIR="$PERDURA_TEST_TMP/logs"
mkdir -p "$LOGDIR"
SUMMARY=()
PASSED=0
FAILED=0
RUN_START=$SECONDS

summary() {
  echo
  echo "==================== run-all summary ===================="
  for line in "${SUMMARY[@]}"; do echo "  $line"; done
  echo "  total: $((SECONDS - RUN_START))s   logs: $LOGDIR"
  echo "========================================================="
}

die_phase() {
  local phase="$1" secs="$2" msg="$3"
  SUMMARY+=("$(printf '%-11s FAILED  %5ss  %s' "$phase" "$secs" "$msg")")
  summary
  echo "tests: $PASSED passed, $((FAILED > 0 ? FAILED : 1)) failed"
  echo "run-all.sh: FAILED in phase '$phase': $msg" >&2
  exit 1
}

# run_phase NAME DESCRIPTION FUNCTION
run_phase() {
  local phase="$1" fn="$2"
  if ! wanted "$phase"; then
    SUMMARY+=("$(printf '%-11s skipped' "$phase")")
    return 0
  fi
  echo
  echo "==================== phase: $phase ===================="
  local t0=$SECONDS
  PHASE_NOTE=""
  if "$fn"; then
    SUMMARY+=("$(printf '%-11s ok      %5ss  %s' "$phase" "$((SECONDS - t0))" "$PHASE_NOTE")")
  else
    die_phase "$phase" "$((SECONDS - t0))" "${PHASE_NOTE:-see output above}"
  fi
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

# ------------------------------------------------------------------ phases

phase_deps() {
  # ccache: tools/cc and tools/cxx (.cargo/config.toml) compile the bundled RocksDB through it when present.
  # nftables, iproute2, faketime: the chaos phase (network namespaces, nft partitions, clock skew).
  # strace: the fsync-error fault and chaos-tests/tests/fsync_error_node.rs (EIO injected into fsync).
  local pkgs=(libclang1-14 libclang-common-14-dev ccache nftables iproute2 faketime strace) missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    as_root apt-get update -qq || { PHASE_NOTE="apt-get update failed"; return 1; }
    as_root apt-get install -y -qq "${missing[@]}" </dev/null || { PHASE_NOTE="apt-get install ${missing[*]} failed"; return 1; }
  else
    echo "apt packages present: ${pkgs[*]}"
  fi
  command -v cargo >/dev/null || { PHASE_NOTE="cargo not found (install Rust with rustup)"; return 1; }
  if command -v rustup >/dev/null; then
    local installed
    installed="$(rustup component list --installed 2>/dev/null || true)"
    for c in rustfmt clippy; do
      if ! grep -q "^$c" <<<"$installed"; then
        rustup component add "$c" || { PHASE_NOTE="rustup component add $c failed"; return 1; }
      fi
    done
  fi
  for t in python3 node npm; do
    command -v "$t" >/dev/null || { PHASE_NOTE="$t not found"; return 1; }
  done
  PHASE_NOTE="$(cargo --version | cut -d' ' -f1-2), python $(python3 -c 'import sys; print(sys.version.split()[0])'), node $(node --version)"
}

phase_build() {
  echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
  cargo build --workspace --all-targets 2>&1 | tee "$LOGDIR/cargo-build.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then PHASE_NOTE="cargo build --workspace --all-targets failed (log: $LOGDIR/cargo-build.log)"; return 1; fi
  if [ ! -x "$CARGO_TARGET_DIR/debug/perdura" ]; then
    PHASE_NOTE="build succeeded but $CARGO_TARGET_DIR/debug/perdura is missing"; return 1
  fi
  PHASE_NOTE="$CARGO_TARGET_DIR/debug/perdura"
}

phase_cargo_test() {
  cargo test --workspace 2>&1 | tee "$LOGDIR/cargo-test.log"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$LOGDIR/cargo-test.log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' "$LOGDIR/cargo-test.log" | awk '{s+=$1} END {print s+0}')
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  PHASE_NOTE="$p passed, $f failed"
  if [ "$rc" != 0 ]; then PHASE_NOTE="cargo test --workspace failed: $PHASE_NOTE (log: $LOGDIR/cargo-test.log)"; return 1; fi
}

phase_py_setup() {
  local req="$REPO/tests/sdk-python/requirements.txt" stamp want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  stamp="$PERDURA_VENV/.perdura-requirements.sha256"
  if [ ! -x "$PERDURA_VENV/bin/python" ]; then
    python3 -m venv "$PERDURA_VENV" || { PHASE_NOTE="python3 -m venv $PERDURA_VENV failed"; return 1; }
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && "$PERDURA_VENV/bin/python" -c 'import temporalio, pytest, pytest_timeout' 2>/dev/null; then
    echo "venv $PERDURA_VENV already satisfies $req"
  else
    "$PERDURA_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req" </dev/null \
      || { PHASE_NOTE="pip install -r tests/sdk-python/requirements.txt failed"; return 1; }
    echo "$want" >"$stamp"
  fi
  PHASE_NOTE="$("$PERDURA_VENV/bin/python" -c 'import temporalio.service, importlib.metadata as m; print("temporalio", m.version("temporalio"))')"
}

phase_ts_setup() {
  local dir="$REPO/tests/sdk-typescript" want stamp
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  stamp="$dir/node_modules/.perdura-lock.sha256"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "node_modules already matches package-lock.json"
  else
    (cd "$dir" && npm ci --no-audit --no-fund </dev/null) || { PHASE_NOTE="npm ci in tests/sdk-typescript failed"; return 1; }
    echo "$want" >"$stamp"
  fi
  (cd "$dir" && npx --no-install tsc --noEmit) || { PHASE_NOTE="TypeScript type check (tsc --noEmit) failed"; return 1; }
  PHASE_NOTE="@temporalio/worker $(node -p "require('$dir/node_modules/@temporalio/worker/package.json').version")"
}

describe_server() {
  if [ -n "${PERDURA_SERVER_CMD:-}" ]; then echo "server: $PERDURA_SERVER_CMD"; else echo "server: $CARGO_TARGET_DIR/debug/perdura server start-dev"; fi
}

phase_python() {
  describe_server
  [ -x "$PERDURA_VENV/bin/python" ] || { PHASE_NOTE="no venv at $PERDURA_VENV: run the py-setup phase"; return 1; }
  mkdir -p "$PERDURA_TEST_TMP"
  local log="$LOGDIR/python-e2e.log" rc
  set +e
  (cd "$REPO/tests/sdk-python" && timeout --kill-after=30 1500 "$PERDURA_VENV/bin/python" -m pytest \
     --basetemp="$PERDURA_TEST_TMP/python" ${PYTEST_ARGS:-} </dev/null) 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  local p f e
  p=$(tail -n 3 "$log" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+' | head -1); p=${p:-0}
  f=$(tail -n 3 "$log" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' | head -1); f=${f:-0}
  e=$(tail -n 3 "$log" | grep -Eo '[0-9]+ errors?' | grep -Eo '[0-9]+' | head -1); e=${e:-0}
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f + e))
  PHASE_NOTE="$p passed, $f failed, $e errors (server logs under $PERDURA_TEST_TMP/python)"
  if [ "$rc" = 124 ]; then PHASE_NOTE="pytest timed out: $PHASE_NOTE"; fi
  [ "$rc" = 0 ] || { PHASE_NOTE="Python e2e suite failed (exit $rc): $PHASE_NOTE; log $log"; return 1; }
  [ "$p" -gt 0 ] || { PHASE_NOTE="Python e2e suite ran no test"; return 1; }
}

phase_typescript() {
  describe_server
  local dir="$REPO/tests/sdk-typescript" log="$LOGDIR/typescript-e2e.log" rc
  [ -d "$dir/node_modules" ] || { PHASE_NOTE="no node_modules: run the ts-setup phase"; return 1; }
  rm -rf "$PERDURA_TEST_TMP/typescript"; mkdir -p "$PERDURA_TEST_TMP/typescript"
  set +e
  (cd "$dir" && PERDURA_TEST_TMP="$PERDURA_TEST_TMP/typescript" timeout --kill-after=30 1200 \
     npm test --silent </dev/null) 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  local p f
  p=$(grep -E '^(# |ℹ )pass [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+'); p=${p:-0}
  f=$(grep -E '^(# |ℹ )fail [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+'); f=${f:-0}
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  PHASE_NOTE="$p passed, $f failed (server logs under $PERDURA_TEST_TMP/typescript)"
  if [ "$rc" = 124 ]; then PHASE_NOTE="node --test timed out: $PHASE_NOTE"; fi
  [ "$rc" = 0 ] || { PHASE_NOTE="TypeScript e2e suite failed (exit $rc): $PHASE_NOTE; log $log"; return 1; }
  [ "$p" -gt 0 ] || { PHASE_NOTE="TypeScript e2e suite ran no test"; return 1; }
}

phase_cluster() {
  local bin="${PERDURA_BIN:-$CARGO_TARGET_DIR/debug/perdura}"
  echo "server: $bin server start (three nodes on 127.0.0.1)"
  [ -x "$PERDURA_VENV/bin/python" ] || { PHASE_NOTE="no venv at $PERDURA_VENV: run the py-setup phase"; return 1; }
  [ -x "$bin" ] || { PHASE_NOTE="no binary $bin: run the build phase or set PERDURA_BIN"; return 1; }
  rm -rf "$PERDURA_TEST_TMP/cluster"; mkdir -p "$PERDURA_TEST_TMP"
  local log="$LOGDIR/cluster-e2e.log" rc
  set +e
  (cd "$REPO/tests/cluster" && PERDURA_BIN="$bin" timeout --kill-after=30 1200 "$PERDURA_VENV/bin/python" \
     -m pytest --basetemp="$PERDURA_TEST_TMP/cluster" ${PYTEST_ARGS:-} </dev/null) 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  local p f e
  p=$(tail -n 3 "$log" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+' | head -1); p=${p:-0}
  f=$(tail -n 3 "$log" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' | head -1); f=${f:-0}
  e=$(tail -n 3 "$log" | grep -Eo '[0-9]+ errors?' | grep -Eo '[0-9]+' | head -1); e=${e:-0}
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f + e))
  PHASE_NOTE="$p passed, $f failed, $e errors (node logs under $PERDURA_TEST_TMP/cluster)"
  local failover
  failover=$(grep -Eo 'FAILOVER: .*after the kill' "$log" | grep -Eo '[0-9.]+s after' | head -1)
  [ -n "$failover" ] && PHASE_NOTE="$PHASE_NOTE; new leaders ${failover% after} after kill -9"
  if [ "$rc" = 124 ]; then PHASE_NOTE="pytest timed out: $PHASE_NOTE"; fi
  [ "$rc" = 0 ] || { PHASE_NOTE="cluster e2e suite failed (exit $rc): $PHASE_NOTE; log $log"; return 1; }
  [ "$p" -gt 0 ] || { PHASE_NOTE="cluster e2e suite ran no test"; return 1; }
}

phase_chaos() {
  if [ -x "$REPO/tests/chaos-smoke.sh" ] || [ -f "$REPO/tests/chaos-smoke.sh" ]; then
    local log="$LOGDIR/chaos-smoke.log"
    set +e
    bash "$REPO/tests/chaos-smoke.sh" </dev/null 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" = 0 ] || { PHASE_NOTE="tests/chaos-smoke.sh failed (log $log)"; return 1; }
    PHASE_NOTE="$(grep -Eo 'workload [a-z-]+: [0-9]+ ok, [0-9]+ fail, [0-9]+ info' "$log" | head -1); $(grep -Eo 'nemesis: [0-9]+ episodes' "$log" | head -1); valid"
  else
    PHASE_NOTE="no tests/chaos-smoke.sh yet"
  fi
}

run_phase deps phase_deps
run_phase build phase_build
run_phase cargo-test phase_cargo_test
run_phase py-setup phase_py_setup
run_phase ts-setup phase_ts_setup
run_phase python phase_python
run_phase typescript phase_typescript
run_phase cluster phase_cluster
run_phase chaos phase_chaos

summary
echo "tests: $PASSED passed, $FAILED failed"
