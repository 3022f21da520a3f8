//! The checked model of a subsystem: what code generation and the tests consume.
//!
//! [`Subsystem`] holds the routines in declaration order with GNU MIG's numbering, every
//! argument after implicit-argument insertion (in GNU MIG's order: arg, poly, countinout,
//! count, dealloc, scopy), each argument's [`ArgKind`] bits exactly as GNU MIG computes them,
//! the types, and for each routine the wire layout of its request and reply
//! ([`MessageLayout`]) for the subsystem's [`Target`]. Wire layout is computed in one place:
//! [`crate::check::layout`], on top of `mig_runtime::wire`.

pub use crate::check::types::{Builtins, Dealloc, Flags, Type, TypeId, Types, POLY};
use crate::source::Loc;
use mig_runtime::wire::{type_name, Target, TypeDesc};

/// Index of an argument in [`Routine::args`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgId(pub u32);

/// GNU MIG's argument kind: an identity in the low bits plus feature bits (`akb*`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ArgKind(pub u32);

#[allow(missing_docs)]
impl ArgKind {
    // Identities.
    pub const NONE: u32 = 0;
    pub const NORMAL: u32 = 1;
    pub const REQUEST_PORT: u32 = 2;
    pub const WAIT_TIME: u32 = 3;
    pub const REPLY_PORT: u32 = 4;
    pub const MSG_OPTION: u32 = 5;
    pub const MSG_SEQNO: u32 = 6;
    pub const RET_CODE: u32 = 7;
    pub const RETURN: u32 = 8;
    pub const COUNT: u32 = 9;
    pub const POLY: u32 = 10;
    pub const DEALLOC: u32 = 11;
    pub const SERVER_COPY: u32 = 12;
    pub const COUNT_IN_OUT: u32 = 13;
    pub const IDENT_BITS: u32 = 0x3f;

    // Feature bits.
    /// Has a descriptor in the request.
    pub const REQUEST: u32 = 0x0000_0040;
    /// Has a descriptor in the reply.
    pub const REPLY: u32 = 0x0000_0080;
    /// A parameter of the client function.
    pub const USER_ARG: u32 = 0x0000_0100;
    /// A parameter of the server function.
    pub const SERVER_ARG: u32 = 0x0000_0200;
    pub const SEND: u32 = 0x0000_0400;
    pub const SEND_BODY: u32 = 0x0000_0800;
    /// Packed into the request (client side).
    pub const SEND_SND: u32 = 0x0000_1000;
    /// Taken from the request (server side).
    pub const SEND_RCV: u32 = 0x0000_2000;
    pub const RETURN_BITS_BASE: u32 = 0x0000_4000;
    pub const RETURN_BODY: u32 = 0x0000_8000;
    /// Packed into the reply (server side).
    pub const RETURN_SND: u32 = 0x0001_0000;
    /// Taken from the reply (client side).
    pub const RETURN_RCV: u32 = 0x0002_0000;
    pub const REPLY_INIT: u32 = 0x0004_0000;
    /// The request descriptor is checked with one comparison.
    pub const REQUEST_QC: u32 = 0x0008_0000;
    /// The reply descriptor is checked with one comparison.
    pub const REPLY_QC: u32 = 0x0010_0000;
    pub const REPLY_COPY: u32 = 0x0020_0000;
    pub const VAR_NEEDED: u32 = 0x0040_0000;
    pub const DESTROY: u32 = 0x0080_0000;
    /// Variable-size inline data.
    pub const VARIABLE: u32 = 0x0100_0000;
    /// Variable size, inline or out-of-line (`array[]`).
    pub const INDEFINITE: u32 = 0x0200_0000;
    pub const POINTER: u32 = 0x0400_0000;

    pub const SEND_BITS: u32 = Self::SEND | Self::SEND_BODY | Self::SEND_SND | Self::SEND_RCV;
    pub const RETURN_BITS: u32 =
        Self::RETURN_BITS_BASE | Self::RETURN_BODY | Self::RETURN_SND | Self::RETURN_RCV;

