//! Message layouts extracted from GNU MIG's generated C.
//!
//! For every routine, the `Request` and `Reply` structs are taken textually from
//! `Server.c` (the `_X<name>` function) and `User.c` (the user stub), together with the
//! descriptor templates (`const mach_msg_type_t xType = {…}` / `xCheck = {…}` and the
//! `mach_msg_type_long_t` variants) and the receivers' checks. A C probe holding copies of
//! those structs and templates is compiled with gcc against the oracle's GNU Mach headers
//! and run; it prints `sizeof`/`offsetof`/`_Alignof` and the raw template bytes.
//!
//! Variable-size arrays appear in the structs at their **maximum** size (as an anonymous
//! `union { T x[N]; T *xP; }`), so offsets of later fields are those of the maximal
//! message; the receivers' size checks ([`SizeCheck`]) give the minimum or exact size.
//!
//! Complex-bit expectations come in three shapes, all recorded as [`ComplexBit`]:
//! the server's request check `!(msgh_bits & COMPLEX)` (must be complex),
//! `(msgh_bits & COMPLEX)` (must be simple) or no bit test (decided at run time); the
//! user's reply check `(msgh_bits & COMPLEX) || …` (must be simple),
//! `((msgh_size … N) || msgh_simple) && …` (must be complex) or neither (run time). Every
//! user stub also accepts a simple `sizeof(mig_reply_header_t)` error reply.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cparse::{self, RawCheck, RawFile, RawItem, RawRoutine, RawStruct, RawTemplate, Side};
use crate::error::{OracleError, Result};
use crate::oracle::{ListEntry, MigRun, Oracle, Outputs};
use crate::util::{self, StableHasher};

const PROBE_VERSION: &str = "mig-conformance probe v1";
const GCC_TIMEOUT: Duration = Duration::from_secs(300);

/// A receiver's size check of a whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SizeCheck {
    /// `msgh_size != N` fails: the message has a fixed size.
    Exact(u64),
    /// `msgh_size < N` fails: the message has variable parts; `N` is the minimum.
    Min(u64),
}

impl SizeCheck {
    /// The number in the check.
    pub fn bytes(&self) -> u64 {
        match *self {
            SizeCheck::Exact(n) | SizeCheck::Min(n) => n,
        }
    }

    /// Whether the size is fixed.
    pub fn is_exact(&self) -> bool {
        matches!(self, SizeCheck::Exact(_))
    }
}

/// What is expected of (or done with) `MACH_MSGH_BITS_COMPLEX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComplexBit {
    /// Always set.
    Set,
    /// Always clear.
    Clear,
    /// Decided at run time (poly ports, indefinite arrays).
    Dynamic,
}

/// A `mach_msg_type_t` bit-field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DescAttr {
    /// `msgt_name` / `msgtl_name`
    Name,
    /// `msgt_size` / `msgtl_size`
    Size,
    /// `msgt_number` / `msgtl_number`
    Number,
    /// `msgt_inline`
    Inline,
    /// `msgt_longform`
    Longform,
    /// `msgt_deallocate`
    Deallocate,
    /// `msgt_unused`
    Unused,
}

/// A decoded x86_64 `mach_msg_type_t` (read through the C bit-fields by the probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Descriptor {
    /// `msgt_name`
    pub name: u8,
    /// `msgt_size` (bits per element; 16 bits wide on x86_64)
    pub size: u16,
    /// `msgt_number`
    pub number: u32,
    /// `msgt_inline`
    pub inline: bool,
    /// `msgt_longform`
    pub longform: bool,
    /// `msgt_deallocate`
    pub deallocate: bool,
    /// `msgt_unused`
    pub unused: u8,
}

/// A descriptor template (`const mach_msg_type_t NAME = {…}` or the long variant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    /// The C variable, e.g. `dataType` (sender) or `dataCheck` (receiver quick check).
    pub var: String,
    /// The argument it belongs to (`var` without `Type`/`Check`), e.g. `data`, `RetCode`.
    pub arg: String,
    /// `mach_msg_type_long_t` rather than `mach_msg_type_t`.
    pub long: bool,
    /// The raw bytes of the C object (8 on x86_64 for both forms).
    pub bytes: Vec<u8>,
    /// The first 8 bytes as a little-endian u64 (what `BAD_TYPECHECK` compares).
    pub value: u64,
    /// The bit-fields (for a long template, those of `msgtl_header`).
    pub desc: Descriptor,
}

