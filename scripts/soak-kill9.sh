#!/usr/bin/env bash
# Soak: kill -9 a node again and again in the middle of a stream of increments to
# an every-message-durable counter, and check that no acknowledged increment is
# ever lost. The test suite does 20 rounds; this does as many as you ask.
#   scripts/soak-kill9.sh [ROUNDS=200]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-200}"
bin=target/release/anthill
[ -x "$bin" ] && [ -f target/modules/counter.wasm ] || { echo "run: just build build-modules"; exit 1; }
data="$(mktemp -d -t anthill-soak.XXXXXX)"
trap 'kill -9 ${pid:-0} 2>/dev/null || true' EXIT
start() {
    "$bin" serve --data "$data" --admin 127.0.0.1:0 --quic 127.0.0.1:0 >"$data/node.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do grep -q '^modules:' "$data/node.log" 2>/dev/null && return; sleep 0.05; done
    cat "$data/node.log"; exit 1
}
a() { "$bin" "$@" --data "$data"; }
start
a deploy counter target/modules/counter.wasm --keyed --durability every-message >/dev/null 2>&1
acked=0
for round in $(seq "$rounds"); do
    value=$(a call counter/soak get)
    if [ "$value" -lt "$acked" ]; then echo "LOST: round $round, acked $acked, found $value"; exit 1; fi
    acked=$value
    ( while v=$(a call counter/soak incr 2>/dev/null); do echo "$v" > "$data/last"; done ) &
    loop=$!
    sleep "0.$(( RANDOM % 5 + 1 ))"
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    wait "$loop" 2>/dev/null || true
    [ -f "$data/last" ] && acked=$(cat "$data/last")
    start
    printf '\rround %d/%d: %d increments acknowledged, none lost' "$round" "$rounds" "$acked"
done
echo
echo "soak passed: $rounds kills, $acked acknowledged increments, all kept"
