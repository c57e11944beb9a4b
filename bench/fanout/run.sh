#!/bin/sh
# Fan-out benchmark: starts tickwire on a free loopback port and runs bench_fanout against
# it, 64-byte messages to 10k subscribers, for the four cases of DESIGN 8's comparison
# table (1 topic or 1,000 topics × 10 subscribers, bursts of 1 or 32). Prints per case the
# bench table (delivered msgs/s, server and client CPU, msgs per server core-second,
# messages per send from the server's /metrics, latency percentiles at fractions of the
# measured max).
#
#   bench/fanout/run.sh [BUILD_DIR] [extra bench_fanout flags...]
#
# Env: WORKERS (server workers, default 1: the per-core comparison), SERVER_FLAGS (extra
#      tickwire flags, e.g. "--coalesce 0"), THREADS (client threads, default 1),
#      SUBS (default 10000), SECONDS_PER_PHASE (default 5), LATENCY_AT (default 10,50),
#      SERVER_CMD (another server to measure instead, e.g. a uWebSockets build speaking the
#      same subscribe/publish JSON: a command that listens on a free loopback port and
#      prints "listening on 127.0.0.1:PORT" to stderr; its msgs/send column stays empty).
# On a box where another load generator holds 127.0.0.1's ports, add
# "--source 127.0.0.250" (extra flags go to bench_fanout).
set -eu
BUILD=${1:-build}
[ $# -gt 0 ] && shift
WORKERS=${WORKERS:-1}
SERVER_FLAGS=${SERVER_FLAGS:-}
THREADS=${THREADS:-1}
SUBS=${SUBS:-10000}
SECS=${SECONDS_PER_PHASE:-5}
LAT=${LATENCY_AT:-10,50}
EXTRA="$*" # extra bench_fanout flags (no spaces inside one)

run() { # topics publishers burst window
        log=$(mktemp)
        if [ -n "${SERVER_CMD:-}" ]; then
                # shellcheck disable=SC2086 # SERVER_CMD is a command line
                $SERVER_CMD 2>"$log" &
        else
                # shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
                "$BUILD/tickwire" --listen 127.0.0.1:0 --workers "$WORKERS" $SERVER_FLAGS 2>"$log" &
        fi
        pid=$!
        port=
        for _ in $(seq 100); do
                port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
                [ -n "$port" ] && break
                sleep 0.05
        done
        [ -n "$port" ] || { cat "$log"; kill "$pid"; exit 1; }
        echo "server: ${SERVER_CMD:-$BUILD/tickwire --listen 127.0.0.1:0 --workers $WORKERS $SERVER_FLAGS} (port $port, pid $pid)"
        "$BUILD/bench_fanout" --target "127.0.0.1:$port" --pid "$pid" --subs "$SUBS" \
                --topics "$1" --publishers "$2" --burst "$3" --window "$4" --threads "$THREADS" \
                --seconds "$SECS" --latency-at "$LAT" $EXTRA || true
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -f "$log"
        echo
}

# The window (messages per subscriber published but not yet received) bounds how far
# publishers run ahead of the slowest tracked subscriber.
echo "== 1 topic, $SUBS subscribers, bursts of 1, window 16 =="
run 1 1 1 16
echo "== 1 topic, $SUBS subscribers, bursts of 32, window 64 =="
run 1 1 32 64
echo "== 1000 topics x $((SUBS / 1000)) subscribers, bursts of 1, window 16 =="
run 1000 4 1 16
echo "== 1000 topics x $((SUBS / 1000)) subscribers, bursts of 32, window 128 =="
run 1000 4 32 128
