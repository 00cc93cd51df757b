//! A plugin's stdout and stderr: captured with a cap, then forwarded to `tracing`.
//!
//! Guests see an always-ready stream; bytes beyond [`MAX_CAPTURED_OUTPUT`] are counted and
//! dropped rather than trapping the guest, so a chatty plugin keeps working and a hostile one
//! cannot grow host memory.

use std::sync::{Arc, Mutex};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::limits::MAX_CAPTURED_OUTPUT;

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: usize,
}

/// A capped in-memory stream; clones share the same buffer.
#[derive(Clone, Default)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

impl CapturedOutput {
    fn append(&self, bytes: &[u8]) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = MAX_CAPTURED_OUTPUT.saturating_sub(c.bytes.len());
        let kept = bytes.len().min(room);
        c.bytes.extend_from_slice(&bytes[..kept]);
        c.dropped += bytes.len() - kept;
    }

    /// Everything captured so far, as lossy UTF-8, and how many bytes were dropped.
    pub fn take(&self) -> (String, usize) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&c.bytes).into_owned();
        let dropped = c.dropped;
        c.bytes.clear();
        c.dropped = 0;
        (text, dropped)
    }
}

/// Forwards captured text to the log, one event per line, tagged with the plugin and stream.
pub fn forward_to_log(plugin: &str, stream: &str, output: &CapturedOutput) -> String {
    let (text, dropped) = output.take();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        tracing::info!(target: "tessera::plugin", plugin, stream, "{line}");
    }
    if dropped > 0 {
        tracing::warn!(
            target: "tessera::plugin",
            plugin,
            stream,
            dropped,
            "plugin output beyond {MAX_CAPTURED_OUTPUT} bytes was dropped"
        );
    }
    text
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only the WASI 0.3 paths use this, and the host links WASI 0.2 alone.
        Box::new(tokio::io::empty())
    }
}
