//! Statistics, rejections and observation hooks.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use mig_runtime::{KernReturn, PortName};

/// The kind of a message the pager received (for counters, the admission log and traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MsgKind {
    /// `memory_object_create` (2250), on the default-memory-manager port.
    Create,
    /// `memory_object_data_initialize` (2251).
    DataInitialize,
    /// `memory_object_init` (2200), external objects only.
    Init,
    /// `memory_object_terminate` (2201).
    Terminate,
    /// `memory_object_data_request` (2203).
    DataRequest,
    /// `memory_object_data_return` (2208).
    DataReturn,
    /// The no-senders notification (70) on an object port.
    NoSenders,
    /// A protocol message the default pager never expects: `copy` 2202, `data_unlock` 2204,
    /// `lock_completed` 2206, `supply_completed` 2207, `change_completed` 2209, or a
    /// notification other than no-senders.
    Unexpected,
    /// A message that failed the generated stub's type checks (`MIG_BAD_ARGUMENTS`).
    Malformed,
    /// A message id no subsystem of the pager knows (`MIG_BAD_ID`).
    UnknownId,
    /// An RPC of the `default_pager` admin interface.
    Admin,
}

impl MsgKind {
    pub const ALL: [MsgKind; 11] = [
        MsgKind::Create,
        MsgKind::DataInitialize,
        MsgKind::Init,
        MsgKind::Terminate,
        MsgKind::DataRequest,
        MsgKind::DataReturn,
        MsgKind::NoSenders,
        MsgKind::Unexpected,
        MsgKind::Malformed,
        MsgKind::UnknownId,
        MsgKind::Admin,
    ];

    /// The protocol name (`memory_object_create`, …, `no_senders`).
    pub const fn name(self) -> &'static str {
        match self {
            MsgKind::Create => "memory_object_create",
            MsgKind::DataInitialize => "memory_object_data_initialize",
            MsgKind::Init => "memory_object_init",
            MsgKind::Terminate => "memory_object_terminate",
            MsgKind::DataRequest => "memory_object_data_request",
            MsgKind::DataReturn => "memory_object_data_return",
            MsgKind::NoSenders => "no_senders",
            MsgKind::Unexpected => "unexpected",
            MsgKind::Malformed => "malformed",
            MsgKind::UnknownId => "unknown_id",
            MsgKind::Admin => "default_pager_admin",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// A call the pager made on an object's control port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// `memory_object_data_supply` (2093) of `len` bytes (more than a page with read-ahead).
    Supply,
    /// `memory_object_data_unavailable` (2039).
    Unavailable,
    /// `memory_object_data_error` (2090) with this code.
    Error(KernReturn),
    /// `memory_object_ready` (2094), after `memory_object_init`.
    Ready,
}

/// Why the pager refused (part of) a message. Every rejection is counted, kept in a short
/// log ([`crate::Core::rejections`]) and passed to [`Hooks::rejected`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The generated stub rejected the message (size, complex bit, descriptors).
    Malformed,
    /// No subsystem of the pager has this message id.
    UnknownId,
    /// A message the default pager never expects (see [`MsgKind::Unexpected`]).
    Unexpected,
    /// An object message on a port that is not an object the pager serves.
    NotAnObject,
    /// `memory_object_create` or an admin RPC on a port other than the default pager's.
    WrongPort,
    /// A message on an object that was terminated.
    Terminated,
    /// A data message on an external object before `memory_object_init`.
    NotInitialized,
    /// `memory_object_init` on an object that already has a control port, or on an
    /// internal object.
    AlreadyInitialized,
    /// The message's control port is not the object's control port.
    ForgedControl,
    /// The offset is not a multiple of the page size.
    Unaligned,
    /// The length is not one page (data_request), or not a non-zero multiple of the page
    /// size (data_return, data_initialize), or offset + length overflows.
    BadLength,
    /// A request past the size of an external object.
    BeyondLimit,
    /// `memory_object_create`/`init` with a page size other than the pager's.
    BadPageSize,
    /// `memory_object_create` without a memory object, control or name port.
    MissingPort,
    /// `default_pager_object_pages` for a port that names no object.
    UnknownObject,
    /// An admin call the pager does not implement.
    NotSupported,
    /// A message had to wait for a seqno that never came; the pager skipped ahead.
    SeqnoGap { expected: u32 },
    /// A message whose seqno was already skipped (after a gap).
    LateSeqno,
    /// A kernel call the pager needed failed.
    KernelCall {
        call: &'static str,
        code: KernReturn,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Malformed => f.write_str("malformed message (rejected by the generated stub)"),
            Reason::UnknownId => f.write_str("unknown message id"),
            Reason::Unexpected => f.write_str("message the default pager never expects"),
            Reason::NotAnObject => {
                f.write_str("object message on a port that is not a memory object of this pager")
            }
            Reason::WrongPort => {
                f.write_str("message on the wrong port (not the default pager's port)")
            }
            Reason::Terminated => f.write_str("message on a terminated memory object"),
            Reason::NotInitialized => f.write_str("data message before memory_object_init"),
            Reason::AlreadyInitialized => {
                f.write_str("memory_object_init on an initialized or internal object")
            }
            Reason::ForgedControl => f.write_str("control port is not the object's control port"),
            Reason::Unaligned => f.write_str("offset is not page-aligned"),
            Reason::BadLength => {
                f.write_str("length is not what the protocol allows (one page for data_request)")
            }
            Reason::BeyondLimit => f.write_str("offset past the size of an external object"),
            Reason::BadPageSize => f.write_str("page size differs from the pager's"),
            Reason::MissingPort => {
                f.write_str("memory_object_create without object, control or name port")
            }
            Reason::UnknownObject => f.write_str("port names no memory object of this pager"),
            Reason::NotSupported => f.write_str("call not supported by this pager"),
            Reason::SeqnoGap { expected } => {
                write!(f, "seqno {expected} never arrived; skipped ahead")
            }
            Reason::LateSeqno => f.write_str("message older than a skipped seqno"),
            Reason::KernelCall { call, code } => write!(f, "{call} failed: {code:?}"),
        }
    }
}

