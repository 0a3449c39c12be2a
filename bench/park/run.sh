#!/usr/bin/env bash
# Call park benchmarks for Orbit (loopback only). See NOTES.md.
#   1. park-and-retrieve cycles/s (ladder)          PARTS=cycles
#   2. many calls parked at once with music          PARTS=many
#   3. recall timer accuracy                         PARTS=recall
#   4. park -> NOTIFY latency to group watchers      PARTS=notify
#   5. notification fan-out, thousands of phones     PARTS=fanout
# Every knob below can be set from the environment.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-python3}
SIPP=${SIPP:-/usr/bin/sipp}
ORBIT_BIN=${ORBIT_BIN:-$REPO/target/release/orbit}

QUICK=${QUICK:-0}
if [[ "$QUICK" == 1 ]]; then
  RATES=${RATES:-"50 200"}
  DURATION=${DURATION:-5}
  MANY=${MANY:-"200"}
  RECALL_N=${RECALL_N:-200}
  NOTIFY_RATES=${NOTIFY_RATES:-"50"}
  NOTIFY_DURATION=${NOTIFY_DURATION:-5}
  WINDOW=${WINDOW:-5}
  PARKERS=${PARKERS:-1000}
  FANOUT_EXTENSIONS=${FANOUT_EXTENSIONS:-500}
  FANOUT_RATES=${FANOUT_RATES:-"50"}
  FANOUT_DURATION=${FANOUT_DURATION:-5}
else
  RATES=${RATES:-"100 250 500 750 1000 1250 1500"}
  DURATION=${DURATION:-30}
  MANY=${MANY:-"1000 5000 8000 10000"}
  RECALL_N=${RECALL_N:-"5000"}
  NOTIFY_RATES=${NOTIFY_RATES:-"10 50"}
  NOTIFY_DURATION=${NOTIFY_DURATION:-30}
  WINDOW=${WINDOW:-20}
  PARKERS=${PARKERS:-10000}
  FANOUT_EXTENSIONS=${FANOUT_EXTENSIONS:-5000}
  FANOUT_RATES=${FANOUT_RATES:-"50"}
  FANOUT_DURATION=${FANOUT_DURATION:-30}
fi
FANOUT_KEYS=${FANOUT_KEYS:-5}
PARTS=${PARTS:-"cycles many recall notify fanout"}
STOP_AFTER_FAILS=${STOP_AFTER_FAILS:-2}
DELAY_MS=${DELAY_MS:-1000}        # caller answered -> retriever dials *88<ext>
HOLD_MS=${HOLD_MS:-1000}          # retriever: 200 -> BYE
PARK_RATE=${PARK_RATE:-500}       # calls/s while filling the park (part 2)
RECALL_RATE=${RECALL_RATE:-1000}  # calls/s while parking for the recall test (part 3)
RECALL_S=${RECALL_S:-10}
GROUP_SIZE=${GROUP_SIZE:-100}
WATCHERS=${WATCHERS:-100}
RECV_TIMEOUT_MS=${RECV_TIMEOUT_MS:-5000}
QUIET=${QUIET:-1}
QUIET_PCT=${QUIET_PCT:-10}
if [[ "$QUICK" == 1 ]]; then QUIET_WAIT=${QUIET_WAIT:-20}; else QUIET_WAIT=${QUIET_WAIT:-300}; fi

DOMAIN=${DOMAIN:-bench.test}
PW_PREFIX=${PW_PREFIX:-benchpw}
ORBIT_TOKEN=${ORBIT_TOKEN:-bench-secret}
ORBIT_SIP_PORT=${ORBIT_SIP_PORT:-47260}
ORBIT_HTTP_PORT=${ORBIT_HTTP_PORT:-47280}
# Orbit's media range stays below every port the benchmark binds (47000+)
ORBIT_RTP_PORTS=${ORBIT_RTP_PORTS:-10000-46999}
PARKER_PORT=${PARKER_PORT:-47262}

PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-0}
UAC_CPU=${UAC_CPU:-1}

