//! The [`AuditSink`] port: where the audit log is *streamed* (JSON lines to stdout, a file, a log
//! shipper). The stream is a copy for operators and SIEMs; the record is the chain on the HSM, so a
//! sink that fails is logged and never fails a request.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use km_domain::audit::{AuditEvent, Checkpoint};

use super::export::ExportLineRef;

/// A sink could not take a line.
#[derive(Debug, thiserror::Error)]
#[error("the audit stream could not be written: {0}")]
pub struct SinkError(pub String);

/// Receives every event (and checkpoint) once it is durable on the HSM, in log order per
/// [`AuditLog`](super::AuditLog) instance. Implementations must be quick (they run while the
/// instance's writer waits) and must not fail requests: return the error, the log reports it.
pub trait AuditSink: Send + Sync {
    /// A durable event.
    fn event(&self, event: &AuditEvent) -> Result<(), SinkError>;
    /// A stored checkpoint. Ignored by default.
    fn checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), SinkError> {
        let _ = checkpoint;
        Ok(())
    }
}

/// A sink that drops everything (no stream configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

impl AuditSink for NoSink {
    fn event(&self, _event: &AuditEvent) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Streams JSON lines in the same format as an export (`{"type":"event",...}`,
/// `{"type":"checkpoint",...}`), so a captured stream can be checked with `keymanager audit
/// verify --public-key` like an export. Each line is flushed as it is written.
pub struct JsonLinesSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSink").finish_non_exhaustive()
    }
}

impl JsonLinesSink {
    /// Lines to any writer.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Mutex::new(Box::new(out)),
        }
    }

    /// Lines to the process's standard output (logs go to stderr, so the two do not mix).
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }

    /// Lines appended to `path` (created if missing; never truncated).
    pub fn append_to_file(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::new(file))
    }

    fn write_line(&self, line: &ExportLineRef<'_>) -> Result<(), SinkError> {
        let mut text = serde_json::to_vec(line).map_err(|error| SinkError(error.to_string()))?;
        text.push(b'\n');
        // A writer that panicked mid-line is still the best place for the next line.
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(&text)
            .and_then(|()| out.flush())
            .map_err(|error| SinkError(error.to_string()))
    }
}

impl AuditSink for JsonLinesSink {
    fn event(&self, event: &AuditEvent) -> Result<(), SinkError> {
        self.write_line(&ExportLineRef::Event(event))
    }

    fn checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), SinkError> {
        self.write_line(&ExportLineRef::Checkpoint(checkpoint))
    }
}