/// One refused message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The message id.
    pub msg_id: i32,
    /// The port it arrived on (the pager's name).
    pub port: PortName,
    /// Its sequence number on that port.
    pub seqno: u32,
    /// The object it concerned, if any.
    pub object: Option<u64>,
    /// The page offset it concerned, if any.
    pub offset: Option<u64>,
    pub reason: Reason,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "default pager: rejected message {} on port {:?} (seqno {}",
            self.msg_id, self.port, self.seqno
        )?;
        if let Some(o) = self.object {
            write!(f, ", object {o}")?;
        }
        if let Some(o) = self.offset {
            write!(f, ", offset {o:#x}")?;
        }
        write!(f, "): {}", self.reason)
    }
}

/// Observation points, for traces, tests and demos. Every method has an empty default.
/// Methods are called on server threads; `admitted` is called with the object locked, so
/// calls for one object come in admission order (keep them short).
pub trait Hooks: Send + Sync {
    /// A message on object `object` was admitted with sequence number `seqno`.
    fn admitted(&self, _object: u64, _seqno: u32, _kind: MsgKind) {}
    /// The pager answered on object `object`'s control port.
    fn replied(&self, _object: u64, _kind: ReplyKind, _offset: u64, _len: u64) {}
    /// A message was (partly) refused.
    fn rejected(&self, _r: &Rejection) {}
    /// An object was created (`internal`: by `memory_object_create`).
    fn object_created(&self, _object: u64, _internal: bool, _size: u64) {}
    /// An object's blocks were freed and its port destroyed (after no-senders).
    fn object_freed(&self, _object: u64) {}
}

/// Counts of received messages by kind, named as in the JSON output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub memory_object_create: u64,
    pub memory_object_data_request: u64,
    pub memory_object_data_return: u64,
    pub memory_object_data_initialize: u64,
    pub memory_object_terminate: u64,
    pub memory_object_init: u64,
    pub no_senders: u64,
    pub unexpected: u64,
    pub malformed: u64,
    pub unknown_id: u64,
    pub admin: u64,
}

/// A snapshot of the pager's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Received messages by kind.
    pub messages: MessageCounts,
    /// `memory_object_data_supply` calls (one per request, read-ahead included).
    pub data_supply: u64,
    /// `memory_object_data_unavailable` calls.
    pub data_unavailable: u64,
    /// `memory_object_data_error` calls.
    pub data_error: u64,
    /// `memory_object_ready` calls.
    pub ready: u64,
    /// Pages supplied (read from the store), read-ahead included.
    pub pages_in: u64,
    /// Pages supplied without being asked for (read-ahead).
    pub pages_read_ahead: u64,
    /// Pages written to the store.
    pub pages_out: u64,
    /// Pages answered with data_unavailable (never written).
    pub pages_unavailable: u64,
    /// Pages that could not be stored (no space or write error), now answered with
    /// data_error.
    pub pages_lost: u64,
    /// data_return pages that found no free block.
    pub no_space: u64,
    /// Store write errors.
    pub write_errors: u64,
    /// Store read errors.
    pub read_errors: u64,
    /// Pages whose checksum did not match on read-in.
    pub checksum_errors: u64,
    /// data_initialize pages skipped because the page was present.
    pub init_skipped: u64,
    /// Messages (partly) refused.
    pub rejected: u64,
    /// Seqnos skipped because a message never came.
    pub seqno_gaps: u64,
    /// Admissions that had to wait for an earlier seqno.
    pub wait_seqno: u64,
    /// Admissions that had to wait for conflicting I/O on the same pages.
    pub wait_io: u64,
    /// Control-port user references trimmed (`mach_port_mod_refs`).
    pub urefs_trimmed: u64,
    /// Live objects.
    pub objects: u64,
    /// Objects created since start.
    pub objects_created: u64,
    /// Objects freed (after no-senders).
    pub objects_freed: u64,
    /// Paging space, bytes.
    pub paging_total: u64,
    /// Free paging space, bytes.
    pub paging_free: u64,
    /// Paging stores.
    pub stores: u64,
    /// The page size.
    pub page_size: u64,
}

