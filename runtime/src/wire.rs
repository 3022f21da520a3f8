//! GNU Mach "typed" message wire format: constants, header, type descriptors.
//!
//! This module is the single place where the layout of GNU Mach messages is written down.
//! The code generator (`mig-rs`) computes message layouts with [`Target`] and encodes its
//! descriptor templates with [`TypeDesc::encode`]; generated stubs, the userspace IPC and the
//! trace printer decode with the same functions. Nothing here allocates or panics on
//! arbitrary input: decoders return [`WireError`].
//!
//! Layouts (from the GNU Mach headers of Debian 13, `mach/message.h`):
//!
//! | item | i386 | x86_64 |
//! |---|---|---|
//! | `mach_msg_header_t` | 24 bytes, 4-byte port fields | 32 bytes, 8-byte port fields |
//! | `mach_msg_type_t` | 4 bytes: name 8, size 8, number 12, inline, longform, dealloc, unused | 8 bytes: name 8, size 16, unused 5, inline, longform, dealloc; then number u32 |
//! | `mach_msg_type_long_t` | 12 bytes: header word, name u16, size u16, number u32 | 8 bytes, same as the short form with longform set |
//! | body alignment | 4 | 8 |

use core::fmt;

/// A port name in a task's IPC space (`mach_port_name_t`, always 32 bits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PortName(pub u32);

impl PortName {
    /// `MACH_PORT_NULL`.
    pub const NULL: PortName = PortName(0);
    /// `MACH_PORT_DEAD`.
    pub const DEAD: PortName = PortName(!0);

    /// `MACH_PORT_VALID`: neither null nor dead.
    pub const fn is_valid(self) -> bool {
        self.0 != 0 && self.0 != !0
    }
    /// True for `MACH_PORT_NULL`.
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
    /// True for `MACH_PORT_DEAD`.
    pub const fn is_dead(self) -> bool {
        self.0 == !0
    }
}

impl fmt::Debug for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PortName::NULL => f.write_str("MACH_PORT_NULL"),
            PortName::DEAD => f.write_str("MACH_PORT_DEAD"),
            PortName(n) => write!(f, "port#{n:#x}"),
        }
    }
}

/// `mach_msg_type_name_t` values (`MACH_MSG_TYPE_*`).
pub mod type_name {
    pub const UNSTRUCTURED: u32 = 0;
    pub const BIT: u32 = 0;
    pub const BOOLEAN: u32 = 0;
    pub const INTEGER_16: u32 = 1;
    pub const INTEGER_32: u32 = 2;
    pub const CHAR: u32 = 8;
    pub const BYTE: u32 = 9;
    pub const INTEGER_8: u32 = 9;
    pub const REAL: u32 = 10;
    pub const INTEGER_64: u32 = 11;
    pub const STRING: u32 = 12;
    pub const STRING_C: u32 = 12;
    pub const PORT_NAME: u32 = 15;
    pub const MOVE_RECEIVE: u32 = 16;
    pub const MOVE_SEND: u32 = 17;
    pub const MOVE_SEND_ONCE: u32 = 18;
    pub const COPY_SEND: u32 = 19;
    pub const MAKE_SEND: u32 = 20;
    pub const MAKE_SEND_ONCE: u32 = 21;
    pub const PORT_RECEIVE: u32 = MOVE_RECEIVE;
    pub const PORT_SEND: u32 = MOVE_SEND;
    pub const PORT_SEND_ONCE: u32 = MOVE_SEND_ONCE;
    pub const PROTECTED_PAYLOAD: u32 = 23;
    pub const LAST: u32 = 23;
    /// `MACH_MSG_TYPE_POLYMORPHIC`: decided at run time.
    pub const POLYMORPHIC: u32 = !0;

    /// `MACH_MSG_TYPE_PORT_ANY`: a port right disposition or received right (16..=21).
    pub const fn is_port_any(n: u32) -> bool {
        n >= MOVE_RECEIVE && n <= MAKE_SEND_ONCE
    }
    /// `MACH_MSG_TYPE_PORT_ANY_SEND`: any disposition that results in a send or send-once right.
    pub const fn is_port_any_send(n: u32) -> bool {
        n >= MOVE_SEND && n <= MAKE_SEND_ONCE
    }
    /// `MACH_MSG_TYPE_PORT_ANY_RIGHT`: a right as received (16..=18).
    pub const fn is_port_any_right(n: u32) -> bool {
        n >= PORT_RECEIVE && n <= PORT_SEND_ONCE
    }
    /// The received form of a disposition: what the kernel writes on copyout.
    pub const fn received_form(n: u32) -> u32 {
        match n {
            MOVE_RECEIVE => PORT_RECEIVE,
            MOVE_SEND | COPY_SEND | MAKE_SEND => PORT_SEND,
            MOVE_SEND_ONCE | MAKE_SEND_ONCE => PORT_SEND_ONCE,
            other => other,
        }
    }
    /// The C spelling of a type name, for traces and generated documentation.
    pub const fn c_name(n: u32) -> &'static str {
        match n {
            0 => "MACH_MSG_TYPE_UNSTRUCTURED",
            1 => "MACH_MSG_TYPE_INTEGER_16",
            2 => "MACH_MSG_TYPE_INTEGER_32",
            8 => "MACH_MSG_TYPE_CHAR",
            9 => "MACH_MSG_TYPE_BYTE",
            10 => "MACH_MSG_TYPE_REAL",
            11 => "MACH_MSG_TYPE_INTEGER_64",
            12 => "MACH_MSG_TYPE_STRING_C",
            15 => "MACH_MSG_TYPE_PORT_NAME",
            16 => "MACH_MSG_TYPE_MOVE_RECEIVE",
            17 => "MACH_MSG_TYPE_MOVE_SEND",
            18 => "MACH_MSG_TYPE_MOVE_SEND_ONCE",
            19 => "MACH_MSG_TYPE_COPY_SEND",
            20 => "MACH_MSG_TYPE_MAKE_SEND",
            21 => "MACH_MSG_TYPE_MAKE_SEND_ONCE",
            23 => "MACH_MSG_TYPE_PROTECTED_PAYLOAD",
            0xffff_ffff => "MACH_MSG_TYPE_POLYMORPHIC",
            _ => "(unknown)",
        }
    }
}

