//! The `mig-rs` command line: GNU MIG's options (mig-language.md §7), mapped onto the
//! front end ([`crate::driver`]) and code generation ([`crate::codegen`]).
//!
//! [`run`] is the whole program (the binary's `main` only calls it), so tests can run it
//! in-process. Behaviour worth knowing:
//!
//! * Every `.defs` file on the command line is compiled, in order, and all diagnostics are
//!   printed. If any file has an error, **nothing is written** and the exit status is 1.
//!   Otherwise every output is first written to a temporary file next to its destination
//!   and renamed into place at the end, so no half-written file is ever left behind.
//! * Preprocessor flags (`-D -U -I -isystem -imacros`) may appear anywhere and apply to
//!   every file. Other `-X` flags would go to `cpp` in GNU MIG; mig-rs's built-in
//!   preprocessor does not take them, so they are rejected with an error.
//! * `-sheader`, `-iheader`, `-s`, `-subrprefix` and `-i` are accepted for compatibility and
//!   have no effect on Rust output (a warning says so).

use crate::codegen::{self, CodegenOptions};
use crate::diagnostics::Diagnostics;
use crate::driver::{self, Compilation, Options};
use crate::ir::{ArgKind, Complexity, MessageLayout, Routine, Subsystem};
use crate::preprocess::Define;
use mig_runtime::wire::Target;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The GNU MIG version whose behaviour mig-rs reproduces.
pub const GNU_MIG_VERSION: &str = "1.8+git20231217";

