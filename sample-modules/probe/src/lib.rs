//! `probe` (keyed): a test fixture that exercises every host import on command
//! and remembers what happened to it, so end-to-end tests can observe routing,
//! events and timers from outside. Commands are text, one per message:
//!
//! | command | does |
//! | --- | --- |
//! | `call ADDR TIMEOUT_MS PAYLOAD` | `host::call`; replies with the reply, or fails with its error |
//! | `send ADDR PAYLOAD` | `host::send` |
//! | `flood ADDR N [PAYLOAD]` | `send` N times (PAYLOAD, else `flood I`); replies `sent=S overloaded=O` |
//! | `busy MS` | spins for MS milliseconds of guest time |
//! | `subscribe TOPIC amo\|alo`, `unsubscribe TOPIC` | pub/sub |
//! | `publish TOPIC PAYLOAD` | `host::publish` |
//! | `fail N` | fail the next N `on-event` deliveries |
//! | `timer TAG MS once\|repeat`, `cancel TAG` | timers |
//! | `tick HZ` | `host::set-tick-rate` |
//! | `push PLAYER reliable\|unreliable TEXT` | `host::push` |
//! | `pushback TEXT` | pushes TEXT (reliably) to the player who sent this |
//! | `churn K` | changes K of this room's synced entities and publishes the state |
//! | `entities` | JSON of the synced state last published |
//! | `state` | JSON of everything observed |
//!
//! Any other payload is recorded in `received` (with its sender) and echoed.
//! `ADDR` is `module` or `module/key`. The whole state is the snapshot.

use anthill_sdk::json;
use anthill_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Default, Serialize, Deserialize)]
struct Probe {
    key: String,
    received: Vec<String>,
    events: Vec<String>,
    failed_deliveries: u32,
    fail_next: u32,
    fired: Vec<(String, u64)>,
    ticks: u64,
    joined: Vec<u64>,
    left: Vec<u64>,
    #[serde(default)]
    entities: std::collections::BTreeMap<u64, Vec<u8>>,
    #[serde(default)]
    churned: u64,
}

fn address(s: &str) -> ActorRef {
    match s.split_once('/') {
        Some((m, k)) => ActorRef::keyed(m, k),
        None => ActorRef::singleton(s),
    }
}

fn sender_name(from: &Sender) -> String {
    match from {
        Sender::Player(p) => format!("player:{p}"),
        Sender::Actor(a) => format!("actor:{a}"),
        Sender::Admin => "admin".into(),
        Sender::System => "system".into(),
    }
}

