//! A guest's stdout and stderr, turned into lines for the node's log. Rust
//! `println!`, JavaScript `console.log` and Python `print` all end as writes
//! to WASI's stdout or stderr; each writer here cuts them into lines (a line
//! is at most [`MAX_LINE`] bytes, and a guest that never writes a newline
//! still yields lines) and hands each to [`ActorHost::output`], which rate-limits,
//! logs and keeps them. stderr also keeps its last bytes ([`StderrTail`]):
//! a Rust guest prints its panic message there just before trapping, and that
//! text is the most useful part of the error the caller gets.

use crate::ActorHost;
use anthill_core::Address;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Longest line handed on; a longer one is cut there and says how much was cut.
pub const MAX_LINE: usize = 4096;

/// Bytes of an unfinished line held per stream before it is emitted anyway.
const MAX_PARTIAL: usize = 4 * MAX_LINE;

/// Bytes of stderr kept per actor for trap messages.
const KEEP: usize = 2048;

/// Where a guest's line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// WASI stdout (`println!`, `console.log`, `print`).
    Stdout,
    /// WASI stderr (`eprintln!`, `console.error`, panics).
    Stderr,
    /// The `host.log` import, at its level.
    Log(tracing::Level),
}

impl OutputStream {
    /// The name operators see: `stdout`, `stderr`, or the log level.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
            OutputStream::Log(level) => match level {
                tracing::Level::TRACE => "trace",
                tracing::Level::DEBUG => "debug",
                tracing::Level::INFO => "info",
                tracing::Level::WARN => "warn",
                tracing::Level::ERROR => "error",
            },
        }
    }
}

/// One line a guest wrote.
#[derive(Debug, Clone)]
pub struct GuestLine {
    /// The actor that wrote it.
    pub actor: Address,
    /// The module version the actor ran.
    pub version: u32,
    /// stdout, stderr or `host.log`.
    pub stream: OutputStream,
    /// The line, without its newline, at most [`MAX_LINE`] bytes plus a note.
    pub text: String,
}

/// Cuts `text` to [`MAX_LINE`] bytes on a character boundary, saying so.
pub(crate) fn cut_line(mut text: String) -> String {
    if text.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let dropped = text.len() - cut;
        text.truncate(cut);
        text.push_str(&format!("… ({dropped} more bytes cut)"));
    }
    text
}

/// Who writes, shared by an actor's two writers.
#[derive(Clone)]
pub(crate) struct Writer {
    host: Arc<dyn ActorHost>,
    actor: Address,
    version: u32,
}

impl Writer {
    pub(crate) fn new(host: Arc<dyn ActorHost>, actor: Address, version: u32) -> Writer {
        Writer {
            host,
            actor,
            version,
        }
    }

    fn emit(&self, stream: OutputStream, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        self.host.output(GuestLine {
            actor: self.actor.clone(),
            version: self.version,
            stream,
            text: cut_line(text.to_owned()),
        });
    }
}

/// One WASI output stream of one actor: bytes in, lines out.
#[derive(Clone)]
pub(crate) struct LineStream {
    writer: Writer,
    stream: OutputStream,
    /// The unfinished last line.
    partial: Arc<Mutex<Vec<u8>>>,
    /// Set for stderr only.
    tail: Option<StderrTail>,
}

impl LineStream {
    pub(crate) fn stdout(writer: Writer) -> LineStream {
        LineStream {
            writer,
            stream: OutputStream::Stdout,
            partial: Arc::default(),
            tail: None,
        }
    }

    pub(crate) fn stderr(writer: Writer, tail: StderrTail) -> LineStream {
        LineStream {
            writer,
            stream: OutputStream::Stderr,
            partial: Arc::default(),
            tail: Some(tail),
        }
    }

    fn write(&self, data: &[u8]) {
        if let Some(tail) = &self.tail {
            tail.push(data);
        }
        let mut partial = self.partial.lock().expect("output buffer poisoned");
        partial.extend_from_slice(data);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            self.writer.emit(self.stream, &line[..line.len() - 1]);
        }
        // A guest that never writes a newline still yields bounded lines
        // (and bounded host memory): past MAX_PARTIAL the line is emitted, cut.
        if partial.len() > MAX_PARTIAL {
            let line = std::mem::take(&mut *partial);
            self.writer.emit(self.stream, &line);
        }
    }

    fn flush(&self) {
        let mut partial = self.partial.lock().expect("output buffer poisoned");
        if !partial.is_empty() {
            let line = std::mem::take(&mut *partial);
            self.writer.emit(self.stream, &line);
        }
    }
}

impl IsTerminal for LineStream {
    /// Guests see a terminal so that language runtimes (Python) flush per
    /// line instead of holding output in a block buffer forever.
    fn is_terminal(&self) -> bool {
        true
    }
}

impl StdoutStream for LineStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for LineStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush();
        Poll::Ready(Ok(()))
    }
}

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
