#!/usr/bin/env bash
# The demo: a node with the sample modules, bots playing `arena` over QUIC with
# live stats, a hot swap while they play, and a closing summary. Run through
# `just demo`; DEMO_PLAYERS and DEMO_SECONDS size it; Ctrl-C ends the bots early.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/anthill
mods=target/modules
players="${DEMO_PLAYERS:-200}"
seconds="${DEMO_SECONDS:-20}"
data="$(mktemp -d -t anthill-demo.XXXXXX)"
log="$data/node.log"
cleanup() {
    if [ -n "${node_pid:-}" ] && kill -0 "$node_pid" 2>/dev/null; then
        kill -TERM "$node_pid"; wait "$node_pid" || true
    fi
}
trap cleanup EXIT
trap 'echo; echo "interrupted"' INT

"$bin" serve --data "$data" --admin 127.0.0.1:0 --quic 127.0.0.1:0 --web 127.0.0.1:0 >"$log" 2>&1 &
node_pid=$!
for _ in $(seq 100); do grep -q '^modules:' "$log" 2>/dev/null && break; sleep 0.1; done
grep -q '^modules:' "$log" || { cat "$log"; echo "the node did not start"; exit 1; }
grep -v ' INFO ' "$log"
admin_url="$(cat "$data/admin.addr")"
case "$admin_url" in http*) ;; *) admin_url="http://$admin_url" ;; esac
echo "web console while the demo runs: $admin_url/console (token: $(cat "$data/admin.token"))"
echo "play the arena in a browser beside the bots: http://$(cat "$data/web.addr")/play (DEMO_SECONDS=300 gives you time)"
a() { "$bin" "$@" --data "$data"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "deploy the sample modules"
a deploy echo "$mods/echo.wasm"
a deploy counter "$mods/counter.wasm" --keyed
a deploy chat "$mods/chat.wasm" --keyed
a deploy chat-log "$mods/chat-log.wasm"
a deploy lobby "$mods/lobby.wasm"
a deploy arena "$mods/arena.wasm" --keyed
a deploy misbehave "$mods/misbehave.wasm"

step "modules talk through the host"
printf 'counter/alice incr → '; a call counter/alice incr; echo
a call chat/lobby "join ana" >/dev/null; a call chat/lobby "say ana hello" >/dev/null
sleep 0.2
printf 'chat/lobby history (chat → chat-log, at-least-once event) → '; a call chat/lobby history; echo

step "a hostile module is contained"
for attack in loop trap oom; do
    printf 'misbehave %-4s → ' "$attack"
    { a call misbehave "$attack" 2>&1 || true; } | sed 's/^error: calling misbehave: //' | head -1
done
printf 'echo still answers → '; a call echo "still here"; echo

step "$players bots play arena over QUIC for ${seconds}s (lobby places them in rooms of 50)"
a bot --scenario arena --players "$players" --duration "$seconds" &
bot_pid=$!
sleep $(( seconds / 2 ))
step "hot swap arena while they play (state carried, nobody dropped)"
# The same component again: --force makes it a new version (without it, a
# redeploy of what runs is a no-op), so every room is swapped for real.
a deploy arena "$mods/arena.wasm" --keyed --force
wait "$bot_pid" || true

step "operators"
a modules
printf 'lobby rooms → '; a call lobby rooms; echo
curl -s -H "Authorization: Bearer $(cat "$data/admin.token")" "$admin_url/metrics" \
    | grep -E '^anthill_(sync_bytes_total|player_connections|swap_duration_seconds_count)' || true
echo "module output (anthill logs -n 5):"
a logs -n 5

step "graceful stop snapshots every live actor"
kill -TERM "$node_pid"; wait "$node_pid" || true
tail -1 "$log"
node_pid=
echo
echo "data dir kept at $data (anthill serve --data $data picks up where it stopped)"
