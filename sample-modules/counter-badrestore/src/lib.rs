//! `counter-badrestore` (keyed): a test fixture, a "new version" of `counter`
//! whose `restore` refuses every snapshot. Swapping `counter` to it must fail
//! atomically: 409, every actor still on the old version and serving.

use anthill_sdk::prelude::*;

struct Counter;

impl Actor for Counter {
    fn new(_key: &str) -> Result<Self, String> {
        Ok(Counter)
    }

    fn on_message(&mut self, _from: Sender, _message: Vec<u8>) -> Reply {
        reply_text("badrestore")
    }

    fn restore(&mut self, _state: Vec<u8>, from_version: u32) -> Result<(), String> {
        Err(format!(
            "this version cannot read snapshots written by version {from_version}"
        ))
    }
}

anthill_sdk::export_actor!(Counter);
