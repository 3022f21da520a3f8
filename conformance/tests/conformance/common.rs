//! What the conformance and differential tests share: the oracle check, the list of
//! subsystems GNU MIG and mig-rs both generate, and GNU MIG's C stubs built into libraries
//! (client and server side) with their runtime.

use std::ffi::c_int;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use mig_conformance::harness::{self, BuildOptions, Library, Recorder, StubSide};
use mig_conformance::{MigRun, Oracle, Outputs};

use crate::rt::{SubEntry, CONF_RT_C, CONF_RT_H};
use crate::wire;
use crate::{GEN_FAILURES, ORACLE_INCLUDE, SKIP_REASON, SUBS};

/// Size of the C demux's input and output buffers.
pub const CBUF: usize = 1 << 17;

pub fn err_line(s: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

/// Finds the oracle the suite was generated from. `None` (after printing `SKIP:`) when it
/// is missing; panics under CI (`CI` set) when the suite was built without it; exits when
/// the suite was generated from another oracle.
pub fn setup() -> Option<Oracle> {
    let Some(inc) = ORACLE_INCLUDE else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("CI is set, so the GNU MIG oracle is required: {SKIP_REASON}");
        }
        err_line(&format!(
            "SKIP: {SKIP_REASON}; fetch it with `{}` and rebuild",
            mig_conformance::oracle::FETCH_COMMAND
        ));
        return None;
    };
    let oracle = match Oracle::locate() {
        Ok(o) => o,
        Err(skip) => {
            mig_conformance::oracle::report_skip(&skip);
            return None;
        }
    };
    let here = std::fs::canonicalize(oracle.include_dir()).unwrap_or(oracle.include_dir());
    if here != Path::new(inc) {
        err_line(&format!(
            "the suite was generated from {inc} but the oracle is at {}; rebuild (touch conformance/build/main.rs)",
            here.display()
        ));
        std::process::exit(1);
    }
    Some(oracle)
}

/// The subsystems to check.
pub struct Jobs {
    /// Each generated subsystem with GNU MIG's run over the same file and defines.
    pub jobs: Vec<(&'static SubEntry, MigRun)>,
    /// Routines GNU MIG lists (all subsystems, filtered by `only`).
    pub total: usize,
    /// What went wrong before any check.
    pub failures: Vec<String>,
    /// Routines already failed.
    pub failed_routines: usize,
}

/// Runs GNU MIG over the corpus: which configurations it accepts, their routines, and the
/// mig-rs subsystem of each (routines restricted to `only`, if given).
pub fn jobs(oracle: &Oracle, only: Option<&[String]>) -> Jobs {
    // GNU MIG over the corpus: which configurations it accepts and their routines.
    let mut jobs = Vec::new();
    let mut total = 0usize;
    let mut failures: Vec<String> = Vec::new();
    let mut failed_routines = 0usize;
    for defs in oracle.corpus() {
        let rel = defs
            .strip_prefix(oracle.include_dir())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| defs.display().to_string());
        let mut variants: Vec<&[&str]> = vec![&[]];
        if rel == "mach/memory_object.defs" || rel == "mach/memory_object_default.defs" {
            variants.push(&["SEQNOS"]);
        }
        for defines in variants {
            let run = match oracle.run(&defs, defines, Outputs::ALL) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{rel} {defines:?}: GNU MIG did not run: {e}"));
                    continue;
                }
            };
            if !run.accepted() {
                continue; // types-only files
            }
            let list = run.list_entries().unwrap_or_default();
            let list: Vec<_> = list
                .into_iter()
                .filter(|l| only.is_none_or(|o| o.contains(&l.name)))
                .collect();
            total += list.len();
            let entry = SUBS
                .iter()
                .find(|s| s.info.file == rel && s.info.defines == defines);
            let Some(entry) = entry else {
                let why = GEN_FAILURES
                    .iter()
                    .find(|f| f.file == rel && f.defines == defines)
                    .map(|f| f.message)
                    .unwrap_or("not generated");
                for l in &list {
                    failures.push(format!(
                        "{rel} {defines:?} {}: mig-rs could not generate the subsystem: {why}",
                        l.name
                    ));
                }
                failed_routines += list.len();
                continue;
            };
            // mig-rs's routines must be GNU MIG's.
            let ours: Vec<(String, i64)> = entry
                .info
                .routines
                .iter()
                .filter(|r| only.is_none_or(|o| o.iter().any(|x| x == r.name)))
                .map(|r| (r.name.to_string(), r.msg_id as i64))
                .collect();
            let theirs: Vec<(String, i64)> =
                list.iter().map(|l| (l.name.clone(), l.msgh_id)).collect();
            if ours != theirs {
                failures.push(format!(
                    "{rel} {defines:?}: routines differ: GNU MIG {theirs:?}, mig-rs {ours:?}"
                ));
                failed_routines += list.len();
                continue;
            }
            jobs.push((entry, run));
        }
    }
    Jobs {
        jobs,
        total,
        failures,
        failed_routines,
    }
}

