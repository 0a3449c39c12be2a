#!/usr/bin/env bash
# SIP REGISTER + digest auth benchmark: Orbit vs Kamailio vs sipp ceiling.
# Loopback only. See NOTES.md. Every knob below can be set from the environment.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-python3}
SIPP=${SIPP:-/usr/bin/sipp}
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}
ORBIT_BIN=${ORBIT_BIN:-$REPO/target/release/orbit}

QUICK=${QUICK:-0}
if [[ "$QUICK" == 1 ]]; then
  RATES=${RATES:-"1000 5000"}
  DURATION=${DURATION:-3}
  COOLDOWN=${COOLDOWN:-1}
else
  RATES=${RATES:-"2000 5000 10000 15000 20000 25000 30000 35000 40000"}
  DURATION=${DURATION:-20}
  COOLDOWN=${COOLDOWN:-3}
fi
# orbit | kamailio (auth_db over db_text) | kamailio_ht (htable auth) | sipp (ceiling)
TARGETS=${TARGETS:-"orbit kamailio kamailio_ht sipp"}
STOP_AFTER_FAILS=${STOP_AFTER_FAILS:-2}   # stop a target's ladder after N failed steps in a row (0 = never)
RECV_TIMEOUT_MS=${RECV_TIMEOUT_MS:-5000}
# before each step wait (up to QUIET_WAIT s) until other processes use
# <= QUIET_PCT % CPU for 3 s in a row; steps where they used more than
# NOISY_PCT % are flagged "(noisy)". QUIET=0 disables the wait.
QUIET=${QUIET:-1}
QUIET_PCT=${QUIET_PCT:-10}
NOISY_PCT=${NOISY_PCT:-10}
if [[ "$QUICK" == 1 ]]; then QUIET_WAIT=${QUIET_WAIT:-20}; else QUIET_WAIT=${QUIET_WAIT:-300}; fi

USERS=${USERS:-3000}
FIRST_USER=${FIRST_USER:-10000}
DOMAIN=${DOMAIN:-bench.test}
# password of user N is "${PW_PREFIX}N" (Orbit requires 8..128 characters)
PW_PREFIX=${PW_PREFIX:-benchpw}

# loopback ports (127.0.0.1 only)
ORBIT_SIP_PORT=${ORBIT_SIP_PORT:-47060}
ORBIT_HTTP_PORT=${ORBIT_HTTP_PORT:-47080}
KAM_PORT=${KAM_PORT:-47061}
UAS_PORT=${UAS_PORT:-47062}
UAC_PORT=${UAC_PORT:-47070}

# CPU pinning: server (or sipp UAS) on SERVER_CPU, sipp UAC on UAC_CPU
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-0}
UAC_CPU=${UAC_CPU:-1}

KAM_CHILDREN=${KAM_CHILDREN:-2}   # UDP worker processes
KAM_SHM=${KAM_SHM:-256}           # shared memory, MB
KAM_PKG=${KAM_PKG:-16}            # private memory per process, MB
KAM_AUTH=${KAM_AUTH:-db}          # auth of target "kamailio": db (auth_db over db_text) | htable

# admin token for seeding (Orbit refuses tokens shorter than 8 characters)
ORBIT_TOKEN=${ORBIT_TOKEN:-bench-secret}

