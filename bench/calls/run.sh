#!/usr/bin/env bash
# Call set-up + teardown benchmark: Orbit (B2BUA, media anchored) vs
# Kamailio + rtpengine vs Kamailio alone vs the sipp ceiling.
# Loopback only. See NOTES.md. Every knob below can be set from the environment.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-python3}
SIPP=${SIPP:-/usr/bin/sipp}
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}
RTPENGINE=${RTPENGINE:-/usr/bin/rtpengine}
RTPENGINE_CTL=${RTPENGINE_CTL:-/usr/bin/rtpengine-ctl}
ORBIT_BIN=${ORBIT_BIN:-$REPO/target/release/orbit}

QUICK=${QUICK:-0}
if [[ "$QUICK" == 1 ]]; then
  RATES=${RATES:-"100 500"}
  DURATION=${DURATION:-5}
  REPEATS=${REPEATS:-1}
  COOLDOWN=${COOLDOWN:-1}
else
  RATES=${RATES:-"100 500 1000 1250 1500 2000 2250 2500 3000 3500 4000 5000"}
  DURATION=${DURATION:-30}
  REPEATS=${REPEATS:-3}
  COOLDOWN=${COOLDOWN:-3}
fi
# resume an interrupted run: RESDIR=<its dir> REP_FROM=<n> TARGETS=<those left>
# (remove the interrupted repeat's rows of those targets from results.jsonl first)
REP_FROM=${REP_FROM:-1}
# orbit | kamailio_rtpe (Kamailio + rtpengine) | kamailio (no media) | sipp (ceiling)
TARGETS=${TARGETS:-"orbit kamailio_rtpe kamailio sipp"}
HOLD_MS=${HOLD_MS:-1000}                  # pause between ACK and BYE
STOP_AFTER_FAILS=${STOP_AFTER_FAILS:-2}   # stop a ladder after N failed steps in a row (0 = never)
RECV_TIMEOUT_MS=${RECV_TIMEOUT_MS:-5000}
SETTLE=${SETTLE:-3}                       # s after a step before calls left in the PBX are counted
LEAK_WAIT=${LEAK_WAIT:-10}                # if some are, wait up to this long for them to go
QUIET=${QUIET:-1}
QUIET_PCT=${QUIET_PCT:-10}
NOISY_PCT=${NOISY_PCT:-10}
if [[ "$QUICK" == 1 ]]; then QUIET_WAIT=${QUIET_WAIT:-20}; else QUIET_WAIT=${QUIET_WAIT:-300}; fi

CALLERS=${CALLERS:-100}
FIRST_CALLER=${FIRST_CALLER:-20000}
CALLEES=${CALLEES:-100}
FIRST_CALLEE=${FIRST_CALLEE:-30000}
DOMAIN=${DOMAIN:-bench.test}
PW_PREFIX=${PW_PREFIX:-benchpw}

# loopback ports (127.0.0.1 only); the RTP ranges must not overlap
ORBIT_SIP_PORT=${ORBIT_SIP_PORT:-47160}
ORBIT_HTTP_PORT=${ORBIT_HTTP_PORT:-47180}
ORBIT_RTP_PORTS=${ORBIT_RTP_PORTS:-20000-40000}
KAM_PORT=${KAM_PORT:-47161}
RTPE_NG_PORT=${RTPE_NG_PORT:-47223}
RTPE_CLI_PORT=${RTPE_CLI_PORT:-47224}
RTPE_PORTS=${RTPE_PORTS:-48000-64998}
UAS_PORT=${UAS_PORT:-47162}
UAC_PORT=${UAC_PORT:-47170}
UAS_MEDIA_PORT=${UAS_MEDIA_PORT:-47300}
UAC_MEDIA_PORT=${UAC_MEDIA_PORT:-47310}

# CPU pinning: the PBX (Orbit, or Kamailio and rtpengine) on SERVER_CPU, both
# sipp processes (caller UAC and callee UAS) on UAC_CPU
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-0}
UAC_CPU=${UAC_CPU:-1}

