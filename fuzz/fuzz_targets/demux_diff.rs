//! Differential fuzzing of the demux: arbitrary bytes, delivered as GNU Mach would (the
//! model in `conformance/tests/conformance/robust.rs`; bytes a kernel refuses are skipped),
//! through the mig-rs demux and through GNU MIG's C demux of the same gnumach-dev subsystem
//! (Debian 13's `Server.c`, built by the conformance harness), with the conformance suite's
//! server functions answering on both sides. GNU MIG's answer must be mig-rs's (demux
//! result, reply bytes, out-of-line regions), except where the differential test
//! (`conformance/tests/differential.rs`) documents GNU MIG's behaviour as undefined or
//! buggy; and mig-rs must pass the checks of the `demux` target.
//!
//! Input layout as in `demux` (byte 0 subsystem, byte 1 variant and flags, byte 2 routine
//! for the id fix-up, then the message). Needs the GNU MIG oracle when the fuzz crate is
//! built and run; without it the target says so and does nothing.
//!
//! Seeds: `DEMUX_SEEDS=corpus/demux_diff cargo +nightly fuzz run demux_diff -- -runs=0`
//! writes GNU MIG's client requests (every routine and variant) into the directory.
#![no_main]

#[path = "../../conformance/tests/conformance/cdiff.rs"]
#[allow(dead_code)]
mod cdiff;
#[path = "../../conformance/tests/conformance/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../conformance/tests/conformance/robust.rs"]
#[allow(dead_code)]
mod robust;
#[path = "../../conformance/tests/conformance/rt.rs"]
#[allow(dead_code)]
mod rt;
#[path = "../../conformance/build/values.rs"]
mod values;
#[path = "../../conformance/tests/conformance/wire.rs"]
#[allow(dead_code)]
mod wire;

include!(concat!(env!("OUT_DIR"), "/oracle_gen.rs"));

use std::cell::RefCell;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Job {
    entry: &'static rt::SubEntry,
    c: common::CSide,
}

static JOBS: OnceLock<Vec<Job>> = OnceLock::new();

thread_local! {
    static BUFS: RefCell<cdiff::CBufs> = RefCell::new(cdiff::CBufs::new());
}

fn load() -> Vec<Job> {
    let Some(oracle) = common::setup() else {
        return Vec::new();
    };
    let jobs = common::jobs(&oracle, None);
    let mut out = Vec::new();
    for (entry, run) in jobs.jobs {
        let mut notes = Vec::new();
        match common::build_c(&oracle, entry, &run, &mut notes) {
            Ok((c, _)) => {
                if let Some(s) = &c.server {
                    (s.set_quiet)(1);
                }
                out.push(Job { entry, c });
            }
            Err(e) => eprintln!("demux_diff: {}: {e}", entry.info.file),
        }
    }
    eprintln!("demux_diff: {} subsystems against GNU MIG", out.len());
    out
}

fn write_seeds(jobs: &[Job], dir: &str) {
    let _ = std::fs::create_dir_all(dir);
    let mut n = 0;
    for (k, job) in jobs.iter().enumerate() {
        for ri in 0..job.entry.info.routines.len() {
            for v in 0..values::VARIANTS {
                if let Ok(d) = cdiff::c_request(&job.c, ri, v) {
                    let mut seed = vec![k as u8, v as u8 | 8, ri as u8];
                    seed.extend_from_slice(&d.bytes);
                    let _ = std::fs::write(format!("{dir}/seed-{k}-{ri}-{v}"), seed);
                    n += 1;
                }
            }
        }
    }
    eprintln!("demux_diff: wrote {n} seeds to {dir}");
}

fuzz_target!(
    init: {
        robust::install_counting_spaces();
        rt::set_quiet(true);
        let jobs = JOBS.get_or_init(load);
        if let Ok(dir) = std::env::var("DEMUX_SEEDS") {
            write_seeds(jobs, &dir);
        }
    },
    |data: &[u8]| {
        let Some(jobs) = JOBS.get() else { return };
        if data.len() < 3 || jobs.is_empty() {
            return;
        }
        let job = &jobs[data[0] as usize % jobs.len()];
        let info = job.entry.info;
        let flags = data[1];
        let v = (flags & 7) as usize % values::VARIANTS;
        let mut m = data[3..].to_vec();
        if flags & 0x10 != 0 && m.len() >= 8 {
            let n = m.len() as u32;
            robust::wr32(&mut m, 4, n);
        }
        if flags & 0x20 != 0 && m.len() >= 32 && !info.routines.is_empty() {
            let id = info.routines[data[2] as usize % info.routines.len()].msg_id;
            robust::wr32(&mut m, 28, id as u32);
        }
        // Only what a kernel delivers is compared.
        let Ok(k) = robust::kernel(m, &[]) else { return };
        if k.bytes.len() + cdiff::TAIL > common::CBUF {
            return;
        }
        let extra = [0usize, 8, 64, 4096][(flags >> 6) as usize];
        let run = robust::rust_run(job.entry, &k.bytes, &k.regions, k.bytes.len() + extra, v);
        if !run.problems.is_empty() {
            panic!("{}", run.problems.join("\n"));
        }
        let ours = match run.reply {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let Some(s) = &job.c.server else { return };
        let verdict =
            BUFS.with(|b| cdiff::judge(info, s, &mut b.borrow_mut(), &k, v, &ours));
        if let cdiff::Verdict::Mismatch(msg) = verdict {
            panic!(
                "{} {:?}: mig-rs and GNU MIG differ: {msg}",
                info.file, info.defines
            );
        }
    }
);
