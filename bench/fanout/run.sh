#!/bin/sh
# Fan-out benchmark: starts tickwire on a free loopback port and runs bench_fanout against
# it for 64-byte messages to 10k subscribers of one topic, then 10k subscribers over 1,000
# topics. Prints one table per scenario (delivered msgs/s, server CPU from /proc/PID/stat,
# latency percentiles at 50 % and 90 % of the measured max).
#
#   bench/fanout/run.sh [BUILD_DIR] [extra bench_fanout flags...]
#
# Env: WORKERS (server workers, default 2), THREADS (client threads, default 1),
#      SUBS (default 10000), SECONDS_PER_PHASE (default 5).
# On a box where another load generator holds 127.0.0.1's ports, add
# "--source 127.0.0.250" (extra flags go to bench_fanout).
set -eu
BUILD=${1:-build}
[ $# -gt 0 ] && shift
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-1}
SUBS=${SUBS:-10000}
SECS=${SECONDS_PER_PHASE:-5}
EXTRA="$*" # extra bench_fanout flags (no spaces inside one)

run() { # topics publishers burst window
        log=$(mktemp)
        "$BUILD/tickwire" --listen 127.0.0.1:0 --workers "$WORKERS" 2>"$log" &
        pid=$!
        port=
        for _ in $(seq 100); do
                port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
                [ -n "$port" ] && break
                sleep 0.05
        done
        [ -n "$port" ] || { cat "$log"; kill "$pid"; exit 1; }
        echo "server: $BUILD/tickwire --listen 127.0.0.1:0 --workers $WORKERS (port $port, pid $pid)"
        "$BUILD/bench_fanout" --target "127.0.0.1:$port" --pid "$pid" --subs "$SUBS" \
                --topics "$1" --publishers "$2" --burst "$3" --window "$4" --threads "$THREADS" \
                --seconds "$SECS" --latency-at 50,90 $EXTRA || true
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -f "$log"
        echo
}

# The window (messages per subscriber published but not yet received) is kept above the
# burst so a burst never waits for the previous one to drain completely.
for burst in 1 32 256; do
        echo "== 64-byte messages, $SUBS subscribers of 1 topic, bursts of $burst =="
        run 1 1 "$burst" $((2 * burst + 64))
done
echo "== 64-byte messages, $SUBS subscribers over 1000 topics (10 per topic) =="
run 1000 4 32 128