/// The `--help` text.
pub fn help_text() -> String {
    String::from(
        "\
Usage: mig-rs [OPTION]... FILE.defs...

mig-rs is a Mach Interface Generator for GNU Mach: it reads MIG interface
definitions (.defs) with GNU MIG's language and command line and generates Rust
client and server stubs whose messages are byte-identical to GNU MIG's.

Each FILE.defs is preprocessed (built-in C preprocessor), parsed and checked, in
order. If any file has an error, the exit status is 1 and no file is written.

Output files (written only when every input is free of errors):
  -user FILE      write the client stubs (Rust: one function per routine) to FILE
                  [default: <subsystem>_user.rs]
  -server FILE    write the server side (Rust: a trait with one method per routine
                  and the demux function) to FILE [default: <subsystem>_server.rs]
  -header FILE    write the shared definitions (Rust: subsystem and message id
                  constants, type aliases) to FILE [default: <subsystem>.rs]
  -list FILE      write GNU MIG's routine list to FILE, one line per routine:
                  `subsystem base name number msgid replyid' (replyid 0 for a
                  simpleroutine) [default: none]
  -n              do not write the default outputs; write only the files named
                  with -user, -server, -header and -list
  -MD             also write a Make dependency file `<base>-mig.d' in the current
                  directory (base = FILE.defs without directory and extension):
                  the written outputs depend on every file the preprocessor read
                  A FILE of /dev/null means \"do not write this output\". Default
                  names are relative to the current directory.

Messages:
  -q              suppress warnings
  -Q              print warnings [default]
  -v              verbose: print the checked types and routines (with their
                  message layouts) on standard output
  -V              not verbose [default]

Names:
  -prefix P       prepend P to user routine names, server routine names and the
                  demux function name (as GNU MIG does)

Preprocessor (built in; these may appear anywhere and apply to every file):
  -D NAME, -DNAME, -D NAME=VALUE, -DNAME=VALUE
                  define a macro (a plain -DNAME defines it as 1)
  -U NAME, -UNAME undefine a macro
  -I DIR, -IDIR   add DIR to the #include search path
  -isystem DIR    add DIR to the search path, after the -I directories
  -imacros FILE   read FILE's macro definitions before the input
  -cc PROG        run PROG (e.g. `gcc -E -x c') as the preprocessor instead of the
                  built-in one; the -D/-U/-I/-isystem/-imacros flags and the file
                  are appended. The environment variable CPP does the same
                  (-cc wins). The built-in preprocessor predefines the target's
                  macros (__x86_64__, __LP64__ or __i386__; __GNU__, __MACH__).
  Other options starting with `-' are passed to cpp by GNU MIG; mig-rs rejects
  them with an error.

Target:
  --target T      the wire layout to generate: x86_64 (default; GNU Mach x86_64
                  with 64-bit userland, Debian 13's layout) or i386

Accepted for compatibility, no effect on Rust output (a warning is printed):
  -sheader FILE   GNU MIG's server header (the Rust server module is complete)
  -iheader FILE   GNU MIG's KernelServer internal header
  -s              GNU MIG's symbol table in the server C file (-S: none, default)
  -subrprefix P   GNU MIG's prefix for mach_msg and the mig_* C runtime calls
                  (the Rust stubs call mig_runtime through a Transport)
  -i PREFIX       GNU MIG's one user C file per routine (Rust client stubs are
                  already one function per routine in one module)
  -r              no-op in GNU MIG too

  --help          print this help and exit
  --version       print the version and exit

Exit status: 0 on success, 1 if there was any error (bad option, unreadable
file, error in a .defs file, failed code generation or write).
",
    )
}

/// The `--version` text.
pub fn version_text() -> String {
    format!(
        "mig-rs {} (GNU MIG {GNU_MIG_VERSION} compatible)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// What to do with one kind of output.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OutSpec {
    /// Not given on the command line.
    Unset,
    /// `/dev/null`: do not write.
    Null,
    Path(PathBuf),
}

impl OutSpec {
    fn from_arg(arg: &OsStr) -> OutSpec {
        if arg == "/dev/null" {
            OutSpec::Null
        } else {
            OutSpec::Path(PathBuf::from(arg))
        }
    }
    /// The path to write, given `-n` and the default name.
    fn resolve(&self, no_defaults: bool, default: impl FnOnce() -> PathBuf) -> Option<PathBuf> {
        match self {
            OutSpec::Path(p) => Some(p.clone()),
            OutSpec::Null => None,
            OutSpec::Unset if no_defaults => None,
            OutSpec::Unset => Some(default()),
        }
    }
}

/// The parsed command line.
#[derive(Clone, Debug)]
struct Cli {
    opts: Options,
    files: Vec<PathBuf>,
    user: OutSpec,
    server: OutSpec,
    header: OutSpec,
    list: OutSpec,
    no_defaults: bool,
    depfile: bool,
    verbose: bool,
    /// Warnings about options without effect (printed unless `-q`).
    warnings: Vec<String>,
    cc: Option<String>,
}

/// Parsing stopped early: print this and exit with the status.
enum Stop {
    Help,
    Version,
    Error(String),
}

fn parse_args(args: Vec<OsString>) -> Result<Cli, Stop> {
    let mut cli = Cli {
        opts: Options::default(),
        files: Vec::new(),
        user: OutSpec::Unset,
        server: OutSpec::Unset,
        header: OutSpec::Unset,
        list: OutSpec::Unset,
        no_defaults: false,
        depfile: false,
        verbose: false,
        warnings: Vec::new(),
        cc: None,
    };
    let mut it = args.into_iter();
    let utf8 = |a: &OsStr, what: &str| -> Result<String, Stop> {
        a.to_str().map(str::to_string).ok_or_else(|| {
            Stop::Error(format!(
                "{what} is not valid UTF-8: {}",
                a.to_string_lossy()
            ))
        })
    };
    while let Some(arg) = it.next() {
        let Some(s) = arg.to_str() else {
            // Not UTF-8: only a file name can be that.
            if arg.as_encoded_bytes().first() == Some(&b'-') {
                return Err(Stop::Error(format!(
                    "unknown option `{}'",
                    arg.to_string_lossy()
                )));
            }
            cli.files.push(PathBuf::from(arg));
            continue;
        };
        let s = s.to_string();
        let mut value = |name: &str| -> Result<OsString, Stop> {
            it.next()
                .ok_or_else(|| Stop::Error(format!("option `{name}' needs an argument")))
        };
        match s.as_str() {
            "--help" | "-h" => return Err(Stop::Help),
            "--version" => return Err(Stop::Version),
            "-q" => cli.opts.quiet = true,
            "-Q" => cli.opts.quiet = false,
            "-v" => cli.verbose = true,
            "-V" => cli.verbose = false,
            "-n" => cli.no_defaults = true,
            "-r" | "-S" => {}
            "-s" => cli.warnings.push(
                "-s: not applicable to Rust output: there is no symbol table to generate".into(),
            ),
            "-R" => return Err(Stop::Error(
                "the option `-R' cannot be used anymore, use the rpc calls (`-r', default) instead"
                    .into(),
            )),
            "-t" | "-T" => return Err(Stop::Error(format!("unknown flag: `{s}'"))),
            "-MD" => cli.depfile = true,
            "-user" => cli.user = OutSpec::from_arg(&value(&s)?),
            "-server" => cli.server = OutSpec::from_arg(&value(&s)?),
            "-header" => cli.header = OutSpec::from_arg(&value(&s)?),
            "-list" => cli.list = OutSpec::from_arg(&value(&s)?),
            "-sheader" | "-iheader" => {
                let v = value(&s)?;
                cli.warnings.push(format!(
                    "{s} {}: not applicable to Rust output: the server module is self-contained, \
                     nothing is written",
                    v.to_string_lossy()
                ));
            }
            "-i" => {
                let v = value(&s)?;
                cli.warnings.push(format!(
                    "-i {}: not applicable to Rust output: client stubs are already one function \
                     per routine; writing one client file as usual",
                    v.to_string_lossy()
                ));
            }
            "-prefix" => cli.opts.routine_prefix = utf8(&value(&s)?, "-prefix")?,
            "-subrprefix" => {
                let v = value(&s)?;
                cli.warnings.push(format!(
                    "-subrprefix {}: not applicable to Rust output: stubs call mig_runtime, not \
                     mach_msg and the mig_* C functions",
                    v.to_string_lossy()
                ));
            }
            "-cc" => cli.cc = Some(utf8(&value(&s)?, "-cc")?),
            "-migcom" => {
                return Err(Stop::Error(
                    "-migcom is not supported: mig-rs has no separate migcom program".into(),
                ))
            }
            "--target" => {
                let v = utf8(&value(&s)?, "--target")?;
                cli.opts.target = parse_target(&v)?;
            }
            "-imacros" => cli.opts.imacros.push(PathBuf::from(value(&s)?)),
            "-isystem" => cli.opts.system_dirs.push(PathBuf::from(value(&s)?)),
            "-I" => cli.opts.include_dirs.push(PathBuf::from(value(&s)?)),
            "-D" => {
                let v = utf8(&value(&s)?, "-D")?;
                cli.opts.defines.push(define(&v)?);
            }
            "-U" => {
                let v = utf8(&value(&s)?, "-U")?;
                cli.opts.defines.push(undef(&v)?);
            }
            "-" => return Err(Stop::Error(
                "reading the .defs file from standard input (`-') is not supported; name the file"
                    .into(),
            )),
            _ => {
                if let Some(t) = s.strip_prefix("--target=") {
                    cli.opts.target = parse_target(t)?;
                } else if let Some(v) = s.strip_prefix("-D").filter(|v| !v.is_empty()) {
                    cli.opts.defines.push(define(v)?);
                } else if let Some(v) = s.strip_prefix("-U").filter(|v| !v.is_empty()) {
                    cli.opts.defines.push(undef(v)?);
                } else if let Some(v) = s.strip_prefix("-I").filter(|v| !v.is_empty()) {
                    cli.opts.include_dirs.push(PathBuf::from(v));
                } else if let Some(v) = s.strip_prefix("-isystem").filter(|v| !v.is_empty()) {
                    cli.opts.system_dirs.push(PathBuf::from(v));
                } else if let Some(v) = s.strip_prefix("-imacros").filter(|v| !v.is_empty()) {
                    cli.opts.imacros.push(PathBuf::from(v));
                } else if s.starts_with('-') {
                    return Err(Stop::Error(format!(
                        "unsupported option `{s}': GNU MIG passes unknown options to the C \
                         preprocessor, but mig-rs's built-in preprocessor only takes -D, -U, -I, \
                         -isystem and -imacros (see --help)"
                    )));
                } else {
                    cli.files.push(PathBuf::from(arg));
                }
            }
        }
    }
    if cli.files.is_empty() {
        return Err(Stop::Error(
            "no .defs file given (try `mig-rs --help')".into(),
        ));
    }
    Ok(cli)
}

fn parse_target(s: &str) -> Result<Target, Stop> {
    match s {
        "x86_64" => Ok(Target::X86_64),
        "i386" => Ok(Target::I386),
        _ => Err(Stop::Error(format!(
            "unknown target `{s}': use x86_64 or i386"
        ))),
    }
}

fn check_macro_name(name: &str, opt: &str, whole: &str) -> Result<(), Stop> {
    let base = name.split('(').next().unwrap_or("");
    let ok = base
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Stop::Error(format!(
            "{opt}{whole}: `{base}' is not a valid macro name"
        )))
    }
}

