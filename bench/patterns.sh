#!/bin/bash
# Wildcard subscriptions: the cost of matching per publish.  Fanout to
# 10,000 raw subscribers over 100 topics, each subscriber on an exact topic
# (/sub/bench<i>.x) or on a pattern (/sub/bench<i>.*, publishers to
# bench<i>.x), with and without 100,000 other distinct patterns registered
# (100 JSON connections hold them, 1,000 each: bench/pattern_holder.py).  Each row RUNS
# times, the rows alternating run by run so machine noise hits all alike;
# prints the medians.
#
#   bench/patterns.sh [RUNS]      (build/ringcast and build/ringcast-bench)
# Bounded: every run lasts --duration 3 (+1 s warmup); brokers and holders
# are killed by pid.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-3}
OUT=$(mktemp -d)
PORT=${PORT:-18900}
BASE="--subs 10000 --topics 100 --pubs 100 --size 64"
ROWS=("exact|$BASE|0" "pattern|$BASE --pattern|0"
      "exact+100k-patterns|$BASE|100000" "pattern+100k-patterns|$BASE --pattern|100000")
run_one() { # row-args npatterns json
  PORT=$((PORT + 1))
  taskset -c 0 build/ringcast --listen 127.0.0.1:$PORT --threads 1 --log-level error \
    --max-backpressure 64M --json-rate 1000000 --json-burst 1000000 \
    >"$OUT/server.log" 2>&1 &
  local spid=$! hpid=
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.05
  done
  if [ "$2" != 0 ]; then
    /usr/bin/python3 bench/pattern_holder.py $PORT "$2" >"$OUT/holder.out" 2>&1 &
    hpid=$!
    for _ in $(seq 1200); do grep -q ready "$OUT/holder.out" && break; sleep 0.05; done
  fi
  # shellcheck disable=SC2086
  timeout 90 taskset -c 1 build/ringcast-bench fanout --url ws://127.0.0.1:$PORT $1 \
    --duration 3 --warmup 1 --server-pid $spid --json "$3" --quiet >/dev/null 2>&1
  [ -n "$hpid" ] && kill "$hpid" 2>/dev/null
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  [ -n "$hpid" ] && wait "$hpid" 2>/dev/null
}
for r in $(seq "$RUNS"); do
  for row in "${ROWS[@]}"; do
    IFS='|' read -r name args npat <<<"$row"
    run_one "$args" "$npat" "$OUT/$name-$r.json"
  done
done
/usr/bin/python3 - "$OUT" "$RUNS" "${ROWS[@]}" <<'PY'
import json, statistics, sys
out, runs, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| row | deliveries/s | p50 us | p99 us | lost/dup/reord | broker CPU |")
print("|---|---|---|---|---|---|")
for row in rows:
    name = row.split("|")[0]
    ds = []
    for r in range(1, runs + 1):
        try:
            ds.append(json.load(open(f"{out}/{name}-{r}.json")))
        except (OSError, ValueError):
            pass
    if not ds:
        print(f"| {name} | (no run finished) | | | | |")
        continue
    med = lambda k: statistics.median(d.get(k, 0) or 0 for d in ds)
    lost = "/".join(str(max(d.get(k, 0) for d in ds)) for k in ("lost", "duplicated", "reordered"))
    print(f"| {name} | {med('deliveries_per_sec'):,.0f} | {med('p50_us'):,.0f} | "
          f"{med('p99_us'):,.0f} | {lost} | {med('server_cpu_pct'):.0f}% |  ({len(ds)} runs)")
PY
rm -rf "$OUT"
