//! GNU Mach x86_64 system calls for `no_std` programs, over mig-rs-generated stubs.
//!
//! * [`trap`]: the traps (`mach_msg_trap`, `mach_reply_port`, `mach_task_self`, …);
//! * [`TrapTransport`]: the runtime's `Transport` over the real `mach_msg` trap;
//! * [`spaces`]: releasing dropped rights through `mach_port_deallocate`/`mod_refs` stubs;
//! * [`kernel`]: client stubs of `mach`, `mach_port`, `mach_host`, `gnumach`, `device`,
//!   generated from the project's `defs/`;
//! * [`heap`]: a global allocator over `vm_allocate`; [`console`]: printing through
//!   `device_open("console")`/`device_write`; [`boot`]: the boot task's arguments and
//!   entry point; [`env`]: the task's well-known ports.
//!
//! The crate builds on any x86_64 host (so it is checked with the workspace), but its
//! functions only work on GNU Mach.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod boot;
pub mod console;
pub mod env;
pub mod errors;
pub mod heap;
pub mod kernel;
#[cfg(feature = "rt")]
pub mod rt;
pub mod spaces;
pub mod transport;
pub mod trap;

pub use errors::{Code, Explain};
pub use transport::TrapTransport;
