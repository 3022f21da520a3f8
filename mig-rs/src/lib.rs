//! mig-rs: a Mach Interface Generator.

pub mod check;
pub mod cli;
pub mod codegen;
pub mod ir;
pub mod diagnostics;
pub mod driver;
pub mod parse;
pub mod preprocess;
pub mod lex;
pub mod source;