/// `msgh_bits` values (`MACH_MSGH_BITS_*`).
pub mod msgh_bits {
    pub const ZERO: u32 = 0;
    pub const REMOTE_MASK: u32 = 0x0000_00ff;
    pub const LOCAL_MASK: u32 = 0x0000_ff00;
    pub const COMPLEX: u32 = 0x8000_0000;
    pub const CIRCULAR: u32 = 0x4000_0000;
    pub const COMPLEX_PORTS: u32 = 0x2000_0000;
    pub const COMPLEX_DATA: u32 = 0x1000_0000;
    pub const MIGRATED: u32 = 0x0800_0000;
    pub const UNUSED: u32 = 0x07ff_0000;
    pub const PORTS_MASK: u32 = REMOTE_MASK | LOCAL_MASK;

    /// `MACH_MSGH_BITS(remote, local)`.
    pub const fn make(remote: u32, local: u32) -> u32 {
        remote | (local << 8)
    }
    /// `MACH_MSGH_BITS_REMOTE(bits)`.
    pub const fn remote(bits: u32) -> u32 {
        bits & REMOTE_MASK
    }
    /// `MACH_MSGH_BITS_LOCAL(bits)`.
    pub const fn local(bits: u32) -> u32 {
        (bits & LOCAL_MASK) >> 8
    }
    /// `MACH_MSGH_BITS_PORTS(bits)`.
    pub const fn ports(bits: u32) -> u32 {
        bits & PORTS_MASK
    }
    /// `MACH_MSGH_BITS_OTHER(bits)`.
    pub const fn other(bits: u32) -> u32 {
        bits & !PORTS_MASK
    }
}

/// `mach_msg` option bits.
pub mod option {
    pub const NONE: u32 = 0x0000_0000;
    pub const SEND_MSG: u32 = 0x0000_0001;
    pub const RCV_MSG: u32 = 0x0000_0002;
    pub const SEND_TIMEOUT: u32 = 0x0000_0010;
    pub const SEND_NOTIFY: u32 = 0x0000_0020;
    pub const SEND_INTERRUPT: u32 = 0x0000_0040;
    pub const SEND_CANCEL: u32 = 0x0000_0080;
    pub const RCV_TIMEOUT: u32 = 0x0000_0100;
    pub const RCV_NOTIFY: u32 = 0x0000_0200;
    pub const RCV_INTERRUPT: u32 = 0x0000_0400;
    pub const RCV_LARGE: u32 = 0x0000_0800;
    pub const SEND_ALWAYS: u32 = 0x0001_0000;
}

/// `MACH_MSG_TIMEOUT_NONE`.
pub const MSG_TIMEOUT_NONE: u32 = 0;

/// `mach_msg` return codes (`MACH_SEND_*`, `MACH_RCV_*`).
pub mod msg_return {
    pub const SUCCESS: u32 = 0x0000_0000;
    pub const MASK: u32 = 0x0000_3c00;
    pub const IPC_SPACE: u32 = 0x0000_2000;
    pub const VM_SPACE: u32 = 0x0000_1000;
    pub const IPC_KERNEL: u32 = 0x0000_0800;
    pub const VM_KERNEL: u32 = 0x0000_0400;

    /// Whether `code` is a `MACH_SEND_*` error (system 4, subsystem 0, any space bits): the
    /// message was not sent, so the rights moved into it are still the sender's.
    #[inline]
    pub const fn is_send_error(code: u32) -> bool {
        code & 0xffff_c000 == 0x1000_0000
    }

    pub const SEND_IN_PROGRESS: u32 = 0x1000_0001;
    pub const SEND_INVALID_DATA: u32 = 0x1000_0002;
    pub const SEND_INVALID_DEST: u32 = 0x1000_0003;
    pub const SEND_TIMED_OUT: u32 = 0x1000_0004;
    pub const SEND_WILL_NOTIFY: u32 = 0x1000_0005;
    pub const SEND_NOTIFY_IN_PROGRESS: u32 = 0x1000_0006;
    pub const SEND_INTERRUPTED: u32 = 0x1000_0007;
    pub const SEND_MSG_TOO_SMALL: u32 = 0x1000_0008;
    pub const SEND_INVALID_REPLY: u32 = 0x1000_0009;
    pub const SEND_INVALID_RIGHT: u32 = 0x1000_000a;
    pub const SEND_INVALID_NOTIFY: u32 = 0x1000_000b;
    pub const SEND_INVALID_MEMORY: u32 = 0x1000_000c;
    pub const SEND_NO_BUFFER: u32 = 0x1000_000d;
    pub const SEND_NO_NOTIFY: u32 = 0x1000_000e;
    pub const SEND_INVALID_TYPE: u32 = 0x1000_000f;
    pub const SEND_INVALID_HEADER: u32 = 0x1000_0010;

    pub const RCV_IN_PROGRESS: u32 = 0x1000_4001;
    pub const RCV_INVALID_NAME: u32 = 0x1000_4002;
    pub const RCV_TIMED_OUT: u32 = 0x1000_4003;
    pub const RCV_TOO_LARGE: u32 = 0x1000_4004;
    pub const RCV_INTERRUPTED: u32 = 0x1000_4005;
    pub const RCV_PORT_CHANGED: u32 = 0x1000_4006;
    pub const RCV_INVALID_NOTIFY: u32 = 0x1000_4007;
    pub const RCV_INVALID_DATA: u32 = 0x1000_4008;
    pub const RCV_PORT_DIED: u32 = 0x1000_4009;
    pub const RCV_IN_SET: u32 = 0x1000_400a;
    pub const RCV_HEADER_ERROR: u32 = 0x1000_400b;
    pub const RCV_BODY_ERROR: u32 = 0x1000_400c;

