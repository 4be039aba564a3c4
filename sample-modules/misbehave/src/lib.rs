//! `misbehave` (singleton): the hostile fixture. Each payload is one attack the
//! host must contain without harm to the node or other modules:
//!
//! - `loop`: spins forever (stopped by the per-call deadline);
//! - `trap`: panics (the actor is re-instantiated for the next message);
//! - `oom`: allocates without bound (stopped by the per-actor memory cap);
//! - `bigcall`: hands the host an 8 MiB log line and a 32 MiB message (truncated,
//!   refused, no host panic);
//! - `ok`: replies `ok`.

use anthill_sdk::prelude::*;
use std::hint::black_box;
use std::time::Duration;

struct Misbehave;

impl Actor for Misbehave {
    fn new(_key: &str) -> Result<Self, String> {
        Ok(Misbehave)
    }

    fn on_message(&mut self, _from: Sender, message: Vec<u8>) -> Reply {
        match text(&message)? {
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            "trap" => panic!("misbehave was asked to trap"),
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![0xA5; 1 << 20]));
                }
            }
            "bigcall" => {
                host::info(&"x".repeat(8 << 20));
                let huge = vec![7u8; 32 << 20];
                let echo = ActorRef::singleton("echo");
                let outcome = host::call(&echo, &huge, Duration::from_secs(1));
                match outcome {
                    Ok(reply) => reply_text(format!("host accepted {} bytes", reply.len())),
                    Err(e) => Err(e),
                }
            }
            "ok" => reply_text("ok"),
            other => Err(Error::rejected(format!("unknown attack `{other}`"))),
        }
    }
}

anthill_sdk::export_actor!(Misbehave);
