//! The conformance code generator (see `main.rs`).
//!
//! For routine `r` of subsystem `k`, argument `i`, the test values live in tables indexed by
//! the variant (`values::VARIANTS` entries): `T<r>_<i><slot>` in Rust, `t<r>_<i><slot>` in C,
//! where the slot letters mean, per shape:
//!
//! | shape | A | B | C | D |
//! |---|---|---|---|---|
//! | scalar, port name | value | | | |
//! | port | name | disposition sent | | |
//! | fixed array | seed | | | |
//! | string | seed | length sent (without NUL) | | |
//! | variable/indefinite/out-of-line array | seed | count (C elements) | client capacity | disposition (port arrays) or dealloc flag |
//!
//! Request values use the slot letters as is, reply values (sent by the server) the letters
//! `E F G H` instead of `A B C D`. Element `j` of an array is `values::mix(seed, j)` cut to
//! the element width (ports: `values::port_name`, strings: `values::str_byte`), in Rust and
//! in C alike.

use crate::values::{mix, ERROR_VARIANT, REPLY_PORT, SEQNO, VARIANTS};
use heck::ToUpperCamelCase;
use mig_rs::codegen::shape::{shape, Elem, ElemKind, Scalar, Shape};
use mig_rs::codegen::{generate as mig_generate, CodegenOptions};
use mig_rs::driver::{compile, Options};
use mig_rs::ir::{Arg, ArgId, ArgKind, Dealloc, HeaderPort, Routine, Subsystem};
use mig_rs::preprocess::Define;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

const POLY: u32 = u32::MAX;
const V: usize = VARIANTS;

/// The module text when the oracle is missing.
pub fn skipped(reason: &str) -> String {
    format!(
        "/// The include directory the suite was generated from (`None`: not generated).\n\
         pub const ORACLE_INCLUDE: Option<&str> = None;\n\
         /// Why the suite was not generated.\n\
         pub const SKIP_REASON: &str = {reason:?};\n\
         /// The generated subsystems.\n\
         pub static SUBS: &[crate::rt::SubEntry] = &[];\n\
         /// Files mig-rs could not generate.\n\
         pub static GEN_FAILURES: &[crate::rt::GenFailure] = &[];\n"
    )
}

/// The corpus: every `.defs` directly in the oracle's `mach/`, `device/`, `mach/x86_64/` and
/// `mach_debug/` (as `Oracle::corpus`), plus `-DSEQNOS` for the two memory-object files.
pub fn configs(inc: &Path) -> Vec<(PathBuf, String, Vec<&'static str>)> {
    let mut files = Vec::new();
    for sub in ["mach", "device", "mach/x86_64", "mach_debug"] {
        let Ok(entries) = fs::read_dir(inc.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "defs") && p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(inc)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| f.display().to_string());
        out.push((f.clone(), rel.clone(), vec![]));
        if rel == "mach/memory_object.defs" || rel == "mach/memory_object_default.defs" {
            out.push((f, rel, vec!["SEQNOS"]));
        }
    }
    out
}

/// Generates everything; returns the text of `conformance_gen.rs`.
pub fn generate(inc: &Path, out: &Path) -> String {
    generate_oracle(inc, out, "s")
}

/// [`generate`] with per-subsystem files named `<prefix><k>_…`.
pub fn generate_oracle(inc: &Path, out: &Path, prefix: &str) -> String {
    generate_from(&configs(inc), &[inc.to_path_buf()], inc, out, prefix)
}

/// Generates the suite for the given `(path, name, cpp defines)` configurations, compiled
/// with `include_dirs`; `origin` is recorded as `ORACLE_INCLUDE`. The per-subsystem files in
/// `out` are named `<prefix><k>_mig.rs`, `…_client.c`, `…_server.c`. (The fuzz crate uses
/// this for the project's own `defs/` beside the oracle's.)
pub fn generate_from(
    configs: &[(PathBuf, String, Vec<&'static str>)],
    include_dirs: &[PathBuf],
    origin: &Path,
    out: &Path,
    prefix: &str,
) -> String {
    let inc = origin;
    let mut subs = Vec::new();
    let mut failures = String::new();
    let mut modules = String::new();
    for (path, rel, defines) in configs {
        let opts = Options {
            include_dirs: include_dirs.to_vec(),
            defines: defines
                .iter()
                .map(|d| Define::Set(d.to_string(), None))
                .collect(),
            quiet: true,
            ..Options::default()
        };
        let comp = compile(path, &opts);
        let fail = |failures: &mut String, msg: String| {
            let _ = writeln!(
                failures,
                "    crate::rt::GenFailure {{ file: {rel:?}, defines: &{defines:?}, message: {msg:?} }},"
            );
        };
        let Some(sub) = comp.ok() else {
            let mut msg = comp.render_diagnostics();
            if msg.len() > 1500 {
                let mut end = 1500;
                while !msg.is_char_boundary(end) {
                    end -= 1;
                }
                msg.truncate(end);
                msg.push('…');
            }
            fail(&mut failures, msg);
            continue;
        };
        if sub.routines.is_empty() {
            fail(&mut failures, "mig-rs found no routines".into());
            continue;
        }
        let mig = match mig_generate(sub, &comp.map, &CodegenOptions::default()) {
            Ok(g) => g.combined,
            Err(d) => {
                fail(
                    &mut failures,
                    format!("mig-rs code generation failed:\n{}", d.render(&comp.map)),
                );
                continue;
            }
        };
        let k = subs.len();
        let mut g = SubGen::new(k, sub, rel, defines);
        g.prefix = prefix.to_string();
        let (rust, c_client, c_server) = match g.run() {
            Ok(x) => x,
            Err(e) => {
                fail(&mut failures, e);
                continue;
            }
        };
        crate::write_if_changed(&out.join(format!("{prefix}{k}_mig.rs")), &mig);
        crate::write_if_changed(&out.join(format!("{prefix}{k}_client.c")), &c_client);
        crate::write_if_changed(&out.join(format!("{prefix}{k}_server.c")), &c_server);
        modules.push_str(&rust);
        subs.push(k);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/// The include directory the suite was generated from (`None`: not generated).\n\
         pub const ORACLE_INCLUDE: Option<&str> = Some({:?});\n\
         /// Why the suite was not generated.\n\
         pub const SKIP_REASON: &str = \"\";",
        inc.display().to_string()
    );
    s.push_str("/// The generated subsystems.\npub static SUBS: &[crate::rt::SubEntry] = &[\n");
    for k in &subs {
        let _ = writeln!(
            s,
            "    crate::rt::SubEntry {{ info: &s{k}::INFO, client: s{k}::client, demux: s{k}::demux, \
             expect_server: s{k}::expect_server, expect_client: s{k}::expect_client }},"
        );
    }
    s.push_str("];\n/// Files mig-rs could not generate.\npub static GEN_FAILURES: &[crate::rt::GenFailure] = &[\n");
    s.push_str(&failures);
    s.push_str("];\n");
    s.push_str(&modules);
    s
}

// ---- names -----------------------------------------------------------------------------

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static",
    "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
    "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized",
    "virtual", "yield", "try", "gen",
];

/// The Rust identifier mig-rs uses for a MIG name.
fn rs_ident(name: &str) -> String {
    match name {
        "self" | "Self" | "super" | "crate" | "_" => format!("{name}_"),
        n if KEYWORDS.contains(&n) => format!("r#{n}"),
        n => n.to_string(),
    }
}

fn camel(name: &str) -> String {
    name.to_upper_camel_case()
}

// ---- values ----------------------------------------------------------------------------

/// Which message a value travels in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    Req,
    Rep,
}