    /// The symbolic name of a `mach_msg` return code, if it has one.
    pub const fn name(code: u32) -> Option<&'static str> {
        Some(match code {
            SUCCESS => "MACH_MSG_SUCCESS",
            SEND_IN_PROGRESS => "MACH_SEND_IN_PROGRESS",
            SEND_INVALID_DATA => "MACH_SEND_INVALID_DATA",
            SEND_INVALID_DEST => "MACH_SEND_INVALID_DEST",
            SEND_TIMED_OUT => "MACH_SEND_TIMED_OUT",
            SEND_WILL_NOTIFY => "MACH_SEND_WILL_NOTIFY",
            SEND_NOTIFY_IN_PROGRESS => "MACH_SEND_NOTIFY_IN_PROGRESS",
            SEND_INTERRUPTED => "MACH_SEND_INTERRUPTED",
            SEND_MSG_TOO_SMALL => "MACH_SEND_MSG_TOO_SMALL",
            SEND_INVALID_REPLY => "MACH_SEND_INVALID_REPLY",
            SEND_INVALID_RIGHT => "MACH_SEND_INVALID_RIGHT",
            SEND_INVALID_NOTIFY => "MACH_SEND_INVALID_NOTIFY",
            SEND_INVALID_MEMORY => "MACH_SEND_INVALID_MEMORY",
            SEND_NO_BUFFER => "MACH_SEND_NO_BUFFER",
            SEND_NO_NOTIFY => "MACH_SEND_NO_NOTIFY",
            SEND_INVALID_TYPE => "MACH_SEND_INVALID_TYPE",
            SEND_INVALID_HEADER => "MACH_SEND_INVALID_HEADER",
            RCV_IN_PROGRESS => "MACH_RCV_IN_PROGRESS",
            RCV_INVALID_NAME => "MACH_RCV_INVALID_NAME",
            RCV_TIMED_OUT => "MACH_RCV_TIMED_OUT",
            RCV_TOO_LARGE => "MACH_RCV_TOO_LARGE",
            RCV_INTERRUPTED => "MACH_RCV_INTERRUPTED",
            RCV_PORT_CHANGED => "MACH_RCV_PORT_CHANGED",
            RCV_INVALID_NOTIFY => "MACH_RCV_INVALID_NOTIFY",
            RCV_INVALID_DATA => "MACH_RCV_INVALID_DATA",
            RCV_PORT_DIED => "MACH_RCV_PORT_DIED",
            RCV_IN_SET => "MACH_RCV_IN_SET",
            RCV_HEADER_ERROR => "MACH_RCV_HEADER_ERROR",
            RCV_BODY_ERROR => "MACH_RCV_BODY_ERROR",
            _ => return None,
        })
    }
}

/// Notification message ids (`mach/notify.h`, octal in C).
pub mod notify {
    pub const FIRST: i32 = 0o100;
    pub const PORT_DELETED: i32 = 0o101;
    pub const MSG_ACCEPTED: i32 = 0o102;
    pub const PORT_DESTROYED: i32 = 0o105;
    pub const NO_SENDERS: i32 = 0o106;
    pub const SEND_ONCE: i32 = 0o107;
    pub const DEAD_NAME: i32 = 0o110;
    /// `MACH_NOTIFY_FIRST + 015` in `mach/notify.h`.
    pub const LAST: i32 = 0o115;
}

/// A `kern_return_t`: the result of a kernel call or of a MIG server routine.
///
/// Zero is success; kernel errors (`KERN_*`), `mach_msg` errors and MIG errors (`MIG_*`,
/// negative) share the same 32-bit space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct KernReturn(pub i32);

macro_rules! kern_codes {
    ($( $(#[$m:meta])* $name:ident = $val:expr ),* $(,)?) => {
        impl KernReturn {
            $( $(#[$m])* pub const $name: KernReturn = KernReturn($val); )*

            /// The symbolic name of this code (`KERN_SUCCESS`, `MIG_BAD_ID`, `MACH_SEND_INVALID_DEST`…),
            /// if it has one.
            pub const fn name(self) -> Option<&'static str> {
                $( if self.0 == $val { return Some(stringify!($name)); } )*
                msg_return::name(self.0 as u32)
            }
        }
    };
}

kern_codes! {
    KERN_SUCCESS = 0,
    KERN_INVALID_ADDRESS = 1,
    KERN_PROTECTION_FAILURE = 2,
    KERN_NO_SPACE = 3,
    KERN_INVALID_ARGUMENT = 4,
    KERN_FAILURE = 5,
    KERN_RESOURCE_SHORTAGE = 6,
    KERN_NOT_RECEIVER = 7,
    KERN_NO_ACCESS = 8,
    KERN_MEMORY_FAILURE = 9,
    KERN_MEMORY_ERROR = 10,
    KERN_NOT_IN_SET = 12,
    KERN_NAME_EXISTS = 13,
    KERN_ABORTED = 14,
    KERN_INVALID_NAME = 15,
    KERN_INVALID_TASK = 16,
    KERN_INVALID_RIGHT = 17,
    KERN_INVALID_VALUE = 18,
    KERN_UREFS_OVERFLOW = 19,
    KERN_INVALID_CAPABILITY = 20,
    KERN_RIGHT_EXISTS = 21,
    KERN_INVALID_HOST = 22,
    KERN_MEMORY_PRESENT = 23,
    KERN_WRITE_PROTECTION_FAILURE = 24,
    KERN_TERMINATED = 26,
    KERN_TIMEDOUT = 27,
    KERN_INTERRUPTED = 28,
    /// Client: bad reply size, complex bit or descriptor.
    MIG_TYPE_ERROR = -300,
    /// Client: reply `msgh_id` is not request id + 100.
    MIG_REPLY_MISMATCH = -301,
    MIG_REMOTE_ERROR = -302,
    /// Server: unknown message id.
    MIG_BAD_ID = -303,
    /// Server: request size, complex bit or descriptor check failed.
    MIG_BAD_ARGUMENTS = -304,
    /// Server routine result meaning "send no reply".
    MIG_NO_REPLY = -305,
    MIG_EXCEPTION = -306,
    /// Client: array larger than the declared maximum or the caller's buffer.
    MIG_ARRAY_TOO_LARGE = -307,
    /// Client: the reply was a send-once notification (the server died).
    MIG_SERVER_DIED = -308,
    MIG_DESTROY_REQUEST = -309,
}

impl KernReturn {
    /// `KERN_SUCCESS`?
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }
    /// `Ok(())` for `KERN_SUCCESS`, else `Err(self)`.
    pub const fn result(self) -> Result<(), KernReturn> {
        if self.0 == 0 {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Debug for KernReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "KernReturn({:#x})", self.0),
        }
    }
}

impl fmt::Display for KernReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "error {:#x}", self.0),
        }
    }
}

