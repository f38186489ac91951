# Sourced by the bench scripts (run.sh, tls.sh, sse.sh): their common
# options and the wait for a freshly started server.

# Reads --runs N --duration S --out DIR --only REGEX --bin DIR --compare
# --io-backends LIST into RUNS DUR OUT ONLY BIN COMPARE BACKENDS (set the
# defaults before calling);
# anything else prints the usage and exits 2.
bench_opts() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --runs) RUNS=$2; shift 2 ;;
      --duration) DUR=$2; shift 2 ;;
      --out) OUT=$2; shift 2 ;;
      --only) ONLY=$2; shift 2 ;;
      --bin) BIN=$2; shift 2 ;;
      --compare) COMPARE=1; shift ;;
      --io-backends) BACKENDS=$2; shift 2 ;;
      *) echo "usage: $0 [--runs N] [--duration S] [--out DIR] [--only REGEX] [--bin DIR]" \
           "[--compare (run.sh)] [--io-backends LIST (run.sh)]" >&2; exit 2 ;;
    esac
  done
  mkdir -p "$OUT"
}

# wait_listening PORT: until 127.0.0.1:PORT accepts, while the server SPID
# lives (its log, OUT/server.log, is shown if it exited); 5 s at most.
wait_listening() {
  for _ in $(seq 100); do
    # Still ours: a server that could not listen has exited by now.
    kill -0 "$SPID" 2>/dev/null || { echo "server exited:" >&2; cat "$OUT/server.log" >&2; return 1; }
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "server did not start" >&2; return 1
}
