//! Benchmark (not a test): one RPC in process, client stub → "kernel" → demux → server
//! function → reply → "kernel" → client stub, with mig-rs's stubs and with GNU MIG's, for
//! three routines of gnumach-dev's `mach/mach.defs`:
//!
//! * `vm_protect` — scalars only (four in, `RetCode` out);
//! * `task_info` — a variable inline array out (`CountInOut`; the server returns 10 ints):
//!   on both sides the caller passes its buffer (1024 ints; the Rust caller's is kept
//!   across calls, C's is an uninitialized stack array) and the server function writes
//!   into the reply (mig-rs's `task_info_into` client function and server method, GNU
//!   MIG's `task_info` with its `task_info_out` pointer into the reply);
//! * `vm_read` — out-of-line data out (the server returns a 4096-byte page it keeps; the
//!   "kernel" copies it into a fresh region, which the client then frees).
//!
//! Both sides do the same work per call:
//!
//! * **mig-rs:** the generated client over [`mig_runtime::loopback::Loopback`], which
//!   delivers the request into a receive buffer (header ports swapped, received
//!   dispositions, body walked, out-of-line regions copied), calls the generated demux with
//!   a server implementing the three routines, and delivers the reply back.
//! * **GNU MIG:** its `User.c` stubs, whose `mach_msg` (the harness recorder's, with a hook)
//!   calls a C loopback written for this benchmark doing the same delivery into static
//!   buffers, then GNU MIG's demux from `Server.c` with C server functions doing the same as
//!   the Rust ones. The C is compiled with `-O2` and without `-ftrivial-auto-var-init`.
//!
//! The mig-rs side is the release (bench) profile. Run with
//!
//! ```text
//! cargo bench -p mig-conformance --bench loopback
//! ```
//!
//! Criterion measures each (routine, side); at the end an interleaved comparison (alternating
//! blocks of each side, medians of `MIG_BENCH_ROUNDS`, default 31, blocks) prints ns per RPC
//! and the ratio mig-rs / GNU MIG per routine, which stays meaningful on a loaded machine.
//! Needs the oracle (see `mig_conformance::Oracle::locate`); skips otherwise.
//! `MIG_BENCH_INTERLEAVED_ONLY=1` skips criterion and prints only the interleaved comparison
//! (run it several times: each process has its own code and heap layout).
//! `LOOPBACK_PROFILE=<routine>[:c] cargo bench -p mig-conformance --bench loopback` only
//! loops over one routine of one side (mig-rs, or GNU MIG with `:c`) for 5 s, for `perf`.

use std::ffi::c_int;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[cfg(conformance_oracle)]
#[allow(
    clippy::all,
    clippy::pedantic,
    unused,
    non_snake_case,
    non_camel_case_types
)]
mod mach {
    include!(concat!(env!("OUT_DIR"), "/bench_mach.rs"));
}

/// The benchmark's client calls and the C loopback (linked into GNU MIG's client library).
const BENCH_CLIENT_C: &str = r#"
#include "User.h"
#include <stdlib.h>
#include <string.h>
#include <mach/message.h>
#include <mach/mig_errors.h>

typedef int (*bench_demux_t)(mach_msg_header_t *, mach_msg_header_t *);
typedef mach_msg_return_t (*migrec_hook_t)(mach_msg_header_t *, mach_msg_option_t,
					     mach_msg_size_t, mach_msg_size_t);
void migrec_set_hook(migrec_hook_t hook);

static bench_demux_t bench_demux;
static mach_port_seqno_t bench_seqno;
static union { mach_msg_header_t h; char b[8192]; } bench_req, bench_rep;

static unsigned bench_received(unsigned d)
{
	return d == MACH_MSG_TYPE_COPY_SEND || d == MACH_MSG_TYPE_MAKE_SEND ? MACH_MSG_TYPE_PORT_SEND
	     : d == MACH_MSG_TYPE_MAKE_SEND_ONCE ? MACH_MSG_TYPE_PORT_SEND_ONCE : d;
}

/* Delivers `size` bytes of `from` into `to` as GNU Mach does within one name space: header
   ports swapped with their received dispositions, a sequence number, body port names in
   received form, msgt_deallocate normalised, out-of-line regions copied. */
