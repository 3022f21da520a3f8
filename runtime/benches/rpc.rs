//! RPC round trip through the userspace IPC versus a minimal channel baseline.
//!
//! * `ipc_rpc`: a client thread does `mach_msg(SEND|RCV)` with a 64-byte request on a
//!   server port and a 64-byte reply on its MIG reply port; a server thread receives with
//!   `mach_msg(RCV)` and answers with `mach_msg(SEND|RCV)` (glibc's server loop pattern). The
//!   server writes its reply into its buffer as a stub would (a prebuilt 64-byte template plus
//!   the two header fields that vary), allocating nothing, like the channel servers.
//! * `ipc_rpc_server_loop`: the same, with the server running `mach_msg_server` and a
//!   demuxer closure.
//! * `mpsc_rpc` / `crossbeam_rpc`: the same bytes moved through a request channel and a
//!   reply channel between the same two threads.
//!
//! * `ipc_send_recv_one_thread` / `crossbeam_send_recv_one_thread`: the CPU cost of one
//!   message through the kernel, without any thread switch.
//! * Finally an interleaved comparison (alternating blocks of each kind, medians), which
//!   stays meaningful when other processes load the machine.
//!
//! Run: `cargo bench -p mig-runtime --bench rpc`; `cargo bench -p mig-runtime --bench rpc --
//! interleaved` runs only the interleaved comparison.

use criterion::{criterion_group, Criterion};
use mig_runtime::build::MsgBuilder;
use mig_runtime::ipc::{Kernel, Task};
use mig_runtime::msg::MsgBuf;
use mig_runtime::server::mach_msg_server;
use mig_runtime::transport::Transport;
use mig_runtime::wire::{
    bytes, header, msgh_bits as mb, option as opt, type_name as tn, PortName, Target,
};
use mig_runtime::{KernReturn, RightKind};
use std::hint::black_box;
use std::sync::mpsc;
use std::time::Duration;

const X: Target = Target::X86_64;
const STOP: i32 = 999;

fn request(dest: PortName, reply: PortName, id: i32) -> Vec<u8> {
    let m = MsgBuilder::new(X)
        .header(mb::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE), dest, reply, id)
        .chars(&[b'q'; 24])
        .finish();
    assert_eq!(m.len(), 64);
    m
}

fn reply_msg(remote: PortName, id: i32) -> Vec<u8> {
    MsgBuilder::new(X)
        .header(
            mb::make(tn::MOVE_SEND_ONCE, 0),
            remote,
            PortName::NULL,
            id + 100,
        )
        .chars(&[b'r'; 24])
        .finish()
}

thread_local! {
    /// The reply, built once per thread: a server stub writes its reply's fields into the
    /// buffer, it does not allocate (and the crossbeam server allocates nothing either).
    static REPLY: Vec<u8> = reply_msg(PortName::NULL, -100);
}

/// Writes the 64-byte reply to `remote` for request `id` into `buf` (copy of a prebuilt
/// template, then the two header fields that vary).
fn reply_into(buf: &mut MsgBuf<'_>, remote: PortName, id: i32) -> u32 {
    let b = buf.bytes_mut();
    REPLY.with(|r| b[..64].copy_from_slice(r));
    let _ = bytes::put_u32(b, header::REMOTE, remote.0);
    let _ = bytes::put_u32(b, header::id(X), (id + 100) as u32);
    64
}

/// A client task with a send right to a server thread answering `reply_into` replies over
/// the userspace IPC (glibc's loop: receive, then send + receive), until a `STOP` request.
struct IpcEcho {
    _kernel: Kernel,
    cli: Task,
    reply: PortName,
    req: Vec<u8>,
    stop: Vec<u8>,
    server: std::thread::JoinHandle<()>,
}

impl IpcEcho {
    fn start() -> IpcEcho {
        let k = Kernel::new();
        let srv = k.new_task();
        let cli = k.new_task();
        let port = srv.port_allocate(RightKind::Receive).unwrap();
        let sname = srv.transfer_right(port, tn::MAKE_SEND, &cli).unwrap();
        let server = std::thread::spawn(move || {
            let mut b = MsgBuf::with_capacity(256);
            let mut r = srv.mach_msg(&mut b, opt::RCV_MSG, 0, 256, port, 0, PortName::NULL);
            while r == KernReturn::KERN_SUCCESS {
                let h = b.header(X).unwrap();
                let n = reply_into(&mut b, h.remote, h.id);
                if h.id == STOP {
                    srv.mach_msg(
                        &mut b,
                        opt::SEND_MSG,
                        n,
                        0,
                        PortName::NULL,
                        0,
                        PortName::NULL,
                    );
                    break;
                }
                r = srv.mach_msg(
                    &mut b,
                    opt::SEND_MSG | opt::RCV_MSG,
                    n,
                    256,
                    port,
                    0,
                    PortName::NULL,
                );
            }
        });
        let reply = cli.get_reply_port();
        IpcEcho {
            _kernel: k,
            req: request(sname, reply, 1),
            stop: request(sname, reply, STOP),
            cli,
            reply,
            server,
        }
    }

