//! Generating stubs from a build script: [`Builder`], [`compile_defs`] and
//! [`include_defs!`](crate::include_defs).
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), mig_rs::Error> {
//!     mig_rs::Builder::new()
//!         .file("defs/kv.defs")
//!         .include("defs")
//!         .define("KV_DEBUG")
//!         .generate()?;
//!     Ok(())
//! }
//! ```
//!
//! ```ignore
//! // src/lib.rs
//! pub mod kv {
//!     mig_rs::include_defs!("kv");
//! }
//! ```
//!
//! # Output files
//!
//! Every `.defs` file becomes **one** Rust file in the output directory (`$OUT_DIR` unless
//! [`Builder::out_dir`] says otherwise), named after the `.defs` file: `defs/kv.defs` →
//! `kv.rs`, `memory_object_default.defs` → `memory_object_default.rs`. The name is the file
//! name without its last extension, not the subsystem name. [`Builder::file_as`] chooses
//! another name, which you need when the same `.defs` file is generated twice (for example
//! the `SEQNOS` variant of `memory_object_default.defs`, from a second `Builder` with
//! `.define("SEQNOS")`). Two inputs of one `Builder` that would get the same name are an
//! error.
//!
//! The file holds the subsystem's constants and type aliases, then `pub mod client` (one
//! function per routine) and `pub mod server` (the trait, the stubs and the demux), as
//! [`Generated::combined`](crate::codegen::Generated::combined). It contains only items, so
//! it can be `include!`d into any module (that is what [`include_defs!`](crate::include_defs)
//! does), and it refers to the runtime as `::mig_runtime` (see [`Builder::runtime_crate`]),
//! so the crate that includes it needs `mig-runtime` as a dependency.
//!
//! # Errors, atomicity
//!
//! [`Builder::generate`] compiles every file first. If any of them has an error, or an option
//! is wrong, it writes nothing and returns an [`Error`] whose `Display` (and `Debug`, which is
//! what `.unwrap()` and `main() -> Result` print) is the rendered report: every diagnostic
//! with its `file:line:col`, the source line, the include chain. Otherwise each output is
//! written to a temporary file in the output directory and renamed into place, so a reader
//! never sees a half-written file; a file whose contents did not change is left untouched
//! (its modification time too). Warnings are printed as `cargo:warning=` lines unless
//! [`Builder::quiet`] is set.
//!
//! # Rebuild tracking
//!
//! By default ([`Builder::emit_rerun_if_changed`]) `generate` prints
//! `cargo:rerun-if-changed=PATH` for **every file the preprocessor read** — each `.defs`, and
//! every file it `#include`s, however deep — and `cargo:rerun-if-env-changed=VAR` for every
//! environment variable the front end consulted, as bindgen's `CargoCallbacks` does. Include
//! directories themselves are not listed (Cargo would then rescan the whole tree on every
//! build).
//!
//! **Printing any `rerun-if-changed` line disables Cargo's default rule, "rerun the build
//! script when any file in the package changes".** From then on Cargo reruns the build script
//! only when one of the listed files (or the build script itself) changes. If your build
//! script also depends on other inputs, print their `rerun-if-changed` lines yourself, or turn
//! the tracking off with `.emit_rerun_if_changed(false)` to get Cargo's default back.

use crate::codegen::{self, CodegenOptions};
use crate::diagnostics::Diagnostics;
use crate::driver::{self, Options};
use crate::preprocess::Define;
use crate::source::SourceMap;
use mig_runtime::wire::Target;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What kind of problem an [`Error`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A `.defs` file (or a file it includes) is missing, unreadable or has errors, or code
    /// generation failed for it. The report has the located diagnostics.
    Defs,
    /// The options given to the [`Builder`] are wrong or contradict each other.
    Config,
    /// An output file could not be written.
    Io,
}

/// Why [`Builder::generate`] (or [`compile_defs`]) failed.
///
/// `Display` and `Debug` both print the full report — every diagnostic rendered rustc-style
/// with `file:line:col`, the source line and a caret — so a build script that `.unwrap()`s,
/// `.expect()`s or returns the error from `main` shows it as is.
pub struct Error {
    kind: ErrorKind,
    report: String,
    files: Vec<PathBuf>,
}

impl Error {
    fn new(kind: ErrorKind, report: impl Into<String>) -> Error {
        Error {
            kind,
            report: report.into(),
            files: Vec::new(),
        }
    }

    fn config(report: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, report)
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The rendered report (what `Display` prints).
    pub fn report(&self) -> &str {
        &self.report
    }

    /// The `.defs` files that failed ([`ErrorKind::Defs`]), in the order they were given.
    pub fn failed_files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.report.trim_end())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `unwrap()` and `fn main() -> Result<_, Error>` print `Debug`: make it the report,
        // not a struct dump with escaped newlines.
        writeln!(f, "mig-rs failed ({:?}):", self.kind)?;
        f.write_str(self.report.trim_end())
    }
}

