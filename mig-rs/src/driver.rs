//! The pipeline in one call: preprocess → lex → parse → check.
//!
//! Every entry point (CLI, build-script [`crate::Builder`], the attribute macro) goes through
//! [`compile`]; they differ only in how they render diagnostics and where they write.

use crate::check::{check_owned, CheckOptions};
use crate::diagnostics::Diagnostics;
use crate::ir::Subsystem;
use crate::preprocess::{preprocess, Define, FileLoader, FsLoader, PpOptions};
use crate::source::SourceMap;
use mig_runtime::wire::Target;
use std::path::{Path, PathBuf};

/// Everything that changes how a `.defs` file is read and understood.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub target: Target,
    /// `-I`.
    pub include_dirs: Vec<PathBuf>,
    /// `-isystem`.
    pub system_dirs: Vec<PathBuf>,
    /// `-D`/`-U` in order.
    pub defines: Vec<Define>,
    /// `-imacros`.
    pub imacros: Vec<PathBuf>,
    /// Run this preprocessor command instead of the built-in one (GNU MIG's `CPP`).
    pub external_cpp: Option<String>,
    /// `-prefix`.
    pub routine_prefix: String,
    /// `-q`: no warnings.
    pub quiet: bool,
}

impl Options {
    fn pp(&self) -> PpOptions {
        PpOptions {
            include_dirs: self.include_dirs.clone(),
            system_dirs: self.system_dirs.clone(),
            defines: self.defines.clone(),
            imacros: self.imacros.clone(),
            target: self.target,
            external: self.external_cpp.clone(),
        }
    }
}

/// The result of compiling one `.defs` file.
#[derive(Debug)]
pub struct Compilation {
    pub map: SourceMap,
    pub diags: Diagnostics,
    /// The checked subsystem (present even when there are errors, if a subsystem was
    /// declared; never generate from it when [`Compilation::has_errors`]).
    pub subsystem: Option<Subsystem>,
    /// Every file the preprocessor read.
    pub files_read: Vec<PathBuf>,
    /// Environment variables the front end consulted.
    pub env_read: Vec<String>,
}

impl Compilation {
    pub fn has_errors(&self) -> bool {
        self.diags.has_errors()
    }
    /// All diagnostics rendered as text (rustc style, no colors).
    pub fn render_diagnostics(&self) -> String {
        self.diags.render(&self.map)
    }
    /// The subsystem, if it compiled without errors.
    pub fn ok(&self) -> Option<&Subsystem> {
        if self.has_errors() {
            None
        } else {
            self.subsystem.as_ref()
        }
    }
}

/// Compiles `path` reading files through `loader`.
///
/// Each stage's input is freed as soon as the stage is done with it (the preprocessed text
/// and tokens after parsing, each statement of the syntax tree once checked): the next
/// stage then reuses that memory instead of touching new pages, and for a process that
/// compiles one file and exits (the CLI), page faults cost more than these frees.
pub fn compile_with(path: &Path, opts: &Options, loader: &mut dyn FileLoader) -> Compilation {
    let mut map = SourceMap::new();
    let mut diags = Diagnostics::new();
    diags.quiet = opts.quiet;
    let mut pp = preprocess(path, &opts.pp(), loader, &mut map, &mut diags);
    let files_read = std::mem::take(&mut pp.files_read);
    let env_read = std::mem::take(&mut pp.env_read);
    let mut subsystem = None;
    // A preprocessor error (missing include…) makes the rest noise; stop there.
    if !diags.has_errors() {
        let tokens = crate::lex::lex(&pp, &mut map, &mut diags);
        let file = crate::parse::parse(&tokens, pp.end_origin(), &mut diags);
        drop(tokens);
        drop(pp);
        let copts = CheckOptions {
            target: opts.target,
            routine_prefix: opts.routine_prefix.clone(),
        };
        subsystem = check_owned(file, &copts, &mut diags);
    }
    Compilation {
        map,
        diags,
        subsystem,
        files_read,
        env_read,
    }
}

/// Compiles `path` from the file system.
pub fn compile(path: &Path, opts: &Options) -> Compilation {
    compile_with(path, opts, &mut FsLoader)
}
