//! Server loops: glibc's `mach_msg_server`/`mach_msg_server_timeout`, and a multithreaded
//! variant in the manner of the Hurd's libports (`ports_manage_port_operations_multithread`).
//!
//! The loop (bminor/glibc `mach/msgserver.c`):
//!
//! 1. receive a request (`MACH_RCV_MSG | option`, at most `max_size` bytes);
//! 2. call the demuxer, which writes a reply (at least a `mig_reply_header_t`);
//! 3. `RetCode == MIG_NO_REPLY`: send nothing, go to 1;
//!    any other non-zero `RetCode`: destroy the request ([`crate::destroy`]) after nulling its
//!    `msgh_remote_port`, so the reply right survives for the error reply;
//! 4. a reply whose `msgh_remote_port` is null is dropped (destroyed if complex), go to 1;
//! 5. otherwise send the reply and receive the next request in one `mach_msg`
//!    (`MACH_SEND_MSG | MACH_RCV_MSG | option`), swapping the two buffers, and go to 2.
//!
//! Errors: `MACH_RCV_TOO_LARGE` grows the buffers when `MACH_RCV_LARGE` is in use (with
//! `max_size == 0` the loop starts at two pages with `MACH_RCV_LARGE`, like glibc), otherwise
//! the request is lost and the loop goes on; `MACH_SEND_INVALID_DEST` (the client went away)
//! destroys the reply and goes on; anything else is returned.

use crate::destroy::mach_msg_destroy_with;
use crate::msg::MsgBuf;
use crate::transport::{Demux, Transport};
use crate::wire::{bytes, header, msg_return as mr, msgh_bits, option, KernReturn, PortName};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const PAGE: u32 = 4096;

/// `mach_msg_server(demux, max_size, rcv_name)`: serves until a receive fails. A
/// `max_size` of 0 means "two pages, growing as needed" (`MACH_RCV_LARGE`).
pub fn mach_msg_server<D, T>(
    demux: &D,
    max_size: u32,
    rcv_name: PortName,
    transport: &T,
) -> KernReturn
where
    D: Demux + ?Sized,
    T: Transport + ?Sized,
{
    mach_msg_server_timeout(demux, max_size, rcv_name, option::NONE, 0, transport)
}

/// `mach_msg_server_timeout(demux, max_size, rcv_name, option, timeout)`: like
/// [`mach_msg_server`], with extra `mach_msg` options (typically `MACH_RCV_TIMEOUT`, which
/// makes the loop return `MACH_RCV_TIMED_OUT` once idle for `timeout` ms).
pub fn mach_msg_server_timeout<D, T>(
    demux: &D,
    max_size: u32,
    rcv_name: PortName,
    option: u32,
    timeout: u32,
    transport: &T,
) -> KernReturn
where
    D: Demux + ?Sized,
    T: Transport + ?Sized,
{
    serve(demux, max_size, rcv_name, option, timeout, transport, None)
}

fn remote(msg: &MsgBuf<'_>) -> PortName {
    PortName(bytes::get_u32(msg.bytes(), header::REMOTE).unwrap_or(0))
}

fn bits(msg: &MsgBuf<'_>) -> u32 {
    bytes::get_u32(msg.bytes(), header::BITS).unwrap_or(0)
}

/// Prepares the reply buffer for the demuxer: no stale header, no stale regions.
fn reset_reply(reply: &mut MsgBuf<'_>, n: usize) {
    reply.clear_ool();
    let b = reply.bytes_mut();
    let n = n.min(b.len());
    b[..n].fill(0);
}