fn define(v: &str) -> Result<Define, Stop> {
    let d = Define::from_d(v);
    if let Define::Set(name, _) = &d {
        check_macro_name(name, "-D", v)?;
    }
    Ok(d)
}

fn undef(v: &str) -> Result<Define, Stop> {
    check_macro_name(v, "-U", v)?;
    Ok(Define::Unset(v.to_string()))
}

/// One output to write: where, and what.
struct Output {
    path: PathBuf,
    contents: Vec<u8>,
}

/// Runs `mig-rs` with `args` (without the program name), printing to the process's standard
/// output and error. Returns the exit status.
pub fn run(args: Vec<OsString>) -> i32 {
    let cpp = std::env::var("CPP").ok().filter(|s| !s.trim().is_empty());
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_impl(
        args,
        cpp,
        &mut stdout.lock(),
        &mut stderr.lock(),
        Teardown::LeaveToExit,
    )
}

/// [`run`] with explicit streams and `CPP` value (for tests).
pub fn run_with(
    args: Vec<OsString>,
    env_cpp: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    run_impl(args, env_cpp, out, err, Teardown::Free)
}

/// What to do with a compilation's data once its outputs are made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Teardown {
    /// Free it (in-process callers).
    Free,
    /// Leave it to the process's exit: [`run`] is the whole `mig-rs` process, which exits
    /// right after it returns, and the thousands of `free` calls for the source map, the
    /// types and the routines would only cost time (a few percent of a run). Only data is
    /// leaked: files are closed and outputs written before.
    LeaveToExit,
}

