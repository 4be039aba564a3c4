//! `arena` (keyed: one actor per room). Players join (up to 50 a room), send
//! movement inputs, and see everyone's position: the room ticks at 20 Hz and
//! publishes its state with `set-synced-state-packed`, which the host sends to members
//! as deltas over datagrams.
//!
//! Player requests (text): `move DX DY` sets the player's velocity (units/s,
//! clamped to 100), `stop`, `pos` replies `X Y`. Admin: `players` replies the
//! count. Entity ids are small, to keep deltas small: a player's slot (0..49,
//! pushed to the player as `slot N` when it joins) and `100 + i` for the room's
//! 64 pickups (static unless collected). Entity state: x, y as i16 little
//! endian, in tenths of a unit, on a 1000×1000 field. The state is published
//! packed (`set-synced-state-packed`) from a buffer the room keeps, so a tick
//! allocates nothing.

use anthill_sdk::json;
use anthill_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MAX_PLAYERS: usize = 50;
const FIELD: f32 = 1000.0;
const MAX_SPEED: f32 = 100.0;
const TICK_HZ: u32 = 20;
const PICKUPS: u64 = 64;
const PICKUP_ID: u64 = 100;

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Body {
    slot: u64,
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
}

#[derive(Default, Serialize, Deserialize)]
struct Arena {
    name: String,
    players: BTreeMap<u64, Body>,
    pickups: BTreeMap<u64, (f32, f32)>,
    collected: u64,
    last_tick_ms: u64,
    /// The state published each tick, its buffers kept from tick to tick.
    #[serde(skip)]
    published: SyncedState,
}

fn encode(x: f32, y: f32, out: &mut Vec<u8>) {
    let q = |v: f32| ((v * 10.0).round() as i16).to_le_bytes();
    out.extend_from_slice(&q(x));
    out.extend_from_slice(&q(y));
}

/// A small deterministic generator (no clock or randomness in guests).
fn scatter(seed: u64, i: u64) -> f32 {
    let mut h = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % 10_000) as f32 / 10.0
}

impl Arena {
    fn publish(&mut self) {
        // Ascending ids (slots below 50, then pickups from 100) spare the
        // host a sort: it keeps these buffers as they are.
        let mut by_slot = [None; MAX_PLAYERS];
        for b in self.players.values() {
            by_slot[b.slot as usize] = Some((b.x, b.y));
        }
        let state = &mut self.published;
        state.clear();
        for (slot, at) in by_slot.iter().enumerate() {
            if let Some((x, y)) = at {
                state.push_with(slot as u64, |out| encode(*x, *y, out));
            }
        }
        for (id, (x, y)) in &self.pickups {
            state.push_with(*id, |out| encode(*x, *y, out));
        }
        if let Err(e) = host::set_synced_state_packed(state) {
            host::warn(&format!("state not published: {e}"));
        }
    }

    fn step(&mut self, dt: f32) {
        for b in self.players.values_mut() {
            b.x = (b.x + b.vx * dt).clamp(0.0, FIELD - 0.1);
            b.y = (b.y + b.vy * dt).clamp(0.0, FIELD - 0.1);
        }
        // A player on a pickup collects it; it respawns elsewhere. Each
        // pickup is checked against every player, so the players' positions
        // are gathered once into an array instead of walking the map per
        // pickup.
        let mut at = [(0f32, 0f32); MAX_PLAYERS];
        let mut n = 0;
        for b in self.players.values().take(MAX_PLAYERS) {
            at[n] = (b.x, b.y);
            n += 1;
        }
        let at = &at[..n];
        let mut moved = Vec::new();
        for (id, (px, py)) in &self.pickups {
            if at
                .iter()
                .any(|(x, y)| (x - px).abs() < 2.0 && (y - py).abs() < 2.0)
            {
                moved.push(*id);
            }
        }
        for id in moved {
            self.collected += 1;
            let seed = self.collected;
            self.pickups
                .insert(id, (scatter(seed, id), scatter(seed, id + 1)));
        }
    }
}

