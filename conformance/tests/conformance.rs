//! The conformance suite: every routine of every subsystem `.defs` of Debian 13's
//! gnumach-dev (plus `-DSEQNOS` for the two memory-object files), mig-rs's generated Rust
//! against GNU MIG's generated C, byte for byte, in both directions.
//!
//! For each routine and each of its variants (values chosen by the build script, see
//! `build/gen.rs`):
//!
//! (a) GNU MIG's C client sends a request (recorded by the harness's `mach_msg`); it is
//!     delivered as the kernel would; the mig-rs demux must decode the same values; its
//!     reply must equal the reply of GNU MIG's C demux (with C server functions returning
//!     the same results) on the same request; GNU MIG's C client must decode the mig-rs
//!     reply into the chosen results;
//! (b) the mig-rs client's request must equal the C client's, GNU MIG's C demux must decode
//!     it into the same values, and the mig-rs client must decode the C reply.
//!
//! Each variant also checks the `mach_msg` arguments (option, send size, receive port,
//! timeout, notify port) and the `mig_{get,put,dealloc}_reply_port` calls.
//!
//! Messages are compared in the form their sender wrote them; the simulated kernel
//! (`wire::deliver`) then rewrites them as GNU Mach does (header ports swapped, port
//! dispositions turned into received types, `msgt_deallocate` normalised, out-of-line
//! regions copied) before the receiver decodes them. Out-of-line addresses are compared by
//! the content of their regions. GNU MIG's C is compiled with
//! `-ftrivial-auto-var-init=zero`, so the bytes it leaves unwritten (upper halves of port
//! slots, `…Pad` fields) are zero; the mig-rs demux writes its reply into a buffer filled
//! with garbage first, so it must write every byte itself.
//!
//! The suite prints `conformance: N/M routines byte-identical` (M: every routine GNU MIG
//! lists for the 17 subsystem files and the two `-DSEQNOS` variants) and fails unless
//! N == M; every mismatch (routine, variant, what, which bytes) goes to stderr first,
//! followed by `NOTE` lines for what could not be checked.
//!
//! Run: `cargo test -p mig-conformance --test conformance`. The oracle must exist when the
//! crate is built (see `src/oracle.rs`); the build script reruns when it appears or when
//! mig-rs changes. `CONFORMANCE_ONLY=<routine>[,…]` checks only some routines (the summary
//! says so); `CONFORMANCE_VERBOSE=<routine>[,…]` prints the expected values, GNU MIG's
//! request and the mig-rs reply of each variant.

#[path = "conformance/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "conformance/rt.rs"]
#[allow(dead_code)]
mod rt;
#[path = "../build/values.rs"]
mod values;
#[path = "conformance/wire.rs"]
mod wire;

include!(concat!(env!("OUT_DIR"), "/conformance_gen.rs"));

use std::ffi::c_int;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use mig_conformance::Oracle;
use mig_runtime::MsgBuf;

use common::{build_c, err_line, CServer, CSide, CBUF};
use rt::{SubEntry, TestTransport};
use values::{REPLY_PORT, VARIANTS};
use wire::{deliver, diff_bytes, diff_text, for_c, for_rust, masked, Delivered};

fn main() {
    let start = Instant::now();
    let Some(oracle) = common::setup() else {
        return;
    };
    let only: Option<Vec<String>> = std::env::var("CONFORMANCE_ONLY")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let common::Jobs {
        jobs,
        total,
        mut failures,
        mut failed_routines,
    } = common::jobs(&oracle, only.as_deref());

    // Build the C libraries (cached under target/oracle-out) and check, two at a time.
    let queue = Mutex::new(jobs.iter().collect::<Vec<_>>());
    let results: Mutex<Vec<SubResult>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let job = queue.lock().expect("queue").pop();
                let Some((entry, run)) = job else { break };
                let r = check_sub(&oracle, entry, run, only.as_deref());
                results.lock().expect("results").push(r);
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by(|a, b| (a.file.as_str(), &a.defines).cmp(&(b.file.as_str(), &b.defines)));

    let mut identical = 0usize;
    let mut notes = Vec::new();
    for r in &results {
        for (name, errs) in &r.routines {
            if errs.is_empty() {
                identical += 1;
            } else {
                failed_routines += 1;
                for e in errs {
                    failures.push(format!("{} {:?} {name}: {e}", r.file, r.defines));
                }
            }
        }
        for n in &r.notes {
            notes.push(format!("{} {:?}: {n}", r.file, r.defines));
        }
    }
    for f in &failures {
        err_line(&format!("MISMATCH {f}"));
    }
    for n in &notes {
        err_line(&format!("NOTE {n}"));
    }
    err_line(&format!(
        "conformance suite: {} subsystems, {} routine variants each, {:.1?}{}",
        results.len(),
        VARIANTS,
        start.elapsed(),
        if only.is_some() {
            " (CONFORMANCE_ONLY set)"
        } else {
            ""
        }
    ));
    let _ = writeln!(
        std::io::stdout().lock(),
        "conformance: {identical}/{total} routines byte-identical"
    );
    let _ = failed_routines;
    if identical != total {
        std::process::exit(1);
    }
}