fn run_impl(
    args: Vec<OsString>,
    env_cpp: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    teardown: Teardown,
) -> i32 {
    let mut cli = match parse_args(args) {
        Ok(c) => c,
        Err(Stop::Help) => {
            let _ = out.write_all(help_text().as_bytes());
            return 0;
        }
        Err(Stop::Version) => {
            let _ = out.write_all(version_text().as_bytes());
            return 0;
        }
        Err(Stop::Error(msg)) => {
            let _ = writeln!(err, "mig-rs: error: {msg}");
            return 1;
        }
    };
    cli.opts.external_cpp = cli.cc.clone().or(env_cpp);
    if !cli.opts.quiet {
        for w in &cli.warnings {
            let _ = writeln!(err, "mig-rs: warning: {w}");
        }
    }

    let mut outputs: Vec<Output> = Vec::new();
    let mut failed = false;
    for file in &cli.files {
        let comp = driver::compile(file, &cli.opts);
        let text = comp.render_diagnostics();
        if !text.is_empty() {
            let _ = err.write_all(text.as_bytes());
        }
        if let Some(sub) = comp.ok() {
            if cli.verbose {
                let _ = out.write_all(describe(sub).as_bytes());
            }
            match outputs_for(&cli, file, &comp, sub, err) {
                Ok(mut o) => outputs.append(&mut o),
                Err(msg) => {
                    let _ = err.write_all(msg.as_bytes());
                    failed = true;
                }
            }
        } else {
            failed = true;
        }
        if teardown == Teardown::LeaveToExit {
            std::mem::forget(comp);
        }
    }
    if failed {
        let _ = writeln!(
            err,
            "mig-rs: error: stopping because of the errors above; no file was written"
        );
        return 1;
    }
    let status = match write_all_atomically(&outputs) {
        Ok(()) => 0,
        Err(msg) => {
            let _ = writeln!(err, "mig-rs: error: {msg}");
            1
        }
    };
    if teardown == Teardown::LeaveToExit {
        std::mem::forget(outputs);
    }
    status
}

