#!/bin/sh
# TLS benchmarks against a real server: makes a throw-away P-256 certificate, starts
# tickwire with a plain and a TLS listener, runs bench_tls (handshakes/s full and
# resumed, memory per idle connection, fan-out TLS vs plain), stops the server.
#   bench/tls.sh [BUILD_DIR] [bench_tls options...]
# e.g. bench/tls.sh build --threads 2 --duration 5 --conns 3000 --subs 1000 --msgs 200
set -eu
BUILD=${1:-build}
[ $# -gt 0 ] && shift
TMP=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$TMP/key.pem" \
        -out "$TMP/cert.pem" -nodes -days 1 -subj /CN=localhost 2>/dev/null
WORKERS=${WORKERS:-2}
"$BUILD/tickwire" --listen 127.0.0.1:0 --tls-listen 127.0.0.1:0 --workers "$WORKERS" \
        --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" 2>"$TMP/log" &
PID=$!
for _ in $(seq 50); do
        [ "$(grep -c 'listening on' "$TMP/log")" -ge 2 ] && break
        sleep 0.1
done
PLAIN=$(grep 'listening on' "$TMP/log" | grep -v '(tls)' | head -1 | sed 's/.*listening on \([^ ]*\).*/\1/')
TLS=$(grep 'listening on' "$TMP/log" | grep '(tls)' | head -1 | sed 's/.*listening on \([^ ]*\).*/\1/')
echo "# server: tickwire --workers $WORKERS, plain $PLAIN, tls $TLS (pid $PID); $(nproc) cores"
"$BUILD/bench_tls" --tls "$TLS" --plain "$PLAIN" --pid "$PID" "$@"