impl std::error::Error for Error {}

/// One input of a [`Builder`].
#[derive(Clone, Debug)]
struct Input {
    path: PathBuf,
    /// The output name chosen with [`Builder::file_as`].
    name: Option<String>,
}

/// The output for one `.defs` file, computed by [`Builder::compile`] (nothing written yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The `.defs` file, as given.
    pub source: PathBuf,
    /// Where [`Builder::generate`] writes it: `<out_dir>/<name>.rs`.
    pub path: PathBuf,
    /// The generated Rust source.
    pub code: String,
    /// Every file the preprocessor read for it (the `.defs` file and all its includes).
    pub files_read: Vec<PathBuf>,
    /// Environment variables the front end consulted for it.
    pub env_read: Vec<String>,
    /// Rendered warnings (empty when there were none or [`Builder::quiet`] is set).
    pub warnings: String,
}

/// Generates Rust stubs for `.defs` files from a build script, in the manner of
/// `prost_build::Config`: `&mut self` setters, then [`Builder::generate`].
///
/// See the [module documentation](self) for output naming, errors and rebuild tracking.
///
/// ```no_run
/// # fn main() -> Result<(), mig_rs::Error> {
/// mig_rs::Builder::new()
///     .files(["defs/memory_object.defs", "defs/notify.defs"])
///     .include("defs")
///     .target(mig_rs::Target::X86_64)
///     .client(false)
///     .default_server_methods(true)
///     .generate()?;
/// // The SEQNOS variant of the same file needs its own name:
/// mig_rs::Builder::new()
///     .file_as("defs/memory_object_default.defs", "memory_object_default_seqnos")
///     .include("defs")
///     .define("SEQNOS")
///     .generate()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    inputs: Vec<Input>,
    opts: Options,
    client: bool,
    server: bool,
    default_server_methods: bool,
    runtime_crate: String,
    out_dir: Option<PathBuf>,
    emit_rerun_if_changed: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the defaults: x86_64, client and server, no default server methods,
    /// runtime `::mig_runtime`, output to `$OUT_DIR`, rerun tracking on.
    pub fn new() -> Builder {
        Builder {
            inputs: Vec::new(),
            opts: Options::default(),
            client: true,
            server: true,
            default_server_methods: false,
            runtime_crate: CodegenOptions::default().runtime_crate,
            out_dir: None,
            emit_rerun_if_changed: true,
        }
    }

    /// Adds a `.defs` file; its output is `<file stem>.rs` (`defs/kv.defs` → `kv.rs`).
    /// Relative paths are relative to the current directory, which in a build script is the
    /// package's directory (`CARGO_MANIFEST_DIR`).
    pub fn file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.inputs.push(Input {
            path: path.as_ref().to_path_buf(),
            name: None,
        });
        self
    }

    /// Adds several `.defs` files (see [`Builder::file`]).
    pub fn files<I, P>(&mut self, paths: I) -> &mut Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        for p in paths {
            self.file(p);
        }
        self
    }

    /// Adds a `.defs` file whose output is `<name>.rs` instead of `<file stem>.rs`
    /// (`file_as("defs/x.defs", "x_seqnos")` writes `x_seqnos.rs`). `name` is a plain file
    /// name without directory or extension.
    pub fn file_as(&mut self, path: impl AsRef<Path>, name: impl Into<String>) -> &mut Self {
        self.inputs.push(Input {
            path: path.as_ref().to_path_buf(),
            name: Some(name.into()),
        });
        self
    }

    /// Adds an include directory (`-I`), searched for `#include "…"` after the including
    /// file's directory, and for `#include <…>`. It must exist.
    pub fn include(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.opts.include_dirs.push(dir.as_ref().to_path_buf());
        self
    }

    /// Adds several include directories (see [`Builder::include`]).
    pub fn includes<I, P>(&mut self, dirs: I) -> &mut Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        for d in dirs {
            self.include(d);
        }
        self
    }

    /// Defines a macro as `1` (`-DNAME`). Defines and undefines apply in the order given.
    pub fn define(&mut self, name: impl Into<String>) -> &mut Self {
        self.opts.defines.push(Define::Set(name.into(), None));
        self
    }

    /// Defines a macro with a value (`-DNAME=VALUE`); `name` may have a parameter list
    /// (`"F(x)"`).
    pub fn define_value(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.opts
            .defines
            .push(Define::Set(name.into(), Some(value.into())));
        self
    }

    /// Undefines a macro (`-UNAME`), including a predefined one.
    pub fn undefine(&mut self, name: impl Into<String>) -> &mut Self {
        self.opts.defines.push(Define::Unset(name.into()));
        self
    }

    /// The machine whose message layout to generate (default [`Target::X86_64`]). It also
    /// selects the preprocessor's predefined macros (`__x86_64__` or `__i386__`).
    pub fn target(&mut self, target: Target) -> &mut Self {
        self.opts.target = target;
        self
    }

    /// Generate the client module (default `true`).
    pub fn client(&mut self, yes: bool) -> &mut Self {
        self.client = yes;
        self
    }

    /// Generate the server module (default `true`).
    pub fn server(&mut self, yes: bool) -> &mut Self {
        self.server = yes;
        self
    }

    /// Give every server trait method a default body answering `MIG_BAD_ID`, so a server
    /// implements only the routines it supports (default `false`). Needs `server(true)`.
    pub fn default_server_methods(&mut self, yes: bool) -> &mut Self {
        self.default_server_methods = yes;
        self
    }

    /// The path generated code uses for the runtime crate (default `::mig_runtime`), e.g.
    /// `crate::rt` if you re-export it.
    pub fn runtime_crate(&mut self, path: impl Into<String>) -> &mut Self {
        self.runtime_crate = path.into();
        self
    }

    /// Prefix for routine names, as GNU MIG's `-prefix`.
    pub fn routine_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.opts.routine_prefix = prefix.into();
        self
    }

    /// Where to write (default: the `OUT_DIR` environment variable Cargo sets for build
    /// scripts). The directory must exist.
    pub fn out_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Run this command (e.g. `"gcc -E -x c"`) as the preprocessor instead of the built-in
    /// one (GNU MIG's `CPP`); the `-D`/`-U`/`-I` flags and the file are appended.
    pub fn external_cpp(&mut self, command: impl Into<String>) -> &mut Self {
        self.opts.external_cpp = Some(command.into());
        self
    }

    /// Print `cargo:rerun-if-changed` for every file read and `cargo:rerun-if-env-changed`
    /// for every environment variable consulted (default `true`).
    ///
    /// **This disables Cargo's default "rerun when anything in the package changes"**: see
    /// the [module documentation](self#rebuild-tracking).
    pub fn emit_rerun_if_changed(&mut self, yes: bool) -> &mut Self {
        self.emit_rerun_if_changed = yes;
        self
    }

    /// Do not report warnings (GNU MIG's `-q`); default `false`.
    pub fn quiet(&mut self, yes: bool) -> &mut Self {
        self.opts.quiet = yes;
        self
    }

    /// Checks the options; the first problem found, named with the setter it came from.
    fn check_config(&self) -> Result<(), Error> {
        if self.inputs.is_empty() {
            return Err(Error::config(
                "mig_rs::Builder: no .defs file given (call .file(\"x.defs\") before .generate())",
            ));
        }
        if self.default_server_methods && !self.server {
            return Err(Error::config(
                "mig_rs::Builder: conflicting options: .default_server_methods(true) needs \
                 .server(true), but the server is disabled with .server(false)",
            ));
        }
        if !self.client && !self.server {
            return Err(Error::config(
                "mig_rs::Builder: conflicting options: .client(false) and .server(false) leave \
                 nothing to generate",
            ));
        }
        for d in &self.opts.include_dirs {
            if !d.is_dir() {
                let why = match fs::metadata(d) {
                    Ok(_) => "is not a directory".to_string(),
                    Err(e) => format!("cannot be read: {e}"),
                };
                return Err(Error::config(format!(
                    "mig_rs::Builder: include directory `{}` (from .include(..)) {why}",
                    d.display()
                )));
            }
        }
        for d in &self.opts.defines {
            let (setter, name) = match d {
                Define::Set(n, None) => ("define", n),
                Define::Set(n, Some(_)) => ("define_value", n),
                Define::Unset(n) => ("undefine", n),
            };
            let allow_params = matches!(d, Define::Set(_, Some(_)));
            if let Err(why) = check_macro_name(name, allow_params) {
                return Err(Error::config(format!(
                    "mig_rs::Builder: .{setter}({name:?}): {why}"
                )));
            }
        }
        if !self.opts.routine_prefix.is_empty() && !is_ident_chars(&self.opts.routine_prefix) {
            return Err(Error::config(format!(
                "mig_rs::Builder: .routine_prefix({:?}): a prefix may only contain letters, \
                 digits and `_`",
                self.opts.routine_prefix
            )));
        }
        if syn::parse_str::<syn::Path>(&self.runtime_crate).is_err() {
            return Err(Error::config(format!(
                "mig_rs::Builder: .runtime_crate({:?}) is not a Rust path (e.g. `::mig_runtime`)",
                self.runtime_crate
            )));
        }
        if let Some(cmd) = &self.opts.external_cpp {
            if cmd.split_whitespace().next().is_none() {
                return Err(Error::config(
                    "mig_rs::Builder: .external_cpp(\"\"): the command is empty",
                ));
            }
        }
        let mut names: Vec<(String, &Path)> = Vec::new();
        for input in &self.inputs {
            let name = self.output_name(input)?;
            if let Some((_, other)) = names.iter().find(|(n, _)| *n == name) {
                return Err(Error::config(format!(
                    "mig_rs::Builder: `{}` and `{}` would both be written to `{name}.rs`; give \
                     one of them another name with .file_as(path, name)",
                    other.display(),
                    input.path.display()
                )));
            }
            names.push((name, &input.path));
        }
        Ok(())
    }

    /// The output name (without `.rs`) of an input.
    fn output_name(&self, input: &Input) -> Result<String, Error> {
        match &input.name {
            Some(n) => {
                let ok = !n.is_empty()
                    && n != "."
                    && n != ".."
                    && !n.contains(['/', '\\', '\0'])
                    && !n.ends_with(".rs");
                if ok {
                    Ok(n.clone())
                } else {
                    Err(Error::config(format!(
                        "mig_rs::Builder: .file_as({:?}, {n:?}): the name must be a plain file \
                         name without directory or `.rs` extension",
                        input.path.display().to_string()
                    )))
                }
            }
            None => match input.path.file_stem().and_then(|s| s.to_str()) {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(Error::config(format!(
                    "mig_rs::Builder: .file({:?}): cannot derive an output name from this path; \
                     use .file_as(path, name)",
                    input.path.display().to_string()
                ))),
            },
        }
    }

    fn resolve_out_dir(&self) -> Result<PathBuf, Error> {
        let dir =
            match &self.out_dir {
                Some(d) => d.clone(),
                None => match std::env::var_os("OUT_DIR") {
                    Some(d) if !d.is_empty() => PathBuf::from(d),
                    _ => return Err(Error::config(
                        "mig_rs::Builder: the OUT_DIR environment variable is not set (Cargo sets \
                         it for build scripts); outside a build script call .out_dir(dir)",
                    )),
                },
            };
        if !dir.is_dir() {
            return Err(Error::config(format!(
                "mig_rs::Builder: output directory `{}` does not exist or is not a directory",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// Compiles every file and generates its code, without writing or printing anything.
    /// [`Output::path`] is where [`Builder::generate`] would write (with `out_dir` unset and
    /// no `OUT_DIR`, relative to the current directory).
    ///
    /// Every file is compiled even if an earlier one failed, so the error reports all of
    /// them.
    pub fn compile(&self) -> Result<Vec<Output>, Error> {
        self.compile_inner()
            .map(|(outs, _)| outs)
            .map_err(|f| f.error)
    }

    /// [`Builder::compile`], also returning the files read and environment consulted by
    /// every input (including failed ones) for rerun tracking.
    fn compile_inner(&self) -> Result<(Vec<Output>, Tracked), Failed> {
        self.check_config()?;
        let out_dir = self.resolve_out_dir().unwrap_or_default();
        let mut outputs = Vec::new();
        let mut tracked = Tracked::default();
        let mut report = String::new();
        let mut failed = Vec::new();
        for input in &self.inputs {
            let name = self.output_name(input)?;
            let comp = driver::compile(&input.path, &self.opts);
            tracked.add(&comp.files_read, &comp.env_read);
            let rendered = comp.render_diagnostics();
            let Some(sub) = comp.ok() else {
                failed.push(input.path.clone());
                report.push_str(&rendered);
                if comp.diags.is_empty() {
                    report.push_str(&format!(
                        "error: {} has errors (no diagnostic was recorded)\n",
                        input.path.display()
                    ));
                }
                continue;
            };
            let copts = CodegenOptions {
                runtime_crate: self.runtime_crate.clone(),
                default_server_methods: self.default_server_methods,
                client: self.client,
                server: self.server,
                source_name: Some(source_name(&input.path)),
            };
            match codegen::generate(sub, &comp.map, &copts) {
                Ok(g) => outputs.push(Output {
                    source: input.path.clone(),
                    path: out_dir.join(format!("{name}.rs")),
                    code: g.combined,
                    files_read: comp.files_read.clone(),
                    env_read: comp.env_read.clone(),
                    warnings: rendered,
                }),
                Err(d) => {
                    failed.push(input.path.clone());
                    report.push_str(&rendered);
                    report.push_str(&codegen_report(&input.path, &d, &comp.map));
                }
            }
        }
        if !failed.is_empty() {
            let list: Vec<String> = failed.iter().map(|p| p.display().to_string()).collect();
            report.push_str(&format!(
                "error: mig-rs: stopping because of errors in {}; no file was written\n",
                list.join(", ")
            ));
            let mut e = Error::new(ErrorKind::Defs, report);
            e.files = failed;
            return Err(e.with_tracked(tracked));
        }
        Ok((outputs, tracked))
    }

    /// Compiles every file, then — only if all of them compiled — writes `<name>.rs` for
    /// each into the output directory, atomically. Returns the paths written, in the order
    /// the files were given. Prints the rerun lines (even when it fails, so a fixed include
    /// is noticed) and warnings as `cargo:warning=` lines.
    pub fn generate(&self) -> Result<Vec<PathBuf>, Error> {
        // Configuration errors come first and need no tracking.
        self.check_config()?;
        let out_dir = self.resolve_out_dir()?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let (outputs, tracked) = match self.compile_inner() {
            Ok(x) => x,
            Err(mut e) => {
                if self.emit_rerun_if_changed {
                    if let Some(t) = e.tracked.take() {
                        t.emit(&mut out);
                    }
                }
                return Err(e.error);
            }
        };
        if self.emit_rerun_if_changed {
            tracked.emit(&mut out);
        }
        if !self.opts.quiet {
            for o in &outputs {
                for line in o.warnings.lines().filter(|l| !l.trim().is_empty()) {
                    let _ = writeln!(out, "cargo:warning={line}");
                }
            }
        }
        drop(out);
        let mut written = Vec::new();
        for o in &outputs {
            let path = out_dir.join(o.path.file_name().unwrap_or_default());
            write_atomically(&path, o.code.as_bytes()).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!(
                        "error: mig-rs: cannot write `{}` (generated from `{}`): {e}\n",
                        path.display(),
                        o.source.display()
                    ),
                )
            })?;
            written.push(path);
        }
        Ok(written)
    }
}

/// An error plus what was read before it happened.
struct Failed {
    error: Error,
    tracked: Option<Tracked>,
}

impl Error {
    fn with_tracked(self, tracked: Tracked) -> Failed {
        Failed {
            error: self,
            tracked: Some(tracked),
        }
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            tracked: None,
        }
    }
}