/// The outputs of one successfully compiled file.
fn outputs_for(
    cli: &Cli,
    file: &Path,
    comp: &Compilation,
    sub: &Subsystem,
    err: &mut dyn Write,
) -> Result<Vec<Output>, String> {
    let name = &sub.name;
    let user = cli
        .user
        .resolve(cli.no_defaults, || PathBuf::from(format!("{name}_user.rs")));
    let server = cli.server.resolve(cli.no_defaults, || {
        PathBuf::from(format!("{name}_server.rs"))
    });
    let header = cli
        .header
        .resolve(cli.no_defaults, || PathBuf::from(format!("{name}.rs")));
    let list = cli.list.resolve(true, PathBuf::new);

    let mut outs = Vec::new();
    if let Some(p) = list {
        outs.push(Output {
            path: p,
            contents: sub.routine_list().into_bytes(),
        });
    }
    if user.is_some() || server.is_some() || header.is_some() {
        let copts = CodegenOptions {
            client: user.is_some(),
            server: server.is_some(),
            ..CodegenOptions::default()
        };
        let generated = match codegen::generate(sub, &comp.map, &copts) {
            Ok(g) => g,
            Err(d) => return Err(codegen_failure(file, &d, comp)),
        };
        for (p, text) in [
            (header, generated.types),
            (user, generated.client),
            (server, generated.server),
        ] {
            if let Some(p) = p {
                outs.push(Output {
                    path: p,
                    contents: text.into_bytes(),
                });
            }
        }
    }
    if cli.depfile {
        if outs.is_empty() {
            if !cli.opts.quiet {
                let _ = writeln!(
                    err,
                    "mig-rs: warning: -MD: no output file for {}, so no dependency file is written",
                    file.display()
                );
            }
            return Ok(outs);
        }
        let base = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mig".into());
        let targets: Vec<&Path> = outs.iter().map(|o| o.path.as_path()).collect();
        let dep = depfile(&targets, &comp.files_read);
        outs.push(Output {
            path: PathBuf::from(format!("{base}-mig.d")),
            contents: dep.into_bytes(),
        });
    }
    Ok(outs)
}

fn codegen_failure(file: &Path, d: &Diagnostics, comp: &Compilation) -> String {
    let mut s = format!(
        "mig-rs: error: code generation failed for {}",
        file.display()
    );
    if d.is_empty() {
        s.push_str(" (the code generator reported no details)\n");
    } else {
        s.push('\n');
        s.push_str(&d.render(&comp.map));
    }
    s
}

/// Escapes a path for a Make rule.
fn make_escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' | '\t' | '#' | ':' => {
                out.push('\\');
                out.push(c);
            }
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

/// A Make dependency rule: every target depends on every file read.
pub fn depfile(targets: &[&Path], prerequisites: &[PathBuf]) -> String {
    let mut s = targets
        .iter()
        .map(|t| make_escape(t))
        .collect::<Vec<_>>()
        .join(" ");
    s.push(':');
    for p in prerequisites {
        s.push_str(" \\\n  ");
        s.push_str(&make_escape(p));
    }
    s.push('\n');
    s
}

/// Where and how one output is written.
enum Plan<'a> {
    /// A regular file (or a new one): write `tmp`, then rename it to `dest` (the target of
    /// a symbolic link, so the link is kept).
    Rename { tmp: PathBuf, dest: PathBuf },
    /// An existing regular file that already holds exactly these bytes (opened as `file`):
    /// only its modification time is set, so Make still sees a fresh output. If that is
    /// not allowed (a file owned by someone else), it is replaced like [`Plan::Rename`].
    Unchanged { file: std::fs::File, dest: PathBuf },
    /// An existing special file (`/dev/stdout`, a FIFO, a terminal): written directly, last.
    Direct { dest: &'a Path },
}

