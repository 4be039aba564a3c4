//! The host side of the WIT contract: the `bindgen!` site (the only one), the
//! per-actor store data ([`ActorCtx`]) and the implementations of every
//! `anthill:module/host` import.

mod bindings;
mod clock;
mod ctx;
mod imports;
mod share;
mod stderr;

pub use bindings::anthill::module::types;
pub use bindings::exports::anthill::module::actor as actor_exports;
pub use bindings::{Bindings, BindingsPre};
pub use clock::GuestClock;
pub use ctx::{ActorCtx, ActorLimits, Effects};
pub use share::CpuShare;
pub use stderr::StderrTail;

use wasmtime::component::{HasSelf, Linker};

/// Adds WASI (locked down) and the Anthill host interface to a linker.
pub fn add_to_linker(linker: &mut Linker<ActorCtx>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    Bindings::add_to_linker::<ActorCtx, HasSelf<ActorCtx>>(linker, |ctx| ctx)?;
    Ok(())
}
