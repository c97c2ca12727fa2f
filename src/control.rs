//! The control thread's tools: signals as messages, and the one-second tick.
//!
//! In: the process's signals; a channel of [`Input`]s. Out: SIGTERM/SIGINT as
//! [`Input::Stop`], SIGHUP as [`Input::Reload`]; the next message, with a tick run in
//! between when ticking. Must not: decide or log anything.

use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Duration;

use crate::capture::Input;

/// SIGTERM and SIGINT become [`Input::Stop`], SIGHUP [`Input::Reload`], on `tx`.
pub fn start_signals(tx: SyncSender<Input>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let msg = if sig == SIGHUP {
                Input::Reload
            } else {
                Input::Stop
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// How often ticks (expiry, changes by the CLI, tamper repair) run while typed blocking
/// is on: twice a second, so a flushed chain or set is put back within a second.
const TICK: Duration = Duration::from_millis(500);

/// The next input; with `ticking`, runs `tick` every [`TICK`] in between (an idle
/// daemon without typed blocking sleeps until a packet or a signal arrives). `None` when
/// every sender is gone.
pub fn next_input(
    rx: &Receiver<Input>,
    ticking: bool,
    last_tick: &mut std::time::Instant,
    mut tick: impl FnMut(),
) -> Option<Input> {
    if !ticking {
        return rx.recv().ok();
    }
    loop {
        if last_tick.elapsed() >= TICK {
            tick();
            *last_tick = std::time::Instant::now();
        }
        match rx.recv_timeout(TICK.saturating_sub(last_tick.elapsed())) {
            Ok(i) => return Some(i),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}
