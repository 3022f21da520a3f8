//! The C preprocessor: what GNU MIG gets from `cpp`, built in.
//!
//! [`preprocess`] reads a `.defs` file and everything it includes through a [`FileLoader`]
//! (so it works inside a proc-macro and on in-memory files), and produces
//! [`Preprocessed`] text: GCC-compatible `cpp` output with `# N "file" flags` line
//! markers, plus segments mapping every output token back to its [`Loc`] (file, include
//! chain, macro expansion chain). Problems are located [`Diagnostic`]s.
//!
//! It implements the C preprocessor as GCC does, to the extent `.defs` files (and the C
//! headers they include for constants) need: comments, line splicing, `#include` /
//! `#include_next` / `#pragma once` / include guards, object-like and function-like macros
//! with `#`, `##`, `__VA_ARGS__` and GNU `, ## __VA_ARGS__`, conditionals with full C
//! integer expressions, `#line`, `#error`, `#warning`, `#pragma` pass-through, predefined
//! target macros and `-D`/`-U`/`-imacros`. All work is bounded (include depth, expansion
//! size, output size, expression and argument nesting), nothing recurses per input level
//! without a bound, and no input panics.
//!
//! Alternatively [`PpOptions::external`] runs a real preprocessor command and maps its
//! output through its line markers.
//!
//! Details where GCC's behaviour was followed or a choice had to be made:
//! - Output tokens keep their source columns where they can (the first token of a line is
//!   indented like the source, gaps between neighbouring source tokens are kept); tokens
//!   from different places are separated by one space, so they never paste. Line markers
//!   are GCC's (`# N "file"`, flag 1 entering an include, 2 returning, 3 for files found
//!   in a system directory); up to 8 blank lines are written instead of a marker.
//! - Tokens of a macro's replacement list carry the expansion's [`ExpansionId`] and the
//!   location of their spelling in the `#define`; tokens that came from a macro argument
//!   keep the location (and expansion, if any) where the argument was written.
//! - `, ## __VA_ARGS__` drops the comma only when the variable arguments are omitted (or
//!   empty when they are the only parameter), like GCC in its default GNU mode.
//! - A directive ends the search for the `(` of a function-like macro invocation (GCC);
//!   directives inside the arguments themselves are processed, except `#include`, which
//!   is refused there.
//! - Unterminated `'`/`"` literals are errors in active code and warnings in skipped
//!   groups; NUL bytes are warnings and count as white space (GCC).
//! - `#pragma` lines are copied to the output (GCC's `-E` does too), except `#pragma once`
//!   and `#pragma GCC system_header`; `push_macro`/`pop_macro` are executed and copied.
//!   `#ident`/`#sccs` are dropped; `#assert`/`#unassert` are ignored with a warning.
//!   `_Pragma`, `__has_include` and `__VA_OPT__` are not implemented.
//! - `__DATE__` and `__TIME__` are fixed (`"Jan  1 1970"`, `"00:00:00"`) for reproducible
//!   output. `__GNUC__` is not predefined (mig-rs is not GCC).
//! - Limits (each a located error; the first three stop preprocessing): `#include` depth
//!   200 (GCC's), 20 000 inclusions or 256 MiB of included text, 2 000 000 tokens of
//!   macro expansion, 64 MiB of text created by `#`/`##`, output larger than 64 MiB plus 8
//!   times the input, macro invocations nested 200 deep inside macro arguments, `#if`
//!   expressions nested 256 deep. The recursion that remains (argument pre-expansion,
//!   expression parsing) needs about 0.5 MiB of stack in release builds and 1 MiB in
//!   debug builds at those limits.
//!
//! [`ExpansionId`]: crate::source::ExpansionId
//! [`Loc`]: crate::source::Loc

mod engine;
mod expr;
mod external;
mod lexer;
mod macros;
mod output;
pub(crate) mod token;

#[cfg(test)]
mod tests;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::source::{Preprocessed, SourceMap};
use engine::Engine;
use mig_runtime::wire::Target;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A `-D` or `-U` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Define {
    /// `-D NAME`, `-D NAME=BODY` or `-D 'NAME(PARAMS)=BODY'`: the name (with its parameter
    /// list, if any) and the body (`None` means `1`, as for `-DNAME`).
    Set(String, Option<String>),
    /// `-U NAME`.
    Unset(String),
}

