//! `anthill new --lang rust|js|python NAME`: a module project that builds as is
//! and deploys with `anthill deploy`. The WIT contract is copied in; for Rust the
//! guest SDK is vendored too, so the project builds without this repository.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum Lang {
    Rust,
    Js,
    Python,
}

#[derive(Args, Debug)]
pub(super) struct NewArgs {
    /// Module name (1 to 64 of a-z, 0-9, `-`, `_`; Rust: starting with a letter): the project directory too.
    name: String,
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// Parent directory of the project
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

const WIT: &str = include_str!("../../../wit/anthill.wit");

/// (path in the project, template, executable)
fn files(lang: Lang) -> Vec<(&'static str, &'static str, bool)> {
    match lang {
        Lang::Rust => vec![
            (
                "Cargo.toml",
                include_str!("../../templates/rust/Cargo.toml.tmpl"),
                false,
            ),
            (
                "src/lib.rs",
                include_str!("../../templates/rust/lib.rs.tmpl"),
                false,
            ),
            (
                "README.md",
                include_str!("../../templates/rust/README.md.tmpl"),
                false,
            ),
            (
                "anthill-sdk/Cargo.toml",
                include_str!("../../templates/rust/sdk-Cargo.toml.tmpl"),
                false,
            ),
            (
                "anthill-sdk/src/lib.rs",
                include_str!("../../../guest-sdk/src/lib.rs"),
                false,
            ),
            (
                "anthill-sdk/src/host.rs",
                include_str!("../../../guest-sdk/src/host.rs"),
                false,
            ),
            (
                "anthill-sdk/src/message.rs",
                include_str!("../../../guest-sdk/src/message.rs"),
                false,
            ),
            (
                "anthill-sdk/src/json.rs",
                include_str!("../../../guest-sdk/src/json.rs"),
                false,
            ),
            (
                "anthill-sdk/src/synced_state.rs",
                include_str!("../../../guest-sdk/src/synced_state.rs"),
                false,
            ),
            (".gitignore", "/target\n*.wasm\n", false),
        ],
        Lang::Js => vec![
            (
                "module.js",
                include_str!("../../templates/js/module.js.tmpl"),
                false,
            ),
            (
                "package.json",
                include_str!("../../templates/js/package.json.tmpl"),
                false,
            ),
            (
                "build.sh",
                include_str!("../../templates/js/build.sh.tmpl"),
                true,
            ),
            (
                "README.md",
                include_str!("../../templates/js/README.md.tmpl"),
                false,
            ),
            (".gitignore", "node_modules\n*.wasm\n", false),
        ],
        Lang::Python => vec![
            (
                "app.py",
                include_str!("../../templates/python/app.py.tmpl"),
                false,
            ),
            (
                "requirements.txt",
                include_str!("../../templates/python/requirements.txt.tmpl"),
                false,
            ),
            (
                "build.sh",
                include_str!("../../templates/python/build.sh.tmpl"),
                true,
            ),
            (
                "README.md",
                include_str!("../../templates/python/README.md.tmpl"),
                false,
            ),
            (".gitignore", ".venv\n__pycache__\n*.wasm\n", false),
        ],
    }
}

fn write(root: &Path, rel: &str, text: &str, executable: bool) -> anyhow::Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

pub(super) fn run(a: NewArgs) -> anyhow::Result<()> {
    if !anthill_core::module::is_module_name(&a.name) {
        bail!(
            "`{}` is not a module name: use {}",
            a.name,
            anthill_core::module::MODULE_NAME_RULE
        );
    }
    if a.lang == Lang::Rust && !a.name.as_bytes()[0].is_ascii_lowercase() {
        bail!(
            "`{}` cannot name a Rust project: Cargo package names start with a letter \
             (deploy would accept it; pick another name for the project)",
            a.name
        );
    }
    let root = a.dir.join(&a.name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let crate_name = a.name.replace('-', "_");
    for (rel, template, executable) in files(a.lang) {
        let text = template
            .replace("{{name}}", &a.name)
            .replace("{{crate}}", &crate_name);
        write(&root, rel, &text, executable)?;
    }
    write(&root, "wit/anthill.wit", WIT, false)?;
    let build = match a.lang {
        Lang::Rust => format!(
            "cargo build --target wasm32-wasip2 --release\n  anthill deploy {} target/wasm32-wasip2/release/{crate_name}.wasm",
            a.name
        ),
        Lang::Js => format!(
            "npm install && npm run build\n  anthill deploy {0} {0}.wasm",
            a.name
        ),
        Lang::Python => format!(
            "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && COMPONENTIZE_PY=.venv/bin/componentize-py ./build.sh\n  anthill deploy {0} {0}.wasm",
            a.name
        ),
    };
    let lang = match a.lang {
        Lang::Rust => "Rust",
        Lang::Js => "JavaScript",
        Lang::Python => "Python",
    };
    println!(
        "created {} ({lang})\nnext:\n  cd {}\n  {build}",
        root.display(),
        root.display()
    );
    Ok(())
}
