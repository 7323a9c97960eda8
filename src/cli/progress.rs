//! Progress bars: one per disk transfer, on stderr, only when stderr is a terminal and the
//! output is not JSON. Otherwise nothing is drawn.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use vmd::Progress;

/// indicatif bars keyed by task id.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    style: ProgressStyle,
}

impl Bars {
    /// Bars for a terminal, or none at all when `json` is set or stderr is not a terminal.
    pub fn for_terminal(json: bool) -> Option<Self> {
        if json || !std::io::stderr().is_terminal() {
            return None;
        }
        let style = ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta}",
        )
        .ok()?
        .progress_chars("=> ");
        Some(Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            style,
        })
    }

    fn with_bar(&self, id: &str, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock() {
            if let Some(bar) = bars.get(id) {
                f(bar);
            }
        }
    }
}

impl Progress for Bars {
    fn start(&self, id: &str, label: &str, total: u64) {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(self.style.clone());
        bar.set_prefix(
            super::output::Term(label)
                .to_string()
                .chars()
                .take(14)
                .collect::<String>(),
        );
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(id.to_string(), bar);
        }
    }

    fn set(&self, id: &str, done: u64) {
        self.with_bar(id, |b| b.set_position(done));
    }

    fn finish(&self, id: &str) {
        self.with_bar(id, ProgressBar::finish);
    }
}