impl Define {
    /// Parses the argument of `-D` (`FOO`, `FOO=bar`, `F(x)=x`).
    pub fn from_d(arg: &str) -> Define {
        match arg.split_once('=') {
            Some((name, body)) => Define::Set(name.to_string(), Some(body.to_string())),
            None => Define::Set(arg.to_string(), None),
        }
    }

    /// The option as a `cpp` flag (`-DFOO=bar`, `-UFOO`).
    pub fn to_flag(&self) -> String {
        match self {
            Define::Set(name, Some(body)) => format!("-D{name}={body}"),
            Define::Set(name, None) => format!("-D{name}"),
            Define::Unset(name) => format!("-U{name}"),
        }
    }

    /// The directive this option amounts to.
    fn directive(&self) -> String {
        let clean = |s: &str| s.replace(['\n', '\r'], " ");
        match self {
            Define::Set(name, Some(body)) => format!("#define {} {}\n", clean(name), clean(body)),
            Define::Set(name, None) => format!("#define {} 1\n", clean(name)),
            Define::Unset(name) => format!("#undef {}\n", clean(name)),
        }
    }
}

/// Preprocessor options (the `cpp` flags GNU MIG passes through).
#[derive(Clone, Debug, Default)]
pub struct PpOptions {
    /// `-I`: searched for `#include "…"` after the including file's directory, and for
    /// `#include <…>`.
    pub include_dirs: Vec<PathBuf>,
    /// `-isystem`: searched after the `-I` directories.
    pub system_dirs: Vec<PathBuf>,
    /// `-D` / `-U`, in command-line order (applied after the predefined macros).
    pub defines: Vec<Define>,
    /// `-imacros FILE`: read for its macro definitions only, after `-D`/`-U`.
    pub imacros: Vec<PathBuf>,
    /// Selects the predefined macros (`__x86_64__`, `__LP64__`, … or `__i386__`, …).
    pub target: Target,
    /// Run this command instead (split on white space, e.g. `gcc -E -x c`), with the
    /// `-D`/`-U`/`-I`/`-isystem`/`-imacros` flags and the file appended.
    pub external: Option<String>,
}

/// How the preprocessor reads files. The front end does no other I/O.
pub trait FileLoader {
    fn load(&mut self, path: &Path) -> std::io::Result<Vec<u8>>;
    fn exists(&mut self, path: &Path) -> bool;
}

/// Reads files with `std::fs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

impl FileLoader for FsLoader {
    fn load(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn exists(&mut self, path: &Path) -> bool {
        path.is_file()
    }
}

/// Files in memory (tests, fuzzing, proc-macros with embedded sources). Paths are matched
/// exactly as the preprocessor forms them (`dir.join(name)`).
#[derive(Clone, Debug, Default)]
pub struct MemLoader(pub HashMap<PathBuf, Vec<u8>>);

impl MemLoader {
    pub fn new() -> MemLoader {
        MemLoader::default()
    }
    /// Adds (or replaces) a file.
    pub fn insert(
        &mut self,
        path: impl Into<PathBuf>,
        contents: impl Into<Vec<u8>>,
    ) -> &mut MemLoader {
        self.0.insert(path.into(), contents.into());
        self
    }
    /// Builder form of [`MemLoader::insert`].
    pub fn with(mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> MemLoader {
        self.insert(path, contents);
        self
    }
}

impl FileLoader for MemLoader {
    fn load(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.0.get(path).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")
        })
    }
    fn exists(&mut self, path: &Path) -> bool {
        self.0.contains_key(path)
    }
}

