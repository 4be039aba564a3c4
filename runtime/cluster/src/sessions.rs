//! Sessions that follow their player to any node. The `NAME-sessions`
//! bucket records, per player, the session the player holds, the node that
//! holds it and the rooms it is in (handle and address; handles are the same
//! on every node). Every node signs session tokens with one key, kept in the
//! same bucket (created by the first node), so a token verifies anywhere.
//!
//! A resume on a node that does not hold the session takes it over: the
//! record is rewritten to name this node by compare-and-set at the revision
//! read (two nodes resuming the same session at once: one wins), the old
//! node, if alive, is told to let go of it (without leaving its rooms) and
//! answers with the reliable pushes it kept that the client had not seen
//! (replayed from here), and the session's rooms are attached from here at
//! once. Pushes that still reach the old node for a while follow the player
//! here.

use crate::placement::ClusterPlacement;
use crate::rooms::Rooms;
use anthill_core::{CallError, HandedOver, SessionDirectory, SessionRooms};
use async_nats::jetstream::kv;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The key of the token-signing key in the bucket (player keys are digits).
const SIGNING_KEY: &str = "signing-key";

/// Writes waiting to be applied in order, before more are dropped.
const QUEUE: usize = 16_384;

/// What the bucket says of one player's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    session: u64,
    node: String,
    rooms: SessionRooms,
}

enum Write {
    /// A record to write, and who waits for it to be written.
    Hold(u64, Record, Option<tokio::sync::oneshot::Sender<()>>),
    End(u64, u64),
}

/// This node's view of the cluster's sessions.
pub(crate) struct SessionBook {
    kv: kv::Store,
    me: String,
    rooms: Arc<Rooms>,
    placement: ClusterPlacement,
    writes: mpsc::Sender<Write>,
}

/// The token-signing key every node shares: read, or created by the first.
pub(crate) async fn signing_key(kv: &kv::Store) -> Result<Vec<u8>, crate::ClusterError> {
    let unavailable =
        |e: String| crate::ClusterError::Unavailable(format!("the session signing key: {e}"));
    for _ in 0..3 {
        // From the leader: a follower that has not seen the key yet would
        // send this node on to create a second one, refused, three times.
        if let Some(latest) = crate::latest::latest(kv, SIGNING_KEY)
            .await
            .map_err(unavailable)?
            && let Some(key) = latest.present().filter(|k| k.len() == 32)
        {
            return Ok(key.to_vec());
        }
        let fresh: [u8; 32] = rand::random();
        match kv.create(SIGNING_KEY, fresh.to_vec().into()).await {
            Ok(_) => return Ok(fresh.to_vec()),
            // Another node made it first: read theirs.
            Err(e) => tracing::debug!(error = %e, "signing key created elsewhere; reading it"),
        }
    }
    Err(unavailable("neither read nor created".into()))
}

/// `player`'s session record and its revision, read from the stream's
/// leader: a follower may still answer with the record before a resume or a
/// login moved it, or with none.
async fn held(kv: &kv::Store, player: u64) -> Result<Option<(Record, u64)>, String> {
    Ok(crate::latest::latest(kv, &player.to_string())
        .await?
        .and_then(|l| {
            let record = serde_json::from_slice::<Record>(l.present()?).ok()?;
            Some((record, l.revision))
        }))
}

/// The node that holds `player`'s session, as the bucket says now.
pub(crate) async fn node_of(kv: &kv::Store, player: u64) -> Result<Option<String>, String> {
    Ok(held(kv, player).await?.map(|(r, _)| r.node))
}

impl SessionBook {
    pub(crate) fn new(
        kv: kv::Store,
        me: &str,
        rooms: Arc<Rooms>,
        placement: ClusterPlacement,
    ) -> Arc<SessionBook> {
        let (writes, mut rx) = mpsc::channel::<Write>(QUEUE);
        let writer_kv = kv.clone();
        let me_owned = me.to_owned();
        // One writer, so a player's records land in the order they changed.
        tokio::spawn(async move {
            while let Some(w) = rx.recv().await {
                match w {
                    Write::Hold(player, record, written) => {
                        let value = serde_json::to_vec(&record).expect("a record serializes");
                        if let Err(e) = writer_kv.put(player.to_string(), value.into()).await {
                            tracing::warn!(player, error = %e, "session record not written: a resume on another node may not find it");
                        }
                        if let Some(w) = written {
                            let _ = w.send(());
                        }
                    }
                    Write::End(player, session) => {
                        if let Ok(Some((r, revision))) = held(&writer_kv, player).await
                            && r.session == session
                            && r.node == me_owned
                            && let Err(err) = writer_kv
                                .delete_expect_revision(player.to_string(), Some(revision))
                                .await
                        {
                            tracing::debug!(player, error = %err, "session record not removed");
                        }
                    }
                }
            }
        });
        Arc::new(SessionBook {
            kv,
            me: me.to_owned(),
            rooms,
            placement,
            writes,
        })
    }