/// Files and environment variables read, in first-read order, without duplicates.
#[derive(Default)]
struct Tracked {
    files: Vec<PathBuf>,
    env: Vec<String>,
}

impl Tracked {
    fn add(&mut self, files: &[PathBuf], env: &[String]) {
        for f in files {
            if !self.files.contains(f) {
                self.files.push(f.clone());
            }
        }
        for v in env {
            if !self.env.contains(v) {
                self.env.push(v.clone());
            }
        }
    }

    fn emit(&self, out: &mut dyn std::io::Write) {
        for f in &self.files {
            // A path Cargo cannot see (it does not exist) would make it rerun every time;
            // a missing file is an error anyway, which reruns the script regardless.
            if f.exists() {
                let _ = writeln!(out, "cargo:rerun-if-changed={}", f.display());
            }
        }
        for v in &self.env {
            let _ = writeln!(out, "cargo:rerun-if-env-changed={v}");
        }
    }
}

/// The name of the `.defs` file for the generated header comment: the file name only, so
/// output does not depend on where the tree is checked out.
fn source_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn codegen_report(file: &Path, d: &Diagnostics, map: &SourceMap) -> String {
    let mut s = d.render(map);
    if d.is_empty() {
        s.push_str(&format!(
            "error: code generation failed for {} (no details)\n",
            file.display()
        ));
    }
    s
}