/// The macros every run predefines for `target` (as the Hurd's GCC does, minus the
/// non-reserved `unix`/`i386`/`linux` that would rewrite identifiers in .defs files).
pub fn predefined_macros(target: Target) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("__GNU__", "1"),
        ("__gnu_hurd__", "1"),
        ("__MACH__", "1"),
        ("__unix__", "1"),
        ("__unix", "1"),
        ("__ELF__", "1"),
        ("__STDC__", "1"),
        ("__STDC_VERSION__", "201710L"),
        ("__STDC_HOSTED__", "1"),
        ("__CHAR_BIT__", "8"),
        ("__SIZEOF_SHORT__", "2"),
        ("__SIZEOF_INT__", "4"),
        ("__SIZEOF_LONG_LONG__", "8"),
        ("__SCHAR_MAX__", "0x7f"),
        ("__SHRT_MAX__", "0x7fff"),
        ("__INT_MAX__", "0x7fffffff"),
        ("__LONG_LONG_MAX__", "0x7fffffffffffffffLL"),
        ("__ORDER_LITTLE_ENDIAN__", "1234"),
        ("__ORDER_BIG_ENDIAN__", "4321"),
        ("__ORDER_PDP_ENDIAN__", "3412"),
        ("__BYTE_ORDER__", "__ORDER_LITTLE_ENDIAN__"),
    ];
    match target {
        Target::X86_64 => v.extend([
            ("__x86_64__", "1"),
            ("__x86_64", "1"),
            ("__amd64__", "1"),
            ("__amd64", "1"),
            ("__LP64__", "1"),
            ("_LP64", "1"),
            ("__SIZEOF_POINTER__", "8"),
            ("__SIZEOF_LONG__", "8"),
            ("__LONG_MAX__", "0x7fffffffffffffffL"),
        ]),
        Target::I386 => v.extend([
            ("__i386__", "1"),
            ("__i386", "1"),
            ("__ILP32__", "1"),
            ("_ILP32", "1"),
            ("__SIZEOF_POINTER__", "4"),
            ("__SIZEOF_LONG__", "4"),
            ("__LONG_MAX__", "0x7fffffffL"),
        ]),
    }
    v
}

/// Preprocesses `main` (and what it includes). Never panics; problems go to `diags`.
pub fn preprocess(
    main: &Path,
    opts: &PpOptions,
    loader: &mut dyn FileLoader,
    map: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Preprocessed {
    if let Some(cmd) = &opts.external {
        return external::run(cmd, main, opts, loader, map, diags);
    }
    let mut e = Engine::new(opts, loader, map, diags);
    e.main_name = main.to_string_lossy().into_owned().into();
    let main_id = match e.load(main) {
        Ok(id) => id,
        Err(msg) => {
            e.diags.push(Diagnostic::error(format!(
                "cannot read {}: {msg}",
                main.display()
            )));
            let mut files_read = std::mem::take(&mut e.files_read);
            if !files_read.iter().any(|p| p == main) {
                files_read.push(main.to_path_buf());
            }
            return Preprocessed {
                files_read,
                ..Preprocessed::default()
            };
        }
    };
    // The output is usually smaller than the main file (comments and directives go, an
    // included file of types comes in): reserve that much rather than grow by copying.
    let main_len = e.map.file(main_id).text.len();
    e.out.text.reserve(main_len);
    e.out.segments.reserve(main_len / 48);
    // Predefined macros, then -D/-U, then -imacros: all with output discarded.
    e.define_builtins();
    let mut text = String::new();
    for (n, v) in predefined_macros(opts.target) {
        text.push_str(&format!("#define {n} {v}\n"));
    }
    let b = e.add_pseudo_file("<built-in>", text);
    e.push_frame(b, None, PathBuf::new(), None, false);
    e.run_frames();
    if !opts.defines.is_empty() {
        let text: String = opts.defines.iter().map(Define::directive).collect();
        let c = e.add_pseudo_file("<command-line>", text);
        e.push_frame(c, None, PathBuf::new(), None, false);
        e.run_frames();
    }
    for m in &opts.imacros {
        if e.fatal {
            break;
        }
        let found = if e.loader.exists(m) {
            Some(m.clone())
        } else if m.is_relative() {
            opts.include_dirs
                .iter()
                .chain(&opts.system_dirs)
                .map(|d| d.join(m))
                .find(|p| e.loader.exists(p))
        } else {
            None
        };
        let loaded = found
            .ok_or_else(|| "No such file or directory".to_string())
            .and_then(|p| {
                let id = e.load(&p)?;
                Ok((p, id))
            });
        match loaded {
            Ok((p, id)) => {
                let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                e.push_frame(id, None, dir, None, false);
                e.run_frames();
            }
            Err(msg) => e.diags.push(Diagnostic::error(format!(
                "-imacros {}: {msg}",
                m.display()
            ))),
        }
    }
    if !e.fatal {
        e.discard = false;
        let dir = main.parent().map(Path::to_path_buf).unwrap_or_default();
        e.push_frame(main_id, None, dir, None, false);
        e.run_frames();
    }
    let mut out = std::mem::take(&mut e.out);
    if !out.text.is_empty() && !out.text.ends_with('\n') {
        out.newline();
    }
    Preprocessed {
        text: out.text,
        segments: out.segments,
        files_read: std::mem::take(&mut e.files_read),
        env_read: Vec::new(),
    }
}