/// Why a buffer could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer ends before the item does.
    Truncated { needed: usize, available: usize },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { needed, available } => {
                write!(
                    f,
                    "message truncated: needs {needed} bytes, has {available}"
                )
            }
        }
    }
}

/// The machine a message layout is for. GNU MIG fixes this when MIG itself is built;
/// mig-rs takes it as an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Target {
    /// GNU Mach x86_64 with 64-bit userland (Debian 13's layout).
    #[default]
    X86_64,
    /// GNU Mach i386.
    I386,
}

impl Target {
    /// Every supported target.
    pub const ALL: [Target; 2] = [Target::X86_64, Target::I386];

    /// The target's conventional name (`x86_64`, `i386`).
    pub const fn name(self) -> &'static str {
        match self {
            Target::X86_64 => "x86_64",
            Target::I386 => "i386",
        }
    }
    /// Parses `x86_64`/`amd64`/`i386`/`i686`.
    pub fn from_name(s: &str) -> Option<Target> {
        match s {
            "x86_64" | "amd64" | "x86-64" => Some(Target::X86_64),
            "i386" | "i486" | "i586" | "i686" | "x86" => Some(Target::I386),
            _ => None,
        }
    }
    /// `sizeof(mach_msg_header_t)`.
    pub const fn header_size(self) -> u32 {
        match self {
            Target::X86_64 => 32,
            Target::I386 => 24,
        }
    }
    /// `sizeof(mach_msg_type_t)`.
    pub const fn type_size(self) -> u32 {
        match self {
            Target::X86_64 => 8,
            Target::I386 => 4,
        }
    }
    /// `sizeof(mach_msg_type_long_t)`.
    pub const fn type_long_size(self) -> u32 {
        match self {
            Target::X86_64 => 8,
            Target::I386 => 12,
        }
    }
    /// Size of a descriptor in short or long form.
    pub const fn desc_size(self, long: bool) -> u32 {
        if long {
            self.type_long_size()
        } else {
            self.type_size()
        }
    }
    /// MIG's `complex_alignof` and the kernel's `MACH_MSG_USER_ALIGNMENT`: every body item
    /// starts at a multiple of this.
    pub const fn align(self) -> u32 {
        match self {
            Target::X86_64 => 8,
            Target::I386 => 4,
        }
    }
    /// `sizeof(void *)`: the size of an out-of-line address in a message.
    pub const fn pointer_size(self) -> u32 {
        match self {
            Target::X86_64 => 8,
            Target::I386 => 4,
        }
    }
    /// Bytes of one port right inline in a message (`mach_port_name_inlined_t` on x86_64).
    pub const fn port_size(self) -> u32 {
        match self {
            Target::X86_64 => 8,
            Target::I386 => 4,
        }
    }
    /// Bytes of one port name in an out-of-line port array (`mach_port_name_t`).
    pub const fn port_name_size(self) -> u32 {
        4
    }
    /// Bytes of `int`.
    pub const fn int_size(self) -> u32 {
        4
    }
    /// Bytes of `uintptr_t` / `long`.
    pub const fn word_size(self) -> u32 {
        self.pointer_size()
    }
    /// `sizeof(mig_reply_header_t)`: header, RetCode descriptor, RetCode (and padding).
    pub const fn reply_header_size(self) -> u32 {
        align_up(self.header_size() + self.type_size() + 4, self.align())
    }
    /// Offset of the `RetCode` value in a reply.
    pub const fn retcode_offset(self) -> u32 {
        self.header_size() + self.type_size()
    }
    /// Rounds `n` up to the target's body alignment.
    pub const fn align_up(self, n: u32) -> u32 {
        align_up(n, self.align())
    }
}

/// Rounds `n` up to a multiple of `a` (a power of two).
pub const fn align_up(n: u32, a: u32) -> u32 {
    (n + a - 1) & !(a - 1)
}

/// Little-endian readers and writers over byte slices. Out-of-range accesses are reported,
/// never a panic.
pub mod bytes {
    use super::WireError;

    #[inline]
    fn range(buf_len: usize, off: usize, n: usize) -> Result<core::ops::Range<usize>, WireError> {
        match off.checked_add(n) {
            Some(end) if end <= buf_len => Ok(off..end),
            _ => Err(WireError::Truncated {
                needed: off.saturating_add(n),
                available: buf_len,
            }),
        }
    }

