//! Builds the Rust sample modules as wasm32-wasip2 components before the tests
//! compile, so `cargo test` needs no manual step (the model is wasmtime's
//! `crates/test-programs/artifacts/build.rs`). They go to `target/guests`, a
//! target dir of their own: the outer cargo holds the lock on the main one.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned();
    for dir in ["sample-modules", "tests/fixtures", "guest-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    ensure_wasm_target();

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--profile",
            "guest",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    // Samples teach module authors; fixtures misbehave on purpose for tests.
    let packages = [
        root.join("sample-modules"),
        root.join("tests").join("fixtures"),
    ]
    .iter()
    .flat_map(|dir| rust_samples(dir))
    .collect::<Vec<_>>();
    for pkg in packages {
        cmd.args(["-p", &pkg]);
    }
    // The outer build's variables (flags for the host, this package's
    // CARGO_MANIFEST_DIR, OUT_DIR, TARGET...) are not the guests': build scripts
    // that watch them would rerun on every build.
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy();
        let outer = (var.starts_with("CARGO_") && var != "CARGO_HOME")
            || var.starts_with("RUSTC")
            || var.starts_with("DEP_")
            || [
                "RUSTFLAGS",
                "OUT_DIR",
                "TARGET",
                "HOST",
                "PROFILE",
                "OPT_LEVEL",
                "DEBUG",
                "NUM_JOBS",
            ]
            .contains(&var.as_ref());
        if outer {
            cmd.env_remove(var.as_ref());
        }
    }
    let status = cmd
        .status()
        .expect("running cargo to build the sample modules");
    assert!(
        status.success(),
        "building the sample modules failed (see above)"
    );
    let out = target_dir.join("wasm32-wasip2").join("guest");
    println!("cargo:rustc-env=ANTHILL_GUESTS_DIR={}", out.display());
}

/// Package names of the Rust modules in `dir` (folders with a Cargo.toml).
fn rust_samples(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
    {
        let path = entry.expect("listing a module folder").path();
        let manifest = path.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let name = text
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("name = \"")
                        .and_then(|r| r.strip_suffix('"'))
                })
                .unwrap_or_else(|| panic!("no package name in {}", manifest.display()));
            names.push(name.to_owned());
        }
    }
    names.sort();
    names
}

/// Installs the wasm32-wasip2 target through rustup when it is missing.
fn ensure_wasm_target() {
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let installed = sysroot
        .map(|s| Path::new(&s).join("lib/rustlib/wasm32-wasip2").exists())
        .unwrap_or(false);
    if !installed {
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed"
        );
    }
}