struct SubResult {
    file: String,
    defines: Vec<String>,
    /// Per routine: its mismatches (empty: byte-identical).
    routines: Vec<(String, Vec<String>)>,
    notes: Vec<String>,
}

fn check_sub(
    oracle: &Oracle,
    entry: &SubEntry,
    run: &mig_conformance::MigRun,
    only: Option<&[String]>,
) -> SubResult {
    let info = entry.info;
    let mut res = SubResult {
        file: info.file.to_string(),
        defines: info.defines.iter().map(|s| s.to_string()).collect(),
        routines: Vec::new(),
        notes: Vec::new(),
    };
    let selected: Vec<(usize, &rt::RtInfo)> = info
        .routines
        .iter()
        .enumerate()
        .filter(|(_, r)| only.is_none_or(|o| o.iter().any(|x| x == r.name)))
        .collect();
    let (c, broken) = match build_c(oracle, entry, run, &mut res.notes) {
        Ok(x) => x,
        Err(e) => {
            for (_, r) in selected {
                res.routines
                    .push((r.name.to_string(), vec![format!("harness: {e}")]));
            }
            return res;
        }
    };
    for (ri, r) in selected {
        let mut errs = Vec::new();
        let c_server_decodes = !broken.iter().any(|b| b == r.name);
        if !c_server_decodes {
            res.notes.push(format!(
                "{}: GNU MIG's server-side decoding not checked (its Server.c does not compile)",
                r.name
            ));
        }
        for v in 0..VARIANTS {
            for e in check_variant(entry, &c, ri, r, v, c_server_decodes) {
                errs.push(format!("variant {v}: {e}"));
            }
        }
        res.routines.push((r.name.to_string(), errs));
    }
    res
}

/// A reply as a server produced it: sent form and regions.
struct ServerReply {
    handled: bool,
    bytes: Vec<u8>,
    regions: Vec<Vec<u8>>,
    log: String,
}

/// Runs GNU MIG's C demux on a delivered request.
fn c_demux(s: &CServer, d: &Delivered, v: usize) -> Result<ServerReply, String> {
    (s.rt.rec_reset)();
    (s.set_variant)(v as c_int);
    let mut arena = Vec::new();
    let mut input = for_c(d, &mut arena);
    if input.len() > CBUF {
        return Err(format!(
            "request of {} bytes is too large for the test",
            input.len()
        ));
    }
    input.resize(CBUF, 0);
    let mut output = vec![0u8; CBUF];
    let handled = (s.demux)(input.as_mut_ptr(), output.as_mut_ptr()) != 0;
    let size = (u32::from_le_bytes(output[4..8].try_into().expect("4")) as usize).min(CBUF);
    let bytes = output[..size].to_vec();
    let regions = s.rt.regions(&bytes)?;
    drop(arena);
    Ok(ServerReply {
        handled,
        bytes,
        regions,
        log: s.rt.log(),
    })
}

