//! Locating and running the reference GNU MIG (Debian 13's `mig-x86-64-gnu`).
//!
//! The oracle is the unpacked Debian packages `mig-x86-64-gnu` and `gnumach-dev`, fetched by
//! `bash .ci/fetch-debian13.sh target/debian13 mig-x86-64-gnu gnumach-dev` into
//! `target/debian13/root/` (or wherever `MIG_ORACLE_DIR` points). Every run of GNU MIG is
//! cached under `target/oracle-out/` (or `MIG_ORACLE_CACHE`), keyed by a hash of the
//! preprocessed input, the arguments and the GNU MIG binaries, so repeated test runs only
//! pay for the C preprocessor.

use std::env;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{OracleError, Result};
use crate::util::{self, StableHasher};

/// The command that fetches the oracle, relative to the workspace root.
pub const FETCH_COMMAND: &str =
    "bash .ci/fetch-debian13.sh target/debian13 mig-x86-64-gnu gnumach-dev";

/// Environment variable overriding the oracle root (the directory holding `usr/`).
pub const ORACLE_DIR_ENV: &str = "MIG_ORACLE_DIR";

/// Environment variable overriding the cache directory (default `<workspace>/target/oracle-out`).
pub const CACHE_DIR_ENV: &str = "MIG_ORACLE_CACHE";

/// Bumped whenever the layout of cache entries changes.
const CACHE_VERSION: &str = "mig-conformance oracle-run v1";

/// Upper bound for one GNU MIG run (it normally takes a few milliseconds).
const MIG_TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// Where cached GNU MIG outputs, probes and harness libraries go.
pub fn default_cache_dir() -> PathBuf {
    match env::var_os(CACHE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("oracle-out"),
    }
}

/// Why the oracle is unavailable (outside CI this makes tests skip, not fail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The oracle root that was searched.
    pub root: PathBuf,
    /// What is missing.
    pub reason: String,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GNU MIG oracle not found at {} ({}); fetch it from the workspace root with `{}` \
             or point {} at an unpacked root",
            self.root.display(),
            self.reason,
            FETCH_COMMAND,
            ORACLE_DIR_ENV
        )
    }
}

/// Prints `SKIP: <skip>` straight to the process's stderr, bypassing libtest's output
/// capture so the line is visible even for passing tests.
pub fn report_skip(skip: &Skip) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIP: {skip}");
}

/// Which files a GNU MIG run should write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outputs {
    /// `-list`
    pub list: bool,
    /// `-server` (`Server.c`)
    pub server: bool,
    /// `-user` (`User.c`)
    pub user: bool,
    /// `-header` (`User.h`, included by `User.c`)
    pub header: bool,
    /// `-sheader` (`Server.h`)
    pub sheader: bool,
}

impl Outputs {
    /// Every output.
    pub const ALL: Outputs = Outputs {
        list: true,
        server: true,
        user: true,
        header: true,
        sheader: true,
    };
    /// Only the `-list` file.
    pub const LIST: Outputs = Outputs {
        list: true,
        server: false,
        user: false,
        header: false,
        sheader: false,
    };

    fn key(&self) -> String {
        [self.list, self.server, self.user, self.header, self.sheader]
            .iter()
            .map(|&b| if b { '1' } else { '0' })
            .collect()
    }
}

/// File names used inside a run directory.
pub mod files {
    /// The `-list` output.
    pub const LIST: &str = "routines.list";
    /// The `-server` output.
    pub const SERVER_C: &str = "Server.c";
    /// The `-user` output.
    pub const USER_C: &str = "User.c";
    /// The `-header` output (the user header; `User.c` includes it by this name).
    pub const HEADER_H: &str = "User.h";
    /// The `-sheader` output.
    pub const SHEADER_H: &str = "Server.h";
    pub(crate) const STATUS: &str = "status.txt";
    pub(crate) const STDERR: &str = "stderr.txt";
    pub(crate) const STDOUT: &str = "stdout.txt";
    pub(crate) const COMMAND: &str = "command.txt";
}

/// One line of GNU MIG's `-list` output: `subsys base rpcname rpcnum msgid replyid`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListEntry {
    /// Subsystem name.
    pub subsystem: String,
    /// Subsystem base id.
    pub base: i64,
    /// Routine name (without prefixes).
    pub name: String,
    /// Routine number (`msgh_id - base`).
    pub number: i64,
    /// Request `msgh_id`.
    pub msgh_id: i64,
    /// Reply `msgh_id`; 0 for a simpleroutine.
    pub reply_id: i64,
}

