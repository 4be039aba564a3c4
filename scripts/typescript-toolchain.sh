#!/usr/bin/env bash
# Installs the TypeScript compiler the SDK in clients/typescript is built with,
# pinned by that package's committed lockfile, into target/toolchains/typescript
# (Node.js too, when the machine has none ≥ 20), and writes
# target/toolchains/typescript/run: node (the private one if any) for the
# SDK's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/toolchains
mkdir -p "$tools"
# Tests run in parallel and each may call this: one installs, the others wait.
exec 9>"$tools/.typescript.lock"
flock 9
. scripts/node-env.sh
lock=clients/typescript/package-lock.json
stamp="$(sha256sum "$lock" | cut -c1-16)"
if [ "$(cat "$tools/typescript/.version" 2>/dev/null)" != "$stamp" ]; then
    echo "installing TypeScript into $tools/typescript from $lock (once)…"
    npm_ci_pinned typescript "$stamp" clients/typescript
fi
cat > "$tools/typescript/run" <<'WRAPPER'
#!/usr/bin/env sh
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$here/../node/bin/node" ] && PATH="$here/../node/bin:$PATH"
exec node "$@"
WRAPPER
chmod +x "$tools/typescript/run"
