//! `counter` (keyed): one counter per key.
//!
//! Messages are text: `incr` adds one and replies with the new value, `get`
//! replies with the value; replies are decimal text. The snapshot is the value as
//! decimal text, the format `counter-v2`, `counter-js` and `counter-py` share so
//! any of them can take over another's state.

use anthill_sdk::prelude::*;

struct Counter {
    value: u64,
}

impl Actor for Counter {
    fn new(_key: &str) -> Result<Self, String> {
        Ok(Counter { value: 0 })
    }

    fn on_message(&mut self, _from: Sender, message: Vec<u8>) -> Reply {
        match text(&message)? {
            "incr" => {
                self.value += 1;
                reply_text(self.value.to_string())
            }
            "get" => reply_text(self.value.to_string()),
            other => Err(Error::rejected(format!(
                "counter understands `incr` and `get`, not `{other}`"
            ))),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.value.to_string().into_bytes()
    }

    fn restore(&mut self, state: Vec<u8>, _from_version: u32) -> Result<(), String> {
        let text = String::from_utf8(state).map_err(|e| format!("snapshot is not text: {e}"))?;
        self.value = text
            .trim()
            .parse()
            .map_err(|e| format!("snapshot `{text}` is not a decimal counter: {e}"))?;
        Ok(())
    }
}

anthill_sdk::export_actor!(Counter);