static mach_msg_return_t bench_deliver(const mach_msg_header_t *from, mach_msg_size_t size,
				       mach_msg_header_t *to, mach_msg_size_t cap)
{
	mach_msg_bits_t bits = from->msgh_bits;
	mach_port_t remote = from->msgh_remote_port, local = from->msgh_local_port;
	char *p, *end;
	if (size < sizeof(mach_msg_header_t) || size > cap)
		return MACH_SEND_MSG_TOO_SMALL;
	memcpy(to, from, size);
	to->msgh_bits = (bits & ~0xffffu) | bench_received((bits >> 8) & 0xff)
		| (bench_received(bits & 0xff) << 8);
	to->msgh_size = size;
	to->msgh_remote_port = local;
	to->msgh_local_port = remote;
	to->msgh_seqno = bench_seqno++;
	if (!(bits & MACH_MSGH_BITS_COMPLEX))
		return MACH_MSG_SUCCESS;
	p = (char *) (to + 1);
	end = (char *) to + size;
	while (p < end) {
		mach_msg_type_t *t = (mach_msg_type_t *) p;
		mach_msg_type_t n;
		size_t bytes = ((size_t) t->msgt_number * t->msgt_size + 7) / 8;
		if (p + sizeof *t > end)
			return MACH_SEND_MSG_TOO_SMALL;
		/* The rewritten descriptor is stored only if it changed, and whole (as the Rust
		   loopback does): a bit-field store into it would make the receiver's read of the
		   descriptor wait for the store instead of being forwarded. */
		n = *t;
		if (MACH_MSG_TYPE_PORT_ANY(n.msgt_name))
			n.msgt_name = bench_received(n.msgt_name);
		n.msgt_deallocate = !n.msgt_inline;
		if (memcmp(&n, t, sizeof n))
			memcpy(t, &n, sizeof n);
		p += sizeof *t;
		if (t->msgt_inline) {
			p += (bytes + 7) & ~(size_t) 7;
		} else {
			void **addr = (void **) p;
			void *copy = NULL;
			if (bytes) {
				copy = malloc(bytes);
				if (!copy)
					return MACH_SEND_NO_BUFFER;
				memcpy(copy, *addr, bytes);
			}
			*addr = copy;
			p += sizeof(void *);
		}
	}
	return MACH_MSG_SUCCESS;
}

static mach_msg_return_t bench_mach_msg(mach_msg_header_t *msg, mach_msg_option_t option,
					mach_msg_size_t send_size, mach_msg_size_t rcv_size)
{
	mach_msg_return_t kr;
	mig_reply_header_t *r = (mig_reply_header_t *) &bench_rep;
	if (!(option & MACH_SEND_MSG))
		return MACH_RCV_INVALID_NAME;
	kr = bench_deliver(msg, send_size, &bench_req.h, sizeof bench_req);
	if (kr)
		return kr;
	bench_demux(&bench_req.h, &bench_rep.h);
	if (!(option & MACH_RCV_MSG))
		return MACH_MSG_SUCCESS;
	if (r->RetCode == MIG_NO_REPLY || r->Head.msgh_remote_port == MACH_PORT_NULL)
		return MACH_RCV_TIMED_OUT;
	if (r->Head.msgh_size > rcv_size)
		return MACH_RCV_TOO_LARGE;
	return bench_deliver(&bench_rep.h, r->Head.msgh_size, msg, rcv_size);
}

void bench_setup(void *demux)
{
	bench_demux = (bench_demux_t) demux;
	migrec_set_hook(bench_mach_msg);
}

int bench_vm_protect(void)
{
	return vm_protect(0x1234, 0x10000, 0x2000, 0, 3);
}

int bench_task_info(void)
{
	integer_t info[1024];
	mach_msg_type_number_t n = 1024;
	kern_return_t kr = task_info(0x1234, 1, info, &n);
	if (kr)
		return kr;
	return n == 10 && info[9] == 10 ? 0 : -1;
}

int bench_vm_read(void)
{
	vm_offset_t data = 0;
	mach_msg_type_number_t n = 0;
	kern_return_t kr = vm_read(0x1234, 0x10000, 4096, &data, &n);
	if (kr)
		return kr;
	kr = n == 4096 && ((unsigned char *) data)[4095] == 0xab ? 0 : -1;
	free((void *) data);
	return kr;
}
"#;

