//! What people see while apply runs: on a terminal, a live line of what is
//! done, running and waiting, with the elapsed time, above which each
//! finished step is printed; without one, a plain line per step; with
//! `--json`, events as JSON lines on stdout. Nothing secret reaches it:
//! events carry ids and the API server's messages, never bodies.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use sovereign::apply::{Event, Outcome};

use crate::apply_command::{op_word, outcome_words};

pub(crate) struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    running: AtomicUsize,
    /// The latest wait, and whose: shown until that step finishes.
    waiting: Mutex<Option<(String, String)>>,
}

impl Progress {
    pub(crate) fn new(json: bool, steps: usize) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("[{elapsed_precise}] {pos}/{len} done {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { json, bar, running: AtomicUsize::new(0), waiting: Mutex::new(None) }
    }

    pub(crate) fn report(&self, event: &Event<'_>) {
        if self.json {
            let line = match event {
                Event::Started { id, op } => json!({"event": "started", "id": id.to_string(), "op": op_word(*op)}),
                Event::Waiting { id, why } => json!({"event": "waiting", "id": id.to_string(), "why": why}),
                Event::Finished { id, outcome, elapsed } => {
                    let (word, why) = outcome_words(outcome);
                    let mut line = json!({"event": "finished", "id": id.to_string(), "outcome": word, "why": why, "seconds": elapsed.as_secs_f64()});
                    if let Outcome::Failed(failure) = outcome
                        && let Some(code) = crate::refusals::code(failure)
                    {
                        line["code"] = json!(code.id);
                        line["fields"] = json!(failure.fields);
                    }
                    line
                }
            };
            let _ = writeln!(std::io::stdout(), "{line}");
            return;
        }
        let line = match event {
            Event::Started { .. } => {
                self.running.fetch_add(1, Ordering::Relaxed);
                None
            }
            Event::Waiting { id, why } => {
                let text = format!("  waiting  {id}: {why}");
                if let Ok(mut waiting) = self.waiting.lock() {
                    *waiting = Some((id.to_string(), text.clone()));
                }
                // On a terminal the live line shows it; in a log, every wait is a line.
                self.bar.is_none().then_some(text)
            }
            Event::Finished { id, outcome, elapsed } => {
                let _ = self.running.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                if let Ok(mut waiting) = self.waiting.lock()
                    && waiting.as_ref().is_some_and(|(whose, _)| *whose == id.to_string())
                {
                    *waiting = None;
                }
                let (word, why) = outcome_words(outcome);
                let why = why.map(|why| format!(": {why}")).unwrap_or_default();
                Some(format!("  {word:<8} {id} ({:.1}s){why}", elapsed.as_secs_f64()))
            }
        };
        match (&self.bar, line) {
            (Some(bar), line) => {
                if let Some(line) = line {
                    bar.println(line);
                }
                let waiting = self
                    .waiting
                    .lock()
                    .ok()
                    .and_then(|waiting| waiting.as_ref().map(|(_, text)| text.clone()))
                    .unwrap_or_default();
                bar.set_message(format!("· {} running {}", self.running.load(Ordering::Relaxed), waiting.trim_start()));
            }
            (None, Some(line)) => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            (None, None) => {}
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
