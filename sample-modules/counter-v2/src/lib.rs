//! `counter-v2` (keyed): version 2 of `counter`, to show and test hot swap. Same
//! commands and the same snapshot format (decimal text), but every reply is
//! prefixed `v2:` so a caller can tell which version answered. `from` replies
//! with the module version whose snapshot this actor restored (0 if none).

use anthill_sdk::prelude::*;

struct Counter {
    value: u64,
    restored_from: u32,
}

impl Actor for Counter {
    fn new(_key: &str) -> Result<Self, String> {
        Ok(Counter {
            value: 0,
            restored_from: 0,
        })
    }

    fn on_message(&mut self, _from: Sender, message: Vec<u8>) -> Reply {
        match text(&message)? {
            "incr" => {
                self.value += 1;
                reply_text(format!("v2:{}", self.value))
            }
            "get" => reply_text(format!("v2:{}", self.value)),
            "from" => reply_text(format!("v2:from={}", self.restored_from)),
            other => Err(Error::rejected(format!(
                "counter v2 understands `incr`, `get` and `from`, not `{other}`"
            ))),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.value.to_string().into_bytes()
    }

    fn restore(&mut self, state: Vec<u8>, from_version: u32) -> Result<(), String> {
        let text = String::from_utf8(state).map_err(|e| format!("snapshot is not text: {e}"))?;
        self.value = text
            .trim()
            .parse()
            .map_err(|e| format!("snapshot `{text}` is not a decimal counter: {e}"))?;
        self.restored_from = from_version;
        Ok(())
    }
}

anthill_sdk::export_actor!(Counter);
