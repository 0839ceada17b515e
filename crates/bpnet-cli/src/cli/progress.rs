//! Training progress: an indicatif bar with loss, metric, learning rate and
//! ETA on a terminal; one plain line per epoch otherwise; nothing with
//! `--quiet`.

use bpnet::train::{EpochRecord, Event};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Shows [`Event`]s from the training loop.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
}

impl Progress {
    /// A bar when stdout and stderr are terminals (the bar draws on stderr
    /// and prints the epoch lines above itself), plain lines on stdout
    /// otherwise, silent if `quiet`. With a terminal stdout and stderr
    /// redirected (`2>file`, or each rank under `mpirun`, whose stdout is a
    /// pty and stderr a pipe) the hidden bar swallowed the epoch lines.
    pub fn new(quiet: bool) -> Self {
        let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        Progress {
            bar: None,
            plain: !quiet && !terminal,
        }
        .with_bar(!quiet && terminal)
    }

    fn with_bar(mut self, on: bool) -> Self {
        if on {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            self.bar = Some(bar);
        }
        self
    }

    /// Handles one event.
    pub fn event(&mut self, e: &Event<'_>) {
        match e {
            Event::Step {
                step, total, loss, lr, ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(*total as u64);
                    bar.set_position(*step as u64);
                    if step % 20 == 0 {
                        bar.set_message(format!("loss {loss:.4}  lr {lr:.3e}"));
                    }
                }
            }
            Event::Checkpoint { .. } => {}
            Event::Epoch(r, _) => {
                let line = epoch_line(r);
                match &self.bar {
                    Some(bar) => bar.println(line),
                    None if self.plain => println!("{line}"),
                    None => {}
                }
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `epoch 3  step 1200  loss 0.1234  val_loss 0.2345  val_metric 0.9612  lr 1.000e-3  4.2s`.
pub fn epoch_line(r: &EpochRecord) -> String {
    let mut s = format!("epoch {:>4}  step {:>7}  loss {:.4}", r.epoch, r.step, r.train_loss);
    if let Some(v) = r.val_loss {
        s += &format!("  val_loss {v:.4}");
    }
    if let Some(m) = r.val_metric {
        s += &format!("  val_metric {m:.4}");
    }
    s + &format!("  lr {:.3e}  {:.1}s", r.lr, r.seconds)
}