/// Steps 2–4 of the loop for one received `request`: resets `reply`, calls the demuxer,
/// destroys the request if the demuxer failed (keeping the reply right for the error
/// reply), and drops a reply that has no destination. Returns whether `reply` is to be
/// sent. For server loops of one's own (a pool with other receive rules, a kernel that
/// serves messages in the sender's thread), so that they answer exactly as this one does.
pub fn handle_request<D, T>(
    demux: &D,
    request: &mut MsgBuf<'_>,
    reply: &mut MsgBuf<'_>,
    transport: &T,
) -> bool
where
    D: Demux + ?Sized,
    T: Transport + ?Sized,
{
    let target = transport.target();
    reset_reply(reply, target.reply_header_size() as usize);
    demux.demux(request, reply);
    // A reply too short to hold a `RetCode` reads as success with a null remote port (it
    // is then dropped).
    match crate::stub::retcode(reply.bytes(), target) {
        KernReturn::KERN_SUCCESS => {}
        KernReturn::MIG_NO_REPLY => return false,
        _ => {
            // Keep the reply right for the error reply.
            let _ = bytes::put_u32(request.bytes_mut(), header::REMOTE, 0);
            if target == crate::wire::Target::X86_64 {
                let _ = bytes::put_u32(request.bytes_mut(), header::REMOTE + 4, 0);
            }
            mach_msg_destroy_with(request, target, transport);
        }
    }
    if remote(reply).is_null() {
        if bits(reply) & msgh_bits::COMPLEX != 0 {
            mach_msg_destroy_with(reply, target, transport);
        }
        return false;
    }
    true
}

fn serve<D, T>(
    demux: &D,
    max_size: u32,
    rcv_name: PortName,
    mut opt: u32,
    timeout: u32,
    transport: &T,
    stop: Option<&AtomicBool>,
) -> KernReturn
where
    D: Demux + ?Sized,
    T: Transport + ?Sized,
{
    let target = transport.target();
    let mut max = max_size;
    if max == 0 {
        opt |= option::RCV_LARGE;
        max = 2 * PAGE;
    }
    let mut request = MsgBuf::with_capacity(max as usize);
    let mut reply = MsgBuf::with_capacity(max as usize);
    let stopped = || stop.is_some_and(|s| s.load(Ordering::Acquire));
    'get_request: loop {
        if stopped() {
            return KernReturn::KERN_SUCCESS;
        }
        let mut r = transport.mach_msg(
            &mut request,
            option::RCV_MSG | opt,
            0,
            max,
            rcv_name,
            timeout,
            PortName::NULL,
        );
        while r.0 as u32 == mr::SUCCESS {
            if !handle_request(demux, &mut request, &mut reply, transport) {
                continue 'get_request;
            }
            core::mem::swap(&mut request, &mut reply);
            let size = request.msgh_size();
            if stopped() {
                r = transport.mach_msg(
                    &mut request,
                    option::SEND_MSG | (opt & !option::RCV_TIMEOUT),
                    size,
                    0,
                    PortName::NULL,
                    timeout,
                    PortName::NULL,
                );
                if r.0 as u32 == mr::SEND_INVALID_DEST {
                    mach_msg_destroy_with(&mut request, target, transport);
                }
                return KernReturn::KERN_SUCCESS;
            }
            r = transport.mach_msg(
                &mut request,
                option::SEND_MSG | option::RCV_MSG | opt,
                size,
                max,
                rcv_name,
                timeout,
                PortName::NULL,
            );
        }
        match r.0 as u32 {
            mr::RCV_TOO_LARGE if opt & option::RCV_LARGE != 0 => {
                // The request is still queued; its size is in our header.
                let need = request.msgh_size().max(max);
                if need > max {
                    max = need;
                    request.reserve(max as usize);
                    reply.reserve(max as usize);
                }
            }
            mr::RCV_TOO_LARGE | mr::RCV_INVALID_DATA => {}
            mr::SEND_INVALID_DEST => mach_msg_destroy_with(&mut request, target, transport),
            mr::RCV_TIMED_OUT if stop.is_some() => {}
            _ => return r,
        }
    }
}

/// A flag that stops a [`mach_msg_server_threads`] pool. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    pub fn new() -> StopHandle {
        StopHandle::default()
    }
    /// Asks the servers to stop: each thread finishes the request it is handling (sending
    /// its reply) and returns within one poll interval.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// How often idle pool threads look at their [`StopHandle`] (ms).
pub const POOL_POLL_MS: u32 = 20;