/// The C side of one subsystem.
pub struct CSide {
    /// The client library's recorder (its `mach_msg`).
    pub rec: Recorder,
    /// `int conf_client(int routine, int variant)`: calls GNU MIG's client stub.
    pub client: extern "C" fn(c_int, c_int) -> c_int,
    pub user: CRt,
    /// `None` when GNU MIG's `Server.c` does not compile.
    pub server: Option<CServer>,
}

pub struct CServer {
    /// GNU MIG's demux: `boolean_t demux(mach_msg_header_t *, mach_msg_header_t *)`.
    pub demux: extern "C" fn(*mut u8, *mut u8) -> c_int,
    /// The variant the server functions answer with.
    pub set_variant: extern "C" fn(c_int),
    /// Non-zero: the server functions record nothing (and read none of their arguments).
    pub set_quiet: extern "C" fn(c_int),
    pub rt: CRt,
}

/// The C runtime functions of one library.
pub struct CRt {
    pub rec_reset: extern "C" fn(),
    pub rec_get: extern "C" fn(*mut usize) -> *const u8,
    pub arena_reset: extern "C" fn(),
    pub arena_contains: extern "C" fn(usize, usize) -> c_int,
}

impl CRt {
    pub fn load(lib: &Library) -> Result<CRt, String> {
        // SAFETY: the signatures match CONF_RT_C.
        unsafe {
            Ok(CRt {
                rec_reset: lib.symbol("conf_rec_reset").map_err(|e| e.to_string())?,
                rec_get: lib.symbol("conf_rec_get").map_err(|e| e.to_string())?,
                arena_reset: lib.symbol("conf_arena_reset").map_err(|e| e.to_string())?,
                arena_contains: lib
                    .symbol("conf_arena_contains")
                    .map_err(|e| e.to_string())?,
            })
        }
    }
    pub fn log(&self) -> String {
        let mut n = 0usize;
        let p = (self.rec_get)(&mut n);
        if p.is_null() || n == 0 {
            return String::new();
        }
        // SAFETY: conf_rec_get returns `n` initialised bytes of its per-thread buffer.
        let b = unsafe { std::slice::from_raw_parts(p, n) };
        String::from_utf8_lossy(b).into_owned()
    }
    /// The regions a message sent by this library names (they must be arena blocks).
    pub fn regions(&self, msg: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        for f in wire::ool_fields(msg)? {
            if f.len == 0 {
                out.push(Vec::new());
                continue;
            }
            if (self.arena_contains)(f.addr as usize, f.len) == 0 {
                return Err(format!(
                    "out-of-line address {:#x} ({} bytes) at offset {} is not memory the test gave the stubs",
                    f.addr, f.len, f.at
                ));
            }
            // SAFETY: the range lies inside a live arena block (checked just above).
            out.push(unsafe { std::slice::from_raw_parts(f.addr as *const u8, f.len) }.to_vec());
        }
        Ok(out)
    }
}

/// Replaces the generated C's include of the runtime header (and the server header path).
pub fn c_source(text: &str, server_h: Option<&Path>) -> String {
    let mut s = text.replace("#include \"conf_rt.h\"", CONF_RT_H);
    if let Some(h) = server_h {
        s = s.replace("@SERVER_H@", &h.display().to_string());
    }
    s
}

