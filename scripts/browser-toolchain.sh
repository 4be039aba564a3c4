#!/usr/bin/env bash
# Installs what the browser tests drive: Debian's Chromium (when running as
# root; otherwise the error says what to install) and playwright-core, pinned
# by the committed lockfile (scripts/toolchains/browser), into
# target/toolchains/browser. No browser is downloaded by playwright: it
# drives the system's chromium through executablePath.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/toolchains
mkdir -p "$tools"
# Tests run in parallel and each may call this: one installs, the others wait.
exec 9>"$tools/.browser.lock"
flock 9

chromium_bin() { command -v chromium || command -v chromium-browser || true; }
if [ -z "$(chromium_bin)" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "no Chromium here: installing Debian's chromium for the browser tests (once)…"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "error: the browser tests need Chromium (Debian: sudo apt-get install chromium)"; exit 1
    fi
fi

. scripts/node-env.sh

lock=scripts/toolchains/browser/package-lock.json
stamp="$(sha256sum "$lock" | cut -c1-16)"
if [ "$(cat "$tools/browser/.version" 2>/dev/null)" != "$stamp" ]; then
    echo "installing playwright-core into $tools/browser from $lock (once)…"
    npm_ci_pinned browser "$stamp"
fi
# What tests run: node (the private one if any) with playwright-core at hand
# and Chromium's path in CHROMIUM.
cat > "$tools/browser/run" <<WRAPPER
#!/usr/bin/env sh
here=\$(cd "\$(dirname "\$0")" && pwd)
[ -x "\$here/../node/bin/node" ] && PATH="\$here/../node/bin:\$PATH"
export NODE_PATH="\$here/node_modules"
export CHROMIUM="$(chromium_bin)"
exec node "\$@"
WRAPPER
chmod +x "$tools/browser/run"
