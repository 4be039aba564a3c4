#!/usr/bin/env bash
# The demo: start a node on a scratch data dir, deploy the sample modules, and
# show what a user sees — calls, state per key, a hostile module contained, a hot
# swap. Run through `just demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/anthill
mods=target/modules
data="$(mktemp -d -t anthill-demo.XXXXXX)"
log="$data/node.log"
cleanup() {
    if [ -n "${node_pid:-}" ] && kill -0 "$node_pid" 2>/dev/null; then
        kill -TERM "$node_pid"; wait "$node_pid" || true
    fi
}
trap cleanup EXIT INT TERM

"$bin" serve --data "$data" --admin 127.0.0.1:0 --quic 127.0.0.1:0 >"$log" 2>&1 &
node_pid=$!
for _ in $(seq 100); do grep -q '^modules:' "$log" 2>/dev/null && break; sleep 0.1; done
grep -q '^modules:' "$log" || { cat "$log"; echo "the node did not start"; exit 1; }
sed -n '1,5p' "$log"
a() { "$bin" "$@" --data "$data"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "deploy the sample modules"
a deploy echo "$mods/echo.wasm"
a deploy counter "$mods/counter.wasm" --keyed
a deploy misbehave "$mods/misbehave.wasm"

step "call them"
printf 'echo hello        → '; a call echo hello; echo
for k in alice alice alice bob; do printf 'counter/%-6s incr → ' "$k"; a call "counter/$k" incr; echo; done

step "a hostile module is contained"
for attack in loop trap oom; do
    printf 'misbehave %-4s → ' "$attack"
    { a call misbehave "$attack" 2>&1 || true; } | sed 's/^error: calling misbehave: //' | head -1
done
printf 'echo still answers → '; a call echo "still here"; echo

step "hot swap counter to a new version, state carried"
a deploy counter "$mods/counter.wasm" --keyed
printf 'counter/alice get → '; a call counter/alice get; echo

step "operators"
a modules
a actors counter

step "graceful stop snapshots every actor"
kill -TERM "$node_pid"; wait "$node_pid" || true
tail -2 "$log"
node_pid=
echo
echo "data dir kept at $data (anthill serve --data $data to pick up where it stopped)"