/// One clause of a field-by-field descriptor check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckItem {
    /// The attribute must equal `value` (only when the inline bit equals `when_inline`,
    /// if given: GNU MIG's size check for indefinite port arrays, 64 inline / 32 OOL).
    Equals {
        /// Which bit-field.
        attr: DescAttr,
        /// The C member path as written, e.g. `msgtl_header.msgt_inline`, `msgtl_name`.
        member: String,
        /// The expected value.
        value: i64,
        /// The inline-bit condition, if any.
        when_inline: Option<bool>,
    },
    /// `MACH_MSG_TYPE_PORT_ANY(name) && msgh_simple` is an error (poly arguments).
    NotPortWhenSimple,
}

/// How a receiver checks one descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DescriptorCheck {
    /// `BAD_TYPECHECK`: the whole 8-byte descriptor must equal the template.
    Quick {
        /// The descriptor field, e.g. `offsetType`.
        field: String,
        /// The `…Check` template.
        template: Template,
    },
    /// Field-by-field comparison (long forms, variable and poly arguments).
    Fields {
        /// The descriptor field, e.g. `dataType`.
        field: String,
        /// Whether the check reads the long form (`msgtl_…`).
        long: bool,
        /// The clauses, in order.
        items: Vec<CheckItem>,
    },
}

impl DescriptorCheck {
    /// The descriptor field checked.
    pub fn field(&self) -> &str {
        match self {
            DescriptorCheck::Quick { field, .. } | DescriptorCheck::Fields { field, .. } => field,
        }
    }
}

/// What a struct member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// `mach_msg_header_t Head`
    Header,
    /// `mach_msg_type_t xType`
    Descriptor,
    /// `mach_msg_type_long_t xType`
    LongDescriptor,
    /// `char xPad[n]` after the data field `x`
    Pad,
    /// The data (a value, an inline array, an out-of-line pointer, a port name).
    Data,
}

/// One struct member with its compiled position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldLayout {
    /// Member name.
    pub name: String,
    /// C type as written (for a variable array, the element type of the array member).
    pub c_type: String,
    /// Classification.
    pub kind: FieldKind,
    /// `offsetof`.
    pub offset: u64,
    /// `sizeof` (for a variable array: of the anonymous union, i.e. the maximum).
    pub size: u64,
    /// `_Alignof`.
    pub align: u64,
    /// The declared array length, if an array.
    pub array_len: Option<u64>,
    /// For a variable array (`union { T x[N]; T *xP; }`): the pointer member's name.
    pub ool_pointer: Option<String>,
}

/// A compiled `Request` or `Reply` struct.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StructLayout {
    /// `sizeof` (maximum size for variable messages).
    pub size: u64,
    /// `_Alignof`.
    pub align: u64,
    /// Members in order.
    pub fields: Vec<FieldLayout>,
}

impl StructLayout {
    /// The member called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldLayout> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether any member is a variable array.
    pub fn has_variable_array(&self) -> bool {
        self.fields.iter().any(|f| f.ool_pointer.is_some())
    }

    /// Same offsets, sizes, names and kinds (ignores C type spelling such as `const`).
    pub fn same_shape(&self, other: &StructLayout) -> bool {
        self.size == other.size
            && self.fields.len() == other.fields.len()
            && self.fields.iter().zip(&other.fields).all(|(a, b)| {
                a.name == b.name && a.offset == b.offset && a.size == b.size && a.kind == b.kind
            })
    }
}

/// Everything known about one message (request or reply) of a routine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageLayout {
    /// The struct from `Server.c`.
    pub layout: StructLayout,
    /// The same struct from `User.c` (for cross-checking; see [`StructLayout::same_shape`]).
    pub user_layout: StructLayout,
    /// The receiver's whole-message size check (server for requests, user for replies).
    pub size_check: SizeCheck,
    /// The receiver's complex-bit expectation.
    pub complex_check: ComplexBit,
    /// The receiver's later size checks for variable parts, as whitespace-normalised C.
    pub variable_checks: Vec<String>,
    /// The size the sender writes when it is a literal constant: `_Static_assert(
    /// sizeof(Request) == N)` in the user stub; `OutP->Head.msgh_size = N;` in the server
    /// stub. `None` when it is computed at run time, and for replies that consist of the
    /// `mig_reply_header_t` only (the server stub then keeps the demux's
    /// `msgh_size = sizeof *OutP`, i.e. 48).
    pub sender_fixed_size: Option<u64>,
    /// How the sender sets the complex bit.
    pub sender_complex: ComplexBit,
    /// The sender's descriptor templates in declaration order (for replies the demux's
    /// `RetCodeType` first).
    pub templates: Vec<Template>,
    /// The receiver's descriptor checks in order (for replies `RetCodeType` first).
    pub checks: Vec<DescriptorCheck>,
}

impl MessageLayout {
    /// The sender template for argument `arg`.
    pub fn template(&self, arg: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.arg == arg)
    }

    /// The receiver check of descriptor field `field` (e.g. `dataType`).
    pub fn check(&self, field: &str) -> Option<&DescriptorCheck> {
        self.checks.iter().find(|c| c.field() == field)
    }
}