    /// Reads a little-endian `u16` at `off`.
    #[inline]
    pub fn get_u16(buf: &[u8], off: usize) -> Result<u16, WireError> {
        let r = range(buf.len(), off, 2)?;
        let mut b = [0u8; 2];
        b.copy_from_slice(&buf[r]);
        Ok(u16::from_le_bytes(b))
    }
    /// Reads a little-endian `u32` at `off`.
    #[inline]
    pub fn get_u32(buf: &[u8], off: usize) -> Result<u32, WireError> {
        let r = range(buf.len(), off, 4)?;
        let mut b = [0u8; 4];
        b.copy_from_slice(&buf[r]);
        Ok(u32::from_le_bytes(b))
    }
    /// Reads a little-endian `u64` at `off`.
    #[inline]
    pub fn get_u64(buf: &[u8], off: usize) -> Result<u64, WireError> {
        let r = range(buf.len(), off, 8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[r]);
        Ok(u64::from_le_bytes(b))
    }
    /// Writes a little-endian `u16` at `off`.
    #[inline]
    pub fn put_u16(buf: &mut [u8], off: usize, v: u16) -> Result<(), WireError> {
        let r = range(buf.len(), off, 2)?;
        buf[r].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }
    /// Writes a little-endian `u32` at `off`.
    #[inline]
    pub fn put_u32(buf: &mut [u8], off: usize, v: u32) -> Result<(), WireError> {
        let r = range(buf.len(), off, 4)?;
        buf[r].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }
    /// Writes a little-endian `u64` at `off`.
    #[inline]
    pub fn put_u64(buf: &mut [u8], off: usize, v: u64) -> Result<(), WireError> {
        let r = range(buf.len(), off, 8)?;
        buf[r].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }
    /// Borrows `n` bytes at `off`.
    #[inline]
    pub fn slice(buf: &[u8], off: usize, n: usize) -> Result<&[u8], WireError> {
        let r = range(buf.len(), off, n)?;
        Ok(&buf[r])
    }
    /// Mutably borrows `n` bytes at `off`.
    #[inline]
    pub fn slice_mut(buf: &mut [u8], off: usize, n: usize) -> Result<&mut [u8], WireError> {
        let r = range(buf.len(), off, n)?;
        Ok(&mut buf[r])
    }
}

/// `mach_msg_header_t`, target-independent. Port fields hold the 32-bit name; on x86_64 the
/// wire slot is 8 bytes (a union with `rpc_uintptr_t`), whose upper half is written as zero,
/// or the whole 64-bit protected payload when `local` carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MsgHeader {
    pub bits: u32,
    pub size: u32,
    pub remote: PortName,
    /// The local (reply) port name, or the low half of a protected payload.
    pub local: PortName,
    /// Upper 32 bits of the local slot on x86_64 (protected payloads); zero otherwise.
    pub local_high: u32,
    pub seqno: u32,
    pub id: i32,
}

/// Header field offsets per target.
pub mod header {
    use super::Target;
    pub const BITS: usize = 0;
    pub const SIZE: usize = 4;
    pub const REMOTE: usize = 8;
    /// Offset of `msgh_local_port`.
    pub const fn local(t: Target) -> usize {
        match t {
            Target::X86_64 => 16,
            Target::I386 => 12,
        }
    }
    /// Offset of `msgh_seqno`.
    pub const fn seqno(t: Target) -> usize {
        match t {
            Target::X86_64 => 24,
            Target::I386 => 16,
        }
    }
    /// Offset of `msgh_id`.
    pub const fn id(t: Target) -> usize {
        match t {
            Target::X86_64 => 28,
            Target::I386 => 20,
        }
    }
}

impl MsgHeader {
    /// Writes the header at the start of `buf`.
    pub fn encode(&self, t: Target, buf: &mut [u8]) -> Result<(), WireError> {
        let n = t.header_size() as usize;
        let b = bytes::slice_mut(buf, 0, n)?;
        b[0..4].copy_from_slice(&self.bits.to_le_bytes());
        b[4..8].copy_from_slice(&self.size.to_le_bytes());
        match t {
            Target::X86_64 => {
                b[8..16].copy_from_slice(&(self.remote.0 as u64).to_le_bytes());
                let local = (self.local.0 as u64) | ((self.local_high as u64) << 32);
                b[16..24].copy_from_slice(&local.to_le_bytes());
                b[24..28].copy_from_slice(&self.seqno.to_le_bytes());
                b[28..32].copy_from_slice(&self.id.to_le_bytes());
            }
            Target::I386 => {
                b[8..12].copy_from_slice(&self.remote.0.to_le_bytes());
                b[12..16].copy_from_slice(&self.local.0.to_le_bytes());
                b[16..20].copy_from_slice(&self.seqno.to_le_bytes());
                b[20..24].copy_from_slice(&self.id.to_le_bytes());
            }
        }
        Ok(())
    }

    /// Reads the header at the start of `buf`.
    pub fn decode(t: Target, buf: &[u8]) -> Result<MsgHeader, WireError> {
        let b = bytes::slice(buf, 0, t.header_size() as usize)?;
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        Ok(match t {
            Target::X86_64 => MsgHeader {
                bits: u32_at(0),
                size: u32_at(4),
                remote: PortName(u32_at(8)),
                local: PortName(u32_at(16)),
                local_high: u32_at(20),
                seqno: u32_at(24),
                id: u32_at(28) as i32,
            },
            Target::I386 => MsgHeader {
                bits: u32_at(0),
                size: u32_at(4),
                remote: PortName(u32_at(8)),
                local: PortName(u32_at(12)),
                local_high: 0,
                seqno: u32_at(16),
                id: u32_at(20) as i32,
            },
        })
    }
}

/// A typed-message descriptor (`mach_msg_type_t` or `mach_msg_type_long_t`), target-independent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TypeDesc {
    /// `msgt_name` (8 bits, or 16 in an i386 long descriptor).
    pub name: u32,
    /// `msgt_size`: bits per element.
    pub size: u32,
    /// `msgt_number`: element count.
    pub number: u32,
    pub inline: bool,
    pub longform: bool,
    pub deallocate: bool,
    /// The reserved `msgt_unused` bits as found on the wire (must be zero).
    pub unused: u32,
}

