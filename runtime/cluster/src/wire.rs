//! What a forwarded message looks like on NATS: a JSON header line (who to,
//! who from, the call chain, whether a reply is wanted), then the payload's
//! raw bytes; the reply is a status byte, then the reply's bytes or the
//! error as JSON. Errors keep their kind across nodes.

use anthill_core::{Address, CallChain, CallError, Sender};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
enum WireSender {
    Player(u64),
    Actor(Address),
    Admin,
    System,
}

/// What a forwarded message asks of the actor's owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op {
    /// `on-message`: a call or a send.
    #[default]
    Message,
    /// A player connected to the origin node joins the room (a call: the
    /// reply is whether `on-join` agreed).
    Join { player: u64 },
    /// A player connected to the origin node left the room.
    Leave { player: u64 },
    /// These players, connected to the origin node, are still in the room,
    /// and the room should be live (sent every second per room).
    Attach { players: Vec<u64> },
}

/// A forwarded message's header.
#[derive(Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) to: Address,
    from: WireSender,
    chain: Vec<Address>,
    pub(crate) reply: bool,
    pub(crate) timeout_ms: u64,
    #[serde(default)]
    pub(crate) op: Op,
    /// The node that sent it (for joins, leaves and attaches).
    #[serde(default)]
    pub(crate) origin: String,
}

/// A forwarded message.
pub(crate) struct Forwarded {
    pub(crate) header: Header,
    pub(crate) payload: Vec<u8>,
}

impl Forwarded {
    pub(crate) fn new(
        to: Address,
        from: Sender,
        chain: &CallChain,
        reply: bool,
        timeout_ms: u64,
        payload: Vec<u8>,
    ) -> Forwarded {
        let from = match from {
            Sender::Player(p) => WireSender::Player(p),
            Sender::Actor(a) => WireSender::Actor(a),
            Sender::Admin => WireSender::Admin,
            Sender::System => WireSender::System,
        };
        Forwarded {
            header: Header {
                to,
                from,
                chain: chain.addresses(),
                reply,
                timeout_ms,
                op: Op::Message,
                origin: String::new(),
            },
            payload,
        }
    }

    /// A room operation of a player connected to `origin`.
    pub(crate) fn room(to: Address, op: Op, origin: &str, timeout_ms: u64) -> Forwarded {
        let reply = matches!(op, Op::Join { .. });
        let mut f = Forwarded::new(
            to,
            Sender::System,
            &CallChain::default(),
            reply,
            timeout_ms,
            Vec::new(),
        );
        f.header.op = op;
        f.header.origin = origin.to_owned();
        f
    }

    pub(crate) fn encode(&self) -> bytes::Bytes {
        let mut out = serde_json::to_vec(&self.header).expect("a header serializes");
        out.push(b'\n');
        out.extend_from_slice(&self.payload);
        out.into()
    }

    pub(crate) fn decode(frame: &[u8]) -> Option<Forwarded> {
        let split = frame.iter().position(|b| *b == b'\n')?;
        let header = serde_json::from_slice(&frame[..split]).ok()?;
        Some(Forwarded {
            header,
            payload: frame[split + 1..].to_vec(),
        })
    }

    pub(crate) fn from(&self) -> Sender {
        match &self.header.from {
            WireSender::Player(p) => Sender::Player(*p),
            WireSender::Actor(a) => Sender::Actor(a.clone()),
            WireSender::Admin => Sender::Admin,
            WireSender::System => Sender::System,
        }
    }

    pub(crate) fn chain(&self) -> CallChain {
        CallChain::from_addresses(self.header.chain.iter().cloned())
    }
}

/// The receiving node does not own the actor (its claim moved): ask again.
pub(crate) const NOT_OWNER: u8 = 2;
const OK: u8 = 0;
const ERR: u8 = 1;

#[derive(Serialize, Deserialize)]
struct WireError {
    kind: String,
    text: String,
    to: Option<String>,
    ms: Option<u64>,
}