    pub const IN: ArgKind =
        ArgKind(Self::NORMAL | Self::USER_ARG | Self::SERVER_ARG | Self::REQUEST | Self::SEND_BITS);
    pub const OUT: ArgKind = ArgKind(
        Self::NORMAL
            | Self::USER_ARG
            | Self::SERVER_ARG
            | Self::REPLY
            | Self::RETURN_BITS
            | Self::REPLY_INIT,
    );
    pub const IN_OUT: ArgKind = ArgKind(
        Self::NORMAL
            | Self::USER_ARG
            | Self::SERVER_ARG
            | Self::REQUEST
            | Self::REPLY
            | Self::SEND_BITS
            | Self::RETURN_BITS
            | Self::REPLY_INIT
            | Self::REPLY_COPY,
    );
    pub const AK_REQUEST_PORT: ArgKind = ArgKind(
        Self::REQUEST_PORT
            | Self::USER_ARG
            | Self::SERVER_ARG
            | Self::SEND
            | Self::SEND_SND
            | Self::SEND_RCV,
    );
    pub const AK_WAIT_TIME: ArgKind = ArgKind(Self::WAIT_TIME | Self::USER_ARG);
    pub const AK_MSG_OPTION: ArgKind = ArgKind(Self::MSG_OPTION | Self::USER_ARG);
    pub const AK_MSG_SEQNO: ArgKind =
        ArgKind(Self::MSG_SEQNO | Self::SERVER_ARG | Self::SEND | Self::SEND_RCV);
    pub const AK_REPLY_PORT: ArgKind = ArgKind(
        Self::REPLY_PORT
            | Self::USER_ARG
            | Self::SERVER_ARG
            | Self::SEND
            | Self::SEND_SND
            | Self::SEND_RCV,
    );
    pub const AK_UREPLY_PORT: ArgKind =
        ArgKind(Self::REPLY_PORT | Self::USER_ARG | Self::SEND | Self::SEND_SND | Self::SEND_RCV);
    pub const AK_SREPLY_PORT: ArgKind =
        ArgKind(Self::REPLY_PORT | Self::SERVER_ARG | Self::SEND | Self::SEND_SND | Self::SEND_RCV);
    pub const AK_RET_CODE: ArgKind = ArgKind(Self::RET_CODE | Self::REPLY);
    pub const AK_COUNT: ArgKind = ArgKind(Self::COUNT | Self::USER_ARG | Self::SERVER_ARG);
    pub const AK_POLY: ArgKind = ArgKind(Self::POLY);
    pub const AK_SERVER_COPY: ArgKind =
        ArgKind(Self::SERVER_COPY | Self::SERVER_ARG | Self::SEND_RCV);
    pub const AK_COUNT_IN_OUT: ArgKind =
        ArgKind(Self::COUNT_IN_OUT | Self::REQUEST | Self::SEND_BITS);

    /// The identity (`ake*`).
    pub const fn ident(self) -> u32 {
        self.0 & Self::IDENT_BITS
    }
    /// Any of `bits` set (`akCheck`).
    pub const fn any(self, bits: u32) -> bool {
        self.0 & bits != 0
    }
    /// All of `bits` set (`akCheckAll`).
    pub const fn all(self, bits: u32) -> bool {
        self.0 & bits == bits
    }
    pub const fn add(self, bits: u32) -> ArgKind {
        ArgKind(self.0 | bits)
    }
    pub const fn remove(self, bits: u32) -> ArgKind {
        ArgKind(self.0 & !bits)
    }
}

impl std::fmt::Debug for ArgKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ident = match self.ident() {
            0 => "None",
            1 => "Normal",
            2 => "RequestPort",
            3 => "WaitTime",
            4 => "ReplyPort",
            5 => "MsgOption",
            6 => "MsgSeqno",
            7 => "RetCode",
            8 => "Return",
            9 => "Count",
            10 => "Poly",
            11 => "Dealloc",
            12 => "ServerCopy",
            13 => "CountInOut",
            _ => "?",
        };
        write!(f, "{ident}")?;
        const NAMES: [(u32, &str); 21] = [
            (ArgKind::REQUEST, "Request"),
            (ArgKind::REPLY, "Reply"),
            (ArgKind::USER_ARG, "UserArg"),
            (ArgKind::SERVER_ARG, "ServerArg"),
            (ArgKind::SEND, "Send"),
            (ArgKind::SEND_BODY, "SendBody"),
            (ArgKind::SEND_SND, "SendSnd"),
            (ArgKind::SEND_RCV, "SendRcv"),
            (ArgKind::RETURN_BITS_BASE, "Return"),
            (ArgKind::RETURN_BODY, "ReturnBody"),
            (ArgKind::RETURN_SND, "ReturnSnd"),
            (ArgKind::RETURN_RCV, "ReturnRcv"),
            (ArgKind::REPLY_INIT, "ReplyInit"),
            (ArgKind::REQUEST_QC, "RequestQC"),
            (ArgKind::REPLY_QC, "ReplyQC"),
            (ArgKind::REPLY_COPY, "ReplyCopy"),
            (ArgKind::VAR_NEEDED, "VarNeeded"),
            (ArgKind::DESTROY, "Destroy"),
            (ArgKind::VARIABLE, "Variable"),
            (ArgKind::INDEFINITE, "Indefinite"),
            (ArgKind::POINTER, "Pointer"),
        ];
        for (b, n) in NAMES {
            if self.any(b) {
                write!(f, "|{n}")?;
            }
        }
        Ok(())
    }
}