/// Why a descriptor cannot be represented in a target's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescError {
    /// A field does not fit its bit width in this form.
    FieldTooWide {
        field: &'static str,
        value: u32,
        bits: u32,
    },
}

impl fmt::Display for DescError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescError::FieldTooWide { field, value, bits } => {
                write!(f, "{field} = {value} does not fit in {bits} bits")
            }
        }
    }
}

fn fits(field: &'static str, value: u32, bits: u32) -> Result<u32, DescError> {
    if bits >= 32 || value < (1 << bits) {
        Ok(value)
    } else {
        Err(DescError::FieldTooWide { field, value, bits })
    }
}

/// Bit positions of the descriptor flags per target.
pub mod desc_bits {
    /// x86_64 word 0.
    pub mod x86_64 {
        pub const INLINE: u32 = 1 << 29;
        pub const LONGFORM: u32 = 1 << 30;
        pub const DEALLOCATE: u32 = 1 << 31;
        pub const UNUSED_SHIFT: u32 = 24;
        pub const UNUSED_MASK: u32 = 0x1f << UNUSED_SHIFT;
    }
    /// i386 header word.
    pub mod i386 {
        pub const INLINE: u32 = 1 << 28;
        pub const LONGFORM: u32 = 1 << 29;
        pub const DEALLOCATE: u32 = 1 << 30;
        pub const UNUSED: u32 = 1 << 31;
    }
}

impl TypeDesc {
    /// A short-form inline descriptor.
    pub const fn inline(name: u32, size: u32, number: u32) -> TypeDesc {
        TypeDesc {
            name,
            size,
            number,
            inline: true,
            longform: false,
            deallocate: false,
            unused: 0,
        }
    }

    /// The descriptor as the receiver gets it (GNU Mach's copyout): a port disposition in
    /// its received form, `msgt_deallocate` set exactly for out-of-line data.
    #[inline]
    pub const fn received(self) -> TypeDesc {
        TypeDesc {
            name: if type_name::is_port_any(self.name) {
                type_name::received_form(self.name)
            } else {
                self.name
            },
            deallocate: !self.inline,
            ..self
        }
    }

    /// Bytes this descriptor occupies on the wire.
    pub const fn wire_size(&self, t: Target) -> u32 {
        t.desc_size(self.longform)
    }

    /// The first 32-bit word of the x86_64 form (also the whole short form's flags word).
    pub fn x86_64_word0(&self) -> Result<u32, DescError> {
        use desc_bits::x86_64::*;
        let mut w = fits("msgt_name", self.name, 8)? | (fits("msgt_size", self.size, 16)? << 8);
        w |= (fits("msgt_unused", self.unused, 5)? << UNUSED_SHIFT) & UNUSED_MASK;
        if self.inline {
            w |= INLINE;
        }
        if self.longform {
            w |= LONGFORM;
        }
        if self.deallocate {
            w |= DEALLOCATE;
        }
        Ok(w)
    }

    /// The x86_64 descriptor as one little-endian `u64` (what GNU MIG's `BAD_TYPECHECK`
    /// compares).
    pub fn x86_64_u64(&self) -> Result<u64, DescError> {
        Ok(self.x86_64_word0()? as u64 | ((self.number as u64) << 32))
    }

    /// The i386 short descriptor word. Fails for long descriptors and wide fields.
    pub fn i386_short_word(&self) -> Result<u32, DescError> {
        use desc_bits::i386::*;
        let mut w = fits("msgt_name", self.name, 8)?
            | (fits("msgt_size", self.size, 8)? << 8)
            | (fits("msgt_number", self.number, 12)? << 16);
        if self.inline {
            w |= INLINE;
        }
        if self.longform {
            w |= LONGFORM;
        }
        if self.deallocate {
            w |= DEALLOCATE;
        }
        if fits("msgt_unused", self.unused, 1)? != 0 {
            w |= UNUSED;
        }
        Ok(w)
    }

    /// Encodes the descriptor for `t` into `out`, returning the number of bytes written
    /// (4, 8 or 12).
    ///
    /// On i386 a long descriptor has a header word whose name, size and number are zero
    /// (the kernel insists), followed by 16-bit name and size and a 32-bit number. On x86_64
    /// short and long forms share one 8-byte layout; the long form only sets the bit.
    pub fn encode(&self, t: Target, out: &mut [u8]) -> Result<usize, DescEncodeError> {
        let n = self.wire_size(t) as usize;
        let b = bytes::slice_mut(out, 0, n).map_err(DescEncodeError::Wire)?;
        match t {
            Target::X86_64 => {
                let w = self.x86_64_u64().map_err(DescEncodeError::Desc)?;
                b.copy_from_slice(&w.to_le_bytes());
            }
            Target::I386 if !self.longform => {
                let w = self.i386_short_word().map_err(DescEncodeError::Desc)?;
                b.copy_from_slice(&w.to_le_bytes());
            }
            Target::I386 => {
                use desc_bits::i386::*;
                let mut w = LONGFORM;
                if self.inline {
                    w |= INLINE;
                }
                if self.deallocate {
                    w |= DEALLOCATE;
                }
                if fits("msgt_unused", self.unused, 1).map_err(DescEncodeError::Desc)? != 0 {
                    w |= UNUSED;
                }
                let name = fits("msgtl_name", self.name, 16).map_err(DescEncodeError::Desc)?;
                let size = fits("msgtl_size", self.size, 16).map_err(DescEncodeError::Desc)?;
                b[0..4].copy_from_slice(&w.to_le_bytes());
                b[4..6].copy_from_slice(&(name as u16).to_le_bytes());
                b[6..8].copy_from_slice(&(size as u16).to_le_bytes());
                b[8..12].copy_from_slice(&self.number.to_le_bytes());
            }
        }
        Ok(n)
    }