fn is_ident_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A `-D`/`-U` macro name: an identifier, optionally (with a value) followed by a parameter
/// list.
fn check_macro_name(name: &str, allow_params: bool) -> Result<(), String> {
    let (base, params) = match name.find('(') {
        Some(i) => (&name[..i], Some(&name[i..])),
        None => (name, None),
    };
    let ident = base
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && is_ident_chars(base);
    if !ident {
        return Err("not a macro name (an identifier is expected)".into());
    }
    match params {
        None => Ok(()),
        Some(_) if !allow_params => {
            Err("a parameter list needs a body: use .define_value(\"F(x)\", \"...\")".into())
        }
        Some(p) if p.ends_with(')') => Ok(()),
        Some(_) => Err("unterminated parameter list".into()),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// `path` is either the old or the new contents. Leaves the file alone if it already holds
/// `bytes`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Compiles `defs` with the include directories `includes` into `$OUT_DIR` with the default
/// options: the one-line form of
/// `Builder::new().files(defs).includes(includes).generate()`.
///
/// ```no_run
/// // build.rs, `fn main()`:
/// mig_rs::compile_defs(&["defs/kv.defs"], &["defs"]).unwrap();
/// ```
pub fn compile_defs<P, I>(defs: &[P], includes: &[I]) -> Result<Vec<PathBuf>, Error>
where
    P: AsRef<Path>,
    I: AsRef<Path>,
{
    Builder::new().files(defs).includes(includes).generate()
}

/// Includes the stubs a build script generated into `$OUT_DIR` with [`Builder`]:
/// `mig_rs::include_defs!("kv")` is `include!(concat!(env!("OUT_DIR"), "/kv.rs"))`. The
/// name is the output name: the `.defs` file's stem, or the name given to
/// [`Builder::file_as`].
///
/// ```ignore
/// pub mod kv {
///     mig_rs::include_defs!("kv");
/// }
/// ```
#[macro_export]
macro_rules! include_defs {
    ($name:literal) => {
        ::core::include!(::core::concat!(::core::env!("OUT_DIR"), "/", $name, ".rs"));
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "mig-rs-builder-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("tmp dir");
        d
    }

    const GOOD: &str = "subsystem kvtest 700;\n\
        type int32_t = MACH_MSG_TYPE_INTEGER_32;\n\
        type mach_port_t = MACH_MSG_TYPE_COPY_SEND;\n\
        routine add(server : mach_port_t; a : int32_t; out b : int32_t);\n";

    #[test]
    fn writes_one_file_per_defs_and_honours_file_as() {
        let d = tmpdir("good");
        fs::write(d.join("a.defs"), GOOD).unwrap();
        let out = d.join("out");
        fs::create_dir(&out).unwrap();
        let written = Builder::new()
            .file(d.join("a.defs"))
            .file_as(d.join("a.defs"), "a_again")
            .out_dir(&out)
            .emit_rerun_if_changed(false)
            .generate()
            .unwrap();
        assert_eq!(written, [out.join("a.rs"), out.join("a_again.rs")]);
        let code = fs::read_to_string(out.join("a.rs")).unwrap();
        assert!(code.starts_with("// @generated"), "{code}");
        assert!(code.contains("pub mod client"), "{code}");
        assert!(code.contains("pub mod server"), "{code}");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn nothing_is_written_when_one_file_fails() {
        let d = tmpdir("bad");
        fs::write(d.join("a.defs"), GOOD).unwrap();
        fs::write(d.join("b.defs"), "subsystem b 1;\nroutine x(p : ;\n").unwrap();
        let out = d.join("out");
        fs::create_dir(&out).unwrap();
        let e = Builder::new()
            .file(d.join("a.defs"))
            .file(d.join("b.defs"))
            .out_dir(&out)
            .emit_rerun_if_changed(false)
            .generate()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Defs);
        assert_eq!(e.failed_files(), [d.join("b.defs")]);
        let text = e.to_string();
        assert!(text.contains("b.defs:2:"), "{text}");
        assert!(text.contains("routine x(p : ;"), "{text}");
        assert!(format!("{e:?}").contains("b.defs:2:"));
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn config_errors_name_their_cause() {
        let d = tmpdir("cfg");
        let cases: Vec<(Builder, &str)> = vec![
            (Builder::new().out_dir(&d).clone(), "no .defs file given"),
            (
                Builder::new()
                    .file("x.defs")
                    .out_dir(&d)
                    .server(false)
                    .default_server_methods(true)
                    .clone(),
                ".default_server_methods(true) needs .server(true)",
            ),
            (
                Builder::new()
                    .file("x.defs")
                    .out_dir(&d)
                    .client(false)
                    .server(false)
                    .clone(),
                "nothing to generate",
            ),
            (
                Builder::new()
                    .file("x.defs")
                    .out_dir(&d)
                    .include(d.join("nope"))
                    .clone(),
                "include directory",
            ),
            (
                Builder::new()
                    .file("x.defs")
                    .out_dir(&d)
                    .define("1x")
                    .clone(),
                ".define(\"1x\")",
            ),
            (
                Builder::new()
                    .file("a/x.defs")
                    .file("b/x.defs")
                    .out_dir(&d)
                    .clone(),
                "would both be written to `x.rs`",
            ),
            (
                Builder::new().file_as("x.defs", "a/b").out_dir(&d).clone(),
                ".file_as(",
            ),
            (
                Builder::new()
                    .file("x.defs")
                    .out_dir(&d)
                    .runtime_crate("not a path")
                    .clone(),
                ".runtime_crate(",
            ),
            (
                Builder::new()
                    .file("x.defs")
                    .out_dir(d.join("nope"))
                    .clone(),
                "output directory",
            ),
        ];
        for (b, want) in cases {
            let e = b.generate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert!(e.to_string().contains(want), "want {want:?} in {e}");
        }
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_file_is_a_defs_error() {
        let d = tmpdir("missing");
        let e = Builder::new()
            .file(d.join("nope.defs"))
            .out_dir(&d)
            .emit_rerun_if_changed(false)
            .generate()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Defs);
        assert!(e.to_string().contains("nope.defs"), "{e}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn unchanged_output_is_not_rewritten() {
        let d = tmpdir("same");
        fs::write(d.join("a.defs"), GOOD).unwrap();
        let mut b = Builder::new();
        b.file(d.join("a.defs"))
            .out_dir(&d)
            .emit_rerun_if_changed(false);
        b.generate().unwrap();
        let m1 = fs::metadata(d.join("a.rs")).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        b.generate().unwrap();
        let m2 = fs::metadata(d.join("a.rs")).unwrap().modified().unwrap();
        assert_eq!(m1, m2);
        let _ = fs::remove_dir_all(&d);
    }
}