pub(crate) fn encode_reply(outcome: &Result<Vec<u8>, CallError>) -> bytes::Bytes {
    match outcome {
        Ok(bytes) => {
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.push(OK);
            out.extend_from_slice(bytes);
            out.into()
        }
        Err(e) => {
            let (kind, text, to, ms) = match e {
                CallError::ModuleNotFound(m) => ("module-not-found", m.clone(), None, None),
                CallError::NotFound(t) => ("not-found", t.clone(), None, None),
                CallError::Rejected(t) => ("rejected", t.clone(), None, None),
                CallError::Timeout { to, ms } => {
                    ("timeout", String::new(), Some(to.clone()), Some(*ms))
                }
                CallError::Overloaded(t) => ("overloaded", t.clone(), None, None),
                CallError::Cycle(t) => ("cycle", t.clone(), None, None),
                CallError::Forbidden(t) => ("forbidden", t.clone(), None, None),
                CallError::BadRequest(t) => ("bad-request", t.clone(), None, None),
                CallError::Quota(t) => ("quota", t.clone(), None, None),
                CallError::Unsupported(t) => ("unsupported", t.clone(), None, None),
                CallError::Unavailable(t) => ("unavailable", t.clone(), None, None),
                // The rest keep their text; their kind is the guest's fault
                // or the other node's, which the text names.
                other => ("internal", other.to_string(), None, None),
            };
            let mut out = vec![ERR];
            out.extend(
                serde_json::to_vec(&WireError {
                    kind: kind.into(),
                    text,
                    to,
                    ms,
                })
                .expect("an error serializes"),
            );
            out.into()
        }
    }
}

pub(crate) fn not_owner() -> bytes::Bytes {
    bytes::Bytes::from_static(&[NOT_OWNER])
}

/// `None`: the other node no longer owns the actor.
pub(crate) fn decode_reply(frame: &[u8]) -> Option<Result<Vec<u8>, CallError>> {
    match frame.first() {
        Some(&OK) => Some(Ok(frame[1..].to_vec())),
        Some(&NOT_OWNER) => None,
        Some(&ERR) => {
            let e: WireError = match serde_json::from_slice(&frame[1..]) {
                Ok(e) => e,
                Err(err) => {
                    return Some(Err(CallError::Internal(format!(
                        "another node's error does not decode: {err}"
                    ))));
                }
            };
            Some(Err(match e.kind.as_str() {
                "module-not-found" => CallError::ModuleNotFound(e.text),
                "not-found" => CallError::NotFound(e.text),
                "rejected" => CallError::Rejected(e.text),
                "timeout" => CallError::Timeout {
                    to: e.to.unwrap_or_default(),
                    ms: e.ms.unwrap_or_default(),
                },
                "overloaded" => CallError::Overloaded(e.text),
                "cycle" => CallError::Cycle(e.text),
                "forbidden" => CallError::Forbidden(e.text),
                "bad-request" => CallError::BadRequest(e.text),
                "quota" => CallError::Quota(e.text),
                "unsupported" => CallError::Unsupported(e.text),
                "unavailable" => CallError::Unavailable(e.text),
                _ => CallError::Internal(e.text),
            }))
        }
        _ => Some(Err(CallError::Internal(
            "an empty answer from another node".into(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_errors_cross_nodes_intact() {
        let chain = CallChain::default().push(Address::parse("a/1"));
        let f = Forwarded::new(
            Address::parse("counter/k"),
            Sender::Actor(Address::parse("a/1")),
            &chain,
            true,
            500,
            b"in\ncr".to_vec(),
        );
        let back = Forwarded::decode(&f.encode()).expect("decodes");
        assert_eq!(back.payload, b"in\ncr");
        assert_eq!(back.from(), Sender::Actor(Address::parse("a/1")));
        assert!(back.chain().contains(&Address::parse("a/1")));
        assert_eq!(back.header.to, Address::parse("counter/k"));

        let ok = decode_reply(&encode_reply(&Ok(b"7".to_vec()))).expect("owned");
        assert_eq!(ok, Ok(b"7".to_vec()));
        let timeout = CallError::Timeout {
            to: "x/y".into(),
            ms: 9,
        };
        assert_eq!(
            decode_reply(&encode_reply(&Err(timeout.clone()))),
            Some(Err(timeout))
        );
        let cycle = CallError::Cycle("a → b → a".into());
        assert_eq!(
            decode_reply(&encode_reply(&Err(cycle.clone()))),
            Some(Err(cycle))
        );
        assert_eq!(decode_reply(&not_owner()), None);

        let join = Forwarded::room(
            Address::parse("arena/r1"),
            Op::Join { player: 7 },
            "n1",
            500,
        );
        let back = Forwarded::decode(&join.encode()).expect("decodes");
        assert_eq!(back.header.op, Op::Join { player: 7 });
        assert_eq!(back.header.origin, "n1");
        assert!(back.header.reply, "a join waits for on-join's verdict");
        let leave = Forwarded::room(
            Address::parse("arena/r1"),
            Op::Leave { player: 7 },
            "n1",
            500,
        );
        assert!(!leave.header.reply);
    }
}
