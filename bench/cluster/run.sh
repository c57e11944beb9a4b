#!/usr/bin/env bash
# Cluster benchmarks (DESIGN 8 "cluster" targets, DESIGN 10): starts its own redis-server
# and tickwire nodes on free loopback ports and prints, side by side in one run:
#   1. publish -> deliver latency: standalone (local publish) vs 1 node through Redis vs
#      3 nodes (publish on A, subscribers on B and C); twclient.py latency.
#   2. publishes per second Redis sequences (1 and 1,000 topics; pipelining WebSocket
#      publishers, `published` replies counted), with redis-server's and tickwire's CPU.
#   3. fan-out per server core, --workers 1: bench_fanout against a standalone server vs
#      against a --broker node (bench_fanout publishes over WebSocket on the same node).
#
#   bash bench/cluster/run.sh            (from the repo root, after building into build/)
#
# Env: BUILD (build), ROUNDS (2: parts 1 and 3 are repeated, alternating the cases),
#      LAT_SECONDS (10), LAT_RATE (1000), LAT_SUBS (10), TP_SECONDS (5), TP_CONNS (4),
#      TP_WINDOW (512), FO_SUBS (10000), FO_SECONDS (5).
set -euo pipefail
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-2}
LAT_SECONDS=${LAT_SECONDS:-10}
LAT_RATE=${LAT_RATE:-1000}
LAT_SUBS=${LAT_SUBS:-10}
TP_SECONDS=${TP_SECONDS:-5}
TP_CONNS=${TP_CONNS:-4}
TP_WINDOW=${TP_WINDOW:-512}
FO_SUBS=${FO_SUBS:-10000}
FO_SECONDS=${FO_SECONDS:-5}
TW="$BUILD/tickwire"
TMP=$(mktemp -d)
PIDS=()

cleanup() {
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        rm -rf "$TMP"
}
trap cleanup EXIT

commas() { # 1234567 -> 1,234,567
        echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'
}

free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_node NAME ARGS... : sets NODE_PORT and NODE_PID; the log is $TMP/NAME.log
start_node() {
        local name=$1
        shift
        "$TW" --listen 127.0.0.1:0 "$@" 2>"$TMP/$name.log" &
        NODE_PID=$!
        PIDS+=("$NODE_PID")
        NODE_PORT=
        for _ in $(seq 200); do
                NODE_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/$name.log")
                if [ -n "$NODE_PORT" ] && { [ "$*" = "${*#*--broker}" ] || grep -q 'broker: connected' "$TMP/$name.log"; }; then
                        break
                fi
                sleep 0.05
        done
        [ -n "$NODE_PORT" ] || { cat "$TMP/$name.log"; exit 1; }
        echo "  node $name: $TW --listen 127.0.0.1:0 $* (port $NODE_PORT, pid $NODE_PID)"
}

cpu_ticks() { # PID -> utime+stime
        awk '{sub(/.*\) /,""); print $12 + $13}' "/proc/$1/stat"
}

stop_node() { # PID
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
}