/// The layouts of one routine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutineLayout {
    /// Routine name.
    pub name: String,
    /// Routine number within the subsystem.
    pub number: i64,
    /// Request `msgh_id`.
    pub msgh_id: i64,
    /// Reply `msgh_id` (routines only).
    pub reply_id: Option<i64>,
    /// Whether this is a simpleroutine.
    pub simple: bool,
    /// The request.
    pub request: MessageLayout,
    /// The reply (routines only).
    pub reply: Option<MessageLayout>,
}

/// Sizes of the fixed ABI types, from the oracle's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Abi {
    /// `sizeof(mach_msg_header_t)`
    pub header: u64,
    /// `sizeof(mach_msg_type_t)`
    pub type_desc: u64,
    /// `sizeof(mach_msg_type_long_t)`
    pub type_long: u64,
    /// `sizeof(mig_reply_header_t)`
    pub reply_header: u64,
    /// `sizeof(mach_port_name_inlined_t)`
    pub port_name_inlined: u64,
    /// `sizeof(mach_port_t)`
    pub port: u64,
    /// `offsetof(mach_msg_header_t, msgh_id)`
    pub msgh_id_offset: u64,
}

/// The `mach/mig_support.h` shim used when compiling GNU MIG's output on Linux.
pub const MIG_SUPPORT_SHIM: &str = "\
/* Test shim for mig-conformance: declares the MIG runtime hooks with Mach types. */
#ifndef MIG_CONFORMANCE_MIG_SUPPORT_H
#define MIG_CONFORMANCE_MIG_SUPPORT_H
#include <string.h>
#include <mach/port.h>
#include <mach/message.h>
#include <mach/machine/vm_types.h>
extern mach_port_t mig_get_reply_port(void);
extern void mig_dealloc_reply_port(mach_port_t reply_port);
extern void mig_put_reply_port(mach_port_t reply_port);
extern void mig_allocate(vm_offset_t *addr, vm_size_t size);
extern void mig_deallocate(vm_offset_t addr, vm_size_t size);
extern vm_size_t mig_strncpy(char *dst, const char *src, vm_size_t len);
#endif
";

impl Oracle {
    /// A directory holding `mach/mig_support.h` ([`MIG_SUPPORT_SHIM`]); put it first on the
    /// include path when compiling GNU MIG's output.
    pub fn shim_include_dir(&self) -> Result<PathBuf> {
        let mut h = StableHasher::new();
        h.str(MIG_SUPPORT_SHIM);
        let dir = self.cache_dir().join(format!("shim-{}", &h.hex()[..16]));
        util::write_if_changed(
            &dir.join("mach").join("mig_support.h"),
            MIG_SUPPORT_SHIM.as_bytes(),
        )?;
        Ok(dir)
    }

    /// A `gcc` command with the shim and the oracle's include directory on the path.
    pub fn gcc(&self) -> Result<Command> {
        let mut cmd = Command::new("gcc");
        cmd.arg("-std=gnu11")
            .arg(format!("-I{}", self.shim_include_dir()?.display()))
            .arg(format!("-I{}", self.include_dir().display()));
        Ok(cmd)
    }

    /// Sizes of the fixed ABI types in the oracle's headers.
    pub fn abi(&self) -> Result<Abi> {
        let mut probe = Probe::default();
        probe.includes.push("#include <mach/mig_errors.h>".into());
        let out = probe.run(self, &[])?;
        let get = |k: &str| {
            out.abi
                .get(k)
                .copied()
                .ok_or_else(|| OracleError::new(format!("probe did not report {k}")))
        };
        Ok(Abi {
            header: get("header")?,
            type_desc: get("type")?,
            type_long: get("type_long")?,
            reply_header: get("reply_header")?,
            port_name_inlined: get("port_name_inlined")?,
            port: get("port")?,
            msgh_id_offset: get("msgh_id_offset")?,
        })
    }

    /// The layouts of every routine of `defs` (GNU MIG run with `defines`), in `-list`
    /// order. Fails if GNU MIG rejects the file or its output cannot be understood.
    pub fn layouts(&self, defs: &Path, defines: &[&str]) -> Result<Vec<RoutineLayout>> {
        let run = self.run(defs, defines, Outputs::ALL)?;
        self.layouts_of(&run)
            .map_err(|e| e.context(format!("layouts of {} {:?}", defs.display(), defines)))
    }

