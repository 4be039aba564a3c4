//! What makes an upload acceptable: a component (not a core module, not junk)
//! that exports `anthill:module/actor` with every function the host calls.
//! Each refusal names what is wrong and how to fix it.

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The interface every module exports.
pub const ACTOR_INTERFACE: &str = "anthill:module/actor@0.1.0";

/// Functions of [`ACTOR_INTERFACE`] the host calls.
const ACTOR_FUNCTIONS: &[&str] = &[
    "init",
    "on-message",
    "on-event",
    "on-join",
    "on-leave",
    "on-tick",
    "on-timer",
    "snapshot",
    "restore",
];

/// Why a component was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ComponentError {
    /// Not a WebAssembly component at all.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// A component that fails validation or compilation.
    #[error("the component is invalid: {0}")]
    Invalid(String),
    /// A valid component of another world, or with missing/mistyped exports or
    /// imports this host does not provide.
    #[error("the component does not fit the anthill:module world: {0}")]
    WrongWorld(String),
}

/// Checks the 8-byte preamble: `\0asm`, then version and layer. Components have
/// layer 1; core modules layer 0.
pub fn component_header(bytes: &[u8]) -> Result<(), ComponentError> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(ComponentError::NotAComponent(format!(
            "the upload ({} bytes) does not start with the wasm magic `\\0asm`",
            bytes.len()
        )));
    }
    let layer = u16::from_le_bytes([bytes[6], bytes[7]]);
    if layer == 0 {
        return Err(ComponentError::NotAComponent(
            "this is a core wasm module; build a component instead \
             (`cargo build --target wasm32-wasip2`, or `wasm-tools component new`)"
                .into(),
        ));
    }
    if layer != 1 {
        return Err(ComponentError::NotAComponent(format!(
            "unknown wasm layer {layer}"
        )));
    }
    Ok(())
}

/// Checks that the component exports the actor interface with every function.
pub(super) fn check_exports(
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<(), ComponentError> {
    let ty = component.component_type();
    let Some(actor) = ty.get_export(engine, ACTOR_INTERFACE) else {
        let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
        let exports = if exports.is_empty() {
            "nothing".to_owned()
        } else {
            exports.join(", ")
        };
        return Err(ComponentError::WrongWorld(format!(
            "missing export `{ACTOR_INTERFACE}` (the component exports {exports}); \
             build it for the `module` world of wit/anthill.wit"
        )));
    };
    let ComponentItem::ComponentInstance(instance) = actor.ty else {
        return Err(ComponentError::WrongWorld(format!(
            "export `{ACTOR_INTERFACE}` is not an interface instance"
        )));
    };
    let missing: Vec<&str> = ACTOR_FUNCTIONS
        .iter()
        .copied()
        .filter(|f| {
            !matches!(
                instance.get_export(engine, f).map(|e| e.ty),
                Some(ComponentItem::ComponentFunc(_))
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(ComponentError::WrongWorld(format!(
            "`{ACTOR_INTERFACE}` lacks function(s) {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_core_modules_are_not_components() {
        assert!(matches!(
            component_header(b"hello world"),
            Err(ComponentError::NotAComponent(_))
        ));
        let core = b"\0asm\x01\0\0\0";
        let err = component_header(core).unwrap_err();
        assert!(err.to_string().contains("core wasm module"), "{err}");
        let component = b"\0asm\x0d\0\x01\0";
        assert!(component_header(component).is_ok());
    }
}