impl Dir {
    fn slot(self, s: char) -> char {
        match self {
            Dir::Req => s,
            Dir::Rep => (s as u8 + 4) as char,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Slots {
    a: [u64; V],
    b: [u64; V],
    c: [u64; V],
    d: [u64; V],
}

/// A disposition a sender may use for a port whose receiver expects `out_name`.
fn choose_disp(out_name: u32, v: usize) -> u32 {
    match out_name {
        17 => [19, 20, 17, 19, 20][v],
        18 => [21, 18, 21, 18, 21][v],
        16 => 16,
        POLY => [19, 21, 16, 15, 20][v],
        x => x,
    }
}

fn mask(v: u64, bits: u32) -> u64 {
    if bits >= 64 {
        v
    } else {
        v & ((1u64 << bits) - 1)
    }
}

fn var_count(max: u32, v: usize) -> u32 {
    [0, (max / 2 + 1).min(max), max, 1.min(max), 2.min(max)][v]
}

fn indef_count(max: u32, v: usize) -> u32 {
    [0, max / 2 + 1, max, max + max / 4 + 1, 3.min(max)][v]
}

fn ool_count(e: &Elem, v: usize) -> u32 {
    match &e.kind {
        ElemKind::Port { .. } => [0, 2, 50, 600, 1][v],
        _ if e.is_bytes() => [0, 7, 3000, 20000, 5][v],
        _ => [0, 3, 700, 3000, 2][v],
    }
}

fn str_len(limit: u32, dir: Dir, v: usize) -> u32 {
    match dir {
        Dir::Req => [0, limit / 2, limit - 1, limit + 9, limit / 3][v],
        Dir::Rep => [0, limit / 2, limit - 1, 1, 0][v],
    }
}

fn elem_disp(e: &Elem, v: usize) -> u32 {
    match e.kind {
        ElemKind::Port { in_name, out_name } => {
            if in_name == POLY {
                choose_disp(out_name, v)
            } else {
                in_name
            }
        }
        _ => 0,
    }
}

// ---- per-subsystem generation ----------------------------------------------------------

struct SubGen<'a> {
    k: usize,
    /// Prefix of the per-subsystem file names in `OUT_DIR`.
    prefix: String,
    sub: &'a Subsystem,
    rel: String,
    defines: Vec<&'static str>,
    /// Rust: tables, client functions, expected values.
    rs: String,
    /// Rust: the server trait impl methods.
    rs_impl: String,
    rs_client_arms: String,
    rs_exp_srv_arms: String,
    rs_exp_cli_arms: String,
    rs_infos: String,
    c_tables: String,
    c_client: String,
    c_client_arms: String,
    c_server: String,
}

/// Everything about one routine that the emitters need.
struct Rt<'a> {
    ri: usize,
    r: &'a Routine,
    shapes: Vec<Option<Shape>>,
    /// Values per argument, for the request and for the reply.
    req: Vec<Slots>,
    rep: Vec<Slots>,
    error_code: u32,
}

impl Rt<'_> {
    fn arg(&self, id: ArgId) -> &Arg {
        self.r.arg(id)
    }
    fn shape(&self, ai: usize) -> &Shape {
        self.shapes[ai].as_ref().expect("shape checked")
    }
    fn rs_t(&self, ai: usize, dir: Dir, s: char) -> String {
        format!("T{}_{}{}", self.ri, ai, dir.slot(s))
    }
    fn c_t(&self, ai: usize, dir: Dir, s: char) -> String {
        format!("t{}_{}{}", self.ri, ai, dir.slot(s))
    }
    /// The index of the argument `id`.
    fn idx(id: ArgId) -> usize {
        id.0 as usize
    }
    /// The name and disposition of the reply port the server sees (header remote).
    fn reply_port_tables(&self) -> (String, String) {
        let ur = self.arg(self.r.user_reply_port);
        if ur.kind.any(ArgKind::USER_ARG) {
            let i = Self::idx(self.r.user_reply_port);
            (self.rs_t(i, Dir::Req, 'A'), self.rs_t(i, Dir::Req, 'B'))
        } else if self.r.is_simple() {
            ("[0u64; 5]".into(), "[0u64; 5]".into())
        } else {
            // MIG's own reply port: MAKE_SEND_ONCE.
            (format!("[{REPLY_PORT}u64; 5]"), "[21u64; 5]".into())
        }
    }
}

/// The shape of a type, or why it is not supported by this suite.
fn shape_of(sub: &Subsystem, a: &Arg) -> Result<Shape, String> {
    shape(sub, a.ty).map_err(|e| e.0)
}