KAM_CHILDREN=${KAM_CHILDREN:-4}   # UDP worker processes
KAM_SHM=${KAM_SHM:-512}           # shared memory, MB
KAM_PKG=${KAM_PKG:-16}            # private memory per process, MB
KAM_MAXBUFFER=${KAM_MAXBUFFER:-4194304}  # UDP receive buffer (-b), as Orbit's (4 MB); Kamailio's default is 256 KB
RTPE_THREADS=${RTPE_THREADS:-2}

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
  SRV_PIN=(taskset -c "$SERVER_CPU"); GEN_PIN=(taskset -c "$UAC_CPU"); UAC_PIN_ARG=(--uac-cpu "$UAC_CPU")
else
  SRV_PIN=(); GEN_PIN=(); UAC_PIN_ARG=()
fi
# each call holds 4 UDP sockets in Orbit (2 RTP/RTCP pairs) and in rtpengine
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# rtpengine binds its media sockets with SO_REUSEADDR: a port of its range
# that Kamailio or sipp also uses gets hijacked (SIP then lands in rtpengine)
for range in "$ORBIT_RTP_PORTS" "$RTPE_PORTS"; do
  for p in $ORBIT_SIP_PORT $ORBIT_HTTP_PORT $KAM_PORT $RTPE_NG_PORT $RTPE_CLI_PORT $UAS_PORT $UAC_PORT \
           $UAS_MEDIA_PORT $((UAS_MEDIA_PORT + 3)) $UAC_MEDIA_PORT $((UAC_MEDIA_PORT + 3)); do
    (( p >= ${range%-*} && p <= ${range#*-} )) && die "port $p lies in the RTP range $range"
  done
done

mkdir -p "$RESDIR"
{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "git HEAD now: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none)" \
       "($(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | wc -l) modified files;" \
       "the Orbit binary is whatever was built last: see its time below)"
  echo "sipp: $($SIPP -v 2>&1 | grep -m1 -o 'SIPp v[^ ]*' || true)"
  echo "kamailio: $($KAMAILIO -v 2>/dev/null | head -1 || true)"
  echo "rtpengine: $($RTPENGINE --version 2>&1 | head -1 || true)"
  echo "orbit: $ORBIT_BIN $( [[ -x $ORBIT_BIN ]] && stat -c '%y' "$ORBIT_BIN" || echo '(missing)')"
  echo "TARGETS=$TARGETS RATES=$RATES DURATION=$DURATION REPEATS=$REPEATS HOLD_MS=$HOLD_MS QUICK=$QUICK"
  echo "CALLERS=$CALLERS FIRST_CALLER=$FIRST_CALLER CALLEES=$CALLEES FIRST_CALLEE=$FIRST_CALLEE DOMAIN=$DOMAIN"
  echo "RECV_TIMEOUT_MS=$RECV_TIMEOUT_MS STOP_AFTER_FAILS=$STOP_AFTER_FAILS SETTLE=$SETTLE LEAK_WAIT=$LEAK_WAIT"
  echo "PIN=$PIN SERVER_CPU=$SERVER_CPU UAC_CPU=$UAC_CPU (UAC and UAS)"
  echo "ORBIT_RTP_PORTS=$ORBIT_RTP_PORTS RTPE_PORTS=$RTPE_PORTS RTPE_THREADS=$RTPE_THREADS"
  echo "KAM_CHILDREN=$KAM_CHILDREN KAM_SHM=$KAM_SHM KAM_PKG=$KAM_PKG KAM_MAXBUFFER=$KAM_MAXBUFFER"
  echo "QUIET=$QUIET QUIET_PCT=$QUIET_PCT NOISY_PCT=$NOISY_PCT QUIET_WAIT=$QUIET_WAIT"
  echo "open files limit: $(ulimit -n); ORBIT_LOG=${ORBIT_LOG:-(unset: info)}"
  echo "loadavg: $(cat /proc/loadavg)"
  echo "REP_FROM=$REP_FROM"
} > "$RESDIR/env.new"
[[ -f "$RESDIR/env.txt" ]] && { echo; echo "--- resumed:"; cat "$RESDIR/env.new"; } >> "$RESDIR/env.txt" \
  || mv "$RESDIR/env.new" "$RESDIR/env.txt"
rm -f "$RESDIR/env.new"
cat "$RESDIR/env.txt" >&2

$PY "$HERE/bench.py" gen --out "$DATA" --callers "$CALLERS" --first-caller "$FIRST_CALLER" \
    --callees "$CALLEES" --first-callee "$FIRST_CALLEE" --domain "$DOMAIN" \
    --pw-prefix "$PW_PREFIX" >&2

# ----------------------------------------------------------- process mgmt
SERVER_PIDS=()
stop_server() {
  local pid pids p i
  for pid in "${SERVER_PIDS[@]}"; do
    # Kamailio forks workers: remember the whole tree, then stop it
    pids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

port_busy() { [[ -n $(ss -Hln "( sport = :$1 )" 2>/dev/null) ]]; }

wait_udp() {  # port timeout_s pid
  local i
  for i in $(seq $(( $2 * 10 ))); do
    [[ -n $(ss -Hlun "( sport = :$1 )" 2>/dev/null) ]] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

register_callees() {  # target-dir server-addr
  $PY "$HERE/bench.py" register --server "$2" --port "$UAS_PORT" --users "$DATA/callees.csv" \
      --scenario "$HERE/register_callee.xml" --outdir "$1/register" --domain "$DOMAIN" \
      --sipp "$SIPP" "${UAC_PIN_ARG[@]/--uac-cpu/--cpu}" >&2
}

# what the callers' 200 must carry: c= address, m=audio port range
MEDIA_EXPECT=()

start_orbit() {
  local dir=$1
  [[ -x "$ORBIT_BIN" ]] || { log "SKIP orbit: $ORBIT_BIN not found (build with cargo build --release)"; return 1; }
  for p in $ORBIT_SIP_PORT $ORBIT_HTTP_PORT; do port_busy "$p" && { log "SKIP orbit: port $p busy"; return 1; }; done
  mkdir -p "$dir/data"
  ORBIT_ADMIN_TOKEN=$ORBIT_TOKEN "${SRV_PIN[@]}" "$ORBIT_BIN" serve \
      --data-dir "$dir/data" \
      --sip-listen "127.0.0.1:$ORBIT_SIP_PORT" \
      --http-listen "127.0.0.1:$ORBIT_HTTP_PORT" \
      --rtp-ports "$ORBIT_RTP_PORTS" \
      --config "$HERE/orbit.toml" > "$dir/server.log" 2>&1 &
  SERVER_PIDS=($!)
  $PY "$HERE/bench.py" wait-http "127.0.0.1:$ORBIT_HTTP_PORT" --timeout 30 --pid "${SERVER_PIDS[0]}" \
    || { log "orbit did not become healthy; see $dir/server.log:"; tail -5 "$dir/server.log" >&2; return 1; }
  $PY "$HERE/bench.py" seed-orbit "127.0.0.1:$ORBIT_HTTP_PORT" --token "$ORBIT_TOKEN" \
      --domain "$DOMAIN" --numbers "$DATA/numbers.txt" --pw-prefix "$PW_PREFIX" >&2 \
    || { log "orbit seeding failed"; return 1; }
  wait_udp "$ORBIT_SIP_PORT" 10 "${SERVER_PIDS[0]}" || { log "orbit SIP port not bound"; return 1; }
  TARGET_ADDR=127.0.0.1:$ORBIT_SIP_PORT
  register_callees "$dir" "$TARGET_ADDR" || { log "orbit: callee registration failed"; return 1; }
  MEDIA_EXPECT=(--media-ip 127.0.0.1 --media-lo "${ORBIT_RTP_PORTS%-*}" --media-hi "${ORBIT_RTP_PORTS#*-}"
                --orbit-http "127.0.0.1:$ORBIT_HTTP_PORT" --token "$ORBIT_TOKEN")
  SCENARIO=$HERE/uac_call_auth.xml
}

start_kamailio_common() {  # dir [with_rtpengine]
  local dir=$1 rtpe=${2:-0} defs=()
  command -v "$KAMAILIO" >/dev/null || { log "SKIP: $KAMAILIO not found"; return 1; }
  port_busy "$KAM_PORT" && { log "SKIP: port $KAM_PORT busy"; return 1; }
  local run=$dir/run
  mkdir -p "$run"
  cp -r "$DATA/dbtext" "$dir/dbtext"
  if [[ "$rtpe" == 1 ]]; then
    defs+=(-A WITH_RTPENGINE -A "RTPENGINE_SOCK=\"udp:127.0.0.1:$RTPE_NG_PORT\"")
  fi
  "${SRV_PIN[@]}" "$KAMAILIO" -f "$HERE/kamailio.cfg" -DD -E \
      -n "$KAM_CHILDREN" -m "$KAM_SHM" -M "$KAM_PKG" -b "$KAM_MAXBUFFER" \
      -l "udp:127.0.0.1:$KAM_PORT" -Y "$run" -w "$run" \
      -A "DBURL=\"text://$dir/dbtext\"" "${defs[@]}" \
      > "$dir/server.log" 2>&1 &
  SERVER_PIDS+=($!)
  wait_udp "$KAM_PORT" 15 "$!" || { log "kamailio did not start; see $dir/server.log"; return 1; }
  sleep 1   # let all worker processes finish forking
  TARGET_ADDR=127.0.0.1:$KAM_PORT
  register_callees "$dir" "$TARGET_ADDR" || { log "kamailio: callee registration failed"; return 1; }
  SCENARIO=$HERE/uac_call_auth.xml
}

start_kamailio_rtpe() {
  local dir=$1
  [[ -x "$RTPENGINE" ]] || { log "SKIP kamailio_rtpe: $RTPENGINE not found (apt-get install rtpengine-daemon)"; return 1; }
  for p in $RTPE_NG_PORT $RTPE_CLI_PORT; do port_busy "$p" && { log "SKIP kamailio_rtpe: port $p busy"; return 1; }; done
  mkdir -p "$dir"
  # userspace forwarding only (-t -1: no kernel table), no config file
  "${SRV_PIN[@]}" "$RTPENGINE" --config-file=none --foreground --log-stderr --table=-1 \
      --interface=127.0.0.1 --listen-ng="127.0.0.1:$RTPE_NG_PORT" \
      --listen-cli="127.0.0.1:$RTPE_CLI_PORT" \
      --port-min="${RTPE_PORTS%-*}" --port-max="${RTPE_PORTS#*-}" \
      --num-threads="$RTPE_THREADS" --delete-delay=0 --timeout=60 --log-level="${RTPE_LOG_LEVEL:-4}" \
      > "$dir/rtpengine.log" 2>&1 &
  SERVER_PIDS=($!)
  wait_udp "$RTPE_NG_PORT" 10 "$!" || { log "rtpengine did not start; see $dir/rtpengine.log"; return 1; }
  start_kamailio_common "$dir" 1 || return 1
  MEDIA_EXPECT=(--media-ip 127.0.0.1 --media-lo "${RTPE_PORTS%-*}" --media-hi "${RTPE_PORTS#*-}"
                --rtpengine-cli "127.0.0.1:$RTPE_CLI_PORT" --rtpengine-ctl "$RTPENGINE_CTL")
}

start_kamailio() {
  SERVER_PIDS=()
  start_kamailio_common "$1" 0 || return 1
  # no anchoring: the callee's own SDP reaches the caller
  MEDIA_EXPECT=(--media-ip 127.0.0.1 --media-lo "$UAS_MEDIA_PORT" --media-hi $((UAS_MEDIA_PORT + 20)))
}

start_sipp() {
  SERVER_PIDS=()
  # no server: the UAC calls the UAS directly (the UAS is started per step)
  TARGET_ADDR=127.0.0.1:$UAS_PORT
  SCENARIO=$HERE/uac_call_noauth.xml
  MEDIA_EXPECT=(--media-ip 127.0.0.1 --media-lo "$UAS_MEDIA_PORT" --media-hi $((UAS_MEDIA_PORT + 20)))
}

step() {  # target rep rate duration [extra args]
  local t=$1 rep=$2 r=$3 d=$4; shift 4
  local pids=()
  for p in "${SERVER_PIDS[@]}"; do pids+=(--server-pid "$p"); done
  # the helper (and the sipp processes it starts) runs on the generator's CPU
  "${GEN_PIN[@]}" $PY "$HERE/bench.py" step --target "$t" --rep "$rep" --server "$TARGET_ADDR" "${pids[@]}" \
      --rate "$r" --duration "$d" --hold-ms "$HOLD_MS" --outdir "$RESDIR" \
      --scenario "$SCENARIO" --uas-scenario "$HERE/uas_answer.xml" --users "$DATA/callers.csv" \
      --uac-port "$UAC_PORT" --uas-port "$UAS_PORT" \
      --uac-media-port "$UAC_MEDIA_PORT" --uas-media-port "$UAS_MEDIA_PORT" \
      --recv-timeout-ms "$RECV_TIMEOUT_MS" --sipp "$SIPP" \
      --noisy-pct "$NOISY_PCT" --domain "$DOMAIN" --settle "$SETTLE" --leak-wait "$LEAK_WAIT" \
      "${MEDIA_EXPECT[@]}" "${UAC_PIN_ARG[@]}" "$@"
}

# ------------------------------------------------------------------- main
for rep in $(seq "$REP_FROM" "$REPEATS"); do
  for target in $TARGETS; do
    log "=== $target (repeat $rep/$REPEATS) ==="
    TARGET_ADDR=""; SERVER_PIDS=(); MEDIA_EXPECT=()
    tdir=$RESDIR/$target/rep$rep
    mkdir -p "$tdir"
    if ! "start_$target" "$tdir"; then
      stop_server
      echo "$target (repeat $rep): not run (see log above)" >> "$RESDIR/skipped.txt"
      continue
    fi
    log "$target up, calls go to $TARGET_ADDR (pids ${SERVER_PIDS[*]:-none})"
    # smoke: 20 calls at 10/s must all succeed with the expected SDP; keeps
    # a full SIP trace of both sipp sides in $tdir/smoke/{uac,uas}/messages.log
    if ! step "$target" "$rep" 10 2 --label smoke --trace-err --trace-msg --expect-ok --settle 1 >/dev/null; then
      log "$target: smoke test failed, see $tdir/smoke/ (uac/errors.log, uas/errors.log, messages.log)"
      stop_server
      echo "$target (repeat $rep): smoke test failed" >> "$RESDIR/skipped.txt"
      continue
    fi
    fails=0
    for rate in $RATES; do
      sleep "$COOLDOWN"
      if [[ "$QUIET" == 1 ]]; then
        skip=(); for p in "${SERVER_PIDS[@]}"; do skip+=(--also-skip "$p"); done
        "${GEN_PIN[@]}" $PY "$HERE/bench.py" quiet --threshold "$QUIET_PCT" --max-wait "$QUIET_WAIT" "${skip[@]}" || true
      fi
      line=$(step "$target" "$rep" "$rate" "$DURATION") || true
      log "$line"
      if [[ "$line" == *" yes"* ]]; then fails=0; else fails=$((fails + 1)); fi
      if [[ "$STOP_AFTER_FAILS" -gt 0 && "$fails" -ge "$STOP_AFTER_FAILS" ]]; then
        log "$target: $fails failed steps in a row, stopping its ladder"
        break
      fi
    done
    stop_server
  done
done

echo
echo "Results: $RESDIR"
$PY "$HERE/bench.py" report "$RESDIR"
[[ -f "$RESDIR/skipped.txt" ]] && { echo; echo "Not run:"; cat "$RESDIR/skipped.txt"; }
exit 0