/// The temporary file `dest` is first written to: in the same directory (so the rename is
/// atomic), hidden, unique to this process and output.
fn tmp_path(dest: &Path, n: usize) -> PathBuf {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fname = dest
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    dir.join(format!(".{fname}.mig-rs-{}-{n}.tmp", std::process::id()))
}

/// `dest` (a regular file of `len` bytes) opened, if it holds exactly `contents`.
fn open_if_same(dest: &Path, len: u64, contents: &[u8]) -> Option<std::fs::File> {
    use std::io::Read;
    if len != contents.len() as u64 {
        return None;
    }
    let f = std::fs::File::open(dest).ok()?;
    let mut old = Vec::with_capacity(contents.len() + 1);
    // One byte more than expected, to notice a file that grew since the stat.
    (&f).take(contents.len() as u64 + 1)
        .read_to_end(&mut old)
        .ok()?;
    (old == contents).then_some(f)
}

/// Writes every output to a temporary file next to it, then renames them all into place, so
/// that an error leaves no half-written file behind. An output whose file already holds the
/// same bytes is not rewritten, only its modification time is updated (at the same point):
/// as atomic, and much cheaper than replacing the file (no new inode, no write-back and
/// block freeing of the old one). Existing special files (`/dev/stdout`, FIFOs) cannot be
/// replaced atomically; they are written directly after everything else succeeded.
fn write_all_atomically(outputs: &[Output]) -> Result<(), String> {
    let mut plans: Vec<(Plan<'_>, &Output)> = Vec::with_capacity(outputs.len());
    let cleanup = |plans: &[(Plan<'_>, &Output)]| {
        for (p, _) in plans {
            if let Plan::Rename { tmp, .. } = p {
                let _ = std::fs::remove_file(tmp);
            }
        }
    };
    for (n, o) in outputs.iter().enumerate() {
        // Follow a symbolic link to what it names, so the link itself survives.
        let (dest, meta) = match std::fs::symlink_metadata(&o.path) {
            Ok(m) if m.file_type().is_symlink() => {
                let dest = std::fs::canonicalize(&o.path).unwrap_or_else(|_| o.path.clone());
                let meta = std::fs::metadata(&dest).ok();
                (dest, meta)
            }
            m => (o.path.clone(), m.ok()),
        };
        if let Some(m) = &meta {
            if !m.is_file() {
                plans.push((Plan::Direct { dest: &o.path }, o));
                continue;
            }
            // (Unless an earlier output goes to the same file: the last one must win.)
            let earlier = plans.iter().any(|(p, _)| match p {
                Plan::Rename { dest: d, .. } | Plan::Unchanged { dest: d, .. } => *d == dest,
                Plan::Direct { .. } => false,
            });
            if !earlier {
                if let Some(file) = open_if_same(&dest, m.len(), &o.contents) {
                    plans.push((Plan::Unchanged { file, dest }, o));
                    continue;
                }
            }
        }
        let tmp = tmp_path(&dest, n);
        if let Err(e) = std::fs::write(&tmp, &o.contents) {
            cleanup(&plans);
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "cannot write {}: {e}; no file was written",
                o.path.display()
            ));
        }
        plans.push((Plan::Rename { tmp, dest }, o));
    }
    let mut done: Vec<String> = Vec::new();
    for (i, (plan, o)) in plans.iter().enumerate() {
        let result = match plan {
            Plan::Rename { tmp, dest } => std::fs::rename(tmp, dest),
            Plan::Unchanged { file, dest } => {
                match file.set_modified(std::time::SystemTime::now()) {
                    Ok(()) => Ok(()),
                    Err(_) => {
                        let tmp = tmp_path(dest, i);
                        std::fs::write(&tmp, &o.contents)
                            .and_then(|()| std::fs::rename(&tmp, dest))
                            .inspect_err(|_| {
                                let _ = std::fs::remove_file(&tmp);
                            })
                    }
                }
            }
            Plan::Direct { .. } => continue,
        };
        if let Err(e) = result {
            cleanup(&plans[i..]);
            return Err(format!(
                "cannot create {}: {e}; already written: {}",
                o.path.display(),
                if done.is_empty() {
                    "nothing".to_string()
                } else {
                    done.join(", ")
                }
            ));
        }
        done.push(o.path.display().to_string());
    }
    for (plan, o) in &plans {
        if let Plan::Direct { dest } = plan {
            if let Err(e) = std::fs::write(dest, &o.contents) {
                return Err(format!("cannot write {}: {e}", dest.display()));
            }
        }
    }
    Ok(())
}

