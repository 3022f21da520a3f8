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

pub mod builder;
pub use builder::{compile_defs, Builder, Error, ErrorKind};

/// Generates the stubs of a `.defs` file into the module it is attached to.
///
/// ```ignore
/// #[mig_rs::interface(path = "defs/kv.defs", include = "defs", define(SEQNOS))]
/// pub mod kv {}
///
/// // kv::client::get(&transport, server, key), impl kv::server::KvServer for …
/// ```
///
/// The module receives the same code as a [`Builder`] output file — constants and type
/// aliases, `pub mod client`, `pub mod server` — followed by whatever the module already
/// contained; its attributes and visibility are kept. The generated code refers to
/// `::mig_runtime`, so the crate needs `mig-runtime` as a dependency (or set
/// `runtime_crate`).
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `path = "defs/x.defs"` | the `.defs` file (required) |
/// | `include = "defs"` | an include directory (`-I`); may be repeated |
/// | `define(NAME)`, `define(NAME = "value")` | `-DNAME`, `-DNAME=value` (the value may also be an integer or an identifier) |
/// | `undefine(NAME)` | `-UNAME` |
/// | `target = "x86_64"` | the message layout: `"x86_64"` (default) or `"i386"` |
/// | `client = bool`, `server = bool` | which sides to generate (default both) |
/// | `default_server_methods = bool` | default trait method bodies answering `MIG_BAD_ID` |
/// | `runtime_crate = "::mig_runtime"` | the runtime's path in generated code |
/// | `routine_prefix = "p_"` | GNU MIG's `-prefix` |
///
/// Relative paths (`path`, `include`) are resolved against the package's directory
/// (`CARGO_MANIFEST_DIR`); if the file is not there, against the directory of the source file
/// that holds the attribute.
///
/// # Rebuilds and errors
///
/// Every file the preprocessor read (the `.defs` file and everything it `#include`s) is
/// tracked with a `const _: &[u8] = include_bytes!("…")`, so editing any of them recompiles
/// the crate. Errors in the `.defs` files become `compile_error!`s pointing at the `path`
/// argument, with the `.defs` location (`--> defs/x.defs:LINE:COL`) and the source line in the
/// message; bad arguments are errors at the offending token. Warnings are not shown (a
/// proc-macro cannot emit them on stable Rust); use the CLI or the [`Builder`] to see them.
#[cfg(feature = "macros")]
pub use mig_rs_macros::interface;
