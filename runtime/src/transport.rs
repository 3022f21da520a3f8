//! What generated stubs need from the kernel: `mach_msg` and reply ports.
//!
//! On a real GNU Mach system a transport issues the `mach_msg` trap; in tests and examples the
//! userspace IPC ([`crate::ipc`]) implements it. The trait is `no_std`.

use crate::msg::MsgBuf;
use crate::rights::SpaceId;
use crate::wire::{KernReturn, PortName, Target};
use core::fmt;

/// The kernel interface generated stubs call (GNU MIG's `mach_msg`, `mig_get_reply_port`,
/// `mig_put_reply_port`, `mig_dealloc_reply_port`).
pub trait Transport {
    /// `mach_msg(msg, option, send_size, rcv_size, rcv_name, timeout, notify)`: sends the
    /// first `send_size` bytes of `msg` if `option` has `MACH_SEND_MSG`, then receives into
    /// `msg` (at most `rcv_size` bytes, never more than its capacity) if it has
    /// `MACH_RCV_MSG`. Returns `MACH_MSG_SUCCESS` (0) or a `MACH_SEND_*`/`MACH_RCV_*` code.
    ///
    /// Out-of-line data to send must be attached to `msg` (see [`crate::msg`]); received
    /// regions are recorded in it.
    #[allow(clippy::too_many_arguments)]
    fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        option: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: PortName,
        timeout: u32,
        notify: PortName,
    ) -> KernReturn;

    /// `mig_get_reply_port()`: the calling thread's reply port (a receive right), created on
    /// first use.
    fn get_reply_port(&self) -> PortName;

    /// `mig_put_reply_port(port)`: the RPC is over (glibc: does nothing).
    fn put_reply_port(&self, _port: PortName) {}

    /// `mig_dealloc_reply_port(port)`: the reply port may hold a stale reply; destroy the
    /// calling thread's reply port so the next call makes a fresh one (glibc ignores the
    /// argument).
    fn dealloc_reply_port(&self, port: PortName);

    /// The IPC space that names in messages refer to (for typed rights).
    fn space(&self) -> SpaceId;

    /// The message layout this transport speaks (x86_64 unless it says otherwise). Generic
    /// code such as the server loop uses it to find the reply's `RetCode`.
    fn target(&self) -> Target {
        Target::X86_64
    }
}

impl<T: Transport + ?Sized> Transport for &T {
    fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        option: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: PortName,
        timeout: u32,
        notify: PortName,
    ) -> KernReturn {
        (**self).mach_msg(msg, option, send_size, rcv_size, rcv_name, timeout, notify)
    }
    fn get_reply_port(&self) -> PortName {
        (**self).get_reply_port()
    }
    fn put_reply_port(&self, port: PortName) {
        (**self).put_reply_port(port)
    }
    fn dealloc_reply_port(&self, port: PortName) {
        (**self).dealloc_reply_port(port)
    }
    fn space(&self) -> SpaceId {
        (**self).space()
    }
    fn target(&self) -> Target {
        (**self).target()
    }
}

/// Why a client stub call failed. [`RpcError::code`] gives the `kern_return_t` GNU MIG's C
/// stub would have returned.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcError {
    /// The server answered with this `RetCode`: the routine's own error, or the server
    /// stub's `MIG_BAD_ID` / `MIG_BAD_ARGUMENTS`.
    Server(KernReturn),
    /// The client stub refused: `MIG_TYPE_ERROR`, `MIG_REPLY_MISMATCH`,
    /// `MIG_ARRAY_TOO_LARGE`, `MIG_SERVER_DIED`.
    Mig(KernReturn),
    /// `mach_msg` failed: a `MACH_SEND_*` or `MACH_RCV_*` code.
    Transport(KernReturn),
}

impl RpcError {
    /// The `kern_return_t` a C stub would return.
    pub const fn code(self) -> KernReturn {
        match self {
            RpcError::Server(k) | RpcError::Mig(k) | RpcError::Transport(k) => k,
        }
    }
}

impl fmt::Debug for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Server(k) => write!(f, "Server({k:?})"),
            RpcError::Mig(k) => write!(f, "Mig({k:?})"),
            RpcError::Transport(k) => write!(f, "Transport({k:?})"),
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Server(k) => write!(f, "server returned {k}"),
            RpcError::Mig(k) => write!(f, "bad reply: {k}"),
            RpcError::Transport(k) => write!(f, "mach_msg failed: {k}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RpcError {}

impl From<RpcError> for KernReturn {
    fn from(e: RpcError) -> KernReturn {
        e.code()
    }
}

/// A server-side message handler: GNU MIG's demux signature. Returns `false` when the
/// message id is not this server's (the reply then carries `MIG_BAD_ID`), so demuxers chain.
pub trait Demux {
    fn demux(&self, request: &mut MsgBuf<'_>, reply: &mut MsgBuf<'_>) -> bool;
}

impl<F> Demux for F
where
    F: Fn(&mut MsgBuf<'_>, &mut MsgBuf<'_>) -> bool,
{
    fn demux(&self, request: &mut MsgBuf<'_>, reply: &mut MsgBuf<'_>) -> bool {
        self(request, reply)
    }
}