/// One argument of a routine, explicit or implicit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// The name as declared, or the implicit name (`dataCnt`, `dataPoly`, `RetCode`,
    /// `dummy ReplyPort arg`…).
    pub name: String,
    pub kind: ArgKind,
    pub ty: TypeId,
    /// GNU MIG's `argVarName`: for the dummy msgoption/waittime arguments, the value
    /// (e.g. `MACH_MSG_OPTION_NONE`, `MACH_RCV_TIMEOUT`, a number).
    pub var_name: String,
    pub dealloc: Dealloc,
    pub long_form: bool,
    pub server_copy: bool,
    pub count_in_out: bool,
    pub count: Option<ArgId>,
    pub c_in_out: Option<ArgId>,
    pub poly: Option<ArgId>,
    pub dealloc_arg: Option<ArgId>,
    pub scopy: Option<ArgId>,
    /// For implicit arguments: the argument they belong to.
    pub parent: Option<ArgId>,
    /// For count arguments: wire count = C count × multiplier.
    pub multiplier: u32,
    /// How many variable-size request fields precede this one (-1: not in the request).
    pub request_pos: i32,
    /// How many variable-size reply fields precede this one (-1: not in the reply).
    pub reply_pos: i32,
    pub by_ref_user: bool,
    pub by_ref_server: bool,
    /// For the poly argument of a header port: which header field's bits it lives in.
    pub header_poly: Option<HeaderPort>,
    /// Where the argument was written (None for implicit arguments).
    pub loc: Option<Loc>,
}

/// A header port field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderPort {
    Request,
    Reply,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoutineKind {
    Routine,
    SimpleRoutine,
}

/// One field of a message body: a descriptor and its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub arg: ArgId,
    /// Offset of the descriptor, counting preceding variable-size fields as empty.
    pub desc_offset: u32,
    /// Bytes of the descriptor (`mach_msg_type_t` or `mach_msg_type_long_t`).
    pub desc_size: u32,
    /// Offset of the data (after the descriptor and alignment), same convention.
    pub data_offset: u32,
    /// Data bytes at maximum size (inline) or the pointer size (out-of-line).
    pub data_size: u32,
    /// Padding after maximum-size data.
    pub pad_size: u32,
    /// Bytes this field contributes to the minimum/fixed message size after its descriptor
    /// (`min_type_size`: 0 for variable-size inline data).
    pub min_data_size: u32,
    /// Variable-size inline data: its wire size depends on the count.
    pub variable: bool,
    /// Number of variable-size fields before this one (their actual sizes shift it).
    pub var_pos: u32,
}

/// Whether a message is complex (carries rights or out-of-line data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Complexity {
    /// The value is known statically.
    pub fixed: bool,
    /// Simple, if fixed; otherwise the optimistic initial value.
    pub simple: bool,
}

/// The layout of a request or reply for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageLayout {
    pub fields: Vec<Field>,
    /// `msgh_size` when every variable-size field is empty: the exact size of fixed
    /// messages, the minimum of variable ones (GNU MIG's `rtFindSize`).
    pub min_size: u32,
    /// `msgh_size` with every variable-size field at its maximum.
    pub max_size: u32,
    /// Number of variable-size fields.
    pub num_var: u32,
    /// Complexity as the sender sees it (in-names).
    pub send: Complexity,
    /// Complexity as the receiver checks it (out-names).
    pub check: Complexity,
}

impl MessageLayout {
    /// Fixed-size message?
    pub fn is_fixed(&self) -> bool {
        self.num_var == 0
    }
    /// The field of `arg`, if it has one in this message.
    pub fn field(&self, arg: ArgId) -> Option<&Field> {
        self.fields.iter().find(|f| f.arg == arg)
    }
}

/// One routine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routine {
    pub name: String,
    pub kind: RoutineKind,
    /// Position in the subsystem (skips included): msg id = base + number.
    pub number: u32,
    /// `-prefix` + `userprefix` + name.
    pub user_name: String,
    /// `-prefix` + `serverprefix` + name.
    pub server_name: String,
    pub args: Vec<Arg>,
    pub request_port: ArgId,
    pub user_reply_port: ArgId,
    pub server_reply_port: ArgId,
    pub wait_time: Option<ArgId>,
    pub msg_option: ArgId,
    pub msg_seqno: Option<ArgId>,
    pub ret_code: ArgId,
    pub request: MessageLayout,
    pub reply: MessageLayout,
    /// Request `msgh_id`.
    pub msg_id: i32,
    /// Reply `msgh_id` (request + 100, also for simpleroutines; their list entry says 0).
    pub reply_id: i32,
    /// No argument is packed into the reply besides `RetCode`.
    pub no_reply_args: bool,
    /// Where the routine was declared.
    pub loc: Loc,
}