/// GNU MIG's `Server.c` for mach4.defs does not compile (it passes `In0P->object.name` for
/// an inline variable array of ports). Returns a copy with that expression replaced by the
/// array itself, and the routines whose server function was changed.
pub fn patch_server(
    run: &mig_conformance::MigRun,
    oracle: &Oracle,
) -> Option<(PathBuf, Vec<String>)> {
    let text = run.server_c_text().ok()?;
    let marker = "mig_internal void _X";
    let mut out = String::new();
    let mut patched = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i]);
        let next = rest[i + marker.len()..]
            .find(marker)
            .map(|j| i + marker.len() + j)
            .unwrap_or(rest.len());
        let func = &rest[i..next];
        let mut f = func.to_string();
        // The only known case: mach4.defs memory_object_create_proxy's `object`.
        let field = "object";
        for k in 0..8 {
            let bad = format!("In{k}P->{field}.name,");
            if f.contains(&bad) {
                f = f.replace(&bad, &format!("(mach_port_t *) In{k}P->{field},"));
                let name: String = func[marker.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                patched.push(name);
            }
        }
        out.push_str(&f);
        rest = &rest[next..];
    }
    out.push_str(rest);
    if patched.is_empty() {
        return None;
    }
    let dir = oracle.cache_dir().join("conformance-patched");
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!(
        "{}-Server.c",
        mig_conformance::StableHasher::new().str(&out).hex()
    ));
    std::fs::write(&path, out).ok()?;
    Some((path, patched))
}

pub fn build_c(
    oracle: &Oracle,
    entry: &SubEntry,
    run: &mig_conformance::MigRun,
    notes: &mut Vec<String>,
) -> Result<(CSide, Vec<String>), String> {
    let info = entry.info;
    let user_opts = BuildOptions {
        extra_sources: vec![
            ("conf_rt.c".into(), CONF_RT_C.into()),
            ("conf_client.c".into(), c_source(info.c_client, None)),
        ],
        ..BuildOptions::default()
    };
    let user = harness::build_library(oracle, run, StubSide::User, &user_opts)
        .and_then(|p| Library::open(&p))
        .map_err(|e| format!("GNU MIG client library: {e}"))?;
    let server_h = run
        .sheader_h
        .clone()
        .ok_or_else(|| "GNU MIG wrote no Server.h".to_string())?;
    let server_opts = BuildOptions {
        extra_sources: vec![
            ("conf_rt.c".into(), CONF_RT_C.into()),
            (
                "conf_server.c".into(),
                c_source(info.c_server, Some(&server_h)),
            ),
        ],
        ..BuildOptions::default()
    };
    let mut broken = Vec::new();
    let server = match harness::build_library(oracle, run, StubSide::Server, &server_opts) {
        Ok(p) => Some(p),
        Err(e) => match patch_server(run, oracle) {
            Some((patched, routines)) => {
                let mut prun = run.clone();
                prun.server_c = Some(patched);
                match harness::build_library(oracle, &prun, StubSide::Server, &server_opts) {
                    Ok(p) => {
                        notes.push(format!(
                            "GNU MIG's Server.c does not compile ({}); compiled with `In0P->object.name` \
                             replaced by the array in _X{}; what GNU MIG's server passes for that \
                             argument is therefore not checked",
                            first_line(&e.to_string()),
                            routines.join(", _X")
                        ));
                        broken = routines;
                        Some(p)
                    }
                    Err(e2) => {
                        notes.push(format!(
                            "GNU MIG's Server.c does not compile, even patched: {e2}"
                        ));
                        None
                    }
                }
            }
            None => return Err(format!("GNU MIG server library: {e}")),
        },
    };
    let rec = user.recorder().map_err(|e| e.to_string())?;
    // SAFETY: `int conf_client(int, int)` in the generated driver.
    let client = unsafe { user.symbol("conf_client") }.map_err(|e| e.to_string())?;
    let user_rt = CRt::load(&user)?;
    let server = match server {
        Some(p) => {
            let lib = Library::open(&p).map_err(|e| e.to_string())?;
            // SAFETY: boolean_t demux(mach_msg_header_t *, mach_msg_header_t *) and
            // void conf_set_variant(int), void conf_set_quiet(int).
            let (demux, set_variant, set_quiet) = unsafe {
                (
                    lib.symbol(info.demux).map_err(|e| e.to_string())?,
                    lib.symbol("conf_set_variant").map_err(|e| e.to_string())?,
                    lib.symbol("conf_set_quiet").map_err(|e| e.to_string())?,
                )
            };
            Some(CServer {
                demux,
                set_variant,
                set_quiet,
                rt: CRt::load(&lib)?,
            })
        }
        None => None,
    };
    Ok((
        CSide {
            rec,
            client,
            user: user_rt,
            server,
        },
        broken,
    ))
}

pub fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| l.contains("error"))
        .unwrap_or_else(|| s.lines().next().unwrap_or(""))
        .trim()
        .chars()
        .take(200)
        .collect()
}
