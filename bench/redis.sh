#!/bin/bash
# The Redis hop: ringcast-bench fanout with the subscribers on node B and
# the publishers on node A, both engine = redis on one redis-server, beside
# the same load on one memory-engine node (publishers and subscribers on
# it).  Each row RUNS times, the setups alternating run by run so machine
# noise hits them alike; prints medians of deliveries/s, publishes/s, p50
# and p99 latency, and redis-server's CPU share during the run.
#
#   bench/redis.sh [RUNS]      (3)
# Bounded: --duration 5 (+1 s warmup) per run; every process is killed by
# pid.  Needs redis-server (make test-deps).
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-3}
OUT=$(mktemp -d)
PORT=${PORT:-18900}
ROWS=("fanout-64B|--subs 1000 --topics 10 --pubs 10 --size 64"
      "fanout-1KiB|--subs 1000 --topics 10 --pubs 10 --size 1024"
      "publish-only-64B|--subs 10 --topics 10 --pubs 32 --size 64")
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; }
wait_ready() { for _ in $(seq 100); do curl -sf http://127.0.0.1:$1/healthz >/dev/null && return; sleep 0.05; done; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_one() { # setup row-args json
  local rp=$((PORT += 1)) a=$((PORT += 1)) b=$((PORT += 1)) rpid apid bpid t0 t1 s0 s1
  local common=(--threads 2 --log-level error --max-backpressure 64M --history-size 100)
  if [ "$1" = redis ]; then
    redis-server --port $rp --bind 127.0.0.1 --save '' --appendonly no \
      >"$OUT/redis.log" 2>&1 &
    rpid=$!
    wait_port $rp
    build/ringcast --listen 127.0.0.1:$a "${common[@]}" --engine redis \
      --redis-url redis://127.0.0.1:$rp >"$OUT/a.log" 2>&1 &
    apid=$!
    build/ringcast --listen 127.0.0.1:$b "${common[@]}" --engine redis \
      --redis-url redis://127.0.0.1:$rp >"$OUT/b.log" 2>&1 &
    bpid=$!
    wait_ready $a; wait_ready $b
  else
    build/ringcast --listen 127.0.0.1:$a "${common[@]}" >"$OUT/a.log" 2>&1 &
    apid=$! bpid=$apid b=$a
    wait_ready $a
  fi
  s0=$(date +%s%N); t0=0; [ "$1" = redis ] && t0=$(cpu_ticks $rpid)
  # shellcheck disable=SC2086
  timeout 90 build/ringcast-bench fanout --url ws://127.0.0.1:$b --pub-url ws://127.0.0.1:$a \
    $2 --duration 5 --warmup 1 --server-pid $bpid --json "$3" --quiet >/dev/null 2>&1
  s1=$(date +%s%N); t1=0; [ "$1" = redis ] && t1=$(cpu_ticks $rpid)
  echo "$(( (t1 - t0) * 10000000 / ((s1 - s0) / 1000) ))" >"$3.redis_cpu" # per mille
  kill $apid $bpid ${rpid:-} 2>/dev/null
  wait 2>/dev/null
}
for row in "${ROWS[@]}"; do
  name=${row%%|*} args=${row#*|}
  for r in $(seq "$RUNS"); do
    for setup in memory redis; do
      run_one $setup "$args" "$OUT/$name-$setup-$r.json"
    done
  done
done
python3 - "$OUT" "$RUNS" "${ROWS[@]}" <<'PY'
import json, statistics, sys
out, runs, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| row | setup | deliveries/s | publishes/s | p50 us | p99 us | redis-server CPU | lost/dup/reord |")
print("|---|---|---|---|---|---|---|---|")
for row in rows:
    name = row.split("|")[0]
    for setup in ("memory", "redis"):
        ds, cpu = [], []
        for r in range(1, runs + 1):
            try:
                ds.append(json.load(open(f"{out}/{name}-{setup}-{r}.json")))
                cpu.append(int(open(f"{out}/{name}-{setup}-{r}.json.redis_cpu").read()) / 10)
            except (OSError, ValueError):
                pass
        if not ds:
            print(f"| {name} | {setup} | (no result) |")
            continue
        m = lambda k: statistics.median(d[k] for d in ds)
        bad = "/".join(str(max(d[k] for d in ds)) for k in ("lost", "duplicated", "reordered"))
        c = f"{statistics.median(cpu):.0f} %" if setup == "redis" else "-"
        print(f"| {name} | {setup} | {m('deliveries_per_sec'):,.0f} | {m('publish_rate'):,.0f} | "
              f"{m('p50_us'):,.0f} | {m('p99_us'):,.0f} | {c} | {bad} |")
PY
rm -rf "$OUT"
