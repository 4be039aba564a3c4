//! `lobby` (singleton): matchmaking. A player sends `find`; the lobby answers the
//! `arena` room to join (`arena/rN`), filling rooms up to 50 players before
//! opening the next (it opens a room by sending it `open`: players may join
//! rooms, not create them). Arenas tell the lobby when a player leaves (`left ROOM`).
//! `rooms` (admin) replies the occupancy as JSON.

use anthill_sdk::LogLevel;
use anthill_sdk::json;
use anthill_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

const ROOM_SIZE: u32 = 50;

#[derive(Default, Serialize, Deserialize)]
struct Lobby {
    rooms: BTreeMap<String, u32>,
    next: u32,
    placed: u64,
}

impl Lobby {
    fn place(&mut self) -> String {
        let room = match self.rooms.iter().find(|(_, n)| **n < ROOM_SIZE) {
            Some((r, _)) => r.clone(),
            None => {
                self.next += 1;
                let room = format!("r{}", self.next);
                // Players may join only rooms that exist (arena is deployed
                // with players=existing): the lobby opens each one first,
                // and waits until it is open. A send would do on one node,
                // but in a cluster the room may live on another node than
                // this lobby, and the player's join, through yet another
                // node, could reach it before the send.
                let open = host::call(
                    &ActorRef::keyed("arena", &room),
                    b"open",
                    Duration::from_secs(5),
                );
                if let Err(e) = open {
                    host::log(LogLevel::Warn, &format!("opening arena/{room}: {e:?}"));
                }
                room
            }
        };
        *self.rooms.entry(room.clone()).or_insert(0) += 1;
        self.placed += 1;
        format!("arena/{room}")
    }
}

impl Actor for Lobby {
    fn new(_key: &str) -> Result<Self, String> {
        Ok(Lobby::default())
    }

    fn on_message(&mut self, _from: Sender, message: Vec<u8>) -> Reply {
        let text = text(&message)?;
        let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
        match verb {
            "find" => reply_text(self.place()),
            "left" => {
                if let Some(n) = self.rooms.get_mut(rest) {
                    *n = n.saturating_sub(1);
                }
                no_reply()
            }
            "rooms" => json::reply(&self.rooms),
            other => Err(Error::rejected(format!(
                "lobby understands find, left, rooms; not `{other}`"
            ))),
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

anthill_sdk::export_actor!(Lobby);
