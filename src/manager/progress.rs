//! Progress of long work (disk transfers), reported to whoever drives the manager. The
//! library never prints: the CLI turns these calls into progress bars on a terminal.

/// Receives progress of long operations. Calls come from worker threads.
pub trait Progress: Send + Sync {
    /// A task `id` starts: `label` for people, `total` units (bytes) of work.
    fn start(&self, id: &str, label: &str, total: u64);
    /// `done` units of task `id` are complete so far.
    fn set(&self, id: &str, done: u64);
    /// Task `id` is complete.
    fn finish(&self, id: &str);
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _id: &str, _label: &str, _total: u64) {}
    fn set(&self, _id: &str, _done: u64) {}
    fn finish(&self, _id: &str) {}
}