fn complexity(c: Complexity) -> &'static str {
    match (c.fixed, c.simple) {
        (true, true) => "simple",
        (true, false) => "complex",
        (false, _) => "dynamic",
    }
}

fn describe_message(s: &mut String, what: &str, sub: &Subsystem, r: &Routine, m: &MessageLayout) {
    let size = if m.is_fixed() {
        format!("{} bytes", m.min_size)
    } else {
        format!(
            "{}..{} bytes ({} variable)",
            m.min_size, m.max_size, m.num_var
        )
    };
    let _ = writeln!(
        s,
        "    {what}: {size}, send {}, check {}",
        complexity(m.send),
        complexity(m.check)
    );
    for f in &m.fields {
        let a = r.arg(f.arg);
        let d = sub.send_desc(r, f.arg, what == "reply");
        let var = if f.variable { " variable" } else { "" };
        let shift = if f.var_pos > 0 {
            format!(" after {} variable", f.var_pos)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "      {}: desc @{} ({} bytes, name {} size {} number {}{}{}{}) data @{} {}+{} bytes{var}{shift}",
            a.name,
            f.desc_offset,
            f.desc_size,
            d.name,
            d.size,
            d.number,
            if d.inline { " inline" } else { " out-of-line" },
            if d.longform { " long" } else { "" },
            if d.deallocate { " dealloc" } else { "" },
            f.data_offset,
            f.data_size,
            f.pad_size,
        );
    }
}