impl Stats {
    /// The counts the issue's `--json` output names, in its order:
    /// `memory_object_create`, `memory_object_data_request`, `memory_object_data_unavailable`,
    /// `memory_object_data_supply`, `memory_object_data_return`,
    /// `memory_object_data_initialize`, `memory_object_terminate`, `no_senders`.
    pub fn message_pairs(&self) -> [(&'static str, u64); 8] {
        [
            ("memory_object_create", self.messages.memory_object_create),
            (
                "memory_object_data_request",
                self.messages.memory_object_data_request,
            ),
            ("memory_object_data_unavailable", self.data_unavailable),
            ("memory_object_data_supply", self.data_supply),
            (
                "memory_object_data_return",
                self.messages.memory_object_data_return,
            ),
            (
                "memory_object_data_initialize",
                self.messages.memory_object_data_initialize,
            ),
            (
                "memory_object_terminate",
                self.messages.memory_object_terminate,
            ),
            ("no_senders", self.messages.no_senders),
        ]
    }
}

/// The live counters (atomics, so any thread updates them without a lock).
#[derive(Default)]
pub(crate) struct Counters {
    pub messages: [AtomicU64; MsgKind::ALL.len()],
    pub data_supply: AtomicU64,
    pub data_unavailable: AtomicU64,
    pub data_error: AtomicU64,
    pub ready: AtomicU64,
    pub pages_in: AtomicU64,
    pub pages_read_ahead: AtomicU64,
    pub pages_out: AtomicU64,
    pub pages_unavailable: AtomicU64,
    pub pages_lost: AtomicU64,
    pub no_space: AtomicU64,
    pub write_errors: AtomicU64,
    pub read_errors: AtomicU64,
    pub checksum_errors: AtomicU64,
    pub init_skipped: AtomicU64,
    pub rejected: AtomicU64,
    pub seqno_gaps: AtomicU64,
    pub wait_seqno: AtomicU64,
    pub wait_io: AtomicU64,
    pub urefs_trimmed: AtomicU64,
    pub objects_created: AtomicU64,
    pub objects_freed: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    add(c, 1);
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn message(&self, k: MsgKind) {
        bump(&self.messages[k.index()]);
    }

    pub fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let m = |k: MsgKind| g(&self.messages[k.index()]);
        Stats {
            messages: MessageCounts {
                memory_object_create: m(MsgKind::Create),
                memory_object_data_request: m(MsgKind::DataRequest),
                memory_object_data_return: m(MsgKind::DataReturn),
                memory_object_data_initialize: m(MsgKind::DataInitialize),
                memory_object_terminate: m(MsgKind::Terminate),
                memory_object_init: m(MsgKind::Init),
                no_senders: m(MsgKind::NoSenders),
                unexpected: m(MsgKind::Unexpected),
                malformed: m(MsgKind::Malformed),
                unknown_id: m(MsgKind::UnknownId),
                admin: m(MsgKind::Admin),
            },
            data_supply: g(&self.data_supply),
            data_unavailable: g(&self.data_unavailable),
            data_error: g(&self.data_error),
            ready: g(&self.ready),
            pages_in: g(&self.pages_in),
            pages_read_ahead: g(&self.pages_read_ahead),
            pages_out: g(&self.pages_out),
            pages_unavailable: g(&self.pages_unavailable),
            pages_lost: g(&self.pages_lost),
            no_space: g(&self.no_space),
            write_errors: g(&self.write_errors),
            read_errors: g(&self.read_errors),
            checksum_errors: g(&self.checksum_errors),
            init_skipped: g(&self.init_skipped),
            rejected: g(&self.rejected),
            seqno_gaps: g(&self.seqno_gaps),
            wait_seqno: g(&self.wait_seqno),
            wait_io: g(&self.wait_io),
            urefs_trimmed: g(&self.urefs_trimmed),
            objects_created: g(&self.objects_created),
            objects_freed: g(&self.objects_freed),
            ..Stats::default()
        }
    }
}