    /// The layouts of every routine of a finished run (which must have all outputs).
    pub fn layouts_of(&self, run: &MigRun) -> Result<Vec<RoutineLayout>> {
        if !run.accepted() {
            return Err(OracleError::new(format!(
                "GNU MIG rejected the file (exit {:?}): {}",
                run.exit_code,
                run.stderr.trim()
            )));
        }
        let list = run.list_entries()?;
        let server = cparse::parse_file(&run.server_c_text()?, Side::Server)
            .map_err(|e| e.context("Server.c"))?;
        let user =
            cparse::parse_file(&run.user_c_text()?, Side::User).map_err(|e| e.context("User.c"))?;
        extract(self, run, &list, &server, &user, &[], &[])
    }

    /// Like [`Oracle::layouts_of`], for `.defs` files whose C types GNU MIG's generated code
    /// cannot find in the GNU Mach headers: `prelude` lines (e.g. `#include "types.h"`)
    /// go before the probe's copies of the structs, and `include_dirs` are searched by it.
    /// Any header given this way should be checked against GNU MIG's own
    /// `_Static_assert(sizeof(T) == …)` lines, e.g. with [`Oracle::check_compiles`].
    pub fn layouts_of_with(
        &self,
        run: &MigRun,
        include_dirs: &[PathBuf],
        prelude: &[String],
    ) -> Result<Vec<RoutineLayout>> {
        if !run.accepted() {
            return Err(OracleError::new(format!(
                "GNU MIG rejected the file (exit {:?}): {}",
                run.exit_code,
                run.stderr.trim()
            )));
        }
        let list = run.list_entries()?;
        let server = cparse::parse_file(&run.server_c_text()?, Side::Server)
            .map_err(|e| e.context("Server.c"))?;
        let user =
            cparse::parse_file(&run.user_c_text()?, Side::User).map_err(|e| e.context("User.c"))?;
        extract(self, run, &list, &server, &user, include_dirs, prelude)
    }

    /// Checks the C types of `prelude` (e.g. a header's text) against GNU MIG's own
    /// `_Static_assert(sizeof(T) == …)` lines in `User.c` and `Server.c` of `run` (all of
    /// them except those about the local `Request`/`Reply` structs), by compiling them
    /// together with `gcc -fsyntax-only`.
    pub fn check_type_sizes(
        &self,
        run: &MigRun,
        include_dirs: &[PathBuf],
        prelude: &[String],
    ) -> Result<()> {
        let mut src =
            String::from("#define _GNU_SOURCE 1\n#include <stdint.h>\n#include <mach/message.h>\n");
        for p in prelude {
            src.push_str(p);
            src.push('\n');
        }
        src.push_str("void mig_conformance_size_checks(void)\n{\n");
        let mut n = 0;
        for text in [run.user_c_text()?, run.server_c_text()?] {
            for line in text.lines() {
                let l = line.trim();
                // Skipped: the local structs, and GNU Mach's own mach_port_name_inlined_t,
                // for which GNU MIG writes `== 8 * N` for a fixed inline array of N ports
                // (so its own Server.c does not compile; a GNU MIG bug).
                if l.starts_with("_Static_assert(sizeof(")
                    && !l.starts_with("_Static_assert(sizeof(Request)")
                    && !l.starts_with("_Static_assert(sizeof(Reply)")
                    && !l.starts_with("_Static_assert(sizeof(mach_port_name_inlined_t)")
                {
                    src.push('\t');
                    src.push_str(l);
                    src.push('\n');
                    n += 1;
                }
            }
        }
        src.push_str("}\n");
        let mut h = StableHasher::new();
        h.str(PROBE_VERSION).str(self.identity()).str(&src);
        let dir = self.cache_dir().join(format!("sizes-{}", &h.hex()[..16]));
        let c = dir.join("sizes.c");
        util::write_if_changed(&c, src.as_bytes())?;
        let mut gcc = self.gcc()?;
        for d in include_dirs {
            gcc.arg(format!("-I{}", d.display()));
        }
        gcc.arg(format!("-I{}", run.dir.display()))
            .arg("-fsyntax-only")
            .arg(&c);
        util::run_checked(&mut gcc, GCC_TIMEOUT)
            .map_err(|e| e.context(format!("checking {n} type sizes of {}", run.defs.display())))?;
        Ok(())
    }
}

fn find<'a>(file: &'a RawFile, name: &str, what: &str) -> Result<&'a RawRoutine> {
    file.routines
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| OracleError::new(format!("{what} has no routine {name}")))
}

