#!/bin/bash
# One hot topic, publishers and subscribers on every broker thread: the
# publish path's locks under contention.  Runs each row RUNS times per
# broker binary, alternating the binaries run by run so machine noise hits
# both alike, and prints the medians side by side.
#
#   bench/hot_topic.sh BEFORE_BIN_DIR AFTER_BIN_DIR [RUNS]
# e.g. bench/hot_topic.sh /tmp/old/build build 3
# Bounded: every run lasts --duration 3 (+1 s warmup); brokers are killed
# by pid.  The bench binary is the AFTER one's (same for both).
set -u
cd "$(dirname "$0")/.."
BEFORE=$1 AFTER=$2 RUNS=${3:-3}
OUT=$(mktemp -d)
PORT=${PORT:-18800}
ROWS=("hot-64B|--subs 400 --topics 1 --pubs 16 --size 64"
      "hot-64B-rate|--subs 400 --topics 1 --pubs 16 --size 64 --rate 40"
      "hot-1KiB-deflate|--subs 400 --topics 1 --pubs 16 --size 1024 --deflate")
run_one() { # bindir row-args json
  PORT=$((PORT + 1))
  "$1/ringcast" --listen 127.0.0.1:$PORT --threads 2 --log-level error \
    --max-backpressure 64M >"$OUT/server.log" 2>&1 &
  local spid=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.05
  done
  # shellcheck disable=SC2086
  timeout 60 "$AFTER/ringcast-bench" fanout --url ws://127.0.0.1:$PORT $2 \
    --duration 3 --warmup 1 --server-pid $spid --json "$3" --quiet >/dev/null 2>&1
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
}
for row in "${ROWS[@]}"; do
  name=${row%%|*} args=${row#*|}
  for r in $(seq "$RUNS"); do
    for side in before after; do
      dir=$BEFORE; [ $side = after ] && dir=$AFTER
      run_one "$dir" "$args" "$OUT/$name-$side-$r.json"
    done
  done
done
python3 - "$OUT" "$RUNS" "${ROWS[@]}" <<'PY'
import json, statistics, sys
out, runs, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| row | before deliveries/s | after deliveries/s | before p99 us | after p99 us | lost/dup/reord (after) |")
print("|---|---|---|---|---|---|")
for row in rows:
    name = row.split("|")[0]
    med = {}
    for side in ("before", "after"):
        ds = [json.load(open(f"{out}/{name}-{side}-{r}.json")) for r in range(1, runs + 1)]
        med[side] = (statistics.median(d["deliveries_per_sec"] for d in ds),
                     statistics.median(d["p99_us"] for d in ds),
                     "/".join(str(max(d[k] for d in ds)) for k in ("lost", "duplicated", "reordered")))
    print(f"| {name} | {med['before'][0]:,.0f} | {med['after'][0]:,.0f} | "
          f"{med['before'][1]:,.0f} | {med['after'][1]:,.0f} | {med['after'][2]} |")
PY
rm -rf "$OUT"