/// Runs the mig-rs demux on a delivered request.
fn rust_demux(entry: &SubEntry, d: &Delivered, v: usize) -> Result<ServerReply, String> {
    let mut req = for_rust(d);
    let mut rep = MsgBuf::with_capacity(entry.info.max_reply.max(64));
    // A reused buffer holds old bytes: every byte of the reply must be written.
    rep.bytes_mut().fill(0xa5);
    let (handled, log) = (entry.demux)(v, &mut req, &mut rep);
    let bytes = rep.message().to_vec();
    let mut regions = Vec::new();
    for f in wire::ool_fields(&bytes)? {
        match rep.find_ool(f.addr, f.len) {
            Some(b) => regions.push(b.to_vec()),
            None => {
                return Err(format!(
                    "the mig-rs reply names out-of-line memory at {:#x} ({} bytes) that is not attached",
                    f.addr, f.len
                ))
            }
        }
    }
    Ok(ServerReply {
        handled,
        bytes,
        regions,
        log,
    })
}

/// Compares two sent messages (GNU MIG's, mig-rs's): bytes with out-of-line addresses
/// masked, then the regions.
fn compare_msgs(
    what: &str,
    theirs: (&[u8], &[Vec<u8>]),
    ours: (&[u8], &[Vec<u8>]),
    errs: &mut Vec<String>,
) {
    let (a, b) = (masked(theirs.0), masked(ours.0));
    if a != b {
        errs.push(format!("{what}: {}", diff_bytes(&a, &b)));
    }
    if theirs.1 != ours.1 {
        let n = theirs.1.len().max(ours.1.len());
        for i in 0..n {
            let (x, y) = (theirs.1.get(i), ours.1.get(i));
            if x != y {
                errs.push(format!(
                    "{what}: out-of-line region {i}: {}",
                    match (x, y) {
                        (Some(x), Some(y)) => diff_bytes(x, y),
                        _ => "missing on one side".into(),
                    }
                ));
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join("")
}

fn check_text(what: &str, expected: &str, got: &str, errs: &mut Vec<String>) {
    if expected != got {
        errs.push(format!("{what}: {}", diff_text(expected, got)));
    }
}

fn check_variant(
    entry: &SubEntry,
    c: &CSide,
    ri: usize,
    r: &rt::RtInfo,
    v: usize,
    c_server_decodes: bool,
) -> Vec<String> {
    let mut errs = Vec::new();
    let exp_srv = (entry.expect_server)(ri, v);
    let exp_cli = (entry.expect_client)(ri, v);
    let verbose =
        std::env::var("CONFORMANCE_VERBOSE").is_ok_and(|x| x.split(',').any(|n| n == r.name));
    if verbose {
        err_line(&format!(
            "{} variant {v}:\n  server must receive: {exp_srv}\n  client must decode: {exp_cli}",
            r.name
        ));
    }

    // (a) GNU MIG's client sends.
    (c.user.arena_reset)();
    (c.user.rec_reset)();
    c.rec.reset();
    c.rec.set_reply_port(REPLY_PORT);
    let kr1 = (c.client)(ri as c_int, v as c_int);
    let c_req = c.rec.sent();
    if c_req.is_empty() {
        errs.push(format!("GNU MIG's client sent nothing (returned {kr1:#x})"));
        return errs;
    }
    if verbose {
        err_line(&format!("  GNU MIG request: {}", hex(&c_req)));
    }
    let c_req_regions = match c.user.regions(&c_req) {
        Ok(x) => x,
        Err(e) => {
            errs.push(format!("GNU MIG client request: {e}"));
            return errs;
        }
    };
    let mut c_call = c.rec.last_call();
    let mut c_counters = c.rec.counters();
    if r.simple {
        check_text("GNU MIG client result", &exp_cli, &c.user.log(), &mut errs);
    }
    let d_req = match deliver(&c_req, &c_req_regions) {
        Ok(d) => d,
        Err(e) => {
            errs.push(format!("GNU MIG client request cannot be delivered: {e}"));
            return errs;
        }
    };
    let rs = match rust_demux(entry, &d_req, v) {
        Ok(x) => x,
        Err(e) => {
            errs.push(format!("mig-rs server reply: {e}"));
            return errs;
        }
    };
    if verbose {
        err_line(&format!(
            "  mig-rs server got: {}\n  mig-rs reply: {}",
            rs.log,
            hex(&rs.bytes)
        ));
    }
    check_text(
        "mig-rs server decoded GNU MIG's request",
        &exp_srv,
        &rs.log,
        &mut errs,
    );
    if let Some(s) = &c.server {
        match c_demux(s, &d_req, v) {
            Ok(cs) => {
                if c_server_decodes {
                    check_text(
                        "GNU MIG server decoded GNU MIG's request (harness check)",
                        &exp_srv,
                        &cs.log,
                        &mut errs,
                    );
                }
                if cs.handled != rs.handled {
                    errs.push(format!(
                        "demux result: GNU MIG {}, mig-rs {}",
                        cs.handled, rs.handled
                    ));
                }
                compare_msgs(
                    "reply (mig-rs server vs GNU MIG server)",
                    (&cs.bytes, &cs.regions),
                    (&rs.bytes, &rs.regions),
                    &mut errs,
                );
            }
            Err(e) => errs.push(format!("GNU MIG server: {e}")),
        }
    }
    if !r.simple {
        // GNU MIG's client decodes the mig-rs reply.
        match deliver(&rs.bytes, &rs.regions) {
            Ok(d_rep) => {
                let mut arena = Vec::new();
                let reply = for_c(&d_rep, &mut arena);
                (c.user.rec_reset)();
                c.rec.reset();
                c.rec.set_reply_port(REPLY_PORT);
                c.rec.set_reply(&reply);
                (c.client)(ri as c_int, v as c_int);
                check_text(
                    "GNU MIG client decoded the mig-rs reply",
                    &exp_cli,
                    &c.user.log(),
                    &mut errs,
                );
                let again = c.rec.sent();
                if masked(&again) != masked(&c_req) {
                    errs.push("GNU MIG's client sent a different request the second time".into());
                }
                c_call = c.rec.last_call();
                c_counters = c.rec.counters();
                drop(arena);
            }
            Err(e) => errs.push(format!("the mig-rs reply cannot be delivered: {e}")),
        }
    }

    // (b) the mig-rs client sends; GNU MIG's server answers.
    let c_log_b: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let rs_reply = &rs;
    let handler = |bytes: &[u8], regions: &[Vec<u8>]| -> Result<Option<Delivered>, String> {
        let d = deliver(bytes, regions)?;
        let reply = match &c.server {
            Some(s) => {
                let cs = c_demux(s, &d, v)?;
                *c_log_b.borrow_mut() = Some(cs.log.clone());
                (cs.bytes, cs.regions)
            }
            // No GNU MIG server: answer with the mig-rs server's reply to GNU MIG's request.
            None => (rs_reply.bytes.clone(), rs_reply.regions.clone()),
        };
        if r.simple {
            return Ok(None);
        }
        deliver(&reply.0, &reply.1).map(Some)
    };
    let t = TestTransport::new(&handler);
    let rs_out = (entry.client)(ri, v, &t);
    if let Some(e) = t.error.borrow().as_ref() {
        errs.push(format!("mig-rs client transport: {e}"));
    }
    match t.sent.borrow().as_ref() {
        Some(sent) => {
            compare_msgs(
                "request (mig-rs client vs GNU MIG client)",
                (&c_req, &c_req_regions),
                (&sent.bytes, &sent.regions),
                &mut errs,
            );
            let theirs = [
                c_call.option,
                c_call.send_size,
                c_call.rcv_name,
                c_call.timeout,
                c_call.notify,
            ];
            let ours = [
                sent.call[0],
                sent.call[1],
                sent.call[3],
                sent.call[4],
                sent.call[5],
            ];
            if theirs != ours {
                errs.push(format!(
                    "mach_msg(option, send_size, rcv_name, timeout, notify): GNU MIG {theirs:x?}, mig-rs {ours:x?}"
                ));
            }
        }
        None => errs.push("the mig-rs client sent nothing".into()),
    }
    let theirs = [
        c_counters.get_reply_port,
        c_counters.put_reply_port,
        c_counters.dealloc_reply_port,
    ];
    if theirs != t.counters.get() {
        errs.push(format!(
            "mig_get/put/dealloc_reply_port calls: GNU MIG {theirs:?}, mig-rs {:?}",
            t.counters.get()
        ));
    }
    if c_server_decodes {
        if let Some(log) = c_log_b.borrow().as_ref() {
            check_text(
                "GNU MIG server decoded the mig-rs request",
                &exp_srv,
                log,
                &mut errs,
            );
        }
    }
    check_text(
        "mig-rs client decoded GNU MIG's reply",
        &exp_cli,
        &rs_out,
        &mut errs,
    );
    errs
}