RESDIR=${RESDIR:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
DATA=$RESDIR/data

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for t in "$SIPP" "$PY" taskset ss curl; do command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"; done
[[ -x "$ORBIT_BIN" ]] || die "$ORBIT_BIN not found (cargo build --release --locked)"
[[ $(nproc) -ge 2 ]] || PIN=0
if [[ "$PIN" == 1 ]]; then SRV_PIN=(taskset -c "$SERVER_CPU"); UAC_ARGS=(--uac-cpu "$UAC_CPU"); REG_CPU=(--cpu "$UAC_CPU"); else SRV_PIN=(); UAC_ARGS=(); REG_CPU=(); fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$RESDIR"
{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$REPO" diff --quiet HEAD -- crates 2>/dev/null || echo ' (crates/ has uncommitted changes)')"
  echo "sipp: $($SIPP -v 2>&1 | grep -m1 -o 'SIPp v[^ ]*' || true)"
  echo "orbit: $ORBIT_BIN $(stat -c '%y' "$ORBIT_BIN")"
  echo "PARTS=$PARTS QUICK=$QUICK RATES=$RATES DURATION=$DURATION DELAY_MS=$DELAY_MS HOLD_MS=$HOLD_MS"
  echo "MANY=$MANY PARK_RATE=$PARK_RATE WINDOW=$WINDOW RECALL_N=$RECALL_N RECALL_RATE=$RECALL_RATE RECALL_S=$RECALL_S"
  echo "NOTIFY_RATES=$NOTIFY_RATES NOTIFY_DURATION=$NOTIFY_DURATION GROUP_SIZE=$GROUP_SIZE WATCHERS=$WATCHERS"
  echo "FANOUT_EXTENSIONS=$FANOUT_EXTENSIONS FANOUT_KEYS=$FANOUT_KEYS FANOUT_RATES=$FANOUT_RATES FANOUT_DURATION=$FANOUT_DURATION"
  echo "PARKERS=$PARKERS ORBIT_RTP_PORTS=$ORBIT_RTP_PORTS PIN=$PIN SERVER_CPU=$SERVER_CPU UAC_CPU=$UAC_CPU"
  echo "ulimit -n: $(ulimit -n)"
  echo "loadavg: $(cat /proc/loadavg)"
} > "$RESDIR/env.txt"
cat "$RESDIR/env.txt" >&2

$PY "$HERE/bench.py" gen --out "$DATA" --domain "$DOMAIN" --pw-prefix "$PW_PREFIX" --parkers "$PARKERS" >&2

SERVER_PID=""
stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

port_busy() { [[ -n $(ss -Hln "( sport = :$1 )" 2>/dev/null) ]]; }
for p in $ORBIT_SIP_PORT $ORBIT_HTTP_PORT $PARKER_PORT; do port_busy "$p" && die "port $p busy"; done

# Every step gets a fresh Orbit (its own data directory and log under
# orbit/<step>/), seeded and with the parkers registered: what an
# overloaded step leaves behind (calls whose sipp gave up without a BYE,
# with RTP timeouts off) must not weigh on the next one.
boot() {
  local name=$1
  stop_server
  mkdir -p "$RESDIR/orbit/$name/data"
  ORBIT_ADMIN_TOKEN=$ORBIT_TOKEN "${SRV_PIN[@]}" "$ORBIT_BIN" serve \
      --data-dir "$RESDIR/orbit/$name/data" \
      --sip-listen "127.0.0.1:$ORBIT_SIP_PORT" \
      --http-listen "127.0.0.1:$ORBIT_HTTP_PORT" \
      --rtp-ports "$ORBIT_RTP_PORTS" \
      --config "$HERE/orbit.toml" > "$RESDIR/orbit/$name/server.log" 2>&1 &
  SERVER_PID=$!
  $PY "$HERE/bench.py" wait-http "127.0.0.1:$ORBIT_HTTP_PORT" --timeout 30 --pid "$SERVER_PID" \
    || { tail -5 "$RESDIR/orbit/$name/server.log" >&2; die "orbit did not become healthy"; }
  log "orbit up for $name (pid $SERVER_PID, fd limit $(awk '/Max open files/{print $4}' /proc/$SERVER_PID/limits))"
  $PY "$HERE/bench.py" seed --http "127.0.0.1:$ORBIT_HTTP_PORT" --token "$ORBIT_TOKEN" --domain "$DOMAIN" \
      --numbers "$DATA/numbers.txt" --pw-prefix "$PW_PREFIX" >&2 || die "seeding failed"
  $PY "$HERE/bench.py" register --server "127.0.0.1:$ORBIT_SIP_PORT" --scenario "$HERE/register.xml" \
      --users "$DATA/parkers.csv" --outdir "$RESDIR/register/$name" --domain "$DOMAIN" --sipp "$SIPP" \
      --port "$PARKER_PORT" --rate 1000 "${REG_CPU[@]}" >&2 \
    || die "registering the parkers failed (see $RESDIR/register/$name)"
  COMMON=(--server "127.0.0.1:$ORBIT_SIP_PORT" --http "127.0.0.1:$ORBIT_HTTP_PORT" --token "$ORBIT_TOKEN"
          --domain "$DOMAIN" --outdir "$RESDIR" --data "$DATA" --here "$HERE" --sipp "$SIPP"
          --pw-prefix "$PW_PREFIX" --server-pid "$SERVER_PID" --parker-port "$PARKER_PORT"
          --recv-timeout-ms "$RECV_TIMEOUT_MS" "${UAC_ARGS[@]}")
}

B=($PY "$HERE/bench.py")
# The NOTIFY receivers of parts 4 and 5 are busy Python loops: on Orbit's
# core they would take its time, so they run beside the sipps.
if [[ "$PIN" == 1 ]]; then BW=(taskset -c "$UAC_CPU" "${B[@]}"); else BW=("${B[@]}"); fi
quiet() { [[ "$QUIET" == 1 ]] && { "${B[@]}" quiet --threshold "$QUIET_PCT" --max-wait "$QUIET_WAIT" || true; }; return 0; }

# smoke: 10 cycles at 10/s must all work
boot smoke
line=$("${B[@]}" cycles "${COMMON[@]}" --rate 10 --duration 1 --label smoke --delay-ms "$DELAY_MS" --hold-ms 200) || true
log "smoke: $line"
[[ "$line" == *"sustained yes"* ]] || die "smoke test failed: see $RESDIR/smoke/"

for part in $PARTS; do
  case $part in
    cycles)
      fails=0
      for rate in $RATES; do
        boot "cycles-$rate"
        quiet
        line=$("${B[@]}" cycles "${COMMON[@]}" --rate "$rate" --duration "$DURATION" \
               --delay-ms "$DELAY_MS" --hold-ms "$HOLD_MS") || true
        log "$line"
        if [[ "$line" == *"sustained yes"* ]]; then fails=0; else fails=$((fails + 1)); fi
        [[ "$STOP_AFTER_FAILS" -gt 0 && "$fails" -ge "$STOP_AFTER_FAILS" ]] && { log "stopping the ladder"; break; }
      done ;;
    many)
      for n in $MANY; do
        boot "many-$n"
        quiet
        line=$("${B[@]}" many "${COMMON[@]}" --count "$n" --park-rate "$PARK_RATE" --window "$WINDOW") || true
        log "$line"
      done ;;
    recall)
      for n in $RECALL_N; do
        boot "recall-$n"
        quiet
        line=$("${B[@]}" recall "${COMMON[@]}" --count "$n" --park-rate "$RECALL_RATE" --recall-s "$RECALL_S") || true
        log "$line"
      done ;;
    notify)
      for r in $NOTIFY_RATES; do
        boot "notify-$r"
        quiet
        line=$("${BW[@]}" notify "${COMMON[@]}" --rate "$r" --duration "$NOTIFY_DURATION" \
               --group-size "$GROUP_SIZE" --watchers "$WATCHERS" --delay-ms "$DELAY_MS" --hold-ms "$HOLD_MS") || true
        log "$line"
      done ;;
    fanout)
      for r in $FANOUT_RATES; do
        boot "fanout-$r"
        quiet
        line=$("${BW[@]}" fanout "${COMMON[@]}" --rate "$r" --duration "$FANOUT_DURATION" \
               --extensions "$FANOUT_EXTENSIONS" --keys "$FANOUT_KEYS" --group-size "$GROUP_SIZE" \
               --delay-ms "$DELAY_MS" --hold-ms "$HOLD_MS") || true
        log "$line"
      done ;;
    *) log "unknown part $part" ;;
  esac
done

stop_server
echo
echo "Results: $RESDIR"
"${B[@]}" report "$RESDIR"