    /// Decodes the descriptor at `off`, returning it and its wire size.
    ///
    /// The result is what the descriptor *says*; [`DecodedDesc::header_fields`] keeps the
    /// i386 long header's name/size/number so checks can reject non-zero values.
    #[inline]
    pub fn decode(t: Target, buf: &[u8], off: usize) -> Result<DecodedDesc, WireError> {
        match t {
            Target::X86_64 => {
                use desc_bits::x86_64::*;
                let w0 = bytes::get_u32(buf, off)?;
                let number = bytes::get_u32(buf, off + 4)?;
                Ok(DecodedDesc {
                    desc: TypeDesc {
                        name: w0 & 0xff,
                        size: (w0 >> 8) & 0xffff,
                        number,
                        inline: w0 & INLINE != 0,
                        longform: w0 & LONGFORM != 0,
                        deallocate: w0 & DEALLOCATE != 0,
                        unused: (w0 & UNUSED_MASK) >> UNUSED_SHIFT,
                    },
                    wire_size: 8,
                    header_fields: 0,
                })
            }
            Target::I386 => {
                use desc_bits::i386::*;
                let w = bytes::get_u32(buf, off)?;
                let short = TypeDesc {
                    name: w & 0xff,
                    size: (w >> 8) & 0xff,
                    number: (w >> 16) & 0xfff,
                    inline: w & INLINE != 0,
                    longform: w & LONGFORM != 0,
                    deallocate: w & DEALLOCATE != 0,
                    unused: u32::from(w & UNUSED != 0),
                };
                if !short.longform {
                    return Ok(DecodedDesc {
                        desc: short,
                        wire_size: 4,
                        header_fields: 0,
                    });
                }
                let name = bytes::get_u16(buf, off + 4)? as u32;
                let size = bytes::get_u16(buf, off + 6)? as u32;
                let number = bytes::get_u32(buf, off + 8)?;
                Ok(DecodedDesc {
                    desc: TypeDesc {
                        name,
                        size,
                        number,
                        ..short
                    },
                    wire_size: 12,
                    header_fields: w & 0x0fff_ffff,
                })
            }
        }
    }
}

/// A descriptor read from a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedDesc {
    pub desc: TypeDesc,
    /// Bytes the descriptor occupied (4, 8 or 12).
    pub wire_size: usize,
    /// i386 long form only: the name/size/number bits of the header word, which must be 0.
    pub header_fields: u32,
}

/// Error from [`TypeDesc::encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescEncodeError {
    Wire(WireError),
    Desc(DescError),
}