impl Routine {
    pub fn arg(&self, id: ArgId) -> &Arg {
        &self.args[id.0 as usize]
    }
    pub fn is_simple(&self) -> bool {
        self.kind == RoutineKind::SimpleRoutine
    }
    /// Iterates `(id, arg)`.
    pub fn args(&self) -> impl Iterator<Item = (ArgId, &Arg)> {
        self.args
            .iter()
            .enumerate()
            .map(|(i, a)| (ArgId(i as u32), a))
    }
}

/// An `import`/`uimport`/`simport` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub kind: crate::parse::ast::ImportKind,
    /// Verbatim, with its quotes or angle brackets.
    pub file: String,
}

/// A checked subsystem.
#[derive(Clone, Debug)]
pub struct Subsystem {
    pub name: String,
    pub base: u32,
    pub kernel_user: bool,
    pub kernel_server: bool,
    pub target: Target,
    pub routines: Vec<Routine>,
    /// Routine slots including skips (GNU MIG's final `rtNumber`): the demux accepts ids
    /// `base .. base + num_slots`.
    pub num_slots: u32,
    /// The demux function name (`serverdemux`, default `<subsystem>_server`, with `-prefix`).
    pub demux_name: String,
    pub imports: Vec<Import>,
    pub rcsid: Option<String>,
    pub types: Types,
    pub loc: Loc,
}

impl Subsystem {
    pub fn ty(&self, id: TypeId) -> &Type {
        self.types.get(id)
    }

    /// GNU MIG's `-list` output: `subsystem base name number id replyid` per routine.
    pub fn routine_list(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(self.routines.len() * (self.name.len() + 40));
        for r in &self.routines {
            let reply = if r.is_simple() {
                0
            } else {
                self.base.wrapping_add(r.number).wrapping_add(100)
            };
            let _ = writeln!(
                s,
                "{} {} {} {} {} {}",
                self.name,
                self.base,
                r.name,
                r.number,
                self.base.wrapping_add(r.number),
                reply
            );
        }
        s
    }

    /// Whether the sender of the request (`reply == false`) or the reply is the kernel.
    pub fn kernel_sender(&self, reply: bool) -> bool {
        if reply {
            self.kernel_server
        } else {
            self.kernel_user
        }
    }

    /// The `msgt_name` a sender writes for a value of type `t` in the request
    /// (`reply == false`) or the reply: the in-name, except in the messages a kernel-side
    /// subsystem sends itself (KernelUser requests, KernelServer replies), where GNU MIG
    /// writes the out-name: the kernel hands over rights it already holds, so a
    /// `MAKE_SEND` type is sent as `PORT_SEND` (= `MOVE_SEND`).
    pub fn sent_name(&self, t: &Type, reply: bool) -> u32 {
        if self.kernel_sender(reply) {
            t.out_name
        } else {
            t.in_name
        }
    }

    /// The descriptor a sender writes for `arg` in the request (`reply == false`) or the
    /// reply (before run-time adjustments: actual count, poly name, dealloc and inline bits
    /// of indefinite arrays).
    pub fn send_desc(&self, r: &Routine, arg: ArgId, reply: bool) -> TypeDesc {
        let a = r.arg(arg);
        let t = self.ty(a.ty);
        let mut size = t.size;
        if self.target == Target::X86_64
            && a.long_form
            && t.userland_port
            && !t.inline
            && t.number == 0
        {
            size = 32;
        }
        TypeDesc {
            name: self.sent_name(t, reply) & 0xff,
            size,
            number: t.number,
            inline: t.inline,
            longform: a.long_form,
            deallocate: !t.indefinite && a.dealloc == Dealloc::Yes,
            unused: 0,
        }
    }

    /// The descriptor a receiver's quick check expects for `arg`
    /// (out-name, `deallocate = !inline`, short form).
    pub fn check_desc(&self, r: &Routine, arg: ArgId) -> TypeDesc {
        let t = self.ty(r.arg(arg).ty);
        TypeDesc {
            name: t.out_name & 0xff,
            size: t.size,
            number: t.number,
            inline: t.inline,
            longform: false,
            deallocate: !t.inline,
            unused: 0,
        }
    }

    /// True when `arg`'s out-name is a port right (the kernel translates it).
    pub fn is_port_arg(&self, r: &Routine, arg: ArgId) -> bool {
        type_name::is_port_any(self.ty(r.arg(arg).ty).out_name)
    }
}