    /// One RPC (`msg` is the 64-byte request); the reply is left in `b`.
    fn call(&self, b: &mut MsgBuf<'_>, msg: &[u8]) -> KernReturn {
        b.bytes_mut()[..64].copy_from_slice(msg);
        self.cli.mach_msg(
            b,
            opt::SEND_MSG | opt::RCV_MSG,
            64,
            256,
            self.reply,
            0,
            PortName::NULL,
        )
    }

    fn rpc(&self, b: &mut MsgBuf<'_>) {
        assert_eq!(self.call(b, &self.req), KernReturn::KERN_SUCCESS);
    }

    fn stop(self, b: &mut MsgBuf<'_>) {
        self.call(b, &self.stop);
        self.server.join().unwrap();
    }
}

fn bench_ipc(c: &mut Criterion) {
    let echo = IpcEcho::start();
    let mut b = MsgBuf::with_capacity(256);
    c.bench_function("ipc_rpc", |bn| {
        bn.iter(|| {
            echo.rpc(&mut b);
            black_box(bytes::get_u32(b.bytes(), 40).unwrap());
        })
    });
    echo.stop(&mut b);
}

fn bench_ipc_server_loop(c: &mut Criterion) {
    let k = Kernel::new();
    let srv = k.new_task();
    let cli = k.new_task();
    let port = srv.port_allocate(RightKind::Receive).unwrap();
    let sname = srv.transfer_right(port, tn::MAKE_SEND, &cli).unwrap();
    let server = {
        let srv = srv.clone();
        std::thread::spawn(move || {
            let demux = |req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>| {
                let h = req.header(X).unwrap();
                reply_into(rep, h.remote, h.id);
                true
            };
            mach_msg_server_timeout_until_dead(&demux, &srv, port)
        })
    };
    let reply = cli.get_reply_port();
    let req = request(sname, reply, 1);
    let mut b = MsgBuf::with_capacity(256);
    c.bench_function("ipc_rpc_server_loop", |bn| {
        bn.iter(|| {
            b.bytes_mut()[..64].copy_from_slice(&req);
            let r = cli.mach_msg(
                &mut b,
                opt::SEND_MSG | opt::RCV_MSG,
                64,
                256,
                reply,
                0,
                PortName::NULL,
            );
            assert_eq!(r, KernReturn::KERN_SUCCESS);
            black_box(bytes::get_u32(b.bytes(), 40).unwrap());
        })
    });
    // Destroying the port ends the server loop with MACH_RCV_PORT_DIED.
    srv.port_destroy(port).unwrap();
    server.join().unwrap();
}

fn mach_msg_server_timeout_until_dead<D: mig_runtime::Demux>(
    demux: &D,
    t: &impl Transport,
    port: PortName,
) -> KernReturn {
    mach_msg_server(demux, 256, port, t)
}

fn bench_mpsc(c: &mut Criterion) {
    let (req_tx, req_rx) = mpsc::channel::<[u8; 64]>();
    let (rep_tx, rep_rx) = mpsc::channel::<[u8; 64]>();
    let server = std::thread::spawn(move || {
        while let Ok(m) = req_rx.recv() {
            let mut r = m;
            r[0] = r[0].wrapping_add(1);
            if rep_tx.send(r).is_err() {
                break;
            }
        }
    });
    let msg = [7u8; 64];
    c.bench_function("mpsc_rpc", |bn| {
        bn.iter(|| {
            req_tx.send(black_box(msg)).unwrap();
            black_box(rep_rx.recv().unwrap());
        })
    });
    drop(req_tx);
    server.join().unwrap();
}

fn bench_crossbeam(c: &mut Criterion) {
    let (req_tx, req_rx) = crossbeam_channel::unbounded::<[u8; 64]>();
    let (rep_tx, rep_rx) = crossbeam_channel::unbounded::<[u8; 64]>();
    let server = std::thread::spawn(move || {
        while let Ok(m) = req_rx.recv() {
            let mut r = m;
            r[0] = r[0].wrapping_add(1);
            if rep_tx.send(r).is_err() {
                break;
            }
        }
    });
    let msg = [7u8; 64];
    c.bench_function("crossbeam_rpc", |bn| {
        bn.iter(|| {
            req_tx.send(black_box(msg)).unwrap();
            black_box(rep_rx.recv().unwrap());
        })
    });
    drop(req_tx);
    server.join().unwrap();
}

