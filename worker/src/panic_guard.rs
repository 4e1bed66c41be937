//! Turns panics inside third-party decoders into errors, without the noise of a backtrace.
//!
//! [`catch`] runs a closure under `catch_unwind` and returns the panic message as an error.
//! While it runs, the process-wide hook installed by [`install_quiet_hook`] stays silent for
//! this thread, so a crafted file shows one clear line to the user instead of a Rust panic
//! report. Panics anywhere else still reach the previous hook.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

static INSTALL: Once = Once::new();

/// Installs (once) a panic hook that defers to the previous one except inside [`catch`].
pub fn install_quiet_hook() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
}

/// Runs `work`, turning a panic into `Err(message)`.
pub fn catch<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    CATCHING.with(|depth| depth.set(depth.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(work));
    CATCHING.with(|depth| depth.set(depth.get() - 1));
    outcome.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-text payload".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        let outcome: Result<(), String> = catch(|| panic!("bad header {}", 7));
        assert_eq!(outcome, Err("bad header 7".to_string()));
        assert_eq!(catch(|| 5), Ok(5));
    }
}
