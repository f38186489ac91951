#!/usr/bin/env bash
# The compose topology (deploy/compose.yaml) without containers: Redis, two
# ringcast nodes on loopback ports and HAProxy in front, from Debian's
# packages (apt-get install redis-server haproxy).
#
#   deploy/local-cluster.sh up       start everything, wait until it answers
#   deploy/local-cluster.sh status   what runs, and HAProxy's view of the nodes
#   deploy/local-cluster.sh down     SIGTERM everything (the brokers drain)
#
# Environment (defaults in brackets):
#   RINGCAST    broker binary [build/ringcast of this checkout, else ringcast in PATH]
#   RUN_DIR     pid files, logs, HAProxy's admin socket [/tmp/ringcast-cluster]
#   LB_PORT     HAProxy, the address clients use [8080]
#   NODE1_PORT, NODE2_PORT   the brokers [8081, 8082]
#   REDIS_PORT  [6379]
#   THREADS     worker threads per broker [1]
#
# The nodes share messages through Redis when the broker has the redis
# engine (`engine = redis`); a broker without it runs each node on its own
# memory engine and `up` says so.  Everything listens on 127.0.0.1 only.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
RUN_DIR="${RUN_DIR:-/tmp/ringcast-cluster}"
LB_PORT="${LB_PORT:-8080}"
NODE1_PORT="${NODE1_PORT:-8081}"
NODE2_PORT="${NODE2_PORT:-8082}"
REDIS_PORT="${REDIS_PORT:-6379}"
THREADS="${THREADS:-1}"
if [ -z "${RINGCAST:-}" ]; then
	if [ -x "$here/../build/ringcast" ]; then RINGCAST="$here/../build/ringcast"
	else RINGCAST="$(command -v ringcast || true)"; fi
fi

die() { echo "local-cluster: $*" >&2; exit 1; }

need() {
	command -v "$1" >/dev/null || die "$1 not found (apt-get install $2)"
}

# Starts "$@" in its own session with output to $RUN_DIR/$name.log and its
# pid in $RUN_DIR/$name.pid.
spawn() {
	local name="$1"; shift
	setsid "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 &
	echo $! >"$RUN_DIR/$name.pid"
}

# Waits (at most $2 seconds) until URL $1 answers 200.
wait_http() {
	local url="$1" secs="$2" i
	for ((i = 0; i < secs * 10; i++)); do
		curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

alive() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

stop_one() {
	local name="$1" pid i
	[ -f "$RUN_DIR/$name.pid" ] || return 0
	pid="$(cat "$RUN_DIR/$name.pid")"
	if kill -TERM "$pid" 2>/dev/null; then
		# close_timeout (5 s) plus the flush, as systemd's TimeoutStopSec.
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "local-cluster: $name did not stop in 30 s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$RUN_DIR/$name.pid"
}

cmd_down() {
	for n in haproxy node1 node2 redis; do stop_one "$n"; done
	rm -f "$RUN_DIR/haproxy.sock"
}

cmd_up() {
	need redis-server redis-server
	need haproxy haproxy
	need curl curl
	[ -n "$RINGCAST" ] && [ -x "$RINGCAST" ] || die "no ringcast binary (run make, or set RINGCAST)"
	mkdir -p "$RUN_DIR"
	for n in haproxy node1 node2 redis; do
		alive "$n" && die "$n already runs (pid $(cat "$RUN_DIR/$n.pid")); run '$0 down' first"
	done
	# Whatever fails from here stops what was started.
	trap 'cmd_down' EXIT

	spawn redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
		--appendonly no --protected-mode yes
	local redis_url="redis://127.0.0.1:$REDIS_PORT" engine=()
	# A broker that does not know the key refuses it (exit 2).
	if "$RINGCAST" --engine redis --redis-url "$redis_url" --check-config >/dev/null 2>&1; then
		engine=(--engine redis --redis-url "$redis_url")
		echo "local-cluster: engine redis at $redis_url"
	else
		echo "local-cluster: engine memory: this ringcast has no redis engine," \
			"so each node delivers only its own clients' messages"
	fi
	local n port
	for n in 1 2; do
		port="NODE${n}_PORT"; port="${!port}"
		spawn "node$n" "$RINGCAST" --listen "127.0.0.1:$port" --threads "$THREADS" "${engine[@]}"
	done
	for n in 1 2; do
		port="NODE${n}_PORT"; port="${!port}"
		wait_http "http://127.0.0.1:$port/healthz" 10 ||
			die "node$n did not answer on 127.0.0.1:$port; see $RUN_DIR/node$n.log"
	done
	LB_BIND="127.0.0.1:$LB_PORT" NODE1_ADDR="127.0.0.1:$NODE1_PORT" \
		NODE2_ADDR="127.0.0.1:$NODE2_PORT" STATS_SOCK="$RUN_DIR/haproxy.sock" \
		spawn haproxy haproxy -db -f "$here/haproxy.cfg"
	wait_http "http://127.0.0.1:$LB_PORT/healthz" 10 ||
		die "HAProxy did not answer on 127.0.0.1:$LB_PORT; see $RUN_DIR/haproxy.log"
	trap - EXIT
	echo "local-cluster: up: ws://127.0.0.1:$LB_PORT -> 127.0.0.1:$NODE1_PORT," \
		"127.0.0.1:$NODE2_PORT (logs and pids in $RUN_DIR)"
}

cmd_status() {
	local n
	for n in redis node1 node2 haproxy; do
		if alive "$n"; then echo "$n: running (pid $(cat "$RUN_DIR/$n.pid"))"
		else echo "$n: not running"; fi
	done
	if [ -S "$RUN_DIR/haproxy.sock" ] && command -v python3 >/dev/null; then
		python3 - "$RUN_DIR/haproxy.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
for line in data.decode().splitlines()[1:]:
    f = line.split(",")
    if len(f) > 17 and f[1] not in ("FRONTEND", "BACKEND"):
        print(f"haproxy: {f[1]}: {f[17]}")
PY
	fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
