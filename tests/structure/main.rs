//! The runtime's structure, checked from `cargo metadata`: which crate may
//! depend on which (the directions of the README's crate graph). A new
//! dependency that breaks a direction fails here, so the seams cannot rot
//! silently.

use anyhow::{Context, bail};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Every package's normal (not dev, not build) dependencies, transitively,
/// by package name.
fn closure() -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let root = anthill_tests::workspace_root();
    // Only this platform's dependencies: those of other targets (android,
    // windows) were never downloaded, and the check runs offline.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV names no host")?;
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(&host)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .context("packages")?
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().context("resolve")? {
        let name = name_of[node["id"].as_str().unwrap_or("")].to_owned();
        let deps = direct.entry(name).or_default();
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if normal {
                deps.insert(name_of[dep["pkg"].as_str().unwrap_or("")].to_owned());
            }
        }
    }
    let mut all = BTreeMap::new();
    for name in direct.keys() {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.clone()];
        while let Some(n) = todo.pop() {
            for d in direct.get(&n).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        all.insert(name.clone(), seen);
    }
    Ok(all)
}

const LIBRARIES: &[&str] = &[
    "anthill-core",
    "anthill-store",
    "anthill-engine",
    "anthill-actors",
    "anthill-gateway",
    "anthill-admin",
    "anthill-cluster",
    "anthill-protocol",
    "anthill-client",
];

/// (crate, what it must not depend on, directly or through another crate).
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "anthill-core",
        &[
            "anthill-protocol",
            "anthill-store",
            "anthill-engine",
            "anthill-actors",
            "anthill-gateway",
            "anthill-admin",
            "wasmtime",
            "sled",
        ],
    ),
    (
        "anthill-store",
        &[
            "anthill-core",
            "anthill-protocol",
            "anthill-engine",
            "anthill-actors",
            "anthill-gateway",
            "anthill-admin",
            "wasmtime",
        ],
    ),
    (
        "anthill-engine",
        &[
            "anthill-store",
            "anthill-actors",
            "anthill-gateway",
            "anthill-admin",
            "sled",
            "quinn",
            "axum",
        ],
    ),
    (
        "anthill-actors",
        &["anthill-gateway", "anthill-admin", "quinn", "axum"],
    ),
    // The gateway serves WebSocket players over HTTP (axum, on the node's web
    // port), so axum is allowed; the admin API is not.
    (
        "anthill-gateway",
        &[
            "anthill-admin",
            "anthill-actors",
            "anthill-engine",
            "anthill-store",
            "wasmtime",
            "sled",
        ],
    ),
    (
        "anthill-admin",
        &["anthill-gateway", "anthill-cluster", "quinn", "async-nats"],
    ),
    // The cluster is new implementations over the seams, composed by the
    // binary: nothing below it knows NATS, and it knows no player transport.
    ("anthill-cluster", &["anthill-gateway", "quinn"]),
];

/// Crates that must never reach NATS: the single node has none of it.
const NO_NATS: &[&str] = &[
    "anthill-core",
    "anthill-store",
    "anthill-engine",
    "anthill-actors",
    "anthill-gateway",
    "anthill-admin",
];

#[test]
fn dependencies_point_the_way_the_crate_graph_says() -> anyhow::Result<()> {
    let deps = closure()?;
    let mut broken = Vec::new();
    for (krate, forbidden) in FORBIDDEN {
        let have = deps
            .get(*krate)
            .with_context(|| format!("{krate} is not in the workspace"))?;
        for f in *forbidden {
            if have.contains(*f) {
                broken.push(format!("{krate} depends on {f}"));
            }
        }
    }
    for krate in NO_NATS {
        for f in ["anthill-cluster", "async-nats"] {
            if deps[*krate].contains(f) {
                broken.push(format!("{krate} depends on {f}"));
            }
        }
    }
    for lib in LIBRARIES {
        let have = deps
            .get(*lib)
            .with_context(|| format!("{lib} is not in the workspace"))?;
        for cli in ["clap", "indicatif", "reqwest"] {
            if have.contains(cli) {
                broken.push(format!(
                    "library {lib} depends on {cli} (only the binary may)"
                ));
            }
        }
    }
    for (krate, have) in &deps {
        if have.contains("anthill") {
            broken.push(format!("{krate} depends on the `anthill` binary package"));
        }
    }
    assert!(
        broken.is_empty(),
        "the crate graph is broken:\n  {}",
        broken.join("\n  ")
    );
    Ok(())
}

#[test]
fn the_check_sees_the_real_graph() -> anyhow::Result<()> {
    // The rules above mean nothing if the closure is empty or wrong: the
    // known edges must be there.
    let deps = closure()?;
    assert!(deps["anthill-actors"].contains("anthill-engine"));
    assert!(
        deps["anthill-actors"].contains("sled"),
        "through anthill-store"
    );
    assert!(deps["anthill-engine"].contains("wasmtime"));
    assert!(deps["anthill"].contains("anthill-admin"));
    assert!(deps["anthill"].contains("clap"));
    Ok(())
}
