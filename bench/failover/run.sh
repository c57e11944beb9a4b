#!/usr/bin/env bash
# Failover through the cluster (issue 12): N loadgen clients spread over two tickwire nodes
# on one Redis, publishing at RATE msgs/s through the publishers' nodes; at KILL_AT the
# second node is killed with SIGKILL. Its clients reconnect to the first (storm backoff,
# base 100 ms, cap 2 s) and resume their topics with since + epoch. Prints the time from
# the kill to every client resumed, and messages lost / duplicated per the loadgen.
#   bash bench/failover/run.sh [build] [N=10000] [RATE=1000]
set -euo pipefail
build=${1:-build}
n=${2:-10000}
rate=${3:-1000}
kill_at=8
dir=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rp=$(free_port)
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --daemonize no --loglevel warning >/dev/null &
until redis-cli -p "$rp" ping >/dev/null 2>&1; do sleep 0.05; done

start_node() { # port -> pid
        "$build/tickwire" --listen "127.0.0.1:$1" --workers 1 --broker "redis://127.0.0.1:$rp" \
                --node-id "n$1" >>"$dir/node-$1.log" 2>&1 &
        echo $!
}
pa=$(free_port)
pb=$(free_port)
a=$(start_node "$pa")
b=$(start_node "$pb")
for p in "$pa" "$pb"; do
        until curl -s "http://127.0.0.1:$p/healthz" | grep -q broker=up; do sleep 0.05; done
done

echo "redis $(redis-server --version | awk '{print $3}'), $n clients over 2 nodes (--workers 1)," \
        "100 topics, $rate publishes/s, kill -9 of node 2 at ${kill_at}s"
"$build/tickwire-loadgen" --target "127.0.0.1:$pa,127.0.0.1:$pb" --connections "$n" \
        --scenario storm --topics 100 --publish-rate "$rate" --duration 25s \
        --backoff-base 100ms --backoff-cap 2s --connect-rate 20000 \
        --json "$dir/r.json" >"$dir/out.txt" 2>"$dir/err.txt" &
lg=$!
sleep "$kill_at"
kill -9 "$b"
t_kill=$(date +%s%N)
wait "$lg" || { cat "$dir/err.txt" >&2; exit 1; }
python3 - "$dir/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c, st, m = r["connections"], r.get("storm", {}), r["messages"]
print("established            %d of %d, failed %d" % (c["established"], c["target"], c["failed"]))
for t in c.get("per_target", []):
    print("  %-22s established %6d  open at end %6d  moved in %6d"
          % (t["target"], t["established"], t["open"], t["moved_in"]))
print("dropped by the kill    %s" % st.get("drops"))
print("all resumed after      %s ms (first drop seen -> last client subscribed again)"
      % st.get("all_back_ms"))
print("peak accepts           %s /s" % st.get("peak_accept_per_s"))
res = r.get("resume", {})
print("resumes                %s, unrecovered %s" % (res.get("resumes"), res.get("unrecovered")))
print("messages received      %d, lost %s, duplicates %s, gaps %s"
      % (m["received"], m.get("lost"), m.get("duplicates"), m.get("gaps")))
print("false disconnects      %d" % r["false_disconnects"])
PY
