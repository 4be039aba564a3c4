#!/usr/bin/env bash
# Soak: kill -9 a node again and again while concurrent writers stream
# increments to every-message-durable counters (group commit under load), and
# check after every restart, for every key: acknowledged ≤ stored ≤ sent.
# The test suite runs a bounded version of this (lifecycle.rs,
# `kill_9_under_concurrent_writers…`); this runs as many rounds as you ask.
#   scripts/soak-kill9.sh [ROUNDS=200] [KEYS=4]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-200}"
keys="${2:-4}"
bin=target/release/anthill
[ -x "$bin" ] && [ -f target/modules/counter.wasm ] || { echo "run: just build build-modules"; exit 1; }
data="$(mktemp -d -t anthill-soak.XXXXXX)"
pids=()
trap 'kill -9 ${pid:-0} "${pids[@]}" 2>/dev/null || true' EXIT
start() {
    # The previous node's address files must not be mistaken for this one's.
    rm -f "$data/admin.addr" "$data/node.log"
    "$bin" serve --data "$data" --admin 127.0.0.1:0 --quic 127.0.0.1:0 --web 127.0.0.1:0 >"$data/node.log" 2>&1 &
    pid=$!
    for _ in $(seq 400); do
        if grep -q '^modules:' "$data/node.log" 2>/dev/null && [ -s "$data/admin.addr" ]; then return; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "the node did not start:"; cat "$data/node.log"; exit 1
}
a() { "$bin" "$@" --data "$data"; }
# One writer per key: counts sent before sending and acknowledged on a reply.
writer() {
    local k=$1
    while true; do
        echo $(( $(cat "$data/sent-$k") + 1 )) >"$data/sent-$k"
        a call "counter/k$k" incr >/dev/null 2>&1 || return 0
        echo $(( $(cat "$data/acked-$k") + 1 )) >"$data/acked-$k"
    done
}
start
a deploy counter target/modules/counter.wasm --keyed --durability every-message >/dev/null
for k in $(seq "$keys"); do echo 0 >"$data/sent-$k"; echo 0 >"$data/acked-$k"; done
total=0
for round in $(seq "$rounds"); do
    total=0
    for k in $(seq "$keys"); do
        stored=$(a call "counter/k$k" get)
        acked=$(cat "$data/acked-$k"); sent=$(cat "$data/sent-$k")
        if [ "$stored" -lt "$acked" ] || [ "$stored" -gt "$sent" ]; then
            echo; echo "FAILED: round $round, key k$k: acknowledged $acked, stored $stored, sent $sent"; exit 1
        fi
        total=$(( total + acked ))
    done
    pids=()
    for k in $(seq "$keys"); do writer "$k" & pids+=($!); done
    sleep "0.$(( RANDOM % 5 + 2 ))"
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    start
    printf '\rround %d/%d: %d increments acknowledged over %d keys, none lost, none invented' "$round" "$rounds" "$total" "$keys"
done
echo
echo "soak passed: $rounds kills, acknowledged ≤ stored ≤ sent for every key after every restart"
