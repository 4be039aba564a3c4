//! `chat` (keyed: one actor per room). Text commands:
//!
//! - `join USER`, `leave USER`: membership (presence is sent to `chat-log`);
//! - `say USER TEXT`: publishes `chat.message` (JSON `{room, user, text, at_ms}`);
//! - `members`: the members, comma-separated;
//! - `history`: asks `chat-log` for this room's recent messages (a `call`).
//!
//! A message from a player speaks for that player (`USER` is `p<ID>` and may be
//! omitted from `say`).

use anthill_sdk::json;
use anthill_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

const LOG: &str = "chat-log";

#[derive(Serialize, Deserialize)]
pub struct ChatMessage {
    pub room: String,
    pub user: String,
    pub text: String,
    pub at_ms: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct Room {
    name: String,
    members: BTreeSet<String>,
}

impl Room {
    fn presence(&self, user: &str, what: &str) {
        // Fire and forget: presence is informational, a full log must not block chat.
        let notice = format!("presence {} {user} {what}", self.name);
        if let Err(e) = host::send(&ActorRef::singleton(LOG), notice.as_bytes()) {
            host::warn(&format!("presence not recorded: {e}"));
        }
    }
}

impl Actor for Room {
    fn new(key: &str) -> Result<Self, String> {
        Ok(Room {
            name: key.to_owned(),
            members: BTreeSet::new(),
        })
    }

    fn on_message(&mut self, from: Sender, message: Vec<u8>) -> Reply {
        let text = text(&message)?;
        let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
        let player = match from {
            Sender::Player(id) => Some(format!("p{id}")),
            _ => None,
        };
        match verb {
            "join" => {
                let user = player.unwrap_or_else(|| rest.trim().to_owned());
                if user.is_empty() {
                    return Err(Error::rejected("join USER"));
                }
                if self.members.insert(user.clone()) {
                    self.presence(&user, "joined");
                }
                reply_text(format!("ok {} members", self.members.len()))
            }
            "leave" => {
                let user = player.unwrap_or_else(|| rest.trim().to_owned());
                if self.members.remove(&user) {
                    self.presence(&user, "left");
                }
                reply_text("ok")
            }
            "say" => {
                let (user, said) = match player {
                    Some(p) => (p, rest.to_owned()),
                    None => {
                        let (u, t) = rest.split_once(' ').unwrap_or((rest, ""));
                        (u.to_owned(), t.to_owned())
                    }
                };
                if !self.members.contains(&user) {
                    return Err(Error::rejected(format!(
                        "{user} is not in room {}",
                        self.name
                    )));
                }
                let m = ChatMessage {
                    room: self.name.clone(),
                    user,
                    text: said,
                    at_ms: host::now_ms(),
                };
                host::publish("chat.message", &json::encode(&m))?;
                reply_text("ok")
            }
            "members" => reply_text(self.members.iter().cloned().collect::<Vec<_>>().join(",")),
            "history" => {
                let asked = format!("history {}", self.name);
                let r = host::call(
                    &ActorRef::singleton(LOG),
                    asked.as_bytes(),
                    Duration::from_secs(2),
                )?;
                reply(r)
            }
            other => Err(Error::rejected(format!(
                "chat understands join, leave, say, members, history; not `{other}`"
            ))),
        }
    }

    fn on_leave(&mut self, player: u64) {
        let user = format!("p{player}");
        if self.members.remove(&user) {
            self.presence(&user, "left");
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        json::encode(self)
    }

    fn restore(&mut self, state: Vec<u8>, _from_version: u32) -> Result<(), String> {
        *self = json::decode(&state).map_err(|e| e.to_string())?;
        Ok(())
    }
}

anthill_sdk::export_actor!(Room);