impl ListEntry {
    /// Whether GNU MIG lists this as a simpleroutine (reply id 0).
    pub fn is_simple(&self) -> bool {
        self.reply_id == 0
    }
}

/// Parses GNU MIG's `-list` output.
pub fn parse_list(text: &str) -> Result<Vec<ListEntry>> {
    let mut entries = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let bad = || OracleError::new(format!("bad -list line {}: {line:?}", lineno + 1));
        if parts.len() != 6 {
            return Err(bad());
        }
        let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
        entries.push(ListEntry {
            subsystem: parts[0].to_string(),
            base: num(parts[1])?,
            name: parts[2].to_string(),
            number: num(parts[3])?,
            msgh_id: num(parts[4])?,
            reply_id: num(parts[5])?,
        });
    }
    Ok(entries)
}

/// The result of one GNU MIG run (possibly served from the cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigRun {
    /// The `.defs` file (canonical path).
    pub defs: PathBuf,
    /// The extra arguments given (cpp defines and any migcom flags), in order.
    pub args: Vec<String>,
    /// The cache directory holding this run's outputs.
    pub dir: PathBuf,
    /// The wrapper's exit code (136 for migcom's SIGFPE crash on types-only files), or
    /// `None` if the wrapper itself was killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that killed the wrapper, if any.
    pub signal: Option<i32>,
    /// Everything GNU MIG wrote to stderr (warnings and errors).
    pub stderr: String,
    /// The `-list` output, if requested and written.
    pub list: Option<String>,
    /// `Server.c`, if requested and written.
    pub server_c: Option<PathBuf>,
    /// `User.c`, if requested and written.
    pub user_c: Option<PathBuf>,
    /// `User.h`, if requested and written.
    pub header_h: Option<PathBuf>,
    /// `Server.h`, if requested and written.
    pub sheader_h: Option<PathBuf>,
}

impl MigRun {
    /// GNU MIG accepted the file (exit status 0).
    pub fn accepted(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The parsed `-list` output (empty if there is none).
    pub fn list_entries(&self) -> Result<Vec<ListEntry>> {
        match &self.list {
            Some(text) => parse_list(text),
            None => Ok(Vec::new()),
        }
    }

    /// The text of `Server.c`.
    pub fn server_c_text(&self) -> Result<String> {
        self.text(&self.server_c, files::SERVER_C)
    }

    /// The text of `User.c`.
    pub fn user_c_text(&self) -> Result<String> {
        self.text(&self.user_c, files::USER_C)
    }

    fn text(&self, path: &Option<PathBuf>, what: &str) -> Result<String> {
        match path {
            Some(p) => util::read_text(p),
            None => Err(OracleError::new(format!(
                "GNU MIG wrote no {what} for {} {:?} (exit {:?}): {}",
                self.defs.display(),
                self.args,
                self.exit_code,
                self.stderr.trim()
            ))),
        }
    }

    fn load(defs: PathBuf, args: Vec<String>, dir: PathBuf) -> Result<MigRun> {
        let status = util::read_text(&dir.join(files::STATUS))?;
        let mut exit_code = None;
        let mut signal = None;
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("exit=") {
                exit_code = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("signal=") {
                signal = v.trim().parse().ok();
            }
        }
        let stderr = util::read_text(&dir.join(files::STDERR)).unwrap_or_default();
        let existing = |name: &str| {
            let p = dir.join(name);
            p.is_file().then_some(p)
        };
        let list = match existing(files::LIST) {
            Some(p) => Some(util::read_text(&p)?),
            None => None,
        };
        Ok(MigRun {
            server_c: existing(files::SERVER_C),
            user_c: existing(files::USER_C),
            header_h: existing(files::HEADER_H),
            sheader_h: existing(files::SHEADER_H),
            defs,
            args,
            dir,
            exit_code,
            signal,
            stderr,
            list,
        })
    }
}

/// The unpacked reference GNU MIG and GNU Mach headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oracle {
    root: PathBuf,
    cache_dir: PathBuf,
    identity: String,
}

