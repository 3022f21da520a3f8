//! Arbitrary bytes as a request to the mig-rs-generated demux of every subsystem of this
//! project's own `defs/` (`memory_object_default.defs` and `memory_object.defs` also with
//! `-DSEQNOS`, `mach.defs`, `device.defs`, `notify.defs`, …), with the conformance suite's
//! servers (which answer every routine with test values, so replies get encoded too).
//!
//! Input: byte 0 picks the subsystem; byte 1 holds the server's variant (bits 0-2: which
//! results it returns, variant 4 answers with an error), "deliver through the kernel model"
//! (bit 3: the message is refused or delivered as GNU Mach would, with out-of-line regions
//! materialised), "set msgh_size to the length" (bit 4), "set msgh_id to routine byte 2"
//! (bit 5) and how much buffer follows the message (bits 6-7); the rest is the message.
//!
//! Asserted (by `rust_run`, shared with the differential test): no panic; a well-formed
//! reply (`msgh_size` within the buffer and at least a `mig_reply_header_t`, `msgh_id` the
//! request's plus 100, `RetCode` set: `MIG_BAD_ID` when the demux returns false, a body
//! that parses and whose out-of-line regions are attached); rejected requests keep the
//! rights they brought (less those the stub released); every out-of-line region of the
//! request is released exactly once.
//!
//! Seeds: `DEMUX_SEEDS=corpus/demux cargo +nightly fuzz run demux -- -runs=0` writes one
//! valid request per routine and variant (made by the mig-rs clients) into the directory.
#![no_main]

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

#[allow(dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/conformance_gen.rs"));
}
use generated::SUBS;

use libfuzzer_sys::fuzz_target;

fn write_seeds(dir: &str) {
    use rt::TestTransport;
    let _ = std::fs::create_dir_all(dir);
    let mut n = 0;
    for (k, entry) in SUBS.iter().enumerate() {
        for (ri, _) in entry.info.routines.iter().enumerate() {
            for v in 0..values::VARIANTS {
                let sent = std::cell::RefCell::new(None);
                let handler = |bytes: &[u8], regions: &[Vec<u8>]| {
                    *sent.borrow_mut() = Some(wire::deliver(bytes, regions));
                    Ok(None)
                };
                let t = TestTransport::new(&handler);
                let _ = (entry.client)(ri, v, &t);
                if let Some(Ok(d)) = sent.into_inner() {
                    let mut seed = vec![k as u8, v as u8 | 8, ri as u8];
                    seed.extend_from_slice(&d.bytes);
                    let _ = std::fs::write(format!("{dir}/seed-{k}-{ri}-{v}"), seed);
                    n += 1;
                }
            }
        }
    }
    eprintln!("demux: wrote {n} seeds to {dir}");
}

fuzz_target!(
    init: {
        robust::install_counting_spaces();
        rt::set_quiet(true);
        if let Ok(dir) = std::env::var("DEMUX_SEEDS") {
            write_seeds(&dir);
        }
    },
    |data: &[u8]| {
        if data.len() < 3 || SUBS.is_empty() {
            return;
        }
        let entry = &SUBS[data[0] as usize % SUBS.len()];
        let flags = data[1];
        let v = (flags & 7) as usize % values::VARIANTS;
        let mut m = data[3..].to_vec();
        if flags & 0x10 != 0 && m.len() >= 8 {
            let n = m.len() as u32;
            robust::wr32(&mut m, 4, n);
        }
        if flags & 0x20 != 0 && m.len() >= 32 {
            let routines = entry.info.routines;
            if !routines.is_empty() {
                let id = routines[data[2] as usize % routines.len()].msg_id;
                robust::wr32(&mut m, 28, id as u32);
            }
        }
        let extra = [0usize, 8, 64, 4096][(flags >> 6) as usize];
        let run = if flags & 8 != 0 {
            match robust::kernel(m, &[]) {
                Ok(k) => robust::rust_run(entry, &k.bytes, &k.regions, k.bytes.len() + extra, v),
                Err(_) => return,
            }
        } else {
            robust::rust_run(entry, &m, &[], m.len() + extra, v)
        };
        if !run.problems.is_empty() {
            panic!("{}", run.problems.join("\n"));
        }
        if let Err(e) = run.reply {
            panic!("{e}");
        }
    }
);