impl Probe {
    fn command(&mut self, from: &Sender, text: &str) -> Reply {
        let mut words = text.splitn(2, ' ');
        let verb = words.next().unwrap_or("");
        let rest = words.next().unwrap_or("");
        let arg = |n: usize| rest.splitn(n + 1, ' ').collect::<Vec<_>>();
        match verb {
            "call" => {
                let a = arg(2);
                let [to, ms, payload] = a[..] else {
                    return Err(Error::rejected("call ADDR TIMEOUT_MS PAYLOAD"));
                };
                let ms: u64 = ms.parse().map_err(|_| Error::rejected("bad timeout"))?;
                let r = host::call(&address(to), payload.as_bytes(), Duration::from_millis(ms))?;
                reply(r)
            }
            "send" => {
                let a = arg(1);
                let [to, payload] = a[..] else {
                    return Err(Error::rejected("send ADDR PAYLOAD"));
                };
                host::send(&address(to), payload.as_bytes())?;
                reply_text("sent")
            }
            "flood" => {
                let a = arg(2);
                let (to, n, payload) = match a[..] {
                    [to, n] => (to, n, None),
                    [to, n, payload] => (to, n, Some(payload)),
                    _ => return Err(Error::rejected("flood ADDR N [PAYLOAD]")),
                };
                let n: u32 = n.parse().map_err(|_| Error::rejected("bad count"))?;
                let to = address(to);
                let (mut sent, mut overloaded) = (0, 0);
                for i in 0..n {
                    let message = match payload {
                        Some(p) => p.as_bytes().to_vec(),
                        None => format!("flood {i}").into_bytes(),
                    };
                    match host::send(&to, &message) {
                        Ok(()) => sent += 1,
                        Err(Error::Overloaded(_)) => overloaded += 1,
                        Err(e) => return Err(e),
                    }
                }
                reply_text(format!("sent={sent} overloaded={overloaded}"))
            }
            "busy" => {
                let ms: u64 = rest.parse().map_err(|_| Error::rejected("busy MS"))?;
                let until = host::now_ms() + ms;
                while host::now_ms() < until {
                    std::hint::spin_loop();
                }
                reply_text("done")
            }
            "subscribe" => {
                let a = arg(1);
                let [topic, mode] = a[..] else {
                    return Err(Error::rejected("subscribe TOPIC amo|alo"));
                };
                let d = if mode == "alo" {
                    Delivery::AtLeastOnce
                } else {
                    Delivery::AtMostOnce
                };
                host::subscribe(topic, d)?;
                reply_text("subscribed")
            }
            "unsubscribe" => {
                host::unsubscribe(rest)?;
                reply_text("unsubscribed")
            }
            "publish" => {
                let a = arg(1);
                let [topic, payload] = a[..] else {
                    return Err(Error::rejected("publish TOPIC PAYLOAD"));
                };
                host::publish(topic, payload.as_bytes())?;
                reply_text("published")
            }
            "fail" => {
                self.fail_next = rest.parse().map_err(|_| Error::rejected("fail N"))?;
                reply_text("ok")
            }
            "timer" => {
                let a = arg(2);
                let [tag, ms, mode] = a[..] else {
                    return Err(Error::rejected("timer TAG MS once|repeat"));
                };
                let ms: u64 = ms.parse().map_err(|_| Error::rejected("bad delay"))?;
                host::set_timer(tag, Duration::from_millis(ms), mode == "repeat")?;
                reply_text("set")
            }
            "cancel" => {
                host::cancel_timer(rest)?;
                reply_text("cancelled")
            }
            "tick" => {
                host::set_tick_rate(rest.parse().map_err(|_| Error::rejected("tick HZ"))?)?;
                reply_text("ok")
            }
            "push" => {
                let a = arg(2);
                let [player, mode, text] = a[..] else {
                    return Err(Error::rejected("push PLAYER reliable|unreliable TEXT"));
                };
                let player: u64 = player
                    .parse()
                    .map_err(|_| Error::rejected("bad player id"))?;
                let ch = if mode == "unreliable" {
                    Channel::Unreliable
                } else {
                    Channel::Reliable
                };
                host::push(player, ch, text.as_bytes())?;
                reply_text("pushed")
            }
            "pushback" => {
                let Sender::Player(p) = from else {
                    return Err(Error::rejected("pushback is for players"));
                };
                host::push(*p, Channel::Reliable, rest.as_bytes())?;
                reply_text("pushed")
            }
            "churn" => {
                let k: u64 = rest.parse().map_err(|_| Error::rejected("churn K"))?;
                if self.entities.is_empty() {
                    self.entities = (0..200u64).map(|i| (i, vec![0u8; 12])).collect();
                }
                for _ in 0..k {
                    self.churned += 1;
                    let mut h = self.churned.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    h ^= h >> 29;
                    let id = h % 220;
                    if id >= 200 && self.entities.contains_key(&id) {
                        self.entities.remove(&id);
                    } else {
                        let e = self.entities.entry(id).or_insert_with(|| vec![0u8; 12]);
                        e[(h % 12) as usize] = e[(h % 12) as usize].wrapping_add(1);
                    }
                }
                let list: Vec<Entity> = self
                    .entities
                    .iter()
                    .map(|(id, s)| Entity {
                        id: *id,
                        state: s.clone(),
                    })
                    .collect();
                host::set_synced_state(&list)?;
                reply_text(format!("{} entities", list.len()))
            }
            "entities" => json::reply(&self.entities),
            "state" => json::reply(self),
            _ => {
                self.received
                    .push(format!("{} {}", sender_name(from), text));
                reply_text(text)
            }
        }
    }
}

impl Actor for Probe {
    fn new(key: &str) -> Result<Self, String> {
        Ok(Probe {
            key: key.to_owned(),
            ..Default::default()
        })
    }

    fn on_message(&mut self, from: Sender, message: Vec<u8>) -> Reply {
        let text = text(&message)?.to_owned();
        self.command(&from, &text)
    }

    fn on_event(&mut self, topic: &str, event: Vec<u8>) -> Result<(), Error> {
        if self.fail_next > 0 {
            self.fail_next -= 1;
            self.failed_deliveries += 1;
            return Err(Error::rejected(format!(
                "probe told to fail ({} more)",
                self.fail_next
            )));
        }
        self.events
            .push(format!("{topic}:{}", String::from_utf8_lossy(&event)));
        Ok(())
    }

    fn on_timer(&mut self, tag: &str) {
        self.fired.push((tag.to_owned(), host::now_ms()));
    }

    fn on_join(&mut self, player: u64) -> Result<(), Error> {
        self.joined.push(player);
        Ok(())
    }

    fn on_leave(&mut self, player: u64) {
        self.left.push(player);
    }

    fn on_tick(&mut self, _now_ms: u64) {
        self.ticks += 1;
    }

    fn snapshot(&self) -> Vec<u8> {
        json::encode(self)
    }

    fn restore(&mut self, state: Vec<u8>, _from_version: u32) -> Result<(), String> {
        *self = json::decode(&state).map_err(|e| e.to_string())?;
        Ok(())
    }
}

anthill_sdk::export_actor!(Probe);
