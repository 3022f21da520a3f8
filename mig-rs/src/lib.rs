//! mig-rs: a Mach Interface Generator.

pub mod check;
pub mod cli;
pub mod codegen;
pub mod diagnostics;
pub mod driver;
pub mod ir;
pub mod lex;
pub mod parse;
pub mod preprocess;
pub mod source;

pub use mig_runtime::wire::Target;
