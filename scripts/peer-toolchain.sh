#!/usr/bin/env bash
# Installs Colyseus (server, schema, SDK), the peer `anthill-bench peer`
# measures the node against, pinned by scripts/toolchains/colyseus's
# committed lockfile, into target/toolchains/colyseus (Node.js too, when the
# machine has none ≥ 20), and writes target/toolchains/colyseus/run: node
# with those packages at hand, for tests/peer/*.cjs.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/toolchains
mkdir -p "$tools"
exec 9>"$tools/.colyseus.lock"
flock 9
. scripts/node-env.sh
lock=scripts/toolchains/colyseus/package-lock.json
stamp="$(sha256sum "$lock" | cut -c1-16)"
if [ "$(cat "$tools/colyseus/.version" 2>/dev/null)" != "$stamp" ]; then
    echo "installing Colyseus into $tools/colyseus from $lock (once)…"
    npm_ci_pinned colyseus "$stamp"
fi
cat > "$tools/colyseus/run" <<'WRAPPER'
#!/usr/bin/env sh
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$here/../node/bin/node" ] && PATH="$here/../node/bin:$PATH"
export NODE_PATH="$here/node_modules"
exec node "$@"
WRAPPER
chmod +x "$tools/colyseus/run"