/// The C server functions (linked into GNU MIG's server library; the other routines are
/// GNU MIG's weak defaults).
const BENCH_SERVER_C: &str = r#"
#include "@SERVER_H@"
#include <string.h>

static unsigned char bench_page[4096] = { [4095] = 0xab };

kern_return_t vm_protect(mach_port_t target_task, vm_address_t address, vm_size_t size,
			 boolean_t set_maximum, vm_prot_t new_protection)
{
	(void) target_task; (void) address; (void) size; (void) set_maximum;
	return new_protection == 3 ? KERN_SUCCESS : KERN_INVALID_ARGUMENT;
}

kern_return_t task_info(mach_port_t target_task, int flavor, task_info_t task_info_out,
			mach_msg_type_number_t *task_info_outCnt)
{
	mach_msg_type_number_t i, n = *task_info_outCnt < 10 ? *task_info_outCnt : 10;
	(void) target_task;
	for (i = 0; i < n; i++)
		task_info_out[i] = (integer_t) i + flavor;
	*task_info_outCnt = n;
	return KERN_SUCCESS;
}

kern_return_t vm_read(mach_port_t target_task, vm_address_t address, vm_size_t size,
		      vm_offset_t *data, mach_msg_type_number_t *dataCnt)
{
	(void) target_task; (void) address;
	*data = (vm_offset_t) bench_page;
	*dataCnt = size < sizeof bench_page ? size : sizeof bench_page;
	return KERN_SUCCESS;
}
"#;

/// One side's calls of the [`ROUTINES`]; each returns 0 on success.
struct Side {
    calls: [Box<dyn Fn() -> i32>; 3],
}

impl Side {
    fn call(&self, routine: usize) -> i32 {
        (self.calls[routine])()
    }
}

/// GNU MIG's side: the client library with the C loopback, wired to the server library's
/// demux.
fn c_side() -> Result<Side, String> {
    use mig_conformance::harness::{self, AutoVarInit, BuildOptions, Library, StubSide};
    use mig_conformance::{Oracle, Outputs};
    let oracle = Oracle::locate().map_err(|e| format!("{e:?}"))?;
    let defs = oracle.include_dir().join("mach/mach.defs");
    let run = oracle
        .run(&defs, &[], Outputs::ALL)
        .map_err(|e| e.to_string())?;
    let server_h = run.sheader_h.clone().ok_or("GNU MIG wrote no Server.h")?;
    let opts = |name: &str, text: String| BuildOptions {
        extra_sources: vec![(name.into(), text)],
        cflags: vec!["-O2".into(), "-ftls-model=initial-exec".into()],
        auto_var_init: AutoVarInit::Uninitialized,
        ..BuildOptions::default()
    };
    let server = harness::build_library(
        &oracle,
        &run,
        StubSide::Server,
        &opts(
            "bench_server.c",
            BENCH_SERVER_C.replace("@SERVER_H@", &server_h.display().to_string()),
        ),
    )
    .and_then(|p| Library::open(&p))
    .map_err(|e| e.to_string())?;
    let user = harness::build_library(
        &oracle,
        &run,
        StubSide::User,
        &opts("bench_client.c", BENCH_CLIENT_C.into()),
    )
    .and_then(|p| Library::open(&p))
    .map_err(|e| e.to_string())?;
    let demux = server.address("mach_server").map_err(|e| e.to_string())?;
    // SAFETY: the signatures match BENCH_CLIENT_C.
    let (setup, vm_protect, task_info, vm_read) = unsafe {
        (
            user.symbol::<extern "C" fn(*mut std::ffi::c_void)>("bench_setup"),
            user.symbol::<extern "C" fn() -> c_int>("bench_vm_protect"),
            user.symbol::<extern "C" fn() -> c_int>("bench_task_info"),
            user.symbol::<extern "C" fn() -> c_int>("bench_vm_read"),
        )
    };
    let e = |e: mig_conformance::OracleError| e.to_string();
    let (setup, vm_protect, task_info, vm_read) = (
        setup.map_err(e)?,
        vm_protect.map_err(e)?,
        task_info.map_err(e)?,
        vm_read.map_err(e)?,
    );
    setup(demux);
    Ok(Side {
        calls: [
            Box::new(move || vm_protect()),
            Box::new(move || task_info()),
            Box::new(move || vm_read()),
        ],
    })
}

