//! mig-rs: a Mach Interface Generator.

pub mod diagnostics;
pub mod source;
