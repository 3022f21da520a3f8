//! The `mig-rs` program; everything happens in [`mig_rs::cli::run`].
//!
//! `main` is the C entry point itself (`#![no_main]`) rather than Rust's `fn main`, because
//! a `mig-rs` run is short enough for process start-up to dominate it, and the standard
//! runtime's own start-up is a measurable part of that: it reads `/proc/self/maps` to find
//! the main thread's stack, maps an alternate signal stack for its stack-overflow handler
//! and ignores `SIGPIPE` — together about 0.1 ms of the ~1.3 ms a typical `.defs` file
//! takes (measured with `perf stat` over the gnumach files). Skipping it changes this:
//!
//! * arguments: unchanged (`std::env::args_os` is filled by glibc before `main` either way);
//! * standard descriptors that are closed get `/dev/null`, as the runtime does;
//! * `SIGPIPE` keeps its default action: writing to a closed pipe ends the process, as it
//!   does for C tools such as GNU MIG (`mig-rs --help | head -1` just stops);
//! * a panic prints its message and exits with status 101, as before;
//! * there is no "stack overflow" message: the front end bounds its recursion
//!   (`parse::MAX_DEPTH` and the preprocessor's limits), so the 8 MiB main stack is never
//!   near its end.
//!
//! (`cargo test` builds this file with its own test harness `main`, hence the `cfg`s.)
#![cfg_attr(not(test), no_main)]

/// The process entry point, called by the C runtime.
// `no_mangle` makes this the program's `main` symbol (there is no other: `no_main`).
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(
    _argc: std::os::raw::c_int,
    _argv: *const *const std::os::raw::c_char,
) -> std::os::raw::c_int {
    reopen_closed_standard_fds();
    // A panic must not unwind into the C caller.
    let code = std::panic::catch_unwind(|| mig_rs::cli::run(std::env::args_os().skip(1).collect()))
        .unwrap_or(101);
    // Flushes standard output and exits, without freeing anything (see `cli::run`).
    std::process::exit(code)
}

#[cfg_attr(test, allow(dead_code))]
/// Opens `/dev/null` on each of descriptors 0, 1 and 2 that is closed (the lowest free
/// descriptor is the one `open` returns), so that no file `mig-rs` opens later becomes its
/// standard input, output or error by accident.
fn reopen_closed_standard_fds() {
    use std::os::fd::{AsRawFd, IntoRawFd};
    while let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        if f.as_raw_fd() > 2 {
            // All three are open; this one is closed again on drop.
            break;
        }
        // Keep it open as the standard descriptor it filled.
        let _ = f.into_raw_fd();
    }
}
