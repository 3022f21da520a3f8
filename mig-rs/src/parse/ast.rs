//! The syntax tree of a `.defs` file, with a [`Loc`] on every node that a diagnostic may
//! point at. It records what was written; meaning (types, sizes, numbering) is `check`'s job.

use crate::lex::{FlagKw, SymType};
use crate::source::Loc;
use std::rc::Rc;

/// An identifier with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// Shared with the token (and every identifier of the same spelling).
    pub name: Rc<str>,
    pub loc: Loc,
}

/// A whole preprocessed `.defs` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct File {
    pub stmts: Vec<Stmt>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub loc: Loc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubsystemMod {
    KernelUser,
    KernelServer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutineKind {
    Routine,
    SimpleRoutine,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// `import`: both sides.
    Import,
    /// `uimport`: user side only.
    UImport,
    /// `simport`: server side only.
    SImport,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StmtKind {
    Subsystem {
        mods: Vec<(SubsystemMod, Loc)>,
        name: Ident,
        base: (u32, Loc),
    },
    /// `waittime X` (`Some`) or `nowaittime` (`None`).
    WaitTime(Option<(String, Loc)>),
    MsgOption(String, Loc),
    ServerPrefix(Ident),
    UserPrefix(Ident),
    ServerDemux(Ident),
    Type(NamedType),
    Routine(RoutineDecl),
    Skip(Option<(u32, Loc)>),
    Import {
        kind: ImportKind,
        /// Verbatim, with its quotes or angle brackets.
        file: String,
    },
    /// The quoted string, verbatim.
    RcsId(String),
    /// A lone `;`.
    Empty,
}

/// `name = spec clauses…` (in a `type` statement or inline in an argument).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedType {
    pub name: Ident,
    pub spec: TypeSpec,
    pub clauses: Vec<TransClause>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeSpec {
    pub kind: TypeSpecKind,
    pub loc: Loc,
}

/// One side of an IPC type name: a number or a symbolic name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimIpc {
    Number(u32),
    Sym(SymType),
}

/// `name` or `in|out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpcType {
    pub first: (PrimIpc, Loc),
    pub second: Option<(PrimIpc, Loc)>,
}

/// One IPC flag after a comma: `dealloc`, `dealloc[]`, `islong`…
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagItem {
    pub flag: FlagKw,
    /// Written with `[]` (only meaningful for `dealloc`).
    pub variable: bool,
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeSpecKind {
    /// `ipc` or `(ipc, size, flags…)`.
    Basic {
        ipc: IpcType,
        size: Option<IntExpr>,
        flags: Vec<FlagItem>,
    },
    /// A previously declared type.
    Prev(Ident),
    /// `array[] of T` / `array[*] of T` (`max` None) or `array[*:max] of T`.
    VarArray {
        max: Option<IntExpr>,
        elem: Box<TypeSpec>,
    },
    /// `array[n] of T`.
    Array { count: IntExpr, elem: Box<TypeSpec> },
    /// `^ T`.
    Pointer(Box<TypeSpec>),
    /// `struct[n] of T`.
    StructArray { count: IntExpr, elem: Box<TypeSpec> },
    /// `struct { T a; U b; }`: (type name, member name) pairs.
    Struct { members: Vec<(Ident, Ident)> },
    /// `c_string[n]` or `c_string[*:n]`.
    CString { max: IntExpr, varying: bool },
}

/// A translation clause after a type spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransClause {
    /// `intran: TransType func(ServerType)`.
    InTran {
        trans_type: Ident,
        func: Ident,
        server_type: Ident,
    },
    /// `intranpayload: TransType func`.
    InTranPayload { trans_type: Ident, func: Ident },
    /// `outtran: ServerType func(TransType)`.
    OutTran {
        server_type: Ident,
        func: Ident,
        trans_type: Ident,
    },
    /// `destructor: func(TransType)`.
    Destructor { func: Ident, trans_type: Ident },
    /// `ctype: T`.
    CType(Ident),
    /// `cusertype: T`.
    CUserType(Ident),
    /// `cservertype: T`.
    CServerType(Ident),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// An unsigned integer expression (`+ - * /` on `u_int`, as GNU MIG evaluates them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntExprKind {
    Number(u32),
    Binary(BinOp, Box<IntExpr>, Box<IntExpr>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntExpr {
    pub kind: IntExprKind,
    pub loc: Loc,
}

impl IntExpr {
    /// Evaluates with `u_int` wrapping semantics; division by zero is `Err(loc)`.
    pub fn eval(&self) -> Result<u32, Loc> {
        match &self.kind {
            IntExprKind::Number(n) => Ok(*n),
            IntExprKind::Binary(op, a, b) => {
                let (x, y) = (a.eval()?, b.eval()?);
                Ok(match op {
                    BinOp::Add => x.wrapping_add(y),
                    BinOp::Sub => x.wrapping_sub(y),
                    BinOp::Mul => x.wrapping_mul(y),
                    BinOp::Div => x.checked_div(y).ok_or(b.loc)?,
                })
            }
        }
    }
}

/// `routine name(args…)` or `simpleroutine name(args…)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutineDecl {
    pub kind: RoutineKind,
    pub name: Ident,
    pub args: Vec<Argument>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    InOut,
    RequestPort,
    ReplyPort,
    SReplyPort,
    UReplyPort,
    WaitTime,
    MsgOption,
    MsgSeqno,
}

/// The type of an argument: a declared name, or an inline `name = spec` declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgType {
    Named(Ident),
    Inline(Box<NamedType>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Argument {
    pub direction: Option<(Direction, Loc)>,
    pub name: Ident,
    pub ty: ArgType,
    pub flags: Vec<FlagItem>,
    pub loc: Loc,
}
