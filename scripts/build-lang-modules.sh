#!/usr/bin/env bash
# Builds the JavaScript and Python sample modules to target/modules/NAME.wasm.
# The toolchains are installed on first use into target/toolchains (outside the
# tracked tree), pinned to exact versions (JS: by a committed lockfile). A
# module is rebuilt only when its source, the WIT or the toolchain changed
# (componentize takes ~10 s each).
set -euo pipefail
cd "$(dirname "$0")/.."
COMPONENTIZE_JS_VERSION=0.23.0
COMPONENTIZE_PY_VERSION=0.25.1
tools=target/toolchains
out=target/modules
mkdir -p "$tools" "$out"

# Node.js and npm (sets PATH and the npm command array).
. scripts/node-env.sh

# componentize-js and every package under it are pinned by the committed
# lockfile (scripts/toolchains/js), so a new release of a transitive dependency
# cannot change what CI builds with; a changed lockfile reinstalls.
js_bin="$tools/js/componentize-js"
js_lock=scripts/toolchains/js/package-lock.json
js_stamp="$COMPONENTIZE_JS_VERSION $(sha256sum "$js_lock" | cut -c1-16)"
if [ "$(cat "$tools/js/.version" 2>/dev/null)" != "$js_stamp" ]; then
    echo "installing componentize-js $COMPONENTIZE_JS_VERSION into $tools/js from $js_lock (once; ~400 MB)…"
    npm_ci_pinned js "$js_stamp"
fi
# The entry point tests and templates use: finds the private Node.js if any.
cat > "$js_bin" <<WRAPPER
#!/usr/bin/env sh
here=\$(cd "\$(dirname "\$0")" && pwd)
[ -x "\$here/../node/bin/node" ] && PATH="\$here/../node/bin:\$PATH"
exec "\$here/node_modules/.bin/componentize-js" "\$@"
WRAPPER
chmod +x "$js_bin"

# Python: a venv from the machine's Python 3; without Python or its venv
# module, Debian's packages when running as root, else a clear error.
py_ok() { command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }
py_bin="$tools/py/bin/componentize-py"
if [ "$(cat "$tools/py/.version" 2>/dev/null)" != "$COMPONENTIZE_PY_VERSION" ]; then
    if ! py_ok; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "no Python 3 with venv here: installing Debian's python3 and python3-venv…"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null \
                || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null; }
        else
            echo "error: the Python sample modules need Python 3 with its venv module (Debian: apt install python3 python3-venv)"; exit 1
        fi
    fi
    echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $tools/py (once)…"
    rm -rf "$tools/py"
    python3 -m venv "$tools/py"
    "$tools/py/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
    echo "$COMPONENTIZE_PY_VERSION" > "$tools/py/.version"
fi

# Rebuild $1 unless it is newer than every later argument.
stale() {
    # `src` local: the caller's `src` is the module's source, which a global
    # loop variable here overwrote with the WIT's path whenever the WIT was
    # the newer file, so componentize-js parsed the WIT as JavaScript.
    local target=$1 src; shift
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
