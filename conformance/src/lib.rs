//! Differential-testing harness around the reference GNU MIG (Debian 13's
//! `mig-x86-64-gnu`, with `gnumach-dev` headers).
//!
//! * [`Oracle::locate`] finds the unpacked packages (or tells tests to skip; see
//!   [`require_oracle!`]).
//! * [`Oracle::run`] runs GNU MIG with results cached under `target/oracle-out/`.
//! * [`Oracle::layouts`] compiles a probe from GNU MIG's generated C and reports every
//!   routine's message layouts, descriptor templates and receiver checks.
//! * [`harness`] compiles GNU MIG's `User.c` / `Server.c` into shared libraries with a
//!   recording `mach_msg`, to capture the exact bytes of requests and replies.
//!
//! Nothing here depends on mig-rs; GNU MIG's output only ever lives under `target/`.

mod cparse;
mod error;
pub mod harness;
pub mod layout;
pub mod oracle;
mod util;

pub use error::{OracleError, Result};
pub use layout::{
    Abi, CheckItem, ComplexBit, DescAttr, Descriptor, DescriptorCheck, FieldKind, FieldLayout,
    MessageLayout, RoutineLayout, SizeCheck, StructLayout, Template,
};
pub use oracle::{parse_list, workspace_root, ListEntry, MigRun, Oracle, Outputs, Skip};
pub use util::StableHasher;

/// Evaluates to the located [`Oracle`], or prints `SKIP: GNU MIG oracle not found …` to
/// stderr (uncaptured, see [`oracle::report_skip`]) and `return`s from the enclosing test
/// (a function returning `()`).
///
/// With the environment variable `CI` set, a missing oracle panics instead (see
/// [`Oracle::locate`]).
#[macro_export]
macro_rules! require_oracle {
    () => {
        match $crate::Oracle::locate() {
            ::std::result::Result::Ok(oracle) => oracle,
            ::std::result::Result::Err(skip) => {
                $crate::oracle::report_skip(&skip);
                return;
            }
        }
    };
}
