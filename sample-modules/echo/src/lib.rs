//! `echo` (singleton): replies with the payload it was sent.

use anthill_sdk::prelude::*;

struct Echo;

impl Actor for Echo {
    fn new(_key: &str) -> Result<Self, String> {
        Ok(Echo)
    }

    fn on_message(&mut self, _from: Sender, message: Vec<u8>) -> Reply {
        reply(message)
    }
}

anthill_sdk::export_actor!(Echo);
