#!/bin/bash
# Produces the rows of bench/RESULTS.md: every scenario RUNS times (median
# reported) against a fresh server pinned to CPU 0, with the bench pinned
# to CPU 1.  Servers: ringcast (build/ringcast) and, with --compare, the
# Node ws server in bench/compare/.  Raw JSON of every run goes to OUT.
#
#   bench/run.sh [--runs 3] [--duration 3] [--out build/bench-results]
#                [--only REGEX] [--compare] [--bin DIR] [--io-backends LIST]
# --io-backends "io_uring epoll": each ringcast row once per loop backend
# (the broker's --io-backend; the bench itself stays on io_uring), the
# runs interleaved so both see the same machine.
# Bounded: every run has a duration, servers are killed by pid at the end.
set -u
cd "$(dirname "$0")/.."
RUNS=3 DUR=3 OUT=build/bench-results ONLY=. COMPARE=0 BIN=build BACKENDS=
. bench/lib.sh
bench_opts "$@"
# The Node ws server's dependencies, from bench/compare/package-lock.json
# (again whenever the lock changed).
if [ "$COMPARE" = 1 ] && { [ ! -f bench/compare/node_modules/.package-lock.json ] ||
   [ bench/compare/package-lock.json -nt bench/compare/node_modules/.package-lock.json ]; }; then
  npm ci --prefix bench/compare --no-audit --no-fund >&2 || { echo "npm ci --prefix bench/compare failed" >&2; exit 1; }
fi
PORT=${PORT:-18700}
SPID=
# The next port from PORT on that nobody listens on: a benchmark must never
# measure some other server that already holds a fixed port.
next_free_port() {
  for _ in $(seq 200); do
    PORT=$((PORT + 1))
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || return 0
  done
  echo "no free port after $PORT" >&2; return 1
}
# The bench's own loops run on io_uring whatever the environment says.
unset RINGCAST_IO_BACKEND
start_server() { # kind deflate threads (kind ringcast-BACKEND: that loop backend)
  next_free_port || return 1
  if [ "${1%%-*}" = ringcast ]; then
    taskset -c 0 "$BIN/ringcast" --listen 127.0.0.1:$PORT --threads "$3" --log-level error \
      $([ "$1" != ringcast ] && echo --io-backend "${1#ringcast-}") \
      --max-backpressure 64M --max-connections-per-ip 0 >"$OUT/server.log" 2>&1 &
  else
    taskset -c 0 node bench/compare/server.js --port $PORT $([ "$2" = 1 ] && echo --deflate) \
      >"$OUT/server.log" 2>&1 &
  fi
  SPID=$!
  wait_listening "$PORT"
}
stop_server() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=; }
trap stop_server EXIT

median() { # file field...: median of a JSON field over runs
  python3 - "$@" <<'PY'
import json, sys, statistics
files, field = sys.argv[2:], sys.argv[1]
vals = [json.load(open(f)).get(field, 0) for f in files]
print(f"{statistics.median(vals):.1f}")
PY
}

# name server deflate threads -- bench args
row() {
  local name=$1 kind=$2 defl=$3 thr=$4; shift 5
  [[ "$name" =~ $ONLY ]] || return 0
  local files=()
  for i in $(seq "$RUNS"); do
    start_server "$kind" "$defl" "$thr" || return 1
    local f="$OUT/$name-$kind-$i.json"
    echo "+ taskset -c 1 $BIN/ringcast-bench $* --url ws://127.0.0.1:$PORT --server-pid $SPID --json $f" >&2
    taskset -c 1 "$BIN/ringcast-bench" "$@" --url ws://127.0.0.1:$PORT --server-pid "$SPID" \
      --json "$f" --quiet >"$OUT/$name-$kind-$i.txt" 2>&1
    stop_server
    files+=("$f")
  done
  printf '| %s | %s | %s | %s | %s | %s | %s/%s/%s | %s%% / %s%% |\n' "$name" "$kind" \
    "$(median deliveries_per_sec "${files[@]}")" "$(median p50_us "${files[@]}")" \
    "$(median p99_us "${files[@]}")" "$(median p999_us "${files[@]}")" \
    "$(median lost "${files[@]}")" "$(median duplicated "${files[@]}")" \
    "$(median reordered "${files[@]}")" "$(median bench_cpu_pct "${files[@]}")" \
    "$(median server_cpu_pct "${files[@]}")"
}

limit() { # name conns frame-bytes batch
  [[ "$1" =~ $ONLY ]] || return 0
  local files=()
  for i in $(seq "$RUNS"); do
    local f="$OUT/$1-$i.json"
    echo "+ $BIN/iouring_limit --conns $2 --size $3 --batch $4 --duration $DUR --send-cpu 0 --recv-cpu 1" >&2
    "$BIN/iouring_limit" --conns "$2" --size "$3" --batch "$4" --duration "$DUR" \
      --send-cpu 0 --recv-cpu 1 --json "$f" >/dev/null
    files+=("$f")
  done
  printf '| %s | iouring_limit | %s | | | | | |\n' "$1" "$(median deliveries_per_sec "${files[@]}")"
}

F="--duration $DUR --warmup 1"
echo "| row | server | deliveries/s | p50 us | p99 us | p99.9 us | lost/dup/reord | bench / server CPU |"
echo "|---|---|---|---|---|---|---|---|"
KINDS=ringcast
[ -n "$BACKENDS" ] && KINDS=$(for b in $BACKENDS; do printf 'ringcast-%s ' "$b"; done)
[ "$COMPARE" = 1 ] && KINDS="$KINDS ws"
# name deflate -- bench args: the row for every server kind, one after the other
each() {
  local name=$1 defl=$2; shift 3
  for k in $KINDS; do row "$name" "$k" "$defl" 1 -- "$@"; done
}
each fanout-10k-100t-64B 0 -- fanout --subs 10000 --topics 100 --pubs 100 --size 64 $F
each fanout-1k-1t-1KiB 0 -- fanout --subs 1000 --topics 1 --pubs 1 --size 1024 $F
each fanout-1k-1t-16KiB 0 -- fanout --subs 1000 --topics 1 --pubs 1 --size 16384 $F
each fanout-1k-1t-16KiB-deflate 1 -- fanout --subs 1000 --topics 1 --pubs 1 --size 16384 --deflate $F
each echo-1000-1KiB 0 -- echo --conns 1000 --size 1024 $F
each echo-1000-1KiB-deflate 1 -- echo --conns 1000 --size 1024 --deflate $F
# Half of the fanout-10k rate ringcast reached, for the latency target.
if [[ fanout-10k-half =~ $ONLY ]] && ls "$OUT"/fanout-10k-100t-64B-ringcast-*.json >/dev/null 2>&1; then
  HALF=$(median publish_rate "$OUT"/fanout-10k-100t-64B-ringcast-*.json | awk '{printf "%d", $1/2}')
  for k in $KINDS; do
    row fanout-10k-100t-64B-half "$k" 0 1 -- fanout --subs 10000 --topics 100 --pubs 100 --size 64 --rate "$HALF" $F
  done
fi
# The physical limit: same frame bytes (header + payload), same socket counts.
limit limit-10k-66B 10000 66 1
limit limit-10k-66B-batch16 10000 66 16
limit limit-1k-1028B 1000 1028 1
limit limit-1k-16388B 1000 16388 1
