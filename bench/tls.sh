#!/bin/bash
# The "TLS (wss vs ws)" rows of bench/RESULTS.md: each fanout row over ws://
# and over wss:// (subscribers on the broker's TLS listener; publishers stay
# plain on its ws:// listener, so what is measured is the fanout to encrypted
# subscribers), RUNS times each against a fresh broker pinned to CPU 0 with
# the bench on CPU 1, medians; then broker RSS per idle connection from
# `connect` over both.  The certificate is a throwaway P-256 one from
# tests/integration/lib/tlsutil.py.  Raw JSON of every run goes to OUT.
#
#   bench/tls.sh [--runs 3] [--duration 3] [--out build/bench-tls] [--only REGEX]
# Bounded: every run has a duration; brokers are killed by pid.
set -u
cd "$(dirname "$0")/.."
RUNS=3 DUR=3 OUT=build/bench-tls ONLY=. BIN=build
. bench/lib.sh
bench_opts "$@"
mkdir -p "$OUT/pki"
/usr/bin/python3 tests/integration/lib/tlsutil.py pki "$OUT/pki" >/dev/null || exit 1
CERT=$OUT/pki/server.pem KEY=$OUT/pki/server.key CA=$OUT/pki/ca.pem
PORT=${PORT:-18900}
SPID=
start_broker() {
  PORT=$((PORT + 2))
  taskset -c 0 "$BIN/ringcast" --listen 127.0.0.1:$PORT --tls-listen 127.0.0.1:$((PORT + 1)) \
    --tls-cert "$CERT" --tls-key "$KEY" --threads 1 --log-level error \
    --max-backpressure 64M --max-connections-per-ip 0 >"$OUT/server.log" 2>&1 &
  SPID=$!
  wait_listening $((PORT + 1))
}
stop_broker() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=; }
trap stop_broker EXIT

# One run: transport name -- bench args.  Fails loudly if the broker died.
run() {
  local name=$1 tr=$2 i=$3; shift 4
  local url extra=()
  start_broker || return 1
  url="ws://127.0.0.1:$PORT"
  [ "$tr" = wss ] && url="wss://localhost:$((PORT + 1))" &&
    extra=(--pub-url "ws://127.0.0.1:$PORT" --ca-file "$CA")
  local f="$OUT/$name-$tr-$i.json"
  echo "+ taskset -c 1 $BIN/ringcast-bench $* --url $url ${extra[*]} --server-pid $SPID --json $f" >&2
  taskset -c 1 "$BIN/ringcast-bench" "$@" --url "$url" "${extra[@]}" --server-pid "$SPID" \
    --json "$f" --quiet >"$OUT/$name-$tr-$i.txt" 2>&1
  kill -0 "$SPID" 2>/dev/null || echo "WARNING: broker gone during $name $tr $i" >&2
  stop_broker
}

# name -- bench args: RUNS over ws, RUNS over wss, one table line.
row() {
  local name=$1; shift 2
  [[ "$name" =~ $ONLY ]] || return 0
  for tr in ws wss; do
    for i in $(seq "$RUNS"); do run "$name" "$tr" "$i" -- "$@"; done
  done
  /usr/bin/python3 - "$OUT" "$name" "$RUNS" <<'PY'
import json, os, statistics, sys
out, name, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def med(tr, k):
    v = []
    for i in range(1, runs + 1):
        p = os.path.join(out, f"{name}-{tr}-{i}.json")
        if os.path.exists(p) and os.path.getsize(p):
            v.append(json.load(open(p)).get(k, 0))
    return statistics.median(v) if v else float("nan")
ws, wss = med("ws", "deliveries_per_sec"), med("wss", "deliveries_per_sec")
ldr = "/".join(f"{med('wss', k):.0f}" for k in ("lost", "duplicated", "reordered"))
print(f"| {name} | {ws:,.0f} | {wss:,.0f} | **{wss / ws:.2f}** | {med('ws', 'p99_us'):,.0f} | "
      f"{med('wss', 'p99_us'):,.0f} | {ldr} | {med('ws', 'bench_cpu_pct'):.0f}% / "
      f"{med('ws', 'server_cpu_pct'):.0f}% | {med('wss', 'bench_cpu_pct'):.0f}% / "
      f"{med('wss', 'server_cpu_pct'):.0f}% |")
PY
}

# Idle connections: broker RSS growth per connection, ws and wss.
mem() {
  local name=$1 n=$2
  [[ "$name" =~ $ONLY ]] || return 0
  for tr in ws wss; do
    for i in $(seq "$RUNS"); do run "$name" "$tr" "$i" -- connect --conns "$n" --duration 2; done
  done
  /usr/bin/python3 - "$OUT" "$name" "$RUNS" <<'PY'
import json, os, statistics, sys
out, name, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def med(tr, k):
    v = [json.load(open(os.path.join(out, f"{name}-{tr}-{i}.json"))).get(k, 0)
         for i in range(1, runs + 1)]
    return statistics.median(v)
ws, wss = med("ws", "rss_per_conn_bytes"), med("wss", "rss_per_conn_bytes")
print(f"| {name} | {med('ws', 'connections'):.0f} / {med('wss', 'connections'):.0f} | "
      f"{ws:,.0f} | {wss:,.0f} | {wss - ws:,.0f} | {med('ws', 'connect_rate'):,.0f} / "
      f"{med('wss', 'connect_rate'):,.0f} |")
PY
}

F="--duration $DUR --warmup 1"
echo "| row | ws deliveries/s | wss deliveries/s | wss / ws | ws p99 us | wss p99 us | wss lost/dup/reord | ws bench / broker CPU | wss bench / broker CPU |"
echo "|---|---|---|---|---|---|---|---|---|"
row fanout-1k-1t-1KiB -- fanout --subs 1000 --topics 1 --pubs 1 --size 1024 $F
row fanout-1k-1t-16KiB -- fanout --subs 1000 --topics 1 --pubs 1 --size 16384 $F
row fanout-10k-100t-64B -- fanout --subs 10000 --topics 100 --pubs 100 --size 64 $F
echo
echo "| row | connections ws / wss | ws RSS B/conn | wss RSS B/conn | TLS extra B/conn | connects/s ws / wss |"
echo "|---|---|---|---|---|---|"
mem connect-2000 2000
