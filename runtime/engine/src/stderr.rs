//! A guest's stderr, kept as a small ring buffer: when a Rust guest panics it
//! prints the reason there just before trapping, and that text is the most
//! useful part of the error the caller and the log get.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Bytes of stderr kept per actor.
const KEEP: usize = 2048;

/// The last bytes a guest wrote to stderr.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<u8>>>);

impl StderrTail {
    /// Takes what was written since the last call, as text.
    pub fn take(&self) -> String {
        let mut buf = self.0.lock().expect("stderr buffer poisoned");
        let bytes: Vec<u8> = buf.drain(..).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn push(&self, data: &[u8]) {
        let mut buf = self.0.lock().expect("stderr buffer poisoned");
        let data = if data.len() > KEEP {
            &data[data.len() - KEEP..]
        } else {
            data
        };
        let overflow = (buf.len() + data.len()).saturating_sub(KEEP);
        buf.drain(..overflow);
        buf.extend(data);
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