fn extract(
    oracle: &Oracle,
    run: &MigRun,
    list: &[ListEntry],
    server: &RawFile,
    user: &RawFile,
    include_dirs: &[PathBuf],
    prelude: &[String],
) -> Result<Vec<RoutineLayout>> {
    let mut probe = Probe::default();
    probe.includes.extend(prelude.iter().cloned());
    for inc in server.includes.iter().chain(&user.includes) {
        if !probe.includes.contains(inc) {
            probe.includes.push(inc.clone());
        }
    }
    let retcode_template = server
        .trailer_templates
        .iter()
        .find(|t| t.var == "RetCodeType")
        .cloned();

    // Register everything with the probe first; then assemble from its output.
    struct Pending<'a> {
        entry: &'a ListEntry,
        s: &'a RawRoutine,
        u: &'a RawRoutine,
        ids: MessageIds,
        reply_ids: Option<MessageIds>,
    }
    let mut pending = Vec::new();
    for entry in list {
        let s = find(server, &entry.name, "Server.c")?;
        let u = find(user, &entry.name, "User.c")?;
        if s.simple != entry.is_simple() || u.simple != entry.is_simple() {
            return Err(OracleError::new(format!(
                "{}: -list and the generated C disagree on simpleroutine-ness",
                entry.name
            )));
        }
        let need = |st: &Option<RawStruct>, what: &str| {
            st.clone()
                .ok_or_else(|| OracleError::new(format!("{}: no {what} struct found", entry.name)))
        };
        // Request: sender = user, receiver = server.
        let ids = probe.message(
            &need(&s.request, "server Request")?,
            &need(&u.request, "user Request")?,
            u.templates.iter().filter(|t| t.var.ends_with("Type")),
            &s.checks,
            &s.templates,
        );
        // Reply: sender = server (plus the demux's RetCodeType), receiver = user.
        let reply_ids = if entry.is_simple() {
            None
        } else {
            Some(
                probe.message(
                    &need(&s.reply, "server Reply")?,
                    &need(&u.reply, "user Reply")?,
                    retcode_template
                        .iter()
                        .chain(s.templates.iter().filter(|t| t.var.ends_with("Type"))),
                    &u.checks,
                    &u.templates,
                ),
            )
        };
        pending.push(Pending {
            entry,
            s,
            u,
            ids,
            reply_ids,
        });
    }
    let mut dirs = include_dirs.to_vec();
    dirs.push(run.dir.clone());
    let out = probe.run(oracle, &dirs)?;
    let mut layouts = Vec::new();
    for p in pending {
        let request = out
            .message(&p.ids, p.s, p.u)
            .map_err(|e| e.context(format!("{} request", p.entry.name)))?;
        let reply = match &p.reply_ids {
            Some(ids) => Some(
                out.message(ids, p.u, p.s)
                    .map_err(|e| e.context(format!("{} reply", p.entry.name)))?,
            ),
            None => None,
        };
        layouts.push(RoutineLayout {
            name: p.entry.name.clone(),
            number: p.entry.number,
            msgh_id: p.entry.msgh_id,
            reply_id: (!p.entry.is_simple()).then_some(p.entry.reply_id),
            simple: p.entry.is_simple(),
            request,
            reply,
        });
    }
    Ok(layouts)
}

/// Probe ids of one message's parts.
struct MessageIds {
    server_struct: (usize, Vec<cparse::RawField>),
    user_struct: (usize, Vec<cparse::RawField>),
    templates: Vec<(usize, RawTemplate)>,
    checks: Vec<ProbedCheck>,
}

enum ProbedCheck {
    Quick {
        field: String,
        template: (usize, RawTemplate),
    },
    Fields {
        field: String,
        long: bool,
        items: Vec<ProbedItem>,
    },
}

enum ProbedItem {
    Equals {
        attr: DescAttr,
        member: String,
        expr: usize,
        when: Option<usize>,
    },
    NotPortWhenSimple,
}

/// A C program printing the numbers of many structs, templates and constant expressions.
#[derive(Default)]
struct Probe {
    includes: Vec<String>,
    decls: String,
    main: String,
    structs: usize,
    templates: usize,
    exprs: HashMap<String, usize>,
}

impl Probe {
    fn add_struct(&mut self, st: &RawStruct) -> usize {
        let id = self.structs;
        self.structs += 1;
        let ty = format!("mig_probe_s{id}");
        let _ = writeln!(self.decls, "typedef struct {{\n{}}} {ty};", st.body);
        let _ = writeln!(
            self.main,
            "\tprintf(\"S {id} %zu %zu\\n\", sizeof({ty}), _Alignof({ty}));"
        );
        for (k, f) in st.fields.iter().enumerate() {
            let mut members = vec![('F', f.name.as_str())];
            if let Some((p, _)) = &f.ool_pointer {
                members.push(('P', p.as_str()));
            }
            for (tag, m) in members {
                let _ = writeln!(
                    self.main,
                    "\tprintf(\"{tag} {id} {k} %zu %zu %zu\\n\", offsetof({ty}, {m}), \
                     sizeof((({ty} *)0)->{m}), __alignof__((({ty} *)0)->{m}));"
                );
            }
        }
        id
    }

