//! # anthill-sdk: Anthill modules in Rust
//!
//! A module is a type that implements [`Actor`], exported with one line:
//!
//! ```ignore
//! use anthill_sdk::prelude::*;
//!
//! struct Echo;
//!
//! impl Actor for Echo {
//!     fn new(_key: &str) -> Result<Self, String> {
//!         Ok(Echo)
//!     }
//!     fn on_message(&mut self, _from: Sender, message: Vec<u8>) -> Reply {
//!         reply(message)
//!     }
//! }
//!
//! anthill_sdk::export_actor!(Echo);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`: the output is a
//! component that `anthill deploy` accepts. The host creates one value of your type
//! per actor (one for a singleton, one per key for a keyed module) and calls it one
//! message at a time, so `&mut self` is all the synchronisation you need.
//!
//! Everything the module may ask of the host is in [`host`].

// The generated bindings name this crate by its public path, also from inside it.
extern crate self as anthill_sdk;

pub mod host;
#[cfg(feature = "json")]
pub mod json;
mod message;
mod synced_state;

/// The raw bindings generated from `wit/anthill.wit`. Module code should not need
/// them; they are public for the [`export_actor!`] macro.
#[doc(hidden)]
#[allow(unsafe_code, unreachable_pub, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "module",
        pub_export_macro: true,
        export_macro_name: "__export_module",
        default_bindings_module: "anthill_sdk::bindings",
        runtime_path: "anthill_sdk::__private::wit_bindgen::rt",
    });
}

pub use bindings::anthill::module::types::{
    ActorRef, Channel, Delivery, Entity, Error, LogLevel, Sender,
};
pub use message::{Reply, no_reply, reply, reply_text, text};
pub use synced_state::SyncedState;

/// The common imports for a module: `use anthill_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::host;
    pub use crate::{
        Actor, ActorRef, Channel, Delivery, Entity, Error, Reply, Sender, SyncedState, no_reply,
        reply, reply_text, text,
    };
}

/// A business module's actor. The host creates one per key and calls its methods one
/// at a time; only [`Actor::new`] and [`Actor::on_message`] are required.
pub trait Actor: Sized + 'static {
    /// Creates the actor for `key` ("" for a singleton). An error here fails the
    /// activation and is reported to whoever sent the first message.
    fn new(key: &str) -> Result<Self, String>;

    /// Handles a message. `Ok(Some(bytes))` answers a `call`; the reply to a `send`
    /// is dropped. `Err` is returned to the caller (use [`Error::rejected`] for
    /// "I understood and refuse").
    fn on_message(&mut self, from: Sender, message: Vec<u8>) -> Reply;

    /// An event on a topic this actor subscribed to. `Err` is a nack: an
    /// at-least-once subscription gets it again later.
    fn on_event(&mut self, topic: &str, event: Vec<u8>) -> Result<(), Error> {
        let _ = (topic, event);
        Ok(())
    }

    /// A player asks to join this room. `Err` refuses.
    fn on_join(&mut self, player: u64) -> Result<(), Error> {
        let _ = player;
        Ok(())
    }

    /// A player left this room, or its session expired.
    fn on_leave(&mut self, player: u64) {
        let _ = player;
    }

    /// A tick, at the rate set with [`host::set_tick_rate`].
    fn on_tick(&mut self, now_ms: u64) {
        let _ = now_ms;
    }

    /// A timer set with [`host::set_timer`] is due.
    fn on_timer(&mut self, tag: &str) {
        let _ = tag;
    }

    /// The state to keep across passivation, restarts and hot swaps. The default
    /// keeps nothing.
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Restores what [`Actor::snapshot`] returned, written by module version
    /// `from_version` (older versions may have written an older format: migrate
    /// here). Called right after [`Actor::new`].
    fn restore(&mut self, state: Vec<u8>, from_version: u32) -> Result<(), String> {
        let _ = (state, from_version);
        Ok(())
    }
}

/// Exports a type implementing [`Actor`] as this component's actor.
///
/// ```ignore
/// anthill_sdk::export_actor!(Counter);
/// ```
#[macro_export]
macro_rules! export_actor {
    ($actor:ty) => {
        const _: () = {
            type AnthillActorExport = $crate::__private::Export<$actor>;
            $crate::bindings::__export_module!(
                AnthillActorExport with_types_in $crate::bindings
            );
        };
    };
}

#[doc(hidden)]
pub mod __private {
    //! The glue between wit-bindgen's static `Guest` trait and a stateful [`Actor`].
    pub use wit_bindgen;

    use crate::bindings::exports::anthill::module::actor::Guest;
    use crate::{Actor, Error, Sender};
    use std::any::Any;
    use std::cell::RefCell;
    use std::marker::PhantomData;

    /// Implements the generated `Guest` trait for any [`Actor`].
    pub struct Export<A>(PhantomData<A>);

    thread_local! {
        // A component instance is single-threaded and holds exactly one actor.
        static ACTOR: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    fn with_actor<A: Actor, R>(f: impl FnOnce(&mut A) -> R) -> R {
        ACTOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            let actor = slot
                .as_mut()
                .and_then(|a| a.downcast_mut::<A>())
                .expect("the host calls `init` before anything else");
            f(actor)
        })
    }

    impl<A: Actor> Guest for Export<A> {
        fn init(key: String) -> Result<(), String> {
            let actor = A::new(&key)?;
            ACTOR.with(|cell| *cell.borrow_mut() = Some(Box::new(actor)));
            Ok(())
        }

        fn on_message(from: Sender, message: Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
            with_actor::<A, _>(|a| a.on_message(from, message))
        }

        fn on_event(topic: String, event: Vec<u8>) -> Result<(), Error> {
            with_actor::<A, _>(|a| a.on_event(&topic, event))
        }

        fn on_join(player: u64) -> Result<(), Error> {
            with_actor::<A, _>(|a| a.on_join(player))
        }

        fn on_leave(player: u64) {
            with_actor::<A, _>(|a| a.on_leave(player))
        }

        fn on_tick(now_ms: u64) {
            with_actor::<A, _>(|a| a.on_tick(now_ms))
        }

        fn on_timer(tag: String) {
            with_actor::<A, _>(|a| a.on_timer(&tag))
        }

        fn snapshot() -> Vec<u8> {
            with_actor::<A, _>(|a| a.snapshot())
        }

        fn restore(state: Vec<u8>, from_version: u32) -> Result<(), String> {
            with_actor::<A, _>(|a| a.restore(state, from_version))
        }
    }
}
