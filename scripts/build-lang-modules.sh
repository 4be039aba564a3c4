#!/usr/bin/env bash
# Builds the JavaScript and Python sample modules to target/modules/NAME.wasm.
# The toolchains are installed on first use into target/toolchains (outside the
# tracked tree), pinned to exact versions. A module is rebuilt only when its
# source, the WIT or the toolchain changed (componentize takes ~10 s each).
set -euo pipefail
cd "$(dirname "$0")/.."
COMPONENTIZE_JS_VERSION=0.23.0
COMPONENTIZE_PY_VERSION=0.25.1
tools=target/toolchains
out=target/modules
mkdir -p "$tools" "$out"

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required to build the $2 sample modules (install $3)"; exit 1; }; }

js_bin="$tools/js/node_modules/.bin/componentize-js"
if [ "$(cat "$tools/js/.version" 2>/dev/null)" != "$COMPONENTIZE_JS_VERSION" ]; then
    need node JavaScript "Node.js 20"
    need npm JavaScript "npm"
    echo "installing componentize-js $COMPONENTIZE_JS_VERSION into $tools/js (once; ~400 MB)…"
    # A fresh directory: npm installing over another version leaves a broken tree.
    rm -rf "$tools/js"
    npm install --prefix "$tools/js" --no-audit --no-fund --loglevel=error "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >/dev/null
    echo "$COMPONENTIZE_JS_VERSION" > "$tools/js/.version"
fi
py_bin="$tools/py/bin/componentize-py"
if [ "$(cat "$tools/py/.version" 2>/dev/null)" != "$COMPONENTIZE_PY_VERSION" ]; then
    need python3 Python "Python 3 with venv"
    echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $tools/py (once)…"
    rm -rf "$tools/py"
    python3 -m venv "$tools/py"
    "$tools/py/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
    echo "$COMPONENTIZE_PY_VERSION" > "$tools/py/.version"
fi

# Rebuild $1 unless it is newer than every later argument.
stale() {
    local target=$1; shift
    [ -f "$target" ] || return 0
    for src in "$@"; do [ "$src" -nt "$target" ] && return 0; done
    return 1
}

for dir in sample-modules/*/; do
    name=$(basename "$dir")
    if [ -f "$dir/module.js" ] || ls "$dir"/*.js >/dev/null 2>&1; then
        src=$(ls "$dir"/*.js | head -1)
        if stale "$out/$name.wasm" "$src" wit/anthill.wit "$tools/js/.version"; then
            echo "componentize-js $name…"
            started=$(date +%s)
            "$js_bin" "$src" --wit wit --world-name module --disable http fetch-event -o "$out/$name.wasm" >/dev/null
            echo "  $name.wasm: $(stat -c %s "$out/$name.wasm") bytes in $(( $(date +%s) - started )) s"
        fi
    elif [ -f "$dir/app.py" ]; then
        if stale "$out/$name.wasm" "$dir"/*.py wit/anthill.wit "$tools/py/.version"; then
            echo "componentize-py $name…"
            started=$(date +%s)
            (cd "$dir" && "../../$py_bin" -q -d ../../wit -w module componentize app -o "../../$out/$name.wasm")
            echo "  $name.wasm: $(stat -c %s "$out/$name.wasm") bytes in $(( $(date +%s) - started )) s"
        fi
    fi
done