#[cfg(conformance_oracle)]
mod rust_side {
    use super::mach;
    use mig_runtime::loopback::Loopback;
    use mig_runtime::{
        KernReturn, MsgBuf, OolBuffer, PortName, SendRight, SpaceId, Target, Transport,
    };

    /// The page the server keeps, aligned as GCC aligns the C side's `bench_page` (a
    /// `[u8; N]` static alone may sit at any address, and a misaligned source slows the copy).
    #[repr(C, align(32))]
    struct Page([u8; 4096]);

    static PAGE: Page = Page({
        let mut p = [0u8; 4096];
        p[4095] = 0xab;
        p
    });

    pub struct Srv;

    impl mach::server::MachServer for Srv {
        fn vm_protect(
            &self,
            _target_task: PortName,
            _address: mach::vm_address_t,
            _size: mach::vm_size_t,
            _set_maximum: mach::boolean_t,
            new_protection: mach::vm_prot_t,
        ) -> Result<(), KernReturn> {
            if new_protection == 3 {
                Ok(())
            } else {
                Err(KernReturn::KERN_INVALID_ARGUMENT)
            }
        }

        fn task_info(
            &self,
            _target_task: PortName,
            flavor: i32,
            task_info_out_cnt: u32,
        ) -> Result<Vec<i32>, KernReturn> {
            Ok((0..task_info_out_cnt.min(10) as i32)
                .map(|i| i + flavor)
                .collect())
        }

        // What the demux calls: writes into the reply, as the C server function does.
        fn task_info_into(
            &self,
            _target_task: PortName,
            flavor: i32,
            task_info_out_cnt: u32,
            out: &mut [i32],
        ) -> Result<usize, KernReturn> {
            let n = (task_info_out_cnt.min(10) as usize).min(out.len());
            for (i, x) in out[..n].iter_mut().enumerate() {
                *x = i as i32 + flavor;
            }
            Ok(n)
        }

        fn vm_read(
            &self,
            _target_task: PortName,
            _address: mach::vm_address_t,
            size: mach::vm_size_t,
        ) -> Result<OolBuffer, KernReturn> {
            // The page the server keeps, as the C server hands out `bench_page`.
            Ok(OolBuffer::from_static(
                &PAGE.0[..(size as usize).min(PAGE.0.len())],
            ))
        }
    }

    pub struct Demux(pub Srv);

    impl mig_runtime::Demux for Demux {
        fn demux(&self, request: &mut MsgBuf<'_>, reply: &mut MsgBuf<'_>) -> bool {
            mach::server::mach_server(&self.0, request, reply)
        }
    }

    pub struct Client {
        pub t: Loopback<Demux>,
        pub task: SendRight,
        /// The caller's `task_info` buffer (C's is an uninitialized stack array; a Rust
        /// caller keeps an initialized one).
        pub info: std::cell::RefCell<[i32; 1024]>,
    }

    impl Client {
        pub fn new() -> Client {
            Client {
                t: Loopback::new(Demux(Srv), Target::X86_64),
                task: SendRight::from_raw(SpaceId::SELF, PortName(0x1234)),
                info: std::cell::RefCell::new([0; 1024]),
            }
        }
        fn code<T>(r: Result<T, mig_runtime::RpcError>) -> i32 {
            match r {
                Ok(_) => 0,
                Err(e) => e.code().0,
            }
        }
        pub fn vm_protect(&self) -> i32 {
            Self::code(mach::client::vm_protect(
                &self.t, &self.task, 0x10000, 0x2000, 0, 3,
            ))
        }
        pub fn task_info(&self) -> i32 {
            let mut info = self.info.borrow_mut();
            match mach::client::task_info_into(&self.t, &self.task, 1, &mut *info) {
                Ok(n) if n == 10 && info[9] == 10 => 0,
                Ok(_) => -1,
                Err(e) => e.code().0,
            }
        }
        pub fn vm_read(&self) -> i32 {
            match mach::client::vm_read(&self.t, &self.task, 0x10000, 4096) {
                Ok(b) if b.len() == 4096 && b[4095] == 0xab => 0,
                Ok(_) => -1,
                Err(e) => e.code().0,
            }
        }
    }

    // The transport is only used from this thread.
    #[allow(dead_code)]
    fn _assert_transport(c: &Client) -> &dyn Transport {
        &c.t
    }
}

