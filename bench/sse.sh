#!/bin/bash
# The "Server-Sent Events beside WebSocket" rows of bench/RESULTS.md: each
# fanout row with WebSocket subscribers in JSON mode (/ws: the same JSON
# envelope an event carries), in raw mode (/sub) for reference, and with
# SSE subscribers (GET /events/<topic>, --mode sse), RUNS times each against
# a fresh broker pinned to CPU 0 with the bench on CPU 1, medians.
# Publishers are the same in every mode (/pub/<topic>, JSON string
# payloads, raw mode binary).  Raw JSON of every run goes to OUT.
#
#   bench/sse.sh [--runs 3] [--duration 3] [--out build/bench-sse] [--only REGEX]
# Bounded: every run has a duration; brokers are killed by pid.
set -u
cd "$(dirname "$0")/.."
RUNS=3 DUR=3 OUT=build/bench-sse ONLY=. BIN=build
. bench/lib.sh
bench_opts "$@"
PORT=${PORT:-18940}
SPID=
start_broker() {
  PORT=$((PORT + 1))
  taskset -c 0 "$BIN/ringcast" --listen 127.0.0.1:$PORT --threads 1 --log-level error \
    --max-backpressure 64M --max-connections-per-ip 0 >"$OUT/server.log" 2>&1 &
  SPID=$!
  wait_listening "$PORT"
}
stop_broker() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=; }
trap stop_broker EXIT

run() {
  local name=$1 mode=$2 i=$3; shift 4
  start_broker || return 1
  local f="$OUT/$name-$mode-$i.json"
  echo "+ taskset -c 1 $BIN/ringcast-bench $* --mode $mode --url ws://127.0.0.1:$PORT --server-pid $SPID --json $f" >&2
  taskset -c 1 "$BIN/ringcast-bench" "$@" --mode "$mode" --url "ws://127.0.0.1:$PORT" \
    --server-pid "$SPID" --json "$f" --quiet >"$OUT/$name-$mode-$i.txt" 2>&1
  kill -0 "$SPID" 2>/dev/null || echo "WARNING: broker gone during $name $mode $i" >&2
  stop_broker
}

row() {
  local name=$1; shift 2
  [[ "$name" =~ $ONLY ]] || return 0
  for i in $(seq "$RUNS"); do
    for mode in json sse raw; do run "$name" "$mode" "$i" -- "$@"; done
  done
  /usr/bin/python3 - "$OUT" "$name" "$RUNS" <<'PY'
import json, os, statistics, sys
out, name, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def med(mode, k):
    v = []
    for i in range(1, runs + 1):
        p = os.path.join(out, f"{name}-{mode}-{i}.json")
        if os.path.exists(p) and os.path.getsize(p):
            v.append(json.load(open(p)).get(k, 0))
    return statistics.median(v) if v else float("nan")
js, sse, raw = (med(m, "deliveries_per_sec") for m in ("json", "sse", "raw"))
ldr = "/".join(f"{med('sse', k):.0f}" for k in ("lost", "duplicated", "reordered"))
print(f"| {name} | {js:,.0f} | {sse:,.0f} | **{sse / js:.2f}** | {raw:,.0f} | "
      f"{med('json', 'p99_us'):,.0f} | {med('sse', 'p99_us'):,.0f} | {ldr} | "
      f"{med('json', 'bench_cpu_pct'):.0f}% / {med('json', 'server_cpu_pct'):.0f}% | "
      f"{med('sse', 'bench_cpu_pct'):.0f}% / {med('sse', 'server_cpu_pct'):.0f}% |")
PY
}

F="--duration $DUR --warmup 1"
echo "| row | WebSocket JSON deliveries/s | SSE deliveries/s | SSE / JSON | WebSocket raw deliveries/s | JSON p99 us | SSE p99 us | SSE lost/dup/reord | JSON bench / broker CPU | SSE bench / broker CPU |"
echo "|---|---|---|---|---|---|---|---|---|---|"
row fanout-1k-1t-1KiB -- fanout --subs 1000 --topics 1 --pubs 1 --size 1024 $F
row fanout-1k-1t-16KiB -- fanout --subs 1000 --topics 1 --pubs 1 --size 16384 $F
row fanout-10k-100t-64B -- fanout --subs 10000 --topics 100 --pubs 100 --size 64 $F
