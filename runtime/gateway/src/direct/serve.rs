//! One direct connection's task once its handshake is done: waits for the
//! client's control stream, then serves the protocol through
//! [`crate::connection::serve`] with the endpoint's driver as its transport,
//! and a writer that feeds the control stream as flow control allows.

use super::DirectLink;
use super::inbox::Inbox;
use crate::Gateway;
use crate::connection::{self, Datagrams, HELLO_TIMEOUT, Input, Source};
use crate::link::{Carrier, Link, OUTBOUND_QUEUE};
use crate::outbox::{OutboxReceiver, outbox};
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn serve(gw: Arc<Gateway>, link: DirectLink, inbox: Arc<Inbox>) {
    match tokio::time::timeout(HELLO_TIMEOUT, inbox.control()).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(_) => {
            link.close(1, "no control stream");
            return;
        }
    }
    let (out, out_rx) = outbox(OUTBOUND_QUEUE);
    let writer = tokio::spawn(write_control(link.clone(), inbox.clone(), out_rx));
    let mut source = DirectSource {
        link: link.clone(),
        inbox,
    };
    connection::serve(
        gw,
        Link {
            transport: Carrier::Direct(link.clone()),
            out,
        },
        &mut source,
    )
    .await;
    // Let queued frames (a final error) reach the client before closing.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    link.close(0, "bye");
}

/// Writes the control stream's queued frames in order; when every sender is
/// gone, finishes the stream and waits for the client to have read it all.
async fn write_control(link: DirectLink, inbox: Arc<Inbox>, mut out_rx: OutboxReceiver) {
    while let Some(frame) = out_rx.recv().await {
        let mut at = 0;
        while at < frame.len() {
            match link.write(&frame[at..]) {
                Ok(0) => {
                    if inbox.is_closed() {
                        return;
                    }
                    inbox.writable().await;
                }
                Ok(n) => at += n,
                Err(()) => return,
            }
        }
    }
    link.finish();
    inbox.finished().await;
}

struct DirectSource {
    link: DirectLink,
    inbox: Arc<Inbox>,
}

impl Source for DirectSource {
    async fn next(&mut self) -> Option<Input> {
        let (input, resume) = self.inbox.next().await?;
        if resume {
            self.link.resume_read();
        }
        Some(input)
    }

    fn deliver_datagrams(&mut self, datagrams: Arc<Datagrams>) {
        self.link.deliver_datagrams(datagrams);
    }
}