#[cfg(conformance_oracle)]
fn rust_side() -> Side {
    use std::rc::Rc;
    let c = Rc::new(rust_side::Client::new());
    let (a, b, d) = (c.clone(), c.clone(), c);
    Side {
        calls: [
            Box::new(move || a.vm_protect()),
            Box::new(move || b.task_info()),
            Box::new(move || d.vm_read()),
        ],
    }
}

const ROUTINES: [&str; 3] = ["vm_protect", "task_info", "vm_read"];

/// Median ns per call of `side.call(routine)` over alternating blocks.
fn interleaved(rust: &Side, c: &Side, rounds: usize) {
    eprintln!("\ninterleaved comparison ({rounds} alternating blocks per side, medians):");
    for (r, name) in ROUTINES.iter().enumerate() {
        // A block of about 20 ms.
        let mut n = 1u32;
        loop {
            let t = Instant::now();
            for _ in 0..n {
                black_box(c.call(r));
            }
            if t.elapsed() > Duration::from_millis(20) || n > 1 << 26 {
                break;
            }
            n *= 2;
        }
        let mut rs = Vec::new();
        let mut cs = Vec::new();
        for _ in 0..rounds {
            for (side, out) in [(rust, &mut rs), (c, &mut cs)] {
                let t = Instant::now();
                for _ in 0..n {
                    black_box(side.call(r));
                }
                out.push(t.elapsed().as_nanos() as f64 / f64::from(n));
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (mr, mc) = (med(&mut rs), med(&mut cs));
        eprintln!(
            "  {name:<11} mig-rs {mr:8.1} ns/RPC   GNU MIG {mc:8.1} ns/RPC   ratio mig-rs/GNU MIG {:.2}",
            mr / mc
        );
    }
}

#[cfg(conformance_oracle)]
fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let c = match c_side() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIP: loopback bench: GNU MIG's side is not available: {e}");
            return;
        }
    };
    let rust = rust_side();
    for (r, name) in ROUTINES.iter().enumerate() {
        let (a, b) = (rust.call(r), c.call(r));
        assert!(
            a == 0 && b == 0,
            "{name}: mig-rs returned {a:#x}, GNU MIG {b:#x}"
        );
    }
    // For profilers: `LOOPBACK_PROFILE=<routine>[:c]` loops over one side for 5 s.
    if let Ok(p) = std::env::var("LOOPBACK_PROFILE") {
        let (name, side) = match p.split_once(':') {
            Some((n, "c")) => (n.to_string(), &c),
            _ => (p.clone(), &rust),
        };
        let r = ROUTINES.iter().position(|x| *x == name).unwrap_or(0);
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < Duration::from_secs(5) {
            for _ in 0..1000 {
                black_box(side.call(r));
            }
            n += 1000;
        }
        eprintln!(
            "{p}: {n} calls, {:.1} ns/RPC",
            t.elapsed().as_nanos() as f64 / n as f64
        );
        return;
    }
    if !bench {
        eprintln!("loopback bench: both sides answer; run with `cargo bench` to measure");
        return;
    }
    let rounds = std::env::var("MIG_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(31);
    // `MIG_BENCH_INTERLEAVED_ONLY=1`: only the interleaved comparison (for repeating it in
    // several processes, whose code and data layouts differ).
    if std::env::var_os("MIG_BENCH_INTERLEAVED_ONLY").is_some() {
        interleaved(&rust, &c, rounds);
        return;
    }
    let mut crit = criterion::Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (r, name) in ROUTINES.iter().enumerate() {
        let mut g = crit.benchmark_group(format!("loopback/{name}"));
        g.bench_function("mig-rs", |b| b.iter(|| black_box(rust.call(r))));
        g.bench_function("GNU MIG", |b| b.iter(|| black_box(c.call(r))));
        g.finish();
    }
    crit.final_summary();
    interleaved(&rust, &c, rounds);
}

#[cfg(not(conformance_oracle))]
fn main() {
    let _ = (c_side, interleaved, BENCH_CLIENT_C);
    eprintln!(
        "SKIP: loopback bench: the GNU MIG oracle was not found when mig-conformance was built; fetch it with `{}`",
        mig_conformance::oracle::FETCH_COMMAND
    );
}