/// The kernel's CPU cost without any thread switch: one thread sends a 64-byte message to
/// its own port and receives it (one `mach_msg(SEND|RCV)`), versus a crossbeam channel
/// send + receive on one thread.
fn bench_same_thread(c: &mut Criterion) {
    let k = Kernel::new();
    let t = k.new_task();
    let port = t.port_allocate(RightKind::Receive).unwrap();
    t.port_insert_right(port, port, tn::MAKE_SEND).unwrap();
    let m = MsgBuilder::new(X)
        .header(mb::make(tn::COPY_SEND, 0), port, PortName::NULL, 1)
        .chars(&[b'q'; 24])
        .finish();
    let mut b = MsgBuf::with_capacity(256);
    c.bench_function("ipc_send_recv_one_thread", |bn| {
        bn.iter(|| {
            b.bytes_mut()[..64].copy_from_slice(&m);
            let r = t.mach_msg(
                &mut b,
                opt::SEND_MSG | opt::RCV_MSG,
                64,
                256,
                port,
                0,
                PortName::NULL,
            );
            assert_eq!(r, KernReturn::KERN_SUCCESS);
        })
    });
    let (tx, rx) = crossbeam_channel::unbounded::<[u8; 64]>();
    c.bench_function("crossbeam_send_recv_one_thread", |bn| {
        bn.iter(|| {
            tx.send(black_box([7u8; 64])).unwrap();
            black_box(rx.recv().unwrap());
        })
    });
}

/// Alternating blocks of RPCs of each kind, so that load from other processes hits all
/// kinds alike; prints the median ns per RPC of each kind and the ratios.
fn interleaved() {
    const ROUNDS: usize = 31;
    const BLOCK: u32 = 3000;
    let echo = IpcEcho::start();
    let (cq_tx, cq_rx) = crossbeam_channel::unbounded::<[u8; 64]>();
    let (cr_tx, cr_rx) = crossbeam_channel::unbounded::<[u8; 64]>();
    let cb_server = std::thread::spawn(move || {
        while let Ok(m) = cq_rx.recv() {
            let mut r = m;
            r[0] = r[0].wrapping_add(1);
            if cr_tx.send(r).is_err() {
                break;
            }
        }
    });
    let (mq_tx, mq_rx) = mpsc::channel::<[u8; 64]>();
    let (mr_tx, mr_rx) = mpsc::channel::<[u8; 64]>();
    let mpsc_server = std::thread::spawn(move || {
        while let Ok(m) = mq_rx.recv() {
            let mut r = m;
            r[0] = r[0].wrapping_add(1);
            if mr_tx.send(r).is_err() {
                break;
            }
        }
    });
    let mut b = MsgBuf::with_capacity(256);
    let mut times: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        let t0 = std::time::Instant::now();
        for _ in 0..BLOCK {
            echo.rpc(&mut b);
        }
        times[0].push(t0.elapsed().as_nanos() as f64 / f64::from(BLOCK));
        let t0 = std::time::Instant::now();
        for _ in 0..BLOCK {
            cq_tx.send(black_box([7u8; 64])).unwrap();
            black_box(cr_rx.recv().unwrap());
        }
        times[1].push(t0.elapsed().as_nanos() as f64 / f64::from(BLOCK));
        let t0 = std::time::Instant::now();
        for _ in 0..BLOCK / 10 {
            mq_tx.send(black_box([7u8; 64])).unwrap();
            black_box(mr_rx.recv().unwrap());
        }
        times[2].push(t0.elapsed().as_nanos() as f64 / f64::from(BLOCK / 10));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let ipc = median(&mut times[0]);
    let cb = median(&mut times[1]);
    let ms = median(&mut times[2]);
    println!("interleaved medians over {ROUNDS} rounds: ipc_rpc {ipc:.0} ns, crossbeam_rpc {cb:.0} ns, mpsc_rpc {ms:.0} ns");
    println!(
        "ratio ipc/crossbeam = {:.2}, ipc/mpsc = {:.2}",
        ipc / cb,
        ipc / ms
    );
    echo.stop(&mut b);
    drop(cq_tx);
    cb_server.join().unwrap();
    drop(mq_tx);
    mpsc_server.join().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_mpsc, bench_crossbeam, bench_ipc, bench_ipc_server_loop, bench_same_thread
}

fn main() {
    let mut check = MsgBuf::with_capacity(256);
    reply_into(&mut check, PortName(0x1234), 7);
    assert_eq!(&check.bytes()[..64], &reply_msg(PortName(0x1234), 7)[..]);
    benches();
    // Only under `cargo bench` (not `cargo test --all-targets`), and not when criterion is
    // given a filter naming other benchmarks.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let filtered = args.iter().any(|a| !a.starts_with('-'));
    if bench && (!filtered || args.iter().any(|a| a == "interleaved")) {
        interleaved();
    }
    Criterion::default().configure_from_args().final_summary();
}