    fn add_template(&mut self, t: &RawTemplate) -> usize {
        let id = self.templates;
        self.templates += 1;
        let ty = if t.long {
            "mach_msg_type_long_t"
        } else {
            "mach_msg_type_t"
        };
        let var = format!("mig_probe_t{id}");
        let _ = writeln!(self.decls, "static const {ty} {var} = {};", t.init.trim());
        let hdr = if t.long {
            format!("{var}.msgtl_header")
        } else {
            var.clone()
        };
        let _ = writeln!(
            self.main,
            "\tprintf(\"T {id} %u %u %u %u %u %u %u\", (unsigned){hdr}.msgt_name, \
             (unsigned){hdr}.msgt_size, (unsigned){hdr}.msgt_number, (unsigned){hdr}.msgt_inline, \
             (unsigned){hdr}.msgt_longform, (unsigned){hdr}.msgt_deallocate, \
             (unsigned){hdr}.msgt_unused);\n\tdump(&{var}, sizeof {var});"
        );
        id
    }

    fn add_expr(&mut self, expr: &str) -> usize {
        if let Some(&id) = self.exprs.get(expr) {
            return id;
        }
        let id = self.exprs.len();
        self.exprs.insert(expr.to_string(), id);
        let _ = writeln!(
            self.main,
            "\tprintf(\"E {id} %lld\\n\", (long long)({expr}));"
        );
        id
    }

    fn message<'a>(
        &mut self,
        server_struct: &RawStruct,
        user_struct: &RawStruct,
        send_templates: impl Iterator<Item = &'a RawTemplate>,
        checks: &[RawCheck],
        receiver_templates: &[RawTemplate],
    ) -> MessageIds {
        let server_id = self.add_struct(server_struct);
        let user_id = self.add_struct(user_struct);
        let templates = send_templates
            .map(|t| (self.add_template(t), t.clone()))
            .collect();
        let mut probed = Vec::new();
        for c in checks {
            match c {
                RawCheck::Quick { field, var } => {
                    // An unknown template is reported when assembling.
                    let t = receiver_templates
                        .iter()
                        .find(|t| &t.var == var)
                        .cloned()
                        .unwrap_or_else(|| RawTemplate {
                            var: var.clone(),
                            long: false,
                            init: String::new(),
                        });
                    let id = if t.init.is_empty() {
                        usize::MAX
                    } else {
                        self.add_template(&t)
                    };
                    probed.push(ProbedCheck::Quick {
                        field: field.clone(),
                        template: (id, t),
                    });
                }
                RawCheck::Fields { field, long, items } => {
                    let items = items
                        .iter()
                        .map(|i| match i {
                            RawItem::Compare {
                                member,
                                attr,
                                expr,
                                when_inline,
                            } => ProbedItem::Equals {
                                attr: *attr,
                                member: member.clone(),
                                expr: self.add_expr(expr),
                                when: when_inline.as_deref().map(|w| self.add_expr(w)),
                            },
                            RawItem::NotPortWhenSimple { .. } => ProbedItem::NotPortWhenSimple,
                        })
                        .collect();
                    probed.push(ProbedCheck::Fields {
                        field: field.clone(),
                        long: *long,
                        items,
                    });
                }
            }
        }
        MessageIds {
            server_struct: (server_id, server_struct.fields.clone()),
            user_struct: (user_id, user_struct.fields.clone()),
            templates,
            checks: probed,
        }
    }

    fn source(&self) -> String {
        let mut src = String::from(
            "/* Generated by mig-conformance at test time from GNU MIG output. */\n\
             #define _GNU_SOURCE 1\n#define EXPORT_BOOLEAN\n\
             #include <stddef.h>\n#include <stdio.h>\n#include <stdint.h>\n\
             #include <mach/message.h>\n#include <mach/mig_errors.h>\n",
        );
        for inc in &self.includes {
            src.push_str(inc);
            src.push('\n');
        }
        src.push_str(
            "\nstatic void dump(const void *p, size_t n)\n{\n\
             \tconst unsigned char *b = p;\n\tprintf(\" \");\n\
             \tfor (size_t i = 0; i < n; i++)\n\t\tprintf(\"%02x\", b[i]);\n\
             \tprintf(\"\\n\");\n}\n\n",
        );
        src.push_str(&self.decls);
        src.push_str("\nint main(void)\n{\n");
        for (key, expr) in [
            ("header", "sizeof(mach_msg_header_t)"),
            ("type", "sizeof(mach_msg_type_t)"),
            ("type_long", "sizeof(mach_msg_type_long_t)"),
            ("reply_header", "sizeof(mig_reply_header_t)"),
            ("port_name_inlined", "sizeof(mach_port_name_inlined_t)"),
            ("port", "sizeof(mach_port_t)"),
            ("msgh_id_offset", "offsetof(mach_msg_header_t, msgh_id)"),
        ] {
            let _ = writeln!(src, "\tprintf(\"A {key} %zu\\n\", (size_t)({expr}));");
        }
        src.push_str(&self.main);
        src.push_str("\treturn 0;\n}\n");
        src
    }

    /// Compiles and runs the probe (cached by source hash), with `extra_includes` on the
    /// include path.
    fn run(&self, oracle: &Oracle, extra_includes: &[PathBuf]) -> Result<ProbeOutput> {
        let src = self.source();
        let mut h = StableHasher::new();
        h.str(PROBE_VERSION).str(oracle.identity()).str(&src);
        for inc in extra_includes {
            h.str(&inc.to_string_lossy());
        }
        let dest = oracle.cache_dir().join(format!("probe-{}", h.hex()));
        let out_path = dest.join("out.txt");
        if !out_path.is_file() {
            fs::create_dir_all(oracle.cache_dir())
                .map_err(|e| OracleError::io("cannot create", oracle.cache_dir(), e))?;
            let scratch = util::scratch_dir(oracle.cache_dir(), "probe")?;
            let built = (|| -> Result<()> {
                let c = scratch.join("probe.c");
                fs::write(&c, &src).map_err(|e| OracleError::io("cannot write", &c, e))?;
                let exe = scratch.join("probe");
                let mut gcc = oracle.gcc()?;
                for inc in extra_includes {
                    gcc.arg(format!("-I{}", inc.display()));
                }
                gcc.args(["-O0", "-w", "-o"]).arg(&exe).arg(&c);
                util::run_checked(&mut gcc, GCC_TIMEOUT)
                    .map_err(|e| e.context(format!("compiling probe {}", c.display())))?;
                let stdout = util::run_checked(&mut Command::new(&exe), GCC_TIMEOUT)?;
                let out = scratch.join("out.txt");
                fs::write(&out, stdout).map_err(|e| OracleError::io("cannot write", &out, e))
            })();
            if let Err(e) = built {
                let _ = fs::remove_dir_all(&scratch);
                return Err(e);
            }
            util::publish_dir(&scratch, &dest)?;
        }
        ProbeOutput::parse(&util::read_text(&out_path)?)
    }
}