impl<'a> SubGen<'a> {
    fn new(k: usize, sub: &'a Subsystem, rel: &str, defines: &[&'static str]) -> SubGen<'a> {
        SubGen {
            k,
            prefix: "s".into(),
            sub,
            rel: rel.to_string(),
            defines: defines.to_vec(),
            rs: String::new(),
            rs_impl: String::new(),
            rs_client_arms: String::new(),
            rs_exp_srv_arms: String::new(),
            rs_exp_cli_arms: String::new(),
            rs_infos: String::new(),
            c_tables: String::new(),
            c_client: String::new(),
            c_client_arms: String::new(),
            c_server: String::new(),
        }
    }

    fn seed(&self, ri: usize, ai: usize, dir: Dir, salt: u64, v: usize) -> u64 {
        let base = ((self.k as u64) << 48)
            ^ ((ri as u64) << 32)
            ^ ((ai as u64) << 16)
            ^ (if dir == Dir::Rep { 0x8000 } else { 0 })
            ^ salt;
        mix(base, v as u64)
    }

    fn port(&self, ri: usize, ai: usize, dir: Dir, v: usize) -> u64 {
        0x1000 + (self.seed(ri, ai, dir, 1, v) & 0xfff)
    }

    /// The values of argument `ai` in direction `dir`.
    fn slots(&self, ri: usize, r: &Routine, ai: usize, sh: &Shape, dir: Dir) -> Slots {
        let a = &r.args[ai];
        let mut s = Slots::default();
        // The capacity a client offers for an out array (`countinout` sends it).
        let count_in_out = a.count.is_some_and(|c| r.arg(c).c_in_out.is_some());
        for v in 0..V {
            match sh {
                Shape::Scalar(sc) => s.a[v] = mask(self.seed(ri, ai, dir, 0, v), sc.bits),
                Shape::PortName => s.a[v] = self.port(ri, ai, dir, v),
                Shape::Port { in_name, out_name } => {
                    s.a[v] = self.port(ri, ai, dir, v);
                    s.b[v] = if *in_name == POLY {
                        choose_disp(*out_name, v)
                    } else {
                        *in_name
                    } as u64;
                }
                Shape::FixedArray { .. } => s.a[v] = self.seed(ri, ai, dir, 2, v),
                Shape::FixedString { bytes } => {
                    s.a[v] = self.seed(ri, ai, dir, 3, v);
                    s.b[v] = str_len(*bytes, dir, v) as u64;
                }
                Shape::VarString { max } => {
                    s.a[v] = self.seed(ri, ai, dir, 3, v);
                    s.b[v] = str_len(*max, dir, v) as u64;
                }
                Shape::VarArray { elem, max } => {
                    let n = var_count(*max, v);
                    s.a[v] = self.seed(ri, ai, dir, 4, v);
                    s.b[v] = n as u64;
                    s.c[v] = if count_in_out {
                        [*max + 7, n, *max, 3, *max][v]
                    } else {
                        *max
                    } as u64;
                    s.d[v] = elem_disp(elem, v) as u64;
                }
                Shape::Indefinite { elem, max } => {
                    let n = indef_count(*max, v);
                    s.a[v] = self.seed(ri, ai, dir, 5, v);
                    s.b[v] = n as u64;
                    s.c[v] = if count_in_out {
                        [*max + 7, n, *max, 5, *max][v]
                    } else {
                        *max
                    } as u64;
                    s.d[v] = elem_disp(elem, v) as u64;
                }
                Shape::Ool { elem } => {
                    s.a[v] = self.seed(ri, ai, dir, 6, v);
                    s.b[v] = ool_count(elem, v) as u64;
                    s.d[v] = match &elem.kind {
                        ElemKind::Port { .. } => elem_disp(elem, v) as u64,
                        _ => u64::from(a.dealloc == Dealloc::Maybe && v % 2 == 1),
                    };
                }
            }
        }
        s
    }

    fn run(mut self) -> Result<(String, String, String), String> {
        let sub = self.sub;
        let mut unsupported = Vec::new();
        for (ri, r) in sub.routines.iter().enumerate() {
            if let Err(e) = self.routine(ri, r) {
                unsupported.push(format!("{}: {e}", r.name));
            }
        }
        if !unsupported.is_empty() {
            return Err(format!(
                "the conformance generator does not support {}",
                unsupported.join("; ")
            ));
        }
        let k = self.k;
        let p = self.prefix.clone();
        let trait_name = camel(&sub.demux_name);
        let demux = rs_ident(&sub.demux_name);
        let mut rs = String::new();
        let _ = writeln!(
            rs,
            "/// Subsystem `{}` from `{}` {:?}.\n\
             #[allow(clippy::all, clippy::pedantic, unused, non_snake_case, non_camel_case_types, non_upper_case_globals, dead_code)]\n\
             pub mod s{k} {{\n\
             use crate::rt::*;\n\
             use mig_runtime::{{KernReturn, OolBuffer, PortName, Poly, ReceiveRight, ReceivedRight, SendOnceRight, SendRight}};\n\
             use mig_runtime::msg::OolData;\n\
             use std::cell::{{Cell, RefCell}};\n\
             /// The module mig-rs generates.\n\
             pub mod mig {{ include!(concat!(env!(\"OUT_DIR\"), \"/{p}{k}_mig.rs\")); }}\n",
            sub.name, self.rel, self.defines
        );
        rs.push_str(&self.rs);
        let _ = writeln!(
            rs,
            "/// The Rust server: records what it receives, returns the variant's results.\n\
             pub struct Srv {{ pub v: Cell<usize>, pub log: RefCell<Rec> }}\n\
             impl mig::server::{trait_name} for Srv {{\n{}}}\n\
             /// Runs the mig-rs demux on `req` with the server of variant `v`.\n\
             pub fn demux(v: usize, req: &mut mig_runtime::MsgBuf<'_>, rep: &mut mig_runtime::MsgBuf<'_>) -> (bool, String) {{\n\
             let s = Srv {{ v: Cell::new(v), log: RefCell::new(Rec::default()) }};\n\
             let ok = mig::server::{demux}(&s, req, rep);\n\
             (ok, s.log.into_inner().0)\n}}\n\
             /// Calls routine `ri` with the mig-rs client and the values of variant `v`.\n\
             pub fn client(ri: usize, v: usize, t: &TestTransport) -> String {{\n match ri {{\n{}  _ => String::from(\"no such routine\"),\n }}\n}}\n\
             /// What the server must receive.\n\
             pub fn expect_server(ri: usize, v: usize) -> String {{\n let mut r = Rec::default();\n match ri {{\n{}  _ => {{}}\n }}\n r.0\n}}\n\
             /// What the client must decode.\n\
             pub fn expect_client(ri: usize, v: usize) -> String {{\n let mut r = Rec::default();\n match ri {{\n{}  _ => {{}}\n }}\n r.0\n}}\n\
             /// The subsystem.\n\
             pub static INFO: SubInfo = SubInfo {{ file: {:?}, defines: &{:?}, subsystem: {:?}, demux: {:?}, max_reply: mig::MAX_REPLY_SIZE,\n\
             c_client: include_str!(concat!(env!(\"OUT_DIR\"), \"/{p}{k}_client.c\")),\n\
             c_server: include_str!(concat!(env!(\"OUT_DIR\"), \"/{p}{k}_server.c\")),\n\
             routines: &[\n{}] }};\n}}",
            self.rs_impl,
            self.rs_client_arms,
            self.rs_exp_srv_arms,
            self.rs_exp_cli_arms,
            self.rel,
            self.defines,
            sub.name,
            sub.demux_name,
            self.rs_infos
        );
        let mut c_client = String::new();
        let _ = writeln!(
            c_client,
            "/* Generated by mig-conformance's build script: drives GNU MIG's client stubs of `{}`. */\n\
             #include \"User.h\"\n#include \"conf_rt.h\"\n{}\n{}\n\
             int conf_client(int rt, int v)\n{{\n\tswitch (rt) {{\n{}\tdefault: return -1;\n\t}}\n}}",
            sub.name, self.c_tables, self.c_client, self.c_client_arms
        );
        let mut c_server = String::new();
        let _ = writeln!(
            c_server,
            "/* Generated by mig-conformance's build script: server functions for GNU MIG's `{}` stubs. */\n\
             #include \"@SERVER_H@\"\n#include \"conf_rt.h\"\n{}\n{}",
            sub.name, self.c_tables, self.c_server
        );
        Ok((rs, c_client, c_server))
    }

    /// Generates routine `ri`, or says why it cannot.
    fn routine(&mut self, ri: usize, r: &'a Routine) -> Result<(), String> {
        let sub = self.sub;
        let mut shapes = Vec::new();
        let mut unsupported = Vec::new();
        for a in &r.args {
            match shape_of(sub, a) {
                Ok(s) => shapes.push(Some(s)),
                Err(e) => {
                    // Only arguments that reach a stub matter.
                    if a.kind.any(
                        ArgKind::USER_ARG | ArgKind::SERVER_ARG | ArgKind::REQUEST | ArgKind::REPLY,
                    ) && a.kind.ident() != ArgKind::RET_CODE
                    {
                        unsupported.push(format!("{}: {e}", a.name));
                    }
                    shapes.push(None);
                }
            }
        }
        let mut req = Vec::new();
        let mut rep = Vec::new();
        for (ai, sh) in shapes.iter().enumerate() {
            match sh {
                Some(sh) => {
                    req.push(self.slots(ri, r, ai, sh, Dir::Req));
                    rep.push(self.slots(ri, r, ai, sh, Dir::Rep));
                }
                None => {
                    req.push(Slots::default());
                    rep.push(Slots::default());
                }
            }
        }
        let rt = Rt {
            ri,
            r,
            shapes,
            req,
            rep,
            error_code: 0x4e00 + ri as u32,
        };
        if !unsupported.is_empty() {
            return Err(unsupported.join("; "));
        }
        for (a, sh) in r.args.iter().zip(&rt.shapes) {
            let inout = a.kind.all(ArgKind::REQUEST | ArgKind::REPLY);
            if inout
                && !matches!(
                    sh,
                    Some(Shape::Scalar(_) | Shape::PortName | Shape::Port { .. })
                )
            {
                return Err(format!(
                    "inout argument `{}` is not a scalar or a port",
                    a.name
                ));
            }
        }
        // The request's variable-size fields, for tests that must know where GNU MIG's
        // server stub reads counts (see `rt::VarField`).
        let mut vars = String::new();
        for f in r.request.fields.iter().filter(|f| f.variable) {
            let ai = Rt::idx(f.arg);
            let (eb, port, indefinite) = match rt.shapes[ai].as_ref() {
                Some(Shape::VarString { .. }) => (1, false, false),
                Some(Shape::VarArray { elem, .. }) => (
                    elem.scalar_bytes,
                    matches!(elem.kind, ElemKind::Port { .. }),
                    false,
                ),
                Some(Shape::Indefinite { elem, .. }) => (
                    elem.scalar_bytes,
                    matches!(elem.kind, ElemKind::Port { .. }),
                    true,
                ),
                _ => (0, false, false),
            };
            let _ = write!(
                vars,
                "VarField {{ desc: {}, eb: {eb}, port: {port}, indefinite: {indefinite} }}, ",
                f.desc_offset
            );
        }
        let _ = writeln!(
            self.rs_infos,
            "RtInfo {{ name: {:?}, number: {}, msg_id: {}, simple: {}, error_code: {}, req_min: {}, req_vars: &[{vars}] }},",
            r.name,
            r.number,
            r.msg_id,
            r.is_simple(),
            rt.error_code,
            r.request.min_size,
        );
        // Tables.
        for (ai, a) in r.args.iter().enumerate() {
            let relevant = a.kind.any(ArgKind::USER_ARG | ArgKind::SERVER_ARG)
                || a.kind.ident() == ArgKind::NORMAL
                || a.kind.ident() == ArgKind::COUNT_IN_OUT;
            if rt.shapes[ai].is_none() || !relevant {
                continue;
            }
            for (dir, sl) in [(Dir::Req, &rt.req[ai]), (Dir::Rep, &rt.rep[ai])] {
                for (s, vals) in [('A', &sl.a), ('B', &sl.b), ('C', &sl.c), ('D', &sl.d)] {
                    let list: Vec<String> = vals.iter().map(|x| format!("{x:#x}")).collect();
                    let _ = writeln!(
                        self.rs,
                        "const {}: [u64; {V}] = [{}];",
                        rt.rs_t(ai, dir, s),
                        list.join(", ")
                    );
                    let _ = writeln!(
                        self.c_tables,
                        "static const uint64_t {}[{V}] = {{ {} }};",
                        rt.c_t(ai, dir, s),
                        list.iter()
                            .map(|x| format!("{x}ULL"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
        self.rs_client(&rt);
        self.rs_method(&rt);
        self.rs_expect(&rt);
        self.c_driver(&rt);
        self.c_server_fn(&rt);
        Ok(())
    }

    // ---- Rust ----------------------------------------------------------------------

    /// The Rust type of a value the server receives (mig-rs's `recv_type`, server side).
    fn rs_recv_server_type(&self, sh: &Shape) -> String {
        match sh {
            Shape::Scalar(s) => s.prim().into(),
            Shape::PortName => "PortName".into(),
            Shape::Port { out_name, .. } => received_right(*out_name).into(),
            Shape::FixedArray { scalar, n } => format!("[{}; {n}]", scalar.prim()),
            Shape::FixedString { .. } | Shape::VarString { .. } => "&[u8]".into(),
            Shape::VarArray { elem, .. } => {
                if elem.is_bytes() {
                    "&[u8]".into()
                } else {
                    self.rs_elem_vec_recv(elem)
                }
            }
            Shape::Indefinite { elem, .. } => {
                if elem.is_bytes() {
                    "OolData<'_>".into()
                } else {
                    self.rs_elem_vec_recv(elem)
                }
            }
            Shape::Ool { elem } => {
                if elem.is_bytes() {
                    "OolBuffer".into()
                } else {
                    self.rs_elem_vec_recv(elem)
                }
            }
        }
    }

    fn rs_elem_vec_recv(&self, e: &Elem) -> String {
        match &e.kind {
            ElemKind::Port { out_name, .. } => format!("Vec<{}>", received_right(*out_name)),
            ElemKind::Scalar(s) => format!("Vec<{}>", elem_ty(s, e.group)),
        }
    }

    /// The Rust type a server returns for an out value (mig-rs's `send_type`, server side).
    fn rs_send_server_type(&self, a: &Arg, sh: &Shape) -> String {
        match sh {
            Shape::Scalar(s) => s.prim().into(),
            Shape::PortName => "PortName".into(),
            Shape::Port { in_name, .. } => match *in_name {
                16 => "ReceiveRight".into(),
                17 => "SendRight".into(),
                18 => "SendOnceRight".into(),
                POLY => "Poly<'static>".into(),
                _ => "PortName".into(),
            },
            Shape::FixedArray { scalar, n } => format!("[{}; {n}]", scalar.prim()),
            Shape::FixedString { .. } | Shape::VarString { .. } => "Vec<u8>".into(),
            Shape::VarArray { elem, .. } | Shape::Indefinite { elem, .. } => {
                format!("Vec<{}>", elem_send_ty(elem))
            }
            Shape::Ool { elem } => {
                if elem.is_bytes() {
                    match a.dealloc {
                        Dealloc::Maybe => "OolData<'static>".into(),
                        _ => "OolBuffer".into(),
                    }
                } else {
                    format!("Vec<{}>", elem_send_ty(elem))
                }
            }
        }
    }

    /// A Rust expression of the value a client sends (mig-rs's `send_type`, client side).
    fn rs_client_value(&self, rt: &Rt, ai: usize) -> String {
        let a = &rt.r.args[ai];
        let sh = rt.shape(ai);
        let t = |s| rt.rs_t(ai, Dir::Req, s);
        let (ta, tb, td) = (t('A'), t('B'), t('D'));
        match sh {
            Shape::Scalar(s) => format!("({ta}[v] as {})", s.prim()),
            Shape::PortName => format!("pn({ta}[v])"),
            Shape::Port { in_name, .. } => client_port(*in_name, &ta, &tb),
            Shape::FixedArray { scalar, n } => format!("&ga::<{}, {n}>({ta}[v])", scalar.prim()),
            Shape::FixedString { .. } | Shape::VarString { .. } => {
                format!("&gs({ta}[v], {tb}[v])[..]")
            }
            Shape::VarArray { elem, .. } | Shape::Indefinite { elem, .. } => {
                format!("&{}[..]", rs_gen_elems(elem, &ta, &tb))
            }
            Shape::Ool { elem } => {
                if elem.is_bytes() {
                    match a.dealloc {
                        Dealloc::No => format!("&gv::<u8>({ta}[v], {tb}[v])[..]"),
                        Dealloc::Yes => format!("OolBuffer::from_vec(gv::<u8>({ta}[v], {tb}[v]))"),
                        Dealloc::Maybe => {
                            format!("ool_maybe(gv::<u8>({ta}[v], {tb}[v]), {td}[v] != 0)")
                        }
                    }
                } else {
                    format!("&{}[..]", rs_gen_elems(elem, &ta, &tb))
                }
            }
        }
    }

    /// A Rust expression of an out value the server returns.
    fn rs_server_value(&self, rt: &Rt, ai: usize) -> String {
        let a = &rt.r.args[ai];
        let sh = rt.shape(ai);
        let t = |s| rt.rs_t(ai, Dir::Rep, s);
        let (ta, tb, td) = (t('A'), t('B'), t('D'));
        match sh {
            Shape::Scalar(s) => format!("({ta}[v] as {})", s.prim()),
            Shape::PortName => format!("pn({ta}[v])"),
            Shape::Port { in_name, .. } => match *in_name {
                16 => format!("rr({ta}[v])"),
                17 => format!("sr({ta}[v])"),
                18 => format!("so({ta}[v])"),
                POLY => format!("poly({ta}[v], {tb}[v])"),
                _ => format!("pn({ta}[v])"),
            },
            Shape::FixedArray { scalar, n } => format!("ga::<{}, {n}>({ta}[v])", scalar.prim()),
            Shape::FixedString { .. } | Shape::VarString { .. } => format!("gs({ta}[v], {tb}[v])"),
            Shape::VarArray { elem, .. } | Shape::Indefinite { elem, .. } => {
                rs_gen_elems(elem, &ta, &tb)
            }
            Shape::Ool { elem } => {
                if elem.is_bytes() {
                    match a.dealloc {
                        Dealloc::Maybe => {
                            format!("ool_maybe(gv::<u8>({ta}[v], {tb}[v]), {td}[v] != 0)")
                        }
                        _ => format!("OolBuffer::from_vec(gv::<u8>({ta}[v], {tb}[v]))"),
                    }
                } else {
                    rs_gen_elems(elem, &ta, &tb)
                }
            }
        }
    }

    fn rs_client(&mut self, rt: &Rt) {
        let r = rt.r;
        let mut args = vec!["t".to_string()];
        // Request port.
        let rp = Rt::idx(r.request_port);
        let rp_ty = self.sub.ty(r.arg(r.request_port).ty);
        args.push(client_port(
            rp_ty.in_name,
            &rt.rs_t(rp, Dir::Req, 'A'),
            &rt.rs_t(rp, Dir::Req, 'B'),
        ));
        let ur = r.arg(r.user_reply_port);
        if ur.kind.any(ArgKind::USER_ARG) {
            let i = Rt::idx(r.user_reply_port);
            let ty = self.sub.ty(ur.ty);
            args.push(client_port(
                ty.in_name,
                &rt.rs_t(i, Dir::Req, 'A'),
                &rt.rs_t(i, Dir::Req, 'B'),
            ));
        }
        if r.arg(r.msg_option).kind.any(ArgKind::USER_ARG) {
            args.push("0u32".into());
        }
        if let Some(w) = r.wait_time {
            if r.arg(w).kind.any(ArgKind::USER_ARG) {
                args.push("0u32".into());
            }
        }
        for f in &r.request.fields {
            let ai = Rt::idx(f.arg);
            let a = r.arg(f.arg);
            if a.kind.ident() == ArgKind::COUNT_IN_OUT {
                // The capacity of the out array it belongs to.
                let parent = a
                    .c_in_out
                    .and_then(|c| r.arg(c).parent)
                    .map(Rt::idx)
                    .expect("countinout of an array");
                args.push(format!("({}[v] as u32)", rt.rs_t(parent, Dir::Rep, 'C')));
                continue;
            }
            args.push(self.rs_client_value(rt, ai));
            if let Shape::VarArray { elem, .. }
            | Shape::Indefinite { elem, .. }
            | Shape::Ool { elem } = rt.shape(ai)
            {
                if let ElemKind::Port { in_name: POLY, .. } = elem.kind {
                    args.push(format!("({}[v] as u32)", rt.rs_t(ai, Dir::Req, 'D')));
                }
            }
        }
        let outs = self.client_outs(rt);
        let render = match outs.len() {
            0 => String::new(),
            1 => self.rs_render(rt, outs[0], "o"),
            _ => outs
                .iter()
                .map(|&ai| self.rs_render(rt, ai, &format!("o.{}", rs_ident(&r.args[ai].name))))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let ri = rt.ri;
        let _ = writeln!(
            self.rs,
            "fn cli{ri}(v: usize, t: &TestTransport) -> String {{\n\
             let res = mig::client::{}({});\n\
             let mut r = Rec::default();\n\
             match res {{ Ok(o) => {{ r.kr(0); {render} }} Err(e) => r.kr(e.code().0 as u32) }}\n\
             r.0\n}}",
            rs_ident(&r.user_name),
            args.join(", ")
        );
        let _ = writeln!(self.rs_client_arms, "  {ri} => cli{ri}(v, t),");
    }

    /// Renders a received Rust value `expr` of argument `ai`.
    fn rs_render(&self, rt: &Rt, ai: usize, expr: &str) -> String {
        let name = &rt.r.args[ai].name;
        match rt.shape(ai) {
            Shape::FixedString { .. } | Shape::VarString { .. } => {
                format!("r.s({name:?}, &{expr}[..]);")
            }
            _ => format!("canon(&mut r, {name:?}, {expr});"),
        }
    }

    /// The out arguments a client decodes, in reply order.
    fn client_outs(&self, rt: &Rt) -> Vec<usize> {
        if rt.r.is_simple() {
            return vec![];
        }
        rt.r.reply
            .fields
            .iter()
            .filter(|f| {
                let a = rt.arg(f.arg);
                a.kind.any(ArgKind::RETURN_RCV) && a.kind.ident() != ArgKind::RET_CODE
            })
            .map(|f| Rt::idx(f.arg))
            .collect()
    }

    /// The out arguments a server packs, in reply order.
    fn server_outs(&self, rt: &Rt) -> Vec<usize> {
        if rt.r.is_simple() {
            return vec![];
        }
        rt.r.reply
            .fields
            .iter()
            .filter(|f| {
                let a = rt.arg(f.arg);
                a.kind.any(ArgKind::RETURN_SND) && a.kind.ident() != ArgKind::RET_CODE
            })
            .map(|f| Rt::idx(f.arg))
            .collect()
    }

    /// The Rust server method's parameters: (arg index, type).
    fn rs_server_params(&self, rt: &Rt) -> Vec<(usize, String)> {
        let mut v = Vec::new();
        for (id, a) in rt.r.args() {
            if !a.kind.any(ArgKind::SERVER_ARG) {
                continue;
            }
            let ai = Rt::idx(id);
            match a.kind.ident() {
                ArgKind::REQUEST_PORT | ArgKind::REPLY_PORT => v.push((ai, "PortName".into())),
                ArgKind::MSG_SEQNO => v.push((ai, "u32".into())),
                ArgKind::POLY if a.header_poly.is_some() => v.push((ai, "u32".into())),
                ArgKind::COUNT if a.c_in_out.is_some() => v.push((ai, "u32".into())),
                ArgKind::NORMAL if a.kind.any(ArgKind::SEND_RCV) => {
                    v.push((ai, self.rs_recv_server_type(rt.shape(ai))))
                }
                _ => {}
            }
        }
        v
    }

    fn rs_out_type(&self, rt: &Rt) -> String {
        let outs = self.server_outs(rt);
        match outs.len() {
            0 => "()".into(),
            1 => self.rs_send_server_type(&rt.r.args[outs[0]], rt.shape(outs[0])),
            _ => format!("mig::server::{}Reply", camel(&rt.r.name)),
        }
    }

    fn rs_method(&mut self, rt: &Rt) {
        let params = self.rs_server_params(rt);
        let decls: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| format!("p{i}: {ty}"))
            .collect();
        let mut body = format!("r.note(\"@{}\");\n", rt.r.name);
        for (i, (ai, _)) in params.iter().enumerate() {
            let a = &rt.r.args[*ai];
            if a.kind.ident() == ArgKind::NORMAL {
                let _ = writeln!(body, "{}", self.rs_render(rt, *ai, &format!("p{i}")));
            } else {
                let _ = writeln!(body, "canon(&mut r, {:?}, p{i});", a.name);
            }
        }
        let outs = self.server_outs(rt);
        let ok = match outs.len() {
            0 => "()".to_string(),
            1 => self.rs_server_value(rt, outs[0]),
            _ => {
                let fields: Vec<String> = outs
                    .iter()
                    .map(|&ai| {
                        format!(
                            "{}: {}",
                            rs_ident(&rt.r.args[ai].name),
                            self.rs_server_value(rt, ai)
                        )
                    })
                    .collect();
                format!(
                    "mig::server::{}Reply {{ {} }}",
                    camel(&rt.r.name),
                    fields.join(", ")
                )
            }
        };
        let _ = writeln!(
            self.rs_impl,
            "fn {}(&self, {}) -> Result<{}, KernReturn> {{\n\
             let v = self.v.get();\n\
             {{ let mut r = self.log.borrow_mut();\n{body}}}\n\
             if v == {ERROR_VARIANT} {{ return Err(KernReturn({} as i32)); }}\n\
             Ok({ok})\n}}",
            rs_ident(&rt.r.server_name),
            decls.join(", "),
            self.rs_out_type(rt),
            rt.error_code
        );
    }

    /// Rust code rendering the expected value of argument `ai` as its receiver sees it.
    /// `rpoly`: the receiver gets the disposition too.
    fn rs_expect_value(&self, rt: &Rt, ai: usize, dir: Dir, rpoly: bool) -> String {
        let a = &rt.r.args[ai];
        let name = &a.name;
        let sh = rt.shape(ai);
        let t = |s| rt.rs_t(ai, dir, s);
        let (ta, tb, td) = (t('A'), t('B'), t('D'));
        let poly = |d: String| {
            if rpoly {
                format!(" r.u4(\"{name}Poly\", received_form({d} as u32) as u64);")
            } else {
                String::new()
            }
        };
        match sh {
            Shape::Scalar(s) => format!("r.un({name:?}, {}, {ta}[v]);", s.bits / 8),
            Shape::PortName => format!("r.u4({name:?}, {ta}[v]);"),
            Shape::Port { .. } => format!("r.u4({name:?}, {ta}[v]);{}", poly(format!("{tb}[v]"))),
            Shape::FixedArray { scalar, n } => {
                format!(
                    "r.arr({name:?}, {n}, &gbytes({ta}[v], {n}, {}));",
                    scalar.bits / 8
                )
            }
            Shape::FixedString { bytes: lim } | Shape::VarString { max: lim } => {
                format!("r.s({name:?}, &gs({ta}[v], ({tb}[v]).min({})));", lim - 1)
            }
            Shape::VarArray { elem, .. } | Shape::Indefinite { elem, .. } | Shape::Ool { elem } => {
                match &elem.kind {
                    ElemKind::Port { .. } => format!(
                        "r.arr({name:?}, {tb}[v], &gpbytes({ta}[v], {tb}[v]));{}",
                        poly(format!("{td}[v]"))
                    ),
                    ElemKind::Scalar(s) => format!(
                        "r.arr({name:?}, {tb}[v], &gbytes({ta}[v], {tb}[v] * {}, {}));",
                        elem.group,
                        s.bits / 8
                    ),
                }
            }
        }
    }

    /// Whether the receiving side of `ai` gets its disposition (an implicit Poly argument
    /// with the side's bit).
    fn receiver_poly(&self, rt: &Rt, ai: usize, side_bit: u32) -> bool {
        rt.r.args[ai]
            .poly
            .is_some_and(|p| rt.arg(p).kind.any(side_bit))
    }

    fn rs_expect(&mut self, rt: &Rt) {
        let r = rt.r;
        // Server side: what both servers render, in argument order.
        let mut srv = format!("r.note(\"@{}\");\n", r.name);
        let (reply_name, reply_disp) = rt.reply_port_tables();
        for (id, a) in r.args() {
            if !a.kind.any(ArgKind::SERVER_ARG) {
                continue;
            }
            let ai = Rt::idx(id);
            let name = &a.name;
            match a.kind.ident() {
                ArgKind::REQUEST_PORT => {
                    let _ = writeln!(srv, "r.u4({name:?}, {}[v]);", rt.rs_t(ai, Dir::Req, 'A'));
                }
                ArgKind::REPLY_PORT => {
                    let _ = writeln!(srv, "r.u4({name:?}, {reply_name}[v]);");
                }
                ArgKind::MSG_SEQNO => {
                    let _ = writeln!(srv, "r.u4({name:?}, {SEQNO});");
                }
                ArgKind::POLY => {
                    let disp = match a.header_poly {
                        Some(HeaderPort::Request) => Some(format!(
                            "{}[v]",
                            rt.rs_t(Rt::idx(r.request_port), Dir::Req, 'B')
                        )),
                        Some(HeaderPort::Reply) => Some(format!("{reply_disp}[v]")),
                        None => None,
                    };
                    if let Some(d) = disp {
                        let _ = writeln!(srv, "r.u4({name:?}, received_form({d} as u32) as u64);");
                    }
                }
                // The capacity a `countinout` client sent, capped at the maximum.
                ArgKind::COUNT if a.c_in_out.is_some() => {
                    let parent = Rt::idx(a.parent.expect("count of an array"));
                    let max = match rt.shape(parent) {
                        Shape::VarArray { max, .. } | Shape::Indefinite { max, .. } => *max,
                        _ => 0,
                    };
                    let _ = writeln!(
                        srv,
                        "r.u4({name:?}, ({}[v]).min({max}));",
                        rt.rs_t(parent, Dir::Rep, 'C')
                    );
                }
                ArgKind::NORMAL if a.kind.any(ArgKind::SEND_RCV) => {
                    let p = self.receiver_poly(rt, ai, ArgKind::SERVER_ARG);
                    let _ = writeln!(srv, "{}", self.rs_expect_value(rt, ai, Dir::Req, p));
                }
                _ => {}
            }
        }
        let mut cli = String::new();
        if r.is_simple() {
            cli.push_str("r.kr(0);");
        } else {
            let _ = writeln!(
                cli,
                "if v == {ERROR_VARIANT} {{ r.kr({}); return r.0; }}\nr.kr(0);",
                rt.error_code
            );
            for ai in self.client_outs(rt) {
                let p = self.receiver_poly(rt, ai, ArgKind::USER_ARG);
                let _ = writeln!(cli, "{}", self.rs_expect_value(rt, ai, Dir::Rep, p));
            }
        }
        let ri = rt.ri;
        let _ = writeln!(self.rs_exp_srv_arms, "  {ri} => {{\n{srv}}}");
        let _ = writeln!(self.rs_exp_cli_arms, "  {ri} => {{\n{}}}", cli);
    }

    // ---- C -------------------------------------------------------------------------

    /// The C user type of an argument.
    fn c_user_type(&self, a: &Arg) -> String {
        let t = self.sub.ty(a.ty);
        t.user_type.clone().unwrap_or_else(|| "int".into())
    }

    fn c_driver(&mut self, rt: &Rt) {
        let r = rt.r;
        let ri = rt.ri;
        let mut setup = String::new();
        let mut args = Vec::new();
        for (id, a) in r.args() {
            if !a.kind.any(ArgKind::USER_ARG) {
                continue;
            }
            let ai = Rt::idx(id);
            let ct = |s| rt.c_t(ai, Dir::Req, s);
            let u = self.c_user_type(a);
            match a.kind.ident() {
                ArgKind::REQUEST_PORT | ArgKind::REPLY_PORT => {
                    args.push(format!("(mach_port_t) {}[v]", ct('A')))
                }
                ArgKind::WAIT_TIME | ArgKind::MSG_OPTION => args.push("0".into()),
                ArgKind::POLY => {
                    let parent = a.parent.expect("poly of an argument");
                    let pa = r.arg(parent);
                    let pi = Rt::idx(parent);
                    if pa.kind.any(ArgKind::REQUEST)
                        || matches!(pa.kind.ident(), ArgKind::REQUEST_PORT | ArgKind::REPLY_PORT)
                    {
                        let slot = match rt.shape(pi) {
                            Shape::Port { .. } => 'B',
                            _ => 'D',
                        };
                        args.push(format!(
                            "(mach_msg_type_name_t) {}[v]",
                            rt.c_t(pi, Dir::Req, slot)
                        ));
                    } else {
                        let _ = writeln!(setup, "\tmach_msg_type_name_t p_{pi} = 0;");
                        args.push(format!("&p_{pi}"));
                    }
                }
                ArgKind::COUNT => {
                    let parent = a.parent.expect("count of an array");
                    let pa = r.arg(parent);
                    let pi = Rt::idx(parent);
                    if pa.kind.any(ArgKind::REQUEST) {
                        args.push(format!(
                            "(mach_msg_type_number_t) {}[v]",
                            rt.c_t(pi, Dir::Req, 'B')
                        ));
                    } else {
                        args.push(format!("&c_{pi}"));
                    }
                }
                ArgKind::DEALLOC => {
                    let pi = Rt::idx(a.parent.expect("dealloc of an array"));
                    args.push(format!("(boolean_t) {}[v]", rt.c_t(pi, Dir::Req, 'D')));
                }
                ArgKind::NORMAL => {
                    let sends = a.kind.any(ArgKind::REQUEST);
                    let returns = a.kind.any(ArgKind::REPLY);
                    let sh = rt.shape(ai);
                    let x = format!("x_{ai}");
                    if sends && !returns {
                        args.push(self.c_in_value(rt, ai, &u, &mut setup));
                    } else if !sends {
                        // Out only: storage for the result.
                        match sh {
                            Shape::Scalar(_) | Shape::PortName | Shape::Port { .. } => {
                                let _ = writeln!(setup, "\t{u} {x}; memset(&{x}, 0, sizeof {x});");
                                args.push(format!("&{x}"));
                            }
                            Shape::FixedArray { .. }
                            | Shape::FixedString { .. }
                            | Shape::VarString { .. } => {
                                let _ = writeln!(setup, "\t{u} {x}; memset(&{x}, 0, sizeof {x});");
                                args.push(if a.by_ref_user {
                                    format!("&{x}")
                                } else {
                                    x.clone()
                                });
                            }
                            Shape::VarArray { elem, max } => {
                                let _ = writeln!(
                                    setup,
                                    "\tvoid *{x} = conf_alloc({});\n\tmach_msg_type_number_t c_{ai} = (mach_msg_type_number_t) {}[v];",
                                    max * c_elem_bytes(elem) + 8,
                                    rt.c_t(ai, Dir::Rep, 'C')
                                );
                                args.push(x.clone());
                            }
                            Shape::Indefinite { elem, max } => {
                                let _ = writeln!(
                                    setup,
                                    "\tvoid *b_{ai} = conf_alloc({});\n\t{u} {x} = ({u}) (uintptr_t) b_{ai};\n\tmach_msg_type_number_t c_{ai} = (mach_msg_type_number_t) {}[v];",
                                    max * c_elem_bytes(elem) + 8,
                                    rt.c_t(ai, Dir::Rep, 'C')
                                );
                                args.push(format!("&{x}"));
                            }
                            Shape::Ool { .. } => {
                                let _ = writeln!(
                                    setup,
                                    "\t{u} {x}; memset(&{x}, 0, sizeof {x});\n\tmach_msg_type_number_t c_{ai} = 0;"
                                );
                                args.push(format!("&{x}"));
                            }
                        }
                    } else {
                        // inout: scalars and ports.
                        let _ = writeln!(setup, "\t{u} {x} = ({u}) {}[v];", ct('A'));
                        args.push(format!("&{x}"));
                    }
                }
                _ => args.push("0".into()),
            }
        }
        // Rendering of the outs.
        let mut render = String::new();
        for ai in self.client_outs(rt) {
            let a = &r.args[ai];
            let u = self.c_user_type(a);
            let x = format!("x_{ai}");
            let name = &a.name;
            let line = match rt.shape(ai) {
                Shape::Scalar(s) => format!("conf_rec_u(\"{name}\", (uint64_t) {x}, {});", s.bits / 8),
                Shape::PortName | Shape::Port { .. } => {
                    let mut l = format!("conf_rec_u(\"{name}\", (uint64_t) {x}, 4);");
                    if self.receiver_poly(rt, ai, ArgKind::USER_ARG) {
                        let _ = write!(l, " conf_rec_u(\"{name}Poly\", (uint64_t) p_{ai}, 4);");
                    }
                    l
                }
                Shape::FixedArray { scalar, n } => format!(
                    "conf_rec_arr(\"{name}\", CONF_PTR({x}, {u}), {n}, {});",
                    n * scalar.bits / 8
                ),
                Shape::FixedString { bytes: lim } | Shape::VarString { max: lim } => {
                    format!("conf_rec_str(\"{name}\", (const char *) {x}, {lim});")
                }
                Shape::VarArray { elem, .. } => format!(
                    "conf_rec_arr(\"{name}\", {x}, c_{ai}, (size_t) c_{ai} * {});",
                    c_elem_bytes(elem)
                ),
                Shape::Indefinite { elem, .. } | Shape::Ool { elem } => format!(
                    "conf_rec_arr(\"{name}\", (const void *) (uintptr_t) {x}, c_{ai}, (size_t) c_{ai} * {});",
                    c_elem_bytes(elem)
                ),
            };
            let _ = writeln!(render, "\t\t{line}");
        }
        let _ = writeln!(
            self.c_client,
            "/* {} */\nstatic int drv{ri}(int v)\n{{\n{setup}\tkern_return_t kr = {}({});\n\tconf_rec_u(\"kr\", (uint64_t) (uint32_t) kr, 4);\n\tif (kr == KERN_SUCCESS) {{\n{render}\t}}\n\treturn kr;\n}}",
            r.name,
            r.user_name,
            args.join(", ")
        );
        let _ = writeln!(self.c_client_arms, "\tcase {ri}: return drv{ri}(v);");
    }

    /// A C expression for the value of in-argument `ai` (with its setup code).
    fn c_in_value(&self, rt: &Rt, ai: usize, u: &str, setup: &mut String) -> String {
        let a = &rt.r.args[ai];
        let ct = |s| rt.c_t(ai, Dir::Req, s);
        let x = format!("x_{ai}");
        match rt.shape(ai) {
            Shape::Scalar(_) | Shape::PortName => format!("({u}) {}[v]", ct('A')),
            Shape::Port { .. } => format!("(mach_port_t) {}[v]", ct('A')),
            Shape::FixedArray { scalar, n } => {
                let _ = writeln!(
                    setup,
                    "\t{u} {x}; _Static_assert(sizeof {x} == {}, \"size\"); conf_fill(CONF_MPTR({x}, {u}), {}[v], {n}, {});",
                    n * scalar.bits / 8,
                    ct('A'),
                    scalar.bits / 8
                );
                if a.by_ref_user {
                    format!("&{x}")
                } else {
                    x
                }
            }
            Shape::FixedString { .. } | Shape::VarString { .. } => {
                let _ = writeln!(
                    setup,
                    "\tchar *{x} = conf_alloc({}[v] + 1); conf_fill_str({x}, {}[v], {}[v]);",
                    ct('B'),
                    ct('A'),
                    ct('B')
                );
                x
            }
            Shape::VarArray { elem, .. } | Shape::Indefinite { elem, .. } | Shape::Ool { elem } => {
                let eb = c_elem_bytes(elem);
                let fill = match &elem.kind {
                    ElemKind::Port { .. } => {
                        format!(
                            "conf_fill_ports((mach_port_t *) {x}, {}[v], {}[v])",
                            ct('A'),
                            ct('B')
                        )
                    }
                    ElemKind::Scalar(s) => format!(
                        "conf_fill({x}, {}[v], {}[v] * {}, {})",
                        ct('A'),
                        ct('B'),
                        elem.group,
                        s.bits / 8
                    ),
                };
                let _ = writeln!(
                    setup,
                    "\tvoid *{x} = conf_alloc({}[v] * {eb} + 8); {fill};",
                    ct('B')
                );
                match rt.shape(ai) {
                    Shape::Ool { .. } => format!("({u}) (uintptr_t) {x}"),
                    _ => x,
                }
            }
        }
    }

    /// The C type of a server parameter, as GNU MIG declares it (with `const` for in-only
    /// arrays and strings).
    fn c_server_param(&self, a: &Arg) -> String {
        let t = self.sub.ty(a.ty);
        let ty = t
            .trans_type
            .clone()
            .or_else(|| t.server_type.clone())
            .unwrap_or_else(|| "int".into());
        let in_only = a.kind.any(ArgKind::SEND) && !a.kind.any(ArgKind::RETURN_BITS_BASE);
        let qual = if in_only && !t.is_struct {
            let user = t.user_type.as_deref().unwrap_or("");
            if t.indefinite || t.in_name == 12 || user == "string_t" {
                "const_"
            } else {
                "const "
            }
        } else {
            ""
        };
        let star = if a.by_ref_server { "*" } else { "" };
        format!("{qual}{ty} {star}{}", a.name)
    }

    fn c_server_fn(&mut self, rt: &Rt) {
        let r = rt.r;
        let mut params = Vec::new();
        let mut body = format!("\tconf_rec_note(\"@{}\");\n", r.name);
        for (id, a) in r.args() {
            if !a.kind.any(ArgKind::SERVER_ARG) {
                continue;
            }
            params.push(self.c_server_param(a));
            let ai = Rt::idx(id);
            let name = &a.name;
            let deref = if a.by_ref_server {
                format!("(*{name})")
            } else {
                name.clone()
            };
            match a.kind.ident() {
                ArgKind::REQUEST_PORT | ArgKind::REPLY_PORT | ArgKind::MSG_SEQNO => {
                    let _ = writeln!(body, "\tconf_rec_u(\"{name}\", (uint64_t) {name}, 4);");
                }
                ArgKind::POLY => {
                    let parent = a.parent.map(|p| r.arg(p));
                    let received = a.header_poly.is_some()
                        || parent
                            .is_some_and(|p| p.kind.any(ArgKind::SEND_RCV) && !a.by_ref_server);
                    if received {
                        let _ = writeln!(body, "\tconf_rec_u(\"{name}\", (uint64_t) {name}, 4);");
                    }
                }
                ArgKind::COUNT if a.c_in_out.is_some() => {
                    let _ = writeln!(body, "\tconf_rec_u(\"{name}\", (uint64_t) {deref}, 4);");
                }
                ArgKind::SERVER_COPY => {
                    let pi = Rt::idx(a.parent.expect("scopy of an array"));
                    let max = match rt.shape(pi) {
                        Shape::Indefinite { max, .. } => *max,
                        _ => 0,
                    };
                    let _ = writeln!(
                        body,
                        "\tif (!!{name} != ({}[v] <= {max})) conf_rec_note(\"!{name}={{wrong}};\");",
                        rt.c_t(pi, Dir::Req, 'B')
                    );
                }
                ArgKind::NORMAL if a.kind.any(ArgKind::SEND_RCV) => {
                    let line = self.c_render_received(rt, ai, &deref);
                    let _ = writeln!(body, "\t{line}");
                }
                _ => {}
            }
        }
        // Results.
        let mut outs = String::new();
        for ai in self.server_outs(rt) {
            let _ = writeln!(outs, "{}", self.c_set_out(rt, ai));
        }
        let _ = writeln!(
            self.c_server,
            "kern_return_t {}({})\n{{\n\tint v = conf_variant();\n{body}\tif (v == {ERROR_VARIANT})\n\t\treturn {};\n{outs}\treturn KERN_SUCCESS;\n}}",
            r.server_name,
            if params.is_empty() { "void".into() } else { params.join(", ") },
            rt.error_code
        );
    }

    /// C rendering of a received in-argument whose value is `x`.
    fn c_render_received(&self, rt: &Rt, ai: usize, x: &str) -> String {
        let r = rt.r;
        let a = &r.args[ai];
        let name = &a.name;
        let cnt = a
            .count
            .map(|c| r.arg(c).name.clone())
            .unwrap_or_else(|| "0".into());
        match rt.shape(ai) {
            Shape::Scalar(s) => format!("conf_rec_u(\"{name}\", (uint64_t) {x}, {});", s.bits / 8),
            Shape::PortName | Shape::Port { .. } => format!("conf_rec_u(\"{name}\", (uint64_t) {x}, 4);"),
            Shape::FixedArray { scalar, n } => {
                let u = self.c_server_type_name(a);
                let p = if a.by_ref_server {
                    format!("(const void *) {name}")
                } else {
                    format!("CONF_PTR({name}, {u})")
                };
                format!("conf_rec_arr(\"{name}\", {p}, {n}, {});", n * scalar.bits / 8)
            }
            Shape::FixedString { bytes: lim } | Shape::VarString { max: lim } => {
                format!("conf_rec_str(\"{name}\", (const char *) {x}, {lim});")
            }
            Shape::VarArray { elem, .. } | Shape::Indefinite { elem, .. } | Shape::Ool { elem } => format!(
                "conf_rec_arr(\"{name}\", (const void *) (uintptr_t) {x}, {cnt}, (size_t) {cnt} * {});",
                c_elem_bytes(elem)
            ),
        }
    }

    fn c_server_type_name(&self, a: &Arg) -> String {
        let t = self.sub.ty(a.ty);
        t.trans_type
            .clone()
            .or_else(|| t.server_type.clone())
            .unwrap_or_else(|| "int".into())
    }

    /// C code setting out-argument `ai` (and its count, poly and dealloc) from the tables.
    fn c_set_out(&self, rt: &Rt, ai: usize) -> String {
        let r = rt.r;
        let a = &r.args[ai];
        let name = &a.name;
        let ct = |s| rt.c_t(ai, Dir::Rep, s);
        let (ta, tb, td) = (ct('A'), ct('B'), ct('D'));
        let u = self.c_server_type_name(a);
        let cnt = a.count.map(|c| r.arg(c).name.clone());
        let set_cnt = cnt
            .as_ref()
            .map(|c| format!(" *{c} = (mach_msg_type_number_t) {tb}[v];"))
            .unwrap_or_default();
        let mut extra = String::new();
        if let Some(p) = a.poly {
            if r.arg(p).kind.any(ArgKind::SERVER_ARG) && r.arg(p).by_ref_server {
                let slot = match rt.shape(ai) {
                    Shape::Port { .. } => ct('B'),
                    _ => ct('D'),
                };
                let _ = write!(
                    extra,
                    " *{} = (mach_msg_type_name_t) {slot}[v];",
                    r.arg(p).name
                );
            }
        }
        if let Some(d) = a.dealloc_arg {
            if r.arg(d).kind.any(ArgKind::SERVER_ARG) {
                let _ = write!(extra, " *{} = (boolean_t) {td}[v];", r.arg(d).name);
            }
        }
        let core = match rt.shape(ai) {
            Shape::Scalar(_) | Shape::PortName => format!("*{name} = ({u}) {ta}[v];"),
            Shape::Port { .. } => format!("*{name} = (mach_port_t) {ta}[v];"),
            Shape::FixedArray { scalar, n } => {
                let p = if a.by_ref_server {
                    format!("(void *) {name}")
                } else {
                    format!("CONF_MPTR({name}, {u})")
                };
                format!("conf_fill({p}, {ta}[v], {n}, {});", scalar.bits / 8)
            }
            Shape::FixedString { .. } | Shape::VarString { .. } => {
                let p = if a.by_ref_server {
                    format!("(char *) *{name}")
                } else {
                    format!("(char *) {name}")
                };
                format!("conf_fill_str({p}, {ta}[v], {tb}[v]);")
            }
            Shape::VarArray { elem, .. } => {
                format!(
                    "{}{set_cnt}",
                    c_fill_elems(elem, &format!("(void *) {name}"), &ta, &tb)
                )
            }
            Shape::Indefinite { elem, max } => {
                let eb = c_elem_bytes(elem);
                format!(
                    "if ({tb}[v] <= {max}) {{ {} }} else {{ void *o = conf_alloc({tb}[v] * {eb} + 8); {} *{name} = ({u}) (uintptr_t) o; }}{set_cnt}",
                    c_fill_elems(elem, &format!("(void *) (uintptr_t) *{name}"), &ta, &tb),
                    c_fill_elems(elem, "o", &ta, &tb)
                )
            }
            Shape::Ool { elem } => {
                let eb = c_elem_bytes(elem);
                format!(
                    "{{ void *o = conf_alloc({tb}[v] * {eb} + 8); {} *{name} = ({u}) (uintptr_t) o; }}{set_cnt}",
                    c_fill_elems(elem, "o", &ta, &tb)
                )
            }
        };
        format!("\t{core}{extra}")
    }
}

/// C bytes per C element of an array (ports are `mach_port_t`, 4 bytes).
fn c_elem_bytes(e: &Elem) -> u32 {
    match &e.kind {
        ElemKind::Port { .. } => 4,
        ElemKind::Scalar(s) => s.bits / 8 * e.group,
    }
}

fn c_fill_elems(e: &Elem, dst: &str, ta: &str, tb: &str) -> String {
    match &e.kind {
        ElemKind::Port { .. } => {
            format!("conf_fill_ports((mach_port_t *) {dst}, {ta}[v], {tb}[v]);")
        }
        ElemKind::Scalar(s) => format!(
            "conf_fill({dst}, {ta}[v], {tb}[v] * {}, {});",
            e.group,
            s.bits / 8
        ),
    }
}

fn elem_ty(s: &Scalar, group: u32) -> String {
    if group > 1 {
        format!("[{}; {group}]", s.prim())
    } else {
        s.prim().to_string()
    }
}

fn elem_send_ty(e: &Elem) -> String {
    match &e.kind {
        ElemKind::Port { .. } => "PortName".into(),
        ElemKind::Scalar(s) => elem_ty(s, e.group),
    }
}

/// Rust: a `Vec` of generated elements.
fn rs_gen_elems(e: &Elem, ta: &str, tb: &str) -> String {
    match &e.kind {
        ElemKind::Port { .. } => format!("gp({ta}[v], {tb}[v])"),
        ElemKind::Scalar(s) => {
            if e.group > 1 {
                format!("gg::<{}, {}>({ta}[v], {tb}[v])", s.prim(), e.group)
            } else {
                format!("gv::<{}>({ta}[v], {tb}[v])", s.prim())
            }
        }
    }
}

fn received_right(out_name: u32) -> &'static str {
    match out_name {
        16 => "ReceiveRight",
        18 => "SendOnceRight",
        POLY => "ReceivedRight",
        _ => "SendRight",
    }
}

/// A Rust expression for a port a client sends with disposition `in_name` (or the one in
/// table `tb` for polymorphic ports).
fn client_port(in_name: u32, ta: &str, tb: &str) -> String {
    match in_name {
        16 => format!("rr({ta}[v])"),
        17 => format!("sr({ta}[v])"),
        18 => format!("so({ta}[v])"),
        19 => format!("&sr({ta}[v])"),
        20 | 21 => format!("&rr({ta}[v])"),
        _ => format!("poly({ta}[v], {tb}[v])"),
    }
}
