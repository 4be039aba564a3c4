//! Rust bindings of `wit/anthill.wit`, generated at build time. Imports are async
//! so a guest `call` can wait for another actor without blocking a thread.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "module",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::Module as Bindings;
pub use self::ModulePre as BindingsPre;