#[derive(Default)]
struct ProbeOutput {
    abi: HashMap<String, u64>,
    structs: HashMap<usize, (u64, u64)>,
    fields: HashMap<(usize, usize), (u64, u64, u64)>,
    pointers: HashMap<(usize, usize), (u64, u64, u64)>,
    templates: HashMap<usize, (Descriptor, Vec<u8>)>,
    exprs: HashMap<usize, i64>,
}

impl ProbeOutput {
    fn parse(text: &str) -> Result<ProbeOutput> {
        let mut out = ProbeOutput::default();
        for line in text.lines() {
            let bad = || OracleError::new(format!("bad probe output line {line:?}"));
            let parts: Vec<&str> = line.split_whitespace().collect();
            let n = |i: usize| -> Result<u64> {
                parts.get(i).and_then(|s| s.parse().ok()).ok_or_else(bad)
            };
            match parts.first().copied() {
                Some("A") => {
                    out.abi
                        .insert(parts.get(1).ok_or_else(bad)?.to_string(), n(2)?);
                }
                Some("S") => {
                    out.structs.insert(n(1)? as usize, (n(2)?, n(3)?));
                }
                Some(tag @ ("F" | "P")) => {
                    let key = (n(1)? as usize, n(2)? as usize);
                    let val = (n(3)?, n(4)?, n(5)?);
                    if tag == "F" {
                        out.fields.insert(key, val);
                    } else {
                        out.pointers.insert(key, val);
                    }
                }
                Some("T") => {
                    let hex = parts.get(9).ok_or_else(bad)?;
                    let bytes = (0..hex.len() / 2)
                        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad()))
                        .collect::<Result<Vec<u8>>>()?;
                    let desc = Descriptor {
                        name: n(2)? as u8,
                        size: n(3)? as u16,
                        number: n(4)? as u32,
                        inline: n(5)? != 0,
                        longform: n(6)? != 0,
                        deallocate: n(7)? != 0,
                        unused: n(8)? as u8,
                    };
                    out.templates.insert(n(1)? as usize, (desc, bytes));
                }
                Some("E") => {
                    let v = parts
                        .get(2)
                        .and_then(|s| s.parse::<i64>().ok())
                        .ok_or_else(bad)?;
                    out.exprs.insert(n(1)? as usize, v);
                }
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }

    fn struct_layout(&self, id: usize, raw: &[cparse::RawField]) -> Result<StructLayout> {
        let missing = || OracleError::new(format!("probe output lacks struct {id}"));
        let &(size, align) = self.structs.get(&id).ok_or_else(missing)?;
        let mut fields: Vec<FieldLayout> = Vec::new();
        for (k, f) in raw.iter().enumerate() {
            let &(offset, mut fsize, mut falign) = self.fields.get(&(id, k)).ok_or_else(missing)?;
            if let Some(&(poff, psize, palign)) = self.pointers.get(&(id, k)) {
                if poff != offset {
                    return Err(OracleError::new(format!(
                        "union members of {} at different offsets",
                        f.name
                    )));
                }
                falign = falign.max(palign);
                fsize = fsize.max(psize).div_ceil(falign) * falign;
            }
            let kind = match (f.name.as_str(), f.c_type.as_str()) {
                ("Head", "mach_msg_header_t") => FieldKind::Header,
                (_, "mach_msg_type_t") => FieldKind::Descriptor,
                (_, "mach_msg_type_long_t") => FieldKind::LongDescriptor,
                (name, "char")
                    if fields.last().is_some_and(|p| {
                        p.kind == FieldKind::Data && format!("{}Pad", p.name) == name
                    }) =>
                {
                    FieldKind::Pad
                }
                _ => FieldKind::Data,
            };
            fields.push(FieldLayout {
                name: f.name.clone(),
                c_type: f.c_type.clone(),
                kind,
                offset,
                size: fsize,
                align: falign,
                array_len: f.array_len,
                ool_pointer: f.ool_pointer.as_ref().map(|(n, _)| n.clone()),
            });
        }
        Ok(StructLayout {
            size,
            align,
            fields,
        })
    }

    fn template(&self, id: usize, raw: &RawTemplate) -> Result<Template> {
        let (desc, bytes) = self
            .templates
            .get(&id)
            .cloned()
            .ok_or_else(|| OracleError::new(format!("unknown template {}", raw.var)))?;
        let mut word = [0u8; 8];
        for (w, b) in word.iter_mut().zip(&bytes) {
            *w = *b;
        }
        let arg = raw
            .var
            .strip_suffix("Type")
            .or_else(|| raw.var.strip_suffix("Check"))
            .unwrap_or(&raw.var)
            .to_string();
        Ok(Template {
            var: raw.var.clone(),
            arg,
            long: raw.long,
            bytes,
            value: u64::from_le_bytes(word),
            desc,
        })
    }

    fn expr(&self, id: usize) -> Result<i64> {
        self.exprs
            .get(&id)
            .copied()
            .ok_or_else(|| OracleError::new(format!("probe output lacks expression {id}")))
    }

    /// Assembles a message: `sender` wrote the templates, `receiver` the checks.
    fn message(
        &self,
        ids: &MessageIds,
        receiver: &RawRoutine,
        sender: &RawRoutine,
    ) -> Result<MessageLayout> {
        // `receiver`/`sender` are given as (routine of the receiving side, of the sending
        // side): the server receives requests, the user receives replies.
        let layout = self.struct_layout(ids.server_struct.0, &ids.server_struct.1)?;
        let user_layout = self.struct_layout(ids.user_struct.0, &ids.user_struct.1)?;
        let templates = ids
            .templates
            .iter()
            .map(|(id, t)| self.template(*id, t))
            .collect::<Result<Vec<_>>>()?;
        let mut checks = Vec::new();
        for c in &ids.checks {
            checks.push(match c {
                ProbedCheck::Quick { field, template } => DescriptorCheck::Quick {
                    field: field.clone(),
                    template: self.template(template.0, &template.1)?,
                },
                ProbedCheck::Fields { field, long, items } => DescriptorCheck::Fields {
                    field: field.clone(),
                    long: *long,
                    items: items
                        .iter()
                        .map(|i| {
                            Ok(match i {
                                ProbedItem::Equals {
                                    attr,
                                    member,
                                    expr,
                                    when,
                                } => CheckItem::Equals {
                                    attr: *attr,
                                    member: member.clone(),
                                    value: self.expr(*expr)?,
                                    when_inline: match when {
                                        Some(w) => Some(self.expr(*w)? != 0),
                                        None => None,
                                    },
                                },
                                ProbedItem::NotPortWhenSimple => CheckItem::NotPortWhenSimple,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                },
            });
        }
        let size_check = receiver
            .size_check
            .ok_or_else(|| OracleError::new("the receiver has no size check"))?;
        Ok(MessageLayout {
            layout,
            user_layout,
            size_check,
            complex_check: receiver.complex_check,
            variable_checks: receiver.variable_checks.clone(),
            sender_fixed_size: sender.sender_fixed_size,
            sender_complex: sender.sender_complex,
            templates,
            checks,
        })
    }
}