/// A readable dump of a checked subsystem: its named types and its routines with their
/// arguments and message layouts (what `-v` prints; also used by the golden tests).
pub fn describe(sub: &Subsystem) -> String {
    let mut s = String::new();
    let mut mods = String::new();
    if sub.kernel_user {
        mods.push_str(" KernelUser");
    }
    if sub.kernel_server {
        mods.push_str(" KernelServer");
    }
    let _ = writeln!(
        s,
        "subsystem{mods} {} {} (target {}, {} routine slots, demux {})",
        sub.name,
        sub.base,
        sub.target.name(),
        sub.num_slots,
        sub.demux_name
    );
    for i in &sub.imports {
        let _ = writeln!(s, "{:?} {}", i.kind, i.file);
    }
    if let Some(r) = &sub.rcsid {
        let _ = writeln!(s, "rcsid {r}");
    }
    for (name, id) in sub.types.named() {
        let t = sub.ty(*id);
        let names = if t.in_name == t.out_name {
            t.in_name_str.clone().unwrap_or_default()
        } else {
            format!(
                "{}|{}",
                t.in_name_str.as_deref().unwrap_or(""),
                t.out_name_str.as_deref().unwrap_or("")
            )
        };
        let mut shape = Vec::new();
        shape.push(if t.inline { "inline" } else { "out-of-line" }.to_string());
        if t.long_form {
            shape.push("long".into());
        }
        if t.indefinite {
            shape.push("indefinite".into());
        } else if t.var_array {
            shape.push("variable".into());
        }
        if t.is_string {
            shape.push("string".into());
        }
        if t.is_struct {
            shape.push("struct".into());
        }
        if t.dealloc != crate::ir::Dealloc::No {
            shape.push(format!("dealloc {:?}", t.dealloc));
        }
        let mut c = Vec::new();
        for (what, v) in [
            ("user", &t.user_type),
            ("server", &t.server_type),
            ("trans", &t.trans_type),
            ("intran", &t.in_trans),
            ("intranpayload", &t.in_trans_payload),
            ("outtran", &t.out_trans),
            ("destructor", &t.destructor),
        ] {
            if let Some(v) = v {
                if what == "trans" && t.trans_type == t.server_type {
                    continue;
                }
                c.push(format!("{what} {v}"));
            }
        }
        let _ = writeln!(
            s,
            "type {name} = ({names}, {}) x {} [{}] {}+{} bytes, align {} ({})",
            t.size,
            t.number,
            shape.join(", "),
            t.type_size,
            t.pad_size,
            t.alignment,
            c.join(", ")
        );
    }
    for r in &sub.routines {
        let kind = if r.is_simple() {
            "simpleroutine"
        } else {
            "routine"
        };
        let _ = writeln!(
            s,
            "{kind} {} #{} id {} reply {} (user {}, server {})",
            r.name, r.number, r.msg_id, r.reply_id, r.user_name, r.server_name
        );
        for (_, a) in r.args() {
            let t = sub.ty(a.ty);
            let mut extra = String::new();
            if a.long_form {
                extra.push_str(" long");
            }
            if a.dealloc != crate::ir::Dealloc::No {
                let _ = write!(extra, " dealloc {:?}", a.dealloc);
            }
            if a.server_copy {
                extra.push_str(" servercopy");
            }
            if a.count_in_out {
                extra.push_str(" countinout");
            }
            if a.kind.ident() == ArgKind::COUNT && a.multiplier != 1 {
                let _ = write!(extra, " x{}", a.multiplier);
            }
            if a.var_name != a.name {
                let _ = write!(extra, " = {}", a.var_name);
            }
            let _ = writeln!(
                s,
                "  arg {}: {} [{:?}]{extra}",
                a.name,
                t.name.as_deref().unwrap_or("(anonymous)"),
                a.kind
            );
        }
        describe_message(&mut s, "request", sub, r, &r.request);
        if !r.is_simple() {
            describe_message(&mut s, "reply", sub, r, &r.reply);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_cpp_flags_in_every_form() {
        let cli = match parse_args(args(&[
            "-DA", "-D", "B=2", "x.defs", "-UC", "-U", "D", "-Iinc", "-I", "inc2", "-isystem",
            "sys", "-imacros", "m.h", "--target", "i386",
        ])) {
            Ok(c) => c,
            Err(_) => panic!("valid command line"),
        };
        assert_eq!(
            cli.opts.defines,
            vec![
                Define::Set("A".into(), None),
                Define::Set("B".into(), Some("2".into())),
                Define::Unset("C".into()),
                Define::Unset("D".into()),
            ]
        );
        assert_eq!(
            cli.opts.include_dirs,
            vec![PathBuf::from("inc"), PathBuf::from("inc2")]
        );
        assert_eq!(cli.opts.system_dirs, vec![PathBuf::from("sys")]);
        assert_eq!(cli.opts.imacros, vec![PathBuf::from("m.h")]);
        assert_eq!(cli.opts.target, Target::I386);
        assert_eq!(cli.files, vec![PathBuf::from("x.defs")]);
    }

    #[test]
    fn rejects_unknown_and_incomplete_options() {
        for bad in [
            &["-x", "a.defs"][..],
            &["-E", "a.defs"],
            &["-list"],
            &["-t", "a.defs"],
            &["-R", "a.defs"],
            &["--target", "arm", "a.defs"],
            &["-D", "1x", "a.defs"],
            &[],
        ] {
            assert!(
                matches!(parse_args(args(bad)), Err(Stop::Error(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn dev_null_and_defaults() {
        assert_eq!(OutSpec::from_arg(OsStr::new("/dev/null")), OutSpec::Null);
        let d = || PathBuf::from("d");
        assert_eq!(OutSpec::Unset.resolve(false, d), Some(PathBuf::from("d")));
        assert_eq!(OutSpec::Unset.resolve(true, d), None);
        assert_eq!(OutSpec::Null.resolve(false, d), None);
    }

    #[test]
    fn depfile_escapes() {
        let d = depfile(
            &[Path::new("a b.list")],
            &[PathBuf::from("x.defs"), PathBuf::from("$inc/y.defs")],
        );
        assert_eq!(d, "a\\ b.list: \\\n  x.defs \\\n  $$inc/y.defs\n");
    }
}