impl Oracle {
    /// Finds the oracle: `$MIG_ORACLE_DIR`, else `<workspace>/target/debian13/root`.
    ///
    /// # Panics
    ///
    /// When the oracle is missing and the environment variable `CI` is set to a non-empty
    /// value: in CI a missing oracle is a configuration error, not a reason to skip.
    pub fn locate() -> std::result::Result<Oracle, Skip> {
        let root = match env::var_os(ORACLE_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => workspace_root()
                .join("target")
                .join("debian13")
                .join("root"),
        };
        match Oracle::at(root) {
            Ok(oracle) => Ok(oracle),
            Err(skip) => {
                if env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                    panic!("CI is set, so the GNU MIG oracle is required: {skip}");
                }
                Err(skip)
            }
        }
    }

    /// The oracle unpacked at `root` (the directory holding `usr/`), without the CI check.
    pub fn at(root: impl Into<PathBuf>) -> std::result::Result<Oracle, Skip> {
        let root: PathBuf = root.into();
        let skip = |reason: String| Skip {
            root: root.clone(),
            reason,
        };
        let mut identity = StableHasher::new();
        identity.str(CACHE_VERSION);
        let wrapper = root.join("usr/bin/x86_64-gnu-mig");
        let migcom = root.join("usr/lib/mig/x86_64-gnu-migcom");
        for bin in [&wrapper, &migcom] {
            match fs::read(bin) {
                Ok(bytes) => identity.item(&bytes),
                Err(e) => return Err(skip(format!("{}: {e}", bin.display()))),
            };
        }
        let message_h = root.join("usr/include/x86_64-linux-gnu/mach/message.h");
        if !message_h.is_file() {
            return Err(skip(format!("{} is missing", message_h.display())));
        }
        let root = fs::canonicalize(&root).unwrap_or(root);
        Ok(Oracle {
            root,
            cache_dir: default_cache_dir(),
            identity: identity.hex(),
        })
    }

    /// This oracle, caching into `dir` instead of the default.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Oracle {
        self.cache_dir = dir.into();
        self
    }

    /// The oracle root (holds `usr/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// A hash identifying the GNU MIG binaries (part of every cache key).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The `x86_64-gnu-mig` wrapper script.
    pub fn wrapper(&self) -> PathBuf {
        self.root.join("usr/bin/x86_64-gnu-mig")
    }

    /// The directory holding `x86_64-gnu-migcom` (`MIGDIR`).
    pub fn migdir(&self) -> PathBuf {
        self.root.join("usr/lib/mig")
    }

    /// The GNU Mach include directory (`usr/include/x86_64-linux-gnu`), passed as `-I`.
    pub fn include_dir(&self) -> PathBuf {
        self.root.join("usr/include/x86_64-linux-gnu")
    }

    /// Every `.defs` file directly in `mach/`, `device/`, `mach/x86_64/` and `mach_debug/`
    /// of the include directory, sorted (23 files for Debian 13's gnumach-dev).
    pub fn corpus(&self) -> Vec<PathBuf> {
        let inc = self.include_dir();
        let mut out = Vec::new();
        for sub in ["mach", "device", "mach/x86_64", "mach_debug"] {
            let Ok(entries) = fs::read_dir(inc.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "defs") && path.is_file() {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }

    /// Runs GNU MIG on `defs` with `-n`, the include directory, the given cpp `defines`
    /// (`"SEQNOS"` means `-DSEQNOS`; an item starting with `-`, such as `"-DSEQNOS"` or
    /// `"-UFOO"`, is passed unchanged) and the selected outputs. For migcom flags that
    /// take a value (`-prefix P`), use [`Oracle::run_args`]. Results are cached; see the
    /// module documentation.
    pub fn run(&self, defs: &Path, defines: &[&str], outputs: Outputs) -> Result<MigRun> {
        let args: Vec<String> = defines
            .iter()
            .map(|d| {
                if d.starts_with('-') {
                    d.to_string()
                } else {
                    format!("-D{d}")
                }
            })
            .collect();
        self.run_args(defs, &args, outputs)
    }

    /// Like [`Oracle::run`], with the arguments passed exactly as given.
    pub fn run_args(&self, defs: &Path, args: &[String], outputs: Outputs) -> Result<MigRun> {
        let defs =
            fs::canonicalize(defs).map_err(|e| OracleError::io("cannot find .defs", defs, e))?;
        let key = self.run_key(&defs, args, outputs)?;
        let dest = self.cache_dir.join(format!("run-{key}"));
        if dest.join(files::STATUS).is_file() {
            return MigRun::load(defs, args.to_vec(), dest);
        }
        fs::create_dir_all(&self.cache_dir)
            .map_err(|e| OracleError::io("cannot create", &self.cache_dir, e))?;
        let scratch = util::scratch_dir(&self.cache_dir, "run")?;
        let result = self.run_into(&defs, args, outputs, &scratch);
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&scratch);
            return Err(e);
        }
        util::publish_dir(&scratch, &dest)?;
        MigRun::load(defs, args.to_vec(), dest)
    }

    /// The GNU MIG command line (without the output flags and file).
    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg(self.wrapper())
            .env("MIGDIR", self.migdir())
            .env("CPP", "gcc -E -x c")
            .env_remove("MIGCOM")
            .env_remove("CC")
            .arg("-n")
            .args(args)
            .arg(format!("-I{}", self.include_dir().display()));
        cmd
    }

    fn run_into(&self, defs: &Path, args: &[String], outputs: Outputs, dir: &Path) -> Result<()> {
        let mut cmd = self.command(args);
        cmd.current_dir(dir);
        for (on, flag, name) in [
            (outputs.list, "-list", files::LIST),
            (outputs.server, "-server", files::SERVER_C),
            (outputs.user, "-user", files::USER_C),
            (outputs.header, "-header", files::HEADER_H),
            (outputs.sheader, "-sheader", files::SHEADER_H),
        ] {
            if on {
                cmd.arg(flag).arg(name);
            }
        }
        cmd.arg(defs);
        let shown = format!("{cmd:?}");
        let done = util::run_bounded(&mut cmd, MIG_TIMEOUT)?;
        use std::os::unix::process::ExitStatusExt;
        let mut status = String::new();
        if let Some(code) = done.status.code() {
            status.push_str(&format!("exit={code}\n"));
        }
        if let Some(sig) = done.status.signal() {
            status.push_str(&format!("signal={sig}\n"));
        }
        let write = |name: &str, bytes: &[u8]| {
            fs::write(dir.join(name), bytes).map_err(|e| OracleError::io("cannot write", dir, e))
        };
        write(files::STDERR, &done.stderr)?;
        write(files::STDOUT, &done.stdout)?;
        write(files::COMMAND, shown.as_bytes())?;
        write(files::STATUS, status.as_bytes())
    }

    /// Cache key: GNU MIG identity, arguments, outputs and the *preprocessed* input (so a
    /// change in any included `.defs` invalidates the entry).
    fn run_key(&self, defs: &Path, args: &[String], outputs: Outputs) -> Result<String> {
        let mut h = StableHasher::new();
        h.str(&self.identity).str(&outputs.key());
        for a in args {
            h.str(a);
        }
        let mut cpp = Command::new("gcc");
        cpp.args(["-E", "-x", "c"]);
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if ["-D", "-U", "-I"].iter().any(|p| a.starts_with(p)) {
                cpp.arg(a);
                if a.len() == 2 {
                    if let Some(next) = args.get(i + 1) {
                        cpp.arg(next);
                        i += 1;
                    }
                }
            }
            i += 1;
        }
        cpp.arg(format!("-I{}", self.include_dir().display()))
            .arg(defs);
        let done = util::run_bounded(&mut cpp, MIG_TIMEOUT)?;
        h.item(&done.stdout).item(&done.stderr);
        if !done.status.success() {
            // Still cacheable (GNU MIG will fail the same way), but make sure the key
            // also covers the raw file, which the failed preprocessing may not show.
            let raw = fs::read(defs).map_err(|e| OracleError::io("cannot read", defs, e))?;
            h.item(&raw);
        }
        Ok(h.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_list_lines() {
        let text = "memory_object_default 2250 memory_object_create 0 2250 0\n\
                    mach_port 3200 mach_port_names 0 3200 3300\n";
        let entries = parse_list(text).expect("valid list");
        assert_eq!(entries.len(), 2);
        assert!(entries[0].is_simple());
        assert_eq!(entries[1].name, "mach_port_names");
        assert_eq!(entries[1].reply_id, 3300);
        assert!(parse_list("a b c").is_err());
    }

    #[test]
    fn skip_message_mentions_fetch_command() {
        let skip = Oracle::at("/nonexistent/oracle").expect_err("no oracle there");
        let msg = skip.to_string();
        assert!(msg.starts_with("GNU MIG oracle not found"), "{msg}");
        assert!(msg.contains(FETCH_COMMAND), "{msg}");
    }
}