RESDIR=${RESDIR:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
DATA=$RESDIR/data

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ checks
for t in "$SIPP" "$PY" taskset ss curl; do
  command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"
done
[[ $(nproc) -ge 2 ]] || PIN=0
if [[ "$PIN" == 1 ]]; then
  SRV_PIN=(taskset -c "$SERVER_CPU"); UAC_PIN_ARG=(--uac-cpu "$UAC_CPU")
else
  SRV_PIN=(); UAC_PIN_ARG=()
fi
ulimit -n 65536 2>/dev/null || true

mkdir -p "$RESDIR"
{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "sipp: $($SIPP -v 2>&1 | grep -m1 -o 'SIPp v[^ ]*' || true)"
  echo "kamailio: $($KAMAILIO -v 2>/dev/null | head -1 || true)"
  echo "orbit: $ORBIT_BIN $( [[ -x $ORBIT_BIN ]] && stat -c '%y' "$ORBIT_BIN" || echo '(missing)')"
  echo "TARGETS=$TARGETS RATES=$RATES DURATION=$DURATION QUICK=$QUICK"
  echo "USERS=$USERS FIRST_USER=$FIRST_USER DOMAIN=$DOMAIN PW_PREFIX=$PW_PREFIX RECV_TIMEOUT_MS=$RECV_TIMEOUT_MS"
  echo "PIN=$PIN SERVER_CPU=$SERVER_CPU UAC_CPU=$UAC_CPU"
  echo "KAM_CHILDREN=$KAM_CHILDREN KAM_SHM=$KAM_SHM KAM_PKG=$KAM_PKG KAM_AUTH=$KAM_AUTH"
  echo "QUIET=$QUIET QUIET_PCT=$QUIET_PCT NOISY_PCT=$NOISY_PCT QUIET_WAIT=$QUIET_WAIT"
  echo "loadavg: $(cat /proc/loadavg)"
} > "$RESDIR/env.txt"
cat "$RESDIR/env.txt" >&2

$PY "$HERE/bench.py" gen --out "$DATA" --first "$FIRST_USER" --count "$USERS" --domain "$DOMAIN" \
    --pw-prefix "$PW_PREFIX" >&2

# ----------------------------------------------------------- process mgmt
SERVER_PID=""
stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  local pids p i
  # Kamailio forks workers: remember the whole tree, then stop it
  pids=$(ps -o pid= --ppid "$SERVER_PID" 2>/dev/null || true)
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

port_busy() { [[ -n $(ss -Hln "( sport = :$1 )" 2>/dev/null) ]]; }

wait_udp() {  # port timeout_s
  local i
  for i in $(seq $(( $2 * 10 ))); do
    [[ -n $(ss -Hlun "( sport = :$1 )" 2>/dev/null) ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start_orbit() {
  [[ -x "$ORBIT_BIN" ]] || { log "SKIP orbit: $ORBIT_BIN not found (build with cargo build --release)"; return 1; }
  for p in $ORBIT_SIP_PORT $ORBIT_HTTP_PORT; do port_busy "$p" && { log "SKIP orbit: port $p busy"; return 1; }; done
  mkdir -p "$RESDIR/orbit/data"
  ORBIT_ADMIN_TOKEN=$ORBIT_TOKEN "${SRV_PIN[@]}" "$ORBIT_BIN" serve \
      --data-dir "$RESDIR/orbit/data" \
      --sip-listen "127.0.0.1:$ORBIT_SIP_PORT" \
      --http-listen "127.0.0.1:$ORBIT_HTTP_PORT" \
      --config "$HERE/orbit.toml" > "$RESDIR/orbit/server.log" 2>&1 &
  SERVER_PID=$!
  $PY "$HERE/bench.py" wait-http "127.0.0.1:$ORBIT_HTTP_PORT" --timeout 30 --pid "$SERVER_PID" \
    || { log "orbit did not become healthy; see $RESDIR/orbit/server.log:"; tail -5 "$RESDIR/orbit/server.log" >&2; return 1; }
  $PY "$HERE/bench.py" seed-orbit "127.0.0.1:$ORBIT_HTTP_PORT" --token "$ORBIT_TOKEN" \
      --domain "$DOMAIN" --first "$FIRST_USER" --count "$USERS" --pw-prefix "$PW_PREFIX" >&2 \
    || { log "orbit seeding failed"; return 1; }
  wait_udp "$ORBIT_SIP_PORT" 10 || { log "orbit SIP port not bound"; return 1; }
  TARGET_ADDR=127.0.0.1:$ORBIT_SIP_PORT
}

start_kamailio() {  # [name] [auth]: name = result dir, auth = db | htable
  local name=${1:-kamailio} auth=${2:-$KAM_AUTH}
  command -v "$KAMAILIO" >/dev/null || { log "SKIP $name: $KAMAILIO not found"; return 1; }
  port_busy "$KAM_PORT" && { log "SKIP $name: port $KAM_PORT busy"; return 1; }
  local dir=$RESDIR/$name defs=()
  local run=$dir/run
  mkdir -p "$run"
  # the db_text tables are copied so usrloc/db_text may write to them freely
  cp -r "$DATA/dbtext" "$dir/dbtext"
  [[ "$auth" == htable ]] && defs+=(-A WITH_HTABLE_AUTH)
  "${SRV_PIN[@]}" "$KAMAILIO" -f "$HERE/kamailio.cfg" -DD -E \
      -n "$KAM_CHILDREN" -m "$KAM_SHM" -M "$KAM_PKG" \
      -l "udp:127.0.0.1:$KAM_PORT" -Y "$run" -w "$run" \
      -A "DBURL=\"text://$dir/dbtext\"" "${defs[@]}" \
      > "$dir/server.log" 2>&1 &
  SERVER_PID=$!
  wait_udp "$KAM_PORT" 15 || { log "$name did not start; see $dir/server.log"; return 1; }
  sleep 1   # let all worker processes finish forking
  TARGET_ADDR=127.0.0.1:$KAM_PORT
}

# Kamailio with credentials in an in-memory hash table (htable module) and
# pv_www_authenticate(): the fast Kamailio set-up, no per-request db_text scan
start_kamailio_ht() { start_kamailio kamailio_ht htable; }

start_sipp() {
  port_busy "$UAS_PORT" && { log "SKIP sipp: port $UAS_PORT busy"; return 1; }
  mkdir -p "$RESDIR/sipp/uas"
  cp "$HERE/uas_register.xml" "$RESDIR/sipp/uas/"
  local nrates; nrates=$(wc -w <<<"$RATES")
  local bound=$(( nrates * (DURATION + COOLDOWN + RECV_TIMEOUT_MS / 1000 + 20) + 60 ))
  ( cd "$RESDIR/sipp/uas" && exec "${SRV_PIN[@]}" "$SIPP" -sf uas_register.xml \
      -i 127.0.0.1 -p "$UAS_PORT" -t u1 -buff_size 4194304 -nostdin \
      -max_recv_loops 100000 -timeout "${bound}s" -trace_screen \
      > "$RESDIR/sipp/uas/sipp.out" 2>&1 ) &
  SERVER_PID=$!
  wait_udp "$UAS_PORT" 10 || { log "sipp UAS did not start"; return 1; }
  TARGET_ADDR=127.0.0.1:$UAS_PORT
}

step() {  # target rate duration [extra args]
  local t=$1 r=$2 d=$3; shift 3
  $PY "$HERE/bench.py" step --target "$t" --server "$TARGET_ADDR" --server-pid "$SERVER_PID" \
      --rate "$r" --duration "$d" --outdir "$RESDIR" \
      --scenario "$HERE/register_auth.xml" --users "$DATA/users.csv" \
      --uac-port "$UAC_PORT" --recv-timeout-ms "$RECV_TIMEOUT_MS" --sipp "$SIPP" \
      --noisy-pct "$NOISY_PCT" --domain "$DOMAIN" \
      "${UAC_PIN_ARG[@]}" "$@"
}

# ------------------------------------------------------------------- main
for target in $TARGETS; do
  log "=== $target ==="
  TARGET_ADDR=""
  if ! "start_$target"; then
    stop_server
    echo "$target: not run (see log above)" >> "$RESDIR/skipped.txt"
    continue
  fi
  log "$target up at $TARGET_ADDR (pid $SERVER_PID)"
  # smoke: 50 registrations at 50/s must all succeed (also warms caches)
  if ! step "$target" 50 1 --label smoke --trace-err --expect-ok >/dev/null; then
    log "$target: smoke test failed, see $RESDIR/$target/smoke/ (errors.log, sipp.out)"
    stop_server
    echo "$target: smoke test failed" >> "$RESDIR/skipped.txt"
    continue
  fi
  fails=0
  for rate in $RATES; do
    sleep "$COOLDOWN"
    if [[ "$QUIET" == 1 ]]; then
      $PY "$HERE/bench.py" quiet --threshold "$QUIET_PCT" --max-wait "$QUIET_WAIT" || true
    fi
    line=$(step "$target" "$rate" "$DURATION") || true
    log "$line"
    if [[ "$line" == *" yes"* ]]; then fails=0; else fails=$((fails + 1)); fi
    if [[ "$STOP_AFTER_FAILS" -gt 0 && "$fails" -ge "$STOP_AFTER_FAILS" ]]; then
      log "$target: $fails failed steps in a row, stopping its ladder"
      break
    fi
  done
  stop_server
done

echo
echo "Results: $RESDIR"
$PY "$HERE/bench.py" report "$RESDIR"
[[ -f "$RESDIR/skipped.txt" ]] && { echo; echo "Not run:"; cat "$RESDIR/skipped.txt"; }
exit 0