impl fmt::Display for DescEncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescEncodeError::Wire(e) => e.fmt(f),
            DescEncodeError::Desc(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_errors_are_told_from_receive_and_kernel_errors() {
        use msg_return as mr;
        for c in [
            mr::SEND_IN_PROGRESS,
            mr::SEND_INVALID_DEST,
            mr::SEND_TIMED_OUT,
        ] {
            assert!(mr::is_send_error(c));
            assert!(mr::is_send_error(c | mr::IPC_SPACE | mr::VM_KERNEL));
        }
        for c in [
            mr::SUCCESS,
            mr::RCV_TIMED_OUT,
            mr::RCV_TOO_LARGE,
            5,
            0xfffffed1,
        ] {
            assert!(!mr::is_send_error(c));
        }
    }

    #[test]
    fn x86_64_examples_from_the_spec() {
        let int32 = TypeDesc::inline(type_name::INTEGER_32, 32, 1);
        let mut b = [0u8; 8];
        assert_eq!(int32.encode(Target::X86_64, &mut b), Ok(8));
        assert_eq!(b, [0x02, 0x20, 0x00, 0x20, 0x01, 0, 0, 0]);
        assert_eq!(int32.x86_64_u64(), Ok(0x0000_0001_2000_2002));

        let copy_send = TypeDesc::inline(type_name::COPY_SEND, 64, 1);
        copy_send.encode(Target::X86_64, &mut b).unwrap();
        assert_eq!(b, [0x13, 0x40, 0x00, 0x20, 0x01, 0, 0, 0]);

        let ool = TypeDesc {
            name: type_name::CHAR,
            size: 8,
            number: 100,
            inline: false,
            longform: true,
            deallocate: true,
            unused: 0,
        };
        ool.encode(Target::X86_64, &mut b).unwrap();
        assert_eq!(b, [0x08, 0x08, 0x00, 0xc0, 0x64, 0, 0, 0]);
        let d = TypeDesc::decode(Target::X86_64, &b, 0).unwrap();
        assert_eq!(d.desc, ool);
        assert_eq!(d.wire_size, 8);
    }

    #[test]
    fn i386_examples_from_the_spec() {
        let mut b = [0u8; 12];
        let int32 = TypeDesc::inline(type_name::INTEGER_32, 32, 1);
        assert_eq!(int32.encode(Target::I386, &mut b), Ok(4));
        assert_eq!(u32::from_le_bytes([b[0], b[1], b[2], b[3]]), 0x1001_2002);
        let int64 = TypeDesc::inline(type_name::INTEGER_64, 64, 1);
        assert_eq!(int64.i386_short_word(), Ok(0x1001_400B));
        let copy_send = TypeDesc::inline(type_name::COPY_SEND, 32, 1);
        assert_eq!(copy_send.i386_short_word(), Ok(0x1001_2013));

        let ool = TypeDesc {
            name: type_name::CHAR,
            size: 8,
            number: 100,
            inline: false,
            longform: true,
            deallocate: true,
            unused: 0,
        };
        assert_eq!(ool.encode(Target::I386, &mut b), Ok(12));
        assert_eq!(b, [0, 0, 0, 0x60, 0x08, 0, 0x08, 0, 0x64, 0, 0, 0]);
        let d = TypeDesc::decode(Target::I386, &b, 0).unwrap();
        assert_eq!(d.desc, ool);
        assert_eq!(d.wire_size, 12);
        assert_eq!(d.header_fields, 0);
    }

    #[test]
    fn target_constants() {
        assert_eq!(Target::X86_64.reply_header_size(), 48);
        assert_eq!(Target::I386.reply_header_size(), 32);
        assert_eq!(Target::X86_64.retcode_offset(), 40);
        assert_eq!(Target::I386.retcode_offset(), 28);
    }

    #[test]
    fn header_roundtrip_and_truncation() {
        let h = MsgHeader {
            bits: 0x1513,
            size: 64,
            remote: PortName(7),
            local: PortName(9),
            local_high: 0,
            seqno: 0,
            id: 21002,
        };
        for t in Target::ALL {
            let mut b = [0u8; 32];
            h.encode(t, &mut b).unwrap();
            assert_eq!(MsgHeader::decode(t, &b).unwrap(), h);
            assert!(MsgHeader::decode(t, &b[..t.header_size() as usize - 1]).is_err());
        }
    }

    #[test]
    fn received_descriptors_have_received_port_types_and_deallocate_for_ool() {
        let sent = TypeDesc::inline(type_name::MAKE_SEND, 32, 2);
        let r = sent.received();
        assert_eq!((r.name, r.deallocate), (type_name::PORT_SEND, false));
        assert_eq!((r.size, r.number, r.inline), (32, 2, true));
        let ool = TypeDesc {
            inline: false,
            deallocate: false,
            ..TypeDesc::inline(type_name::BYTE, 8, 4096)
        };
        assert_eq!(
            ool.received(),
            TypeDesc {
                deallocate: true,
                ..ool
            }
        );
        let dealloc_inline = TypeDesc {
            deallocate: true,
            ..TypeDesc::inline(type_name::INTEGER_32, 32, 1)
        };
        assert!(!dealloc_inline.received().deallocate);
        let plain = TypeDesc::inline(type_name::INTEGER_32, 32, 1);
        assert_eq!(plain.received(), plain);
    }

    #[test]
    fn too_wide_fields_are_errors() {
        let d = TypeDesc::inline(type_name::CHAR, 8, 4096);
        assert!(d.i386_short_word().is_err());
        let d = TypeDesc::inline(256, 8, 1);
        assert!(d.x86_64_u64().is_err());
        assert!(KernReturn::MIG_BAD_ID.name() == Some("MIG_BAD_ID"));
        assert_eq!(
            KernReturn(msg_return::SEND_INVALID_DEST as i32).name(),
            Some("MACH_SEND_INVALID_DEST")
        );
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn desc() -> impl Strategy<Value = TypeDesc> {
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<u32>(),
            )
                .prop_map(
                    |(name, size, number, inline, longform, deallocate, unused)| TypeDesc {
                        name,
                        size,
                        number,
                        inline,
                        longform,
                        deallocate,
                        unused,
                    },
                )
        }

        /// Clamps a descriptor to what `t` can represent.
        fn fit(t: Target, mut d: TypeDesc) -> TypeDesc {
            match t {
                Target::X86_64 => {
                    d.name &= 0xff;
                    d.size &= 0xffff;
                    d.unused &= 0x1f;
                }
                Target::I386 if d.longform => {
                    d.name &= 0xffff;
                    d.size &= 0xffff;
                    d.unused &= 1;
                }
                Target::I386 => {
                    d.name &= 0xff;
                    d.size &= 0xff;
                    d.number &= 0xfff;
                    d.unused &= 1;
                }
            }
            d
        }

        proptest! {
            #[test]
            fn descriptors_round_trip_on_both_targets(d in desc(), pad in 0usize..16) {
                for t in Target::ALL {
                    let d = fit(t, d);
                    let mut buf = vec![0xa5u8; pad + 12];
                    let n = d.encode(t, &mut buf[pad..]).unwrap();
                    prop_assert_eq!(n as u32, d.wire_size(t));
                    let got = TypeDesc::decode(t, &buf, pad).unwrap();
                    prop_assert_eq!(got.desc, d);
                    prop_assert_eq!(got.wire_size, n);
                    prop_assert_eq!(got.header_fields, 0);
                    // Decoding a truncated buffer is an error, never a panic.
                    prop_assert!(TypeDesc::decode(t, &buf[..pad + n - 1], pad).is_err());
                }
            }

            #[test]
            fn wide_fields_are_errors_not_panics(d in desc()) {
                for t in Target::ALL {
                    let mut buf = [0u8; 12];
                    let r = d.encode(t, &mut buf);
                    if r.is_ok() {
                        let got = TypeDesc::decode(t, &buf, 0).unwrap();
                        prop_assert_eq!(got.desc, d);
                    }
                    let mut small = [0u8; 3];
                    prop_assert!(d.encode(t, &mut small).is_err());
                }
            }

            #[test]
            fn headers_round_trip(bits in any::<u32>(), size in any::<u32>(), r in any::<u32>(), l in any::<u32>(), hi in any::<u32>(), seq in any::<u32>(), id in any::<i32>()) {
                for t in Target::ALL {
                    let h = MsgHeader {
                        bits,
                        size,
                        remote: PortName(r),
                        local: PortName(l),
                        local_high: if t == Target::X86_64 { hi } else { 0 },
                        seqno: seq,
                        id,
                    };
                    let mut b = [0u8; 32];
                    h.encode(t, &mut b).unwrap();
                    prop_assert_eq!(MsgHeader::decode(t, &b).unwrap(), h);
                }
            }

            #[test]
            fn decoding_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40), off in 0usize..48) {
                for t in Target::ALL {
                    let _ = TypeDesc::decode(t, &data, off);
                    let _ = MsgHeader::decode(t, &data);
                }
            }
        }
    }
}
