//! The reference default pager over an emulated GNU Mach kernel with real page faults.
//!
//! * [`kernel`]: the emulated kernel (host, tasks, virtual memory on userfaultfd or the
//!   portable fallback, the kernel servers generated from `defs/`);
//! * [`mig`]: the generated stubs;
//! * [`faults`]: running task code that is expected to take SIGBUS/SIGSEGV, in a thread;
//! * [`demo`]: the demo (`cargo run --release -p default-pager-example`).
//!
//! The pager itself is the `default-pager` crate (`pager/`).

pub mod demo;
pub mod faults;
pub mod kernel;
pub mod mig;
pub mod system;

pub use kernel::{Config, EmuTask, Kernel, MemoryError, Mode, ModeChoice, PAGE};