# Server problems are reported, never hidden.
check_logs() {
        local bad
        bad=$(grep -h -i -E 'error|fail|abort|assert|lost|disconnected|unavailable' "$TMP"/*.log 2>/dev/null | grep -v -i overcommit | sort | uniq -c || true)
        [ -z "$bad" ] || { echo "!! server log lines:"; echo "$bad" | head -20; }
        for p in "${PIDS[@]}"; do
                if ! kill -0 "$p" 2>/dev/null; then
                        wait "$p" 2>/dev/null && rc=0 || rc=$?
                        echo "!! process $p is gone (exit $rc)"
                fi
        done
}

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
BROKER="redis://127.0.0.1:$REDIS_PORT"

echo "== tickwire cluster benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "redis: $(redis-server --version)"
echo "redis: redis-server --port $REDIS_PORT --save '' --appendonly no (pid $REDIS_PID)"
echo "tickwire: $TW, every node --workers 1 (the box has 2 cores, shared by server(s), Redis and client)"
echo

# ---- 1. latency --------------------------------------------------------------------------
echo "== 1. publish -> deliver latency: $LAT_RATE msgs/s, 64-byte data (timestamp inside), $LAT_SUBS subscribers of 1 topic, ${LAT_SECONDS} s per case after 1 s warm-up, $ROUNDS rounds"
echo "   publisher: one WebSocket, {\"type\":\"publish\",...}; client: bench/cluster/twclient.py (python3, one thread, its loop included in the figures)"
start_node standalone --workers 1
S_PORT=$NODE_PORT
start_node A --workers 1 --broker "$BROKER" --node-id A
A_PORT=$NODE_PORT
A_PID=$NODE_PID
start_node B --workers 1 --broker "$BROKER" --node-id B
B_PORT=$NODE_PORT
start_node C --workers 1 --broker "$BROKER" --node-id C
C_PORT=$NODE_PORT
declare -A LAT
lat_case() { # key pub sub
        local out
        out=$(python3 "$HERE/twclient.py" latency --pub "$2" --sub "$3" --subs "$LAT_SUBS" \
                --rate "$LAT_RATE" --seconds "$LAT_SECONDS" --topic "lat.$1.$r" 2>&1) || true
        echo "$out" | sed "s/^/   [$1 r$r] /"
        LAT[$1]+="$(echo "$out" | sed -n 's/^RESULT //p')|"
}
for r in $(seq "$ROUNDS"); do
        lat_case standalone "127.0.0.1:$S_PORT" "127.0.0.1:$S_PORT"
        lat_case 1node "127.0.0.1:$A_PORT" "127.0.0.1:$A_PORT"
        lat_case 3nodes "127.0.0.1:$A_PORT" "127.0.0.1:$B_PORT,127.0.0.1:$C_PORT"
done
echo
echo "| case | round | timed deliveries | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for k in standalone 1node 3nodes; do
        case $k in
        standalone) label="standalone, local publish (no --broker)" ;;
        1node) label="1 node via Redis (pub + subs on A)" ;;
        3nodes) label="3 nodes via Redis (pub on A, subs on B, C)" ;;
        esac
        i=0
        IFS='|' read -ra rs <<<"${LAT[$k]}"
        for res in "${rs[@]}"; do
                i=$((i + 1))
                [ -n "$res" ] || continue
                echo "$res" | awk -v l="$label" -v i="$i" '{for(f=1;f<=NF;f++){split($f,a,"=");v[a[1]]=a[2]}
                        printf "| %s | %d | %s | %s | %s | %s | %s | %s |\n", l, i, v["n"], v["p50"], v["p90"], v["p99"], v["p999"], v["max"]}'
        done
done
check_logs
echo

# ---- 2. sequencing throughput ------------------------------------------------------------
echo "== 2. publishes/s Redis sequences: $TP_CONNS WebSocket publishers on node A, up to $TP_WINDOW outstanding publishes each (batches of 64), ${TP_SECONDS} s after 1 s warm-up; no subscribers (Redis PUBLISH reaches no node)"
echo "   CPU % = (utime+stime) delta from /proc/PID/stat over the measured window; 100 % = one core"
echo
echo "| case | published/s | redis-server CPU | tickwire CPU | client CPU | error replies |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
tp_case() { # label target pids topics
        local out
        out=$(python3 "$HERE/twclient.py" throughput --target "$2" --pids "$3" --topics "$4" \
                --conns "$TP_CONNS" --window "$TP_WINDOW" --seconds "$TP_SECONDS" 2>&1) || true
        echo "$out" | grep -v '^RESULT' | sed "s/^/   [$1] /" >&2
        echo "$out" | sed -n 's/^RESULT //p' | awk -v l="$1" '{for(f=1;f<=NF;f++){split($f,a,"=");v[a[1]]=a[2]}
                r = ("redis_cpu" in v) ? v["redis_cpu"] " %" : "–"
                n = v["published_per_s"]; while (match(n, /[0-9][0-9][0-9][0-9]($|,)/)) n = substr(n, 1, RSTART) "," substr(n, RSTART + 1)
                printf "| %s | %s | %s | %s %% | %s %% | %s |\n", l, n, r, v["tickwire_cpu"], v["client_cpu"], v["errors"]}'
}
tp_case "1 topic, node A via Redis" "127.0.0.1:$A_PORT" "redis=$REDIS_PID,tickwire=$A_PID" 1 2>"$TMP/tp1.txt"
tp_case "1,000 topics, node A via Redis" "127.0.0.1:$A_PORT" "redis=$REDIS_PID,tickwire=$A_PID" 1000 2>"$TMP/tp2.txt"
S_PID=${PIDS[1]}
tp_case "1 topic, standalone (reference, no Redis)" "127.0.0.1:$S_PORT" "tickwire=$S_PID" 1 2>"$TMP/tp3.txt"
cat "$TMP"/tp?.txt
echo "   redis: $(redis-cli -p "$REDIS_PORT" info commandstats | grep -E 'evalsha|^cmdstat_eval:' | tr -d '\r' | tr '\n' ' ')"
check_logs
echo
for p in "${PIDS[@]:1}"; do stop_node "$p"; done
PIDS=("$REDIS_PID")

# ---- 3. fan-out per core -----------------------------------------------------------------
echo "== 3. fan-out per server core, --workers 1: bench_fanout (closed loop, max phase only), $FO_SUBS subscribers, 64-byte messages, ${FO_SECONDS} s, $ROUNDS rounds, a fresh server per run"
echo "   the --broker node publishes through Redis (bench_fanout's WebSocket publishes on the same node) and delivers what Redis PUBLISHes back"
echo "   msgs per server core-second = delivered/s / (tickwire CPU); Redis's own CPU is not in it (shown apart, averaged over the whole bench_fanout run incl. setup)"
declare -A FO
fo_case() { # key topics publishers burst window mode
        local out args=(--workers 1) name=fo r0 r1 t0 t1 rcpu row
        [ "$6" = broker ] && args+=(--broker "$BROKER" --node-id F)
        start_node "$name-$1-$6-$r" "${args[@]}" >/dev/null
        r0=$(cpu_ticks "$REDIS_PID")
        t0=$(date +%s.%N)
        out=$("$BUILD/bench_fanout" --target "127.0.0.1:$NODE_PORT" --pid "$NODE_PID" --subs "$FO_SUBS" \
                --topics "$2" --publishers "$3" --burst "$4" --window "$5" --threads 1 \
                --seconds "$FO_SECONDS" --latency-at "" 2>&1) || true
        r1=$(cpu_ticks "$REDIS_PID")
        t1=$(date +%s.%N)
        rcpu=$(awk -v a="$r0" -v b="$r1" -v s="$t0" -v e="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", (b-a)/hz/(e-s)*100}')
        stop_node "$NODE_PID"
        PIDS=("$REDIS_PID")
        row=$(echo "$out" | grep '^| max' || true)
        [ -n "$row" ] || { echo "   [$1 $6 r$r] bench_fanout failed:"; echo "$out" | sed 's/^/     /'; }
        echo "$out" | grep -E 'errors|lost|closed|refused' | sed "s/^/   [$1 $6 r$r] /" || true
        # | max | subs | topics | burst | target | delivered/s | srv CPU % | cli CPU % | msg/s/core | gaps | ...
        FO[$1.$6]+="$(echo "$row" | awk -F'|' '{gsub(/[ %]/,"",$7);gsub(/[ %]/,"",$8);gsub(/[ %]/,"",$9);gsub(/ /,"",$10);gsub(/ /,"",$11); print $7":"$8":"$9":"$10":"$11}'):$rcpu "
}
CASES="t1b1:1:1:1:16 t1b32:1:1:32:128 t1000b32:1000:4:32:128"
for r in $(seq "$ROUNDS"); do
        for c in $CASES; do
                IFS=: read -r key topics pubs burst window <<<"$c"
                fo_case "$key" "$topics" "$pubs" "$burst" "$window" standalone
                fo_case "$key" "$topics" "$pubs" "$burst" "$window" broker
        done
done
echo
echo "| case | server | round | delivered msgs/s | tickwire CPU | client CPU | msgs per server core-second | gaps | broker / standalone | redis-server CPU |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for c in $CASES; do
        IFS=: read -r key topics pubs burst window <<<"$c"
        case $key in
        t1b1) label="1 topic, bursts of 1 (window 16)" ;;
        t1b32) label="1 topic, bursts of 32 (window 128)" ;;
        t1000b32) label="1,000 topics × $((FO_SUBS / 1000)), 4 publishers, bursts of 32 (window 128)" ;;
        esac
        read -ra sa <<<"${FO[$key.standalone]:-}"
        read -ra br <<<"${FO[$key.broker]:-}"
        for i in $(seq 0 $((ROUNDS - 1))); do
                for m in standalone broker; do
                        if [ $m = standalone ]; then v=${sa[$i]:-}; else v=${br[$i]:-}; fi
                        IFS=: read -r del scpu ccpu per gaps rcpu <<<"$v"
                        ratio=
                        if [ $m = broker ]; then
                                IFS=: read -r _ _ _ sper _ _ <<<"${sa[$i]:-}"
                                [ -n "${sper:-}" ] && [ -n "${per:-}" ] && ratio=$(awk -v a="$per" -v b="$sper" 'BEGIN{printf "%.2f×", a/b}')
                                rcpu="${rcpu:-?} %"
                        else
                                rcpu="idle"
                        fi
                        printf "| %s | %s | %d | %s | %s %% | %s %% | %s | %s | %s | %s |\n" "$label" \
                                "$([ $m = broker ] && echo "--broker" || echo "standalone")" $((i + 1)) \
                                "$(commas "${del:-0}")" "${scpu:-?}" "${ccpu:-?}" "$(commas "${per:-0}")" "${gaps:-?}" "$ratio" "$rcpu"
                done
        done
done
check_logs