impl Actor for Arena {
    fn new(key: &str) -> Result<Self, String> {
        host::set_tick_rate(TICK_HZ).map_err(|e| e.to_string())?;
        let seed = key
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let pickups = (0..PICKUPS)
            .map(|i| {
                (
                    PICKUP_ID + i,
                    (scatter(seed, 2 * i), scatter(seed, 2 * i + 1)),
                )
            })
            .collect();
        Ok(Arena {
            name: key.to_owned(),
            pickups,
            last_tick_ms: host::now_ms(),
            ..Default::default()
        })
    }

    fn on_message(&mut self, from: Sender, message: Vec<u8>) -> Reply {
        let text = text(&message)?;
        let mut words = text.split(' ');
        match (from, words.next()) {
            (Sender::Player(p), Some(cmd @ ("move" | "stop" | "pos"))) => {
                let body = self.players.get_mut(&p).ok_or_else(|| {
                    Error::rejected(format!("player {p} is not in arena {}", self.name))
                })?;
                match cmd {
                    "move" => {
                        let mut n = || {
                            words
                                .next()
                                .and_then(|w| w.parse::<f32>().ok())
                                .unwrap_or(0.0)
                        };
                        let (dx, dy) = (n(), n());
                        body.vx = dx.clamp(-MAX_SPEED, MAX_SPEED);
                        body.vy = dy.clamp(-MAX_SPEED, MAX_SPEED);
                        no_reply()
                    }
                    "stop" => {
                        body.vx = 0.0;
                        body.vy = 0.0;
                        no_reply()
                    }
                    _ => reply_text(format!("{:.1} {:.1}", body.x, body.y)),
                }
            }
            // The lobby opens a room before it sends players to it.
            (Sender::Actor(_) | Sender::Admin, Some("open")) => no_reply(),
            (_, Some("players")) => reply_text(self.players.len().to_string()),
            (_, Some("state")) => json::reply(&self.players.keys().collect::<Vec<_>>()),
            (_, other) => Err(Error::rejected(format!(
                "arena understands move, stop, pos (players) and players, state; not `{}`",
                other.unwrap_or("")
            ))),
        }
    }

    fn on_join(&mut self, player: u64) -> Result<(), Error> {
        if self.players.len() >= MAX_PLAYERS && !self.players.contains_key(&player) {
            return Err(Error::rejected(format!(
                "arena {} is full ({MAX_PLAYERS} players)",
                self.name
            )));
        }
        if !self.players.contains_key(&player) {
            let slot = (0..MAX_PLAYERS as u64)
                .find(|s| self.players.values().all(|b| b.slot != *s))
                .expect("a free slot below the cap");
            let spawn = Body {
                slot,
                x: scatter(player, 1),
                y: scatter(player, 2),
                ..Default::default()
            };
            self.players.insert(player, spawn);
        }
        let slot = self.players[&player].slot;
        host::push(player, Channel::Reliable, format!("slot {slot}").as_bytes())?;
        self.publish();
        Ok(())
    }

    fn on_leave(&mut self, player: u64) {
        if self.players.remove(&player).is_some() {
            let notice = format!("left {}", self.name);
            let _ = host::send(&ActorRef::singleton("lobby"), notice.as_bytes());
            self.publish();
        }
    }

    fn on_tick(&mut self, now_ms: u64) {
        let dt = (now_ms.saturating_sub(self.last_tick_ms) as f32 / 1000.0).min(0.25);
        self.last_tick_ms = now_ms;
        self.step(dt);
        self.publish();
    }

    fn snapshot(&self) -> Vec<u8> {
        json::encode(self)
    }

    fn restore(&mut self, state: Vec<u8>, _from_version: u32) -> Result<(), String> {
        *self = json::decode(&state).map_err(|e| e.to_string())?;
        self.last_tick_ms = host::now_ms();
        Ok(())
    }
}

anthill_sdk::export_actor!(Arena);