    /// This node's record of `session`.
    fn record(&self, session: u64, rooms: SessionRooms) -> Record {
        Record {
            session,
            node: self.me.clone(),
            rooms,
        }
    }

    fn queue(&self, w: Write) {
        if self.writes.try_send(w).is_err() {
            tracing::warn!("{QUEUE} session records are waiting to be written; one was dropped");
        }
    }

    /// What [`SessionDirectory::take_over`] runs, detached from `self`.
    fn taker(&self) -> Taker {
        Taker {
            kv: self.kv.clone(),
            me: self.me.clone(),
            rooms: self.rooms.clone(),
            placement: self.placement.clone_handle(),
        }
    }
}

/// What taking a session over needs.
struct Taker {
    kv: kv::Store,
    me: String,
    rooms: Arc<Rooms>,
    placement: ClusterPlacement,
}

impl Taker {
    async fn run(
        self,
        player: u64,
        session: u64,
        last_push: u64,
    ) -> Result<Option<HandedOver>, CallError> {
        let key = player.to_string();
        let unavailable = |e: String| {
            CallError::Unavailable(format!("the cluster's session records cannot be read: {e}"))
        };
        for _ in 0..5 {
            let Some((record, revision)) = held(&self.kv, player).await.map_err(unavailable)?
            else {
                return Ok(None);
            };
            if record.session != session {
                return Ok(None);
            }
            let mine = Record {
                node: self.me.clone(),
                ..record.clone()
            };
            let value = serde_json::to_vec(&mine).expect("a record serializes");
            if let Err(e) = self.kv.update(&key, value.into(), revision).await {
                tracing::debug!(player, error = %e, "session record moved while taking it over; reading again");
                continue;
            }
            let pushes = if record.node != self.me {
                self.rooms
                    .release_elsewhere(&record.node, player, session, last_push)
                    .await
            } else {
                Vec::new()
            };
            for (_, room) in &record.rooms {
                self.placement.attach_now(room, player);
            }
            tracing::info!(player, from = %record.node, rooms = record.rooms.len(), pushes = pushes.len(), "took over a session resumed here");
            return Ok(Some(HandedOver {
                rooms: record.rooms,
                pushes,
            }));
        }
        Err(CallError::Overloaded(format!(
            "the session of player {player} kept moving between nodes; retry"
        )))
    }
}

impl SessionDirectory for SessionBook {
    fn hold(&self, player: u64, session: u64, rooms: SessionRooms) {
        self.queue(Write::Hold(player, self.record(session, rooms), None));
    }

    fn hold_now(&self, player: u64, session: u64, rooms: SessionRooms) -> BoxFuture<'static, ()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue(Write::Hold(player, self.record(session, rooms), Some(tx)));
        // Resolves when written, or at once if the record was dropped.
        Box::pin(async move {
            let _ = rx.await;
        })
    }

    fn end(&self, player: u64, session: u64) {
        self.queue(Write::End(player, session));
    }

    /// One read of the player's record (before this login's own replaces
    /// it: the gateway records the new session after this resolves).
    fn login(&self, player: u64, session: u64) -> BoxFuture<'static, ()> {
        let (kv, me, rooms) = (self.kv.clone(), self.me.clone(), self.rooms.clone());
        Box::pin(async move {
            let held = match held(&kv, player).await {
                Ok(held) => held.map(|(r, _)| r),
                Err(e) => {
                    tracing::warn!(player, error = %e, "cannot read the player's session record; a session another node holds ends after its resume grace");
                    None
                }
            };
            if let Some(old) = held.filter(|old| old.node != me && old.session != session) {
                tracing::debug!(player, node = %old.node, "logged in here; ending the session another node holds");
                rooms.end_elsewhere(&old.node, player, old.session).await;
            }
        })
    }

    fn take_over(
        &self,
        player: u64,
        session: u64,
        last_push: u64,
    ) -> BoxFuture<'static, Result<Option<HandedOver>, CallError>> {
        Box::pin(self.taker().run(player, session, last_push))
    }
}
