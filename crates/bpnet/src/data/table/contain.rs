//! Containing panics of third-party decoders: the arrow-rs readers panic on
//! some damaged files (an out-of-range buffer slice in an Arrow IPC file,
//! an overflowing sum in a Parquet page header; found by
//! `tests/columnar_mutations.rs`). A damaged input file must give a
//! one-line error, so each read runs under [`contain`].
//!
//! [`contain`] catches the unwind and turns it into the panic's message.
//! The panic hook would still print the panic (with a backtrace hint) to
//! standard error, so the first call installs a hook that stays silent on
//! a thread inside [`contain`] and hands every other panic to the hook that
//! was installed before it. (A hook that a program installs later replaces
//! this one: then the message is printed, and still caught.)

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// Whether this thread runs inside [`contain`].
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Runs `f`; a panic inside it is returned as `Err(message)` (one line),
/// silently.
pub(super) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let outer = CONTAINED.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(outer));
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the decoder failed".into());
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

#[cfg(test)]
mod tests {
    use super::contain;

    #[test]
    fn a_panic_becomes_its_message_on_one_line_and_results_pass_through() {
        assert_eq!(contain(|| 7), Ok(7));
        let e = contain(|| -> u8 { panic!("slice offset=3\nlength=9") }).unwrap_err();
        assert_eq!(e, "slice offset=3 length=9");
        // Nested: the inner one is contained, the outer one still runs.
        assert_eq!(
            contain(|| contain(|| -> u8 { panic!("inner") })),
            Ok(Err("inner".into()))
        );
    }
}
