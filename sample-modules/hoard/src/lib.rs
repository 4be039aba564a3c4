//! `hoard` (keyed): the hostile fixture for host resources and fair CPU. Each
//! command takes something from the host that is not the guest's own memory:
//!
//! - `pollables N`: creates N WASI pollables and never drops them (host memory
//!   outside the guest's memory cap; stopped by `limits.max_host_handles`);
//! - `reply N`: answers with N bytes (stopped by `limits.max_message_bytes`);
//! - `grow N`: makes its snapshot N bytes (stopped by `limits.max_snapshot_bytes`);
//! - `timers N`, `subscribe N`: asks for N timers or topic subscriptions;
//! - `spin MS`: burns MS milliseconds of CPU;
//! - `incr`: counts (answers the count); `count`: answers it.
//!
//! Keys choose the activation: `loop-*` loops in `init`, `trap-*` panics in it.

use anthill_sdk::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Hoard {
    count: u64,
    pad: Vec<u8>,
    /// Never dropped: that is the attack.
    hoarded: Vec<wasip2::io::poll::Pollable>,
}

fn number(rest: &str) -> Result<u64, Error> {
    rest.trim()
        .parse()
        .map_err(|_| Error::rejected(format!("`{rest}` is not a number")))
}

impl Actor for Hoard {
    fn new(key: &str) -> Result<Self, String> {
        if key.starts_with("loop-") {
            let mut i: u64 = 0;
            loop {
                i = black_box(i.wrapping_add(1));
            }
        }
        if key.starts_with("trap-") {
            panic!("hoard/{key} traps in init");
        }
        Ok(Hoard::default())
    }

    fn on_message(&mut self, _from: Sender, message: Vec<u8>) -> Reply {
        let text = text(&message)?;
        let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
        match verb {
            "pollables" => {
                for _ in 0..number(rest)? {
                    let p = wasip2::clocks::monotonic_clock::subscribe_duration(1_000_000_000);
                    self.hoarded.push(p);
                }
                reply_text(format!("holding {}", self.hoarded.len()))
            }
            "reply" => reply(vec![b'r'; number(rest)? as usize]),
            "grow" => {
                self.pad = vec![b'p'; number(rest)? as usize];
                reply_text("grown")
            }
            "timers" => {
                for i in 0..number(rest)? {
                    host::set_timer(&format!("t{i}"), Duration::from_secs(3600), false)?;
                }
                reply_text("set")
            }
            "subscribe" => {
                for i in 0..number(rest)? {
                    host::subscribe(&format!("topic-{i}"), Delivery::AtMostOnce)?;
                }
                reply_text("subscribed")
            }
            "spin" => {
                let until = Instant::now() + Duration::from_millis(number(rest)?);
                let mut i: u64 = 0;
                while Instant::now() < until {
                    i = black_box(i.wrapping_add(1));
                }
                reply_text("spun")
            }
            "incr" => {
                self.count += 1;
                reply_text(self.count.to_string())
            }
            "count" => reply_text(self.count.to_string()),
            other => Err(Error::rejected(format!("hoard does not know `{other}`"))),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = self.count.to_le_bytes().to_vec();
        out.extend_from_slice(&self.pad);
        out
    }

    fn restore(&mut self, state: Vec<u8>, _from_version: u32) -> Result<(), String> {
        let (count, pad) = state.split_at(state.len().min(8));
        self.count = u64::from_le_bytes(count.try_into().map_err(|_| "short snapshot")?);
        self.pad = pad.to_vec();
        Ok(())
    }
}

anthill_sdk::export_actor!(Hoard);
