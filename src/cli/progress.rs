//! Progress over many tenants, and how much the run says (`-v`, `-vv`, `-q`).
//!
//! On a terminal: an indicatif bar on stderr (tenants done / total, failures, rate, ETA). In
//! CI (stderr not a terminal): one short line every few seconds while work goes on, never a
//! line per tenant. With `-v` the log lines are the progress, so no bar is drawn.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How chatty a run is, from `-q` / `-v` / `-vv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors and the final summary only.
    Quiet,
    Normal,
    /// Per-tenant steps.
    Steps,
    /// Graph requests too (method, path, status, duration, request-id).
    Requests,
}

impl Verbosity {
    pub fn from_flags(verbose: u8, quiet: bool) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Steps,
            (false, _) => Verbosity::Requests,
        }
    }

    /// Log lines to stderr through `tracing`: warnings by default, errors when quiet.
    pub fn install_logging(self, color: bool) {
        let level = match self {
            Verbosity::Quiet => tracing::Level::ERROR,
            Verbosity::Normal => tracing::Level::WARN,
            Verbosity::Steps => tracing::Level::INFO,
            Verbosity::Requests => tracing::Level::DEBUG,
        };
        let filter = tracing_subscriber::filter::Targets::new().with_target("tenantform", level);
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(color)
                    .with_target(false)
                    .compact(),
            )
            .with(filter)
            .try_init();
    }
}

/// Shown while many tenants are read or applied.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<Ticker>,
    done: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

/// The CI fallback: a thread printing a line every `every` until stopped.
struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often CI gets a progress line.
const CI_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Progress over `total` tenants labelled `what` ("Reading Entra", "Applying").
    pub fn new(what: &str, total: usize, verbosity: Verbosity) -> Progress {
        let done = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let total_now = Arc::new(AtomicUsize::new(total));
        let shown = verbosity == Verbosity::Normal && total > 1;
        let terminal = std::io::stderr().is_terminal();
        let bar = (shown && terminal).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} tenants{msg}, {per_sec}, ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let ticker = (shown && !terminal).then(|| {
            let stop = Arc::new((Mutex::new(false), Condvar::new()));
            let (what, done, failed, total, signal) = (
                what.to_string(),
                done.clone(),
                failed.clone(),
                total_now.clone(),
                stop.clone(),
            );
            let started = Instant::now();
            let thread = std::thread::spawn(move || {
                let (lock, condvar) = &*signal;
                let mut stopped = lock.lock().expect("ticker lock");
                loop {
                    let (guard, timeout) = condvar
                        .wait_timeout(stopped, CI_EVERY)
                        .expect("ticker lock");
                    stopped = guard;
                    if *stopped {
                        break;
                    }
                    if timeout.timed_out() {
                        eprintln!(
                            "{}",
                            ci_line(
                                &what,
                                done.load(Ordering::Relaxed),
                                failed.load(Ordering::Relaxed),
                                total.load(Ordering::Relaxed),
                                started.elapsed()
                            )
                        );
                    }
                }
            });
            Ticker {
                stop,
                thread: Some(thread),
            }
        });
        Progress {
            bar,
            ticker,
            done,
            failed,
            total: total_now,
        }
    }

    /// More tenants to do than first thought.
    pub fn add_total(&self, more: usize) {
        self.total.fetch_add(more, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc_length(more as u64);
        }
    }

    /// One more tenant finished (`failed` if it did not succeed).
    pub fn tenant_done(&self, failed: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            let n = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(bar) = &self.bar {
                bar.set_message(format!(", {n} failed"));
            }
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Runs `f` (which prints) without tearing the bar.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(mut ticker) = self.ticker.take() {
            *ticker.stop.0.lock().expect("ticker lock") = true;
            ticker.stop.1.notify_all();
            if let Some(thread) = ticker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `Reading Entra: 120/1000 tenants (2 failed), 35.1/s, ETA 25s`.
fn ci_line(what: &str, done: usize, failed: usize, total: usize, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let failed = if failed > 0 {
        format!(" ({failed} failed)")
    } else {
        String::new()
    };
    let eta = if done > 0 && done < total {
        format!(", ETA {}s", ((total - done) as f64 / rate).ceil() as u64)
    } else {
        String::new()
    };
    format!("{what}: {done}/{total} tenants{failed}, {rate:.1}/s{eta}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_lines_say_done_total_failures_rate_and_eta() {
        assert_eq!(
            ci_line("Reading Entra", 100, 2, 1000, Duration::from_secs(10)),
            "Reading Entra: 100/1000 tenants (2 failed), 10.0/s, ETA 90s"
        );
        assert_eq!(
            ci_line("Applying", 5, 0, 5, Duration::from_secs(1)),
            "Applying: 5/5 tenants, 5.0/s"
        );
    }
}
