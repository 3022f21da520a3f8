//! mig-rs: a Mach Interface Generator.

pub mod diagnostics;
pub mod parse;
pub mod lex;
pub mod source;
