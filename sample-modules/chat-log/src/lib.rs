//! `chat-log` (singleton): keeps the last messages of every room. It subscribes to
//! `chat.message` **at least once**, so a message published while it is busy,
//! failing or restarting is still recorded. Commands:
//!
//! - `history ROOM`: JSON array of `{user, text, at_ms}`, oldest first;
//! - `presence ROOM USER joined|left` (sent by `chat`): counted;
//! - `stats`: JSON `{messages, rooms, joins, leaves}`.

use anthill_sdk::json;
use anthill_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Messages kept per room.
const KEEP: usize = 50;

#[derive(Serialize, Deserialize, Clone)]
struct Line {
    user: String,
    text: String,
    at_ms: u64,
}

#[derive(Deserialize)]
struct ChatMessage {
    room: String,
    user: String,
    text: String,
    at_ms: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct ChatLog {
    rooms: BTreeMap<String, VecDeque<Line>>,
    messages: u64,
    joins: u64,
    leaves: u64,
}

impl Actor for ChatLog {
    fn new(_key: &str) -> Result<Self, String> {
        // Idempotent: the host keeps the cursor of an existing subscription.
        host::subscribe("chat.message", Delivery::AtLeastOnce).map_err(|e| e.to_string())?;
        Ok(ChatLog::default())
    }

    fn on_message(&mut self, _from: Sender, message: Vec<u8>) -> Reply {
        let text = text(&message)?;
        let mut words = text.split(' ');
        match words.next() {
            Some("history") => {
                let room = words.next().unwrap_or("");
                let lines: Vec<Line> = self
                    .rooms
                    .get(room)
                    .map(|d| d.iter().cloned().collect())
                    .unwrap_or_default();
                json::reply(&lines)
            }
            Some("presence") => {
                match words.nth(2) {
                    Some("joined") => self.joins += 1,
                    Some("left") => self.leaves += 1,
                    _ => return Err(Error::rejected("presence ROOM USER joined|left")),
                }
                no_reply()
            }
            Some("stats") => json::reply(&serde_json_stats(self)),
            _ => Err(Error::rejected(
                "chat-log understands history, presence, stats",
            )),
        }
    }

    fn on_event(&mut self, _topic: &str, event: Vec<u8>) -> Result<(), Error> {
        let m: ChatMessage = json::decode(&event)?;
        let room = self.rooms.entry(m.room).or_default();
        room.push_back(Line {
            user: m.user,
            text: m.text,
            at_ms: m.at_ms,
        });
        while room.len() > KEEP {
            room.pop_front();
        }
        self.messages += 1;
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        json::encode(self)
    }

    fn restore(&mut self, state: Vec<u8>, _from_version: u32) -> Result<(), String> {
        *self = json::decode(&state).map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[derive(Serialize)]
struct Stats {
    messages: u64,
    rooms: usize,
    joins: u64,
    leaves: u64,
}

fn serde_json_stats(log: &ChatLog) -> Stats {
    Stats {
        messages: log.messages,
        rooms: log.rooms.len(),
        joins: log.joins,
        leaves: log.leaves,
    }
}

anthill_sdk::export_actor!(ChatLog);