/// `threads` threads serving `rcv_name` (a port or a port set) concurrently, each with its
/// own buffers, like libports' multithreaded manager. Returns once `stop` is stopped and every
/// thread has finished (`KERN_SUCCESS`), or with the first error a thread hit (the others are
/// stopped then).
pub fn mach_msg_server_threads<D, T>(
    demux: &D,
    max_size: u32,
    rcv_name: PortName,
    transport: &T,
    threads: usize,
    stop: &StopHandle,
) -> KernReturn
where
    D: Demux + Sync + ?Sized,
    T: Transport + Sync + ?Sized,
{
    let flag = &*stop.0;
    run_threads(threads, || {
        let r = serve(
            demux,
            max_size,
            rcv_name,
            option::RCV_TIMEOUT,
            POOL_POLL_MS,
            transport,
            Some(flag),
        );
        if r != KernReturn::KERN_SUCCESS {
            flag.store(true, Ordering::Release);
        }
        r
    })
}

/// Runs `thread` on `threads` (at least one) scoped threads and returns the first error
/// any of them returned (a thread that panicked counts as `KERN_FAILURE`), or
/// `KERN_SUCCESS`. The skeleton of a multithreaded server: `thread` is one server loop,
/// which stops the others when it fails.
pub fn run_threads<F>(threads: usize, thread: F) -> KernReturn
where
    F: Fn() -> KernReturn + Sync,
{
    let thread = &thread;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1)).map(|_| s.spawn(thread)).collect();
        let mut result = KernReturn::KERN_SUCCESS;
        for h in handles {
            let r = h.join().unwrap_or(KernReturn::KERN_FAILURE);
            if result == KernReturn::KERN_SUCCESS {
                result = r;
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::MsgBuilder;
    use crate::ipc::{Kernel, PortType, Task};
    use crate::msg::OolBuffer;
    use crate::rights::RightKind;
    use crate::wire::{notify, type_name as tn, Target, TypeDesc};
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    const X: Target = Target::X86_64;

    /// Writes a MIG-style reply header (what a generated demuxer does first).
    fn init_reply(req: &MsgBuf<'_>, rep: &mut MsgBuf<'_>, code: KernReturn) {
        let h = req.header(X).unwrap();
        let m = MsgBuilder::new(X)
            .header(
                msgh_bits::make(msgh_bits::remote(h.bits), 0),
                h.remote,
                PortName::NULL,
                h.id + 100,
            )
            .int32(code.0)
            .finish();
        rep.bytes_mut()[..m.len()].copy_from_slice(&m);
    }

    fn rpc(
        cli: &Task,
        dest: PortName,
        id: i32,
        body: impl FnOnce(MsgBuilder) -> MsgBuilder,
        attach: Option<OolBuffer>,
    ) -> (KernReturn, MsgBuf<'static>) {
        let reply = cli.get_reply_port();
        let mut b = MsgBuf::with_capacity(16 * 1024);
        let a = attach.map(|o| b.attach_ool_owned(o)).unwrap_or(0);
        let m = body(MsgBuilder::new(X).header(
            msgh_bits::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE) | msgh_bits::COMPLEX,
            dest,
            reply,
            id,
        ));
        let m = if a != 0 { m.ool_bytes(8, a, true) } else { m }.finish();
        b.bytes_mut()[..m.len()].copy_from_slice(&m);
        let r = cli.mach_msg(
            &mut b,
            option::SEND_MSG | option::RCV_MSG | option::RCV_TIMEOUT,
            m.len() as u32,
            512,
            reply,
            5000,
            PortName::NULL,
        );
        (r, b)
    }

    fn retcode_of(b: &MsgBuf<'_>) -> i32 {
        bytes::get_u32(b.bytes(), 40).unwrap() as i32
    }

    #[test]
    fn server_loop_semantics() {
        let k = Kernel::new();
        let srv = k.new_task();
        let cli = k.new_task();
        let port = srv.port_allocate(RightKind::Receive).unwrap();
        let s = srv.transfer_right(port, tn::MAKE_SEND, &cli).unwrap();
        let held = std::sync::Mutex::new(Vec::new());
        let calls = AtomicU32::new(0);
        let demux = |req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>| {
            calls.fetch_add(1, Ordering::Relaxed);
            let h = req.header(X).unwrap();
            match h.id {
                // Success: echo.
                1 => init_reply(req, rep, KernReturn::KERN_SUCCESS),
                // An error: the loop must destroy the request's rights and memory.
                2 => init_reply(req, rep, KernReturn::KERN_INVALID_ARGUMENT),
                // No reply now: keep the reply right for later.
                3 => {
                    init_reply(req, rep, KernReturn::MIG_NO_REPLY);
                    held.lock().unwrap().push(h.remote);
                }
                // Unknown id: MIG_BAD_ID, like a generated demuxer.
                _ => {
                    init_reply(req, rep, KernReturn::MIG_BAD_ID);
                    return false;
                }
            }
            true
        };
        std::thread::scope(|sc| {
            let srv2 = &srv;
            let d = &demux;
            let h = sc.spawn(move || mach_msg_server(d, 0, port, srv2));
            let (r, b) = rpc(&cli, s, 1, |m| m, None);
            assert_eq!(r, KernReturn::KERN_SUCCESS);
            assert_eq!((b.header(X).unwrap().id, retcode_of(&b)), (101, 0));
            // The error path: the request carried a send right and memory; both are gone.
            let extra = cli.port_allocate(RightKind::Receive).unwrap();
            let (r, b) = rpc(
                &cli,
                s,
                2,
                |m| m.port(tn::MAKE_SEND, extra),
                Some(OolBuffer::copy_from(&[1; 8])),
            );
            assert_eq!(r, KernReturn::KERN_SUCCESS);
            assert_eq!(retcode_of(&b), KernReturn::KERN_INVALID_ARGUMENT.0);
            assert_eq!(b.header(X).unwrap().size, 48);
            assert!(!cli.port_get_receive_status(extra).unwrap().srights);
            assert_eq!(k.stats().ool_bytes, 0);
            let (r, b) = rpc(&cli, s, 77, |m| m, None);
            assert_eq!(r, KernReturn::KERN_SUCCESS);
            assert_eq!(retcode_of(&b), KernReturn::MIG_BAD_ID.0);
            // MIG_NO_REPLY: nothing comes back until the server answers later.
            let cli2 = cli.clone();
            let waiter = sc.spawn(move || rpc(&cli2, s, 3, |m| m, None));
            while held.lock().unwrap().is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let so = held.lock().unwrap()[0];
            assert_eq!(srv.port_type(so), Ok(PortType::SEND_ONCE));
            let late = MsgBuilder::new(X)
                .header(
                    msgh_bits::make(tn::MOVE_SEND_ONCE, 0),
                    so,
                    PortName::NULL,
                    103,
                )
                .int32(0)
                .finish();
            let mut lb = MsgBuf::from_bytes(&late);
            assert_eq!(
                srv.mach_msg(
                    &mut lb,
                    option::SEND_MSG,
                    48,
                    0,
                    PortName::NULL,
                    0,
                    PortName::NULL
                ),
                KernReturn::KERN_SUCCESS
            );
            let (r, b) = waiter.join().unwrap();
            assert_eq!(
                (r, b.header(X).unwrap().id),
                (KernReturn::KERN_SUCCESS, 103)
            );
            // A simpleroutine (no reply port): the reply is dropped.
            let m = MsgBuilder::new(X)
                .header(msgh_bits::make(tn::COPY_SEND, 0), s, PortName::NULL, 1)
                .finish();
            let mut mb2 = MsgBuf::from_bytes(&m);
            cli.mach_msg(
                &mut mb2,
                option::SEND_MSG,
                32,
                0,
                PortName::NULL,
                0,
                PortName::NULL,
            );
            // A request too large for two pages grows the buffers (MACH_RCV_LARGE).
            let big = vec![b'z'; 10_000];
            let (r, b) = rpc(&cli, s, 1, |m| m.chars(&big), None);
            assert_eq!((r, retcode_of(&b)), (KernReturn::KERN_SUCCESS, 0));
            // A client that goes away: the reply cannot be delivered, the loop goes on.
            let gone = k.new_task();
            let gs = srv.transfer_right(port, tn::MAKE_SEND, &gone).unwrap();
            let greply = gone.port_allocate(RightKind::Receive).unwrap();
            let m = MsgBuilder::new(X)
                .header(msgh_bits::make(tn::COPY_SEND, tn::MAKE_SEND), gs, greply, 1)
                .finish();
            let mut gb = MsgBuf::from_bytes(&m);
            gone.mach_msg(
                &mut gb,
                option::SEND_MSG,
                32,
                0,
                PortName::NULL,
                0,
                PortName::NULL,
            );
            gone.terminate();
            let (r, _) = rpc(&cli, s, 1, |m| m, None);
            assert_eq!(r, KernReturn::KERN_SUCCESS);
            // Destroying the port ends the loop.
            srv.port_destroy(port).unwrap();
            assert_eq!(h.join().unwrap(), KernReturn(mr::RCV_PORT_DIED as i32));
        });
        assert!(calls.load(Ordering::Relaxed) >= 7);
        // Only the server's task port and the held reply right are left.
        let snap = srv.space_snapshot();
        assert!(
            snap.values().all(|(t, _)| *t != PortType::SEND_ONCE),
            "{snap:?}"
        );
        drop((srv, cli));
        let st = k.stats();
        assert_eq!((st.ports, st.messages, st.ool_bytes), (0, 0, 0), "{st:?}");
    }

    #[test]
    fn server_timeout_returns_when_idle() {
        let k = Kernel::new();
        let srv = k.new_task();
        let port = srv.port_allocate(RightKind::Receive).unwrap();
        let demux = |_: &mut MsgBuf<'_>, _: &mut MsgBuf<'_>| true;
        let r = mach_msg_server_timeout(&demux, 256, port, option::RCV_TIMEOUT, 10, &srv);
        assert_eq!(r, KernReturn(mr::RCV_TIMED_OUT as i32));
        let r = mach_msg_server(&demux, 256, PortName(0x4444), &srv);
        assert_eq!(r, KernReturn(mr::RCV_INVALID_NAME as i32));
    }

    #[test]
    fn threaded_pool_serves_a_port_set_and_stops() {
        let k = Kernel::new();
        let srv = k.new_task();
        let set = srv.port_allocate(RightKind::PortSet).unwrap();
        let ports: Vec<PortName> = (0..4)
            .map(|_| {
                let p = srv.port_allocate(RightKind::Receive).unwrap();
                srv.port_move_member(p, set).unwrap();
                p
            })
            .collect();
        let served = AtomicU32::new(0);
        let threads_seen = std::sync::Mutex::new(std::collections::HashSet::new());
        let demux = |req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>| {
            served.fetch_add(1, Ordering::Relaxed);
            threads_seen
                .lock()
                .unwrap()
                .insert(std::thread::current().id());
            std::thread::sleep(Duration::from_micros(200));
            init_reply(req, rep, KernReturn::KERN_SUCCESS);
            true
        };
        let stop = StopHandle::new();
        std::thread::scope(|sc| {
            let (d, s2, st) = (&demux, &srv, &stop);
            let pool = sc.spawn(move || mach_msg_server_threads(d, 512, set, s2, 3, st));
            let mut clients = Vec::new();
            for i in 0..6 {
                let c = k.new_task();
                let name = srv.transfer_right(ports[i % 4], tn::MAKE_SEND, &c).unwrap();
                clients.push(sc.spawn(move || {
                    for _ in 0..20 {
                        let (r, b) = rpc(&c, name, 5, |m| m.int32(1), None);
                        assert_eq!((r, retcode_of(&b)), (KernReturn::KERN_SUCCESS, 0));
                    }
                }));
            }
            for c in clients {
                c.join().unwrap();
            }
            stop.stop();
            assert_eq!(pool.join().unwrap(), KernReturn::KERN_SUCCESS);
        });
        assert_eq!(served.load(Ordering::Relaxed), 120);
        assert!(threads_seen.lock().unwrap().len() > 1);
        let _ = notify::SEND_ONCE;
        let _ = TypeDesc::inline(0, 0, 0);
    }
}
