//! Checks of the semantic model on small inline `.defs` texts (no preprocessor).

use crate::check::{check, CheckOptions};
use crate::diagnostics::Diagnostics;
use crate::ir::{ArgKind, Subsystem};
use crate::source::{Loc, Preprocessed, Segment, SourceFile, SourceMap};
use mig_runtime::wire::Target;

const TYPES: &str = "
type int32_t = MACH_MSG_TYPE_INTEGER_32;
type int64_t = MACH_MSG_TYPE_INTEGER_64;
type natural_t = MACH_MSG_TYPE_INTEGER_32;
type boolean_t = MACH_MSG_TYPE_BOOLEAN;
type mach_port_t = MACH_MSG_TYPE_COPY_SEND;
type mach_port_move_send_t = MACH_MSG_TYPE_MOVE_SEND ctype: mach_port_t;
type mach_port_make_send_t = MACH_MSG_TYPE_MAKE_SEND ctype: mach_port_t;
type mach_port_send_t = MACH_MSG_TYPE_PORT_SEND ctype: mach_port_t;
type mach_port_poly_t = polymorphic ctype: mach_port_t;
type loff_t = int64_t;
type data_t = ^array[] of MACH_MSG_TYPE_BYTE;
type bytes_t = array[] of char;
";

pub(crate) fn run(src: &str, target: Target) -> (Option<Subsystem>, Diagnostics, SourceMap) {
    let mut map = SourceMap::new();
    let f = map.add_file(SourceFile::new("test.defs", None, src));
    let c = map.add_ctx(f, None);
    let pp = Preprocessed {
        text: src.to_string(),
        segments: vec![Segment {
            out_start: 0,
            len: src.len() as u32,
            origin: Loc {
                file: f,
                start: 0,
                end: 0,
                ctx: c,
                expansion: None,
            },
        }],
        ..Default::default()
    };
    let mut d = Diagnostics::new();
    let toks = crate::lex::lex(&pp, &mut map, &mut d);
    let file = crate::parse::parse(&toks, pp.end_origin(), &mut d);
    let opts = CheckOptions {
        target,
        routine_prefix: String::new(),
    };
    let s = check(&file, &opts, &mut d);
    (s, d, map)
}

fn ok(src: &str, target: Target) -> Subsystem {
    let full = format!("subsystem test 100;\n{TYPES}\n{src}");
    let (s, d, map) = run(&full, target);
    assert!(!d.has_errors(), "{}", d.render(&map));
    s.expect("subsystem")
}

fn errors(src: &str) -> String {
    let (_, d, map) = run(src, Target::X86_64);
    assert!(d.has_errors(), "expected errors for:\n{src}");
    d.render(&map)
}

#[test]
fn io_seek_worked_example_both_targets() {
    let src = "skip; skip;\nroutine io_seek(io_object: mach_port_t; offset: loff_t; whence: int; out newp: loff_t);";
    let s = ok(src, Target::X86_64);
    let r = &s.routines[0];
    assert_eq!(r.msg_id, 102);
    assert_eq!(r.request.min_size, 64);
    assert_eq!(r.reply.min_size, 64);
    let offs: Vec<_> = r
        .request
        .fields
        .iter()
        .map(|f| (f.desc_offset, f.data_offset))
        .collect();
    assert_eq!(offs, vec![(32, 40), (48, 56)]);
    let offs: Vec<_> = r
        .reply
        .fields
        .iter()
        .map(|f| (f.desc_offset, f.data_offset))
        .collect();
    assert_eq!(offs, vec![(32, 40), (48, 56)]);
    // Descriptors: INTEGER_64 inline and INTEGER_32 inline.
    let d0 = s.send_desc(r, r.request.fields[0].arg, false);
    assert_eq!(d0.x86_64_u64(), Ok(0x0000_0001_2000_400B));
    let d1 = s.send_desc(r, r.request.fields[1].arg, false);
    assert_eq!(d1.x86_64_u64(), Ok(0x0000_0001_2000_2002));

    let s = ok(src, Target::I386);
    let r = &s.routines[0];
    assert_eq!((r.request.min_size, r.reply.min_size), (44, 44));
    let offs: Vec<_> = r
        .request
        .fields
        .iter()
        .map(|f| (f.desc_offset, f.data_offset))
        .collect();
    assert_eq!(offs, vec![(24, 28), (36, 40)]);
    let d0 = s.send_desc(r, r.request.fields[0].arg, false);
    assert_eq!(d0.i386_short_word(), Ok(0x1001_400B));
    let d1 = s.send_desc(r, r.request.fields[1].arg, false);
    assert_eq!(d1.i386_short_word(), Ok(0x1001_2002));
    // Reply: RetCode at 24/28, newp at 32/36.
    let offs: Vec<_> = r
        .reply
        .fields
        .iter()
        .map(|f| (f.desc_offset, f.data_offset))
        .collect();
    assert_eq!(offs, vec![(24, 28), (32, 36)]);
}

#[test]
fn implicit_argument_order_and_kinds() {
    let s = ok(
        "type pa = array[] of mach_port_poly_t;\nroutine r(p: mach_port_t; in a: pa, dealloc[]; in d: bytes_t, servercopy; out c: c4 = array[*:4] of int32_t, countinout);",
        Target::X86_64,
    );
    let r = &s.routines[0];
    let names: Vec<_> = r.args.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "dummy MsgOption arg",
            "RetCode",
            "p",
            "dummy ReplyPort arg",
            "dummy ReplyPort arg",
            "a",
            "aPoly",
            "aCnt",
            "aDealloc",
            "d",
            "dCnt",
            "dSCopy",
            "c",
            "cCnt",
            "cCnt",
        ]
    );
    let a = &r.args[5];
    assert!(a.kind.all(ArgKind::INDEFINITE | ArgKind::VARIABLE));
    assert_eq!(r.args[6].kind.ident(), ArgKind::POLY);
    // c: out var array with countinout; its count-in-out goes in the request.
    assert!(r.args[12].count_in_out);
    assert_eq!(r.args[13].kind.ident(), ArgKind::COUNT_IN_OUT);
    assert!(r.args[13].kind.any(ArgKind::REQUEST));
    assert!(!r.request.send.simple || !r.request.send.fixed);
}

#[test]
fn msgseqno_msgoption_waittime_positional() {
    let s = ok(
        "msgoption MACH_SEND_TIMEOUT;\nwaittime 200;\nroutine a(p: mach_port_t; msgseqno s: natural_t);\nnowaittime;\nmsgoption MACH_MSG_OPTION_NONE;\nserverprefix S_;\nuserprefix U_;\nroutine b(p: mach_port_t);",
        Target::X86_64,
    );
    let a = &s.routines[0];
    assert_eq!(a.arg(a.msg_option).var_name, "MACH_SEND_TIMEOUT");
    assert_eq!(
        a.wait_time.map(|w| a.arg(w).var_name.clone()),
        Some("200".into())
    );
    assert_eq!((a.server_name.as_str(), a.user_name.as_str()), ("a", "a"));
    let b = &s.routines[1];
    assert_eq!(b.arg(b.msg_option).var_name, "MACH_MSG_OPTION_NONE");
    assert!(b.wait_time.is_none());
    assert_eq!(
        (b.server_name.as_str(), b.user_name.as_str()),
        ("S_b", "U_b")
    );
    assert_eq!(s.demux_name, "test_server");
}

#[test]
fn struct_layout_differs_per_target() {
    let src = "type st = struct { int a; char b; int64_t c; };\nroutine r(p: mach_port_t; s: st);";
    let s = ok(src, Target::X86_64);
    let t = s.ty(s.routines[0]
        .args
        .iter()
        .find(|a| a.name == "s")
        .map(|a| a.ty)
        .unwrap());
    assert_eq!((t.in_name, t.number, t.size), (11, 2, 64));
    let s = ok(src, Target::I386);
    let t = s.ty(s.routines[0]
        .args
        .iter()
        .find(|a| a.name == "s")
        .map(|a| a.ty)
        .unwrap());
    assert_eq!((t.in_name, t.number, t.size), (2, 4, 32));
}

#[test]
fn long_form_thresholds() {
    let s = ok(
        "type big = (MACH_MSG_TYPE_INTEGER_8, 512);\ntype v = array[*:8192] of char;\nroutine r(p: mach_port_t; b: big; c: v);",
        Target::X86_64,
    );
    let r = &s.routines[0];
    let b = r.args.iter().find(|a| a.name == "b").unwrap();
    let c = r.args.iter().find(|a| a.name == "c").unwrap();
    assert!(b.long_form && c.long_form);
}

#[test]
fn list_output_format() {
    let s = ok(
        "routine a(p: mach_port_t);\nskip 2;\nsimpleroutine b(p: mach_port_t);\nskip;",
        Target::X86_64,
    );
    assert_eq!(
        s.routine_list(),
        "test 100 a 0 100 200\ntest 100 b 3 103 0\n"
    );
    assert_eq!(s.num_slots, 5);
}

#[test]
fn errors_are_located() {
    let e = errors("type foo = int;\nsubsystem x 1;");
    assert!(e.contains("Basic types not initialized"), "{e}");
    assert!(e.contains("test.defs:1:"), "{e}");

    let e = errors("subsystem x 1;\ntype int = MACH_MSG_TYPE_INTEGER_32;");
    assert!(e.contains("overriding previous definition of int"), "{e}");

    let e = errors(&format!(
        "subsystem x 1;{TYPES}\nsimpleroutine s(p: mach_port_t; out o: int);"
    ));
    assert!(e.contains("SimpleRoutine s has OUT argument"), "{e}");

    let e = errors(&format!(
        "subsystem x 1;{TYPES}\nroutine r(in p: mach_port_t);"
    ));
    assert!(
        e.contains("Routine r doesn't have a server port argument"),
        "{e}"
    );

    let e = errors(&format!(
        "subsystem x 1;{TYPES}\nroutine r(p: mach_port_t; msgseqno s: int64_t);"
    ));
    assert!(
        e.contains("should have been a MACH_MSG_TYPE_INTEGER_32"),
        "{e}"
    );

    let e = errors("subsystem x 1;\nroutine r(p: nosuch);");
    assert!(e.contains("type 'nosuch' not defined"), "{e}");

    let e = errors("routine r(p: int);");
    assert!(e.contains("before the subsystem"), "{e}");

    let e = errors("subsystem x 1; subsystem y 2;");
    assert!(e.contains("Basic types were already initialized"), "{e}");

    let e = errors("subsystem x 1;\ntype t = MACH_MSG_TYPE_STRING;");
    assert!(e.contains("must use full IPC type decl"), "{e}");

    let e = errors("subsystem x 1;\ntype t = array[10 / 0] of int;");
    assert!(e.contains("division by zero"), "{e}");

    let e = errors("subsystem x 1;\ntype a = array[*:4] of int; type b = ^a;");
    assert!(e.contains("IPC type decl is too complicated"), "{e}");

    let e = errors("");
    assert!(e.contains("no SubSystem declaration"), "{e}");

    let e = errors("subsystem x 1;\nroutine r(p: mach_port_t;);");
    assert!(e.contains("syntax error"), "{e}");
    assert!(e.contains("test.defs:2:26"), "{e}");
    assert!(e.contains("no `;` after the last argument"), "{e}");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let mut src = String::from("subsystem x 1;\ntype t = ");
    for _ in 0..10_000 {
        src.push_str("array[1] of ");
    }
    src.push_str("int;\ntype u = array[");
    for _ in 0..10_000 {
        src.push('(');
    }
    src.push('1');
    for _ in 0..10_000 {
        src.push(')');
    }
    src.push_str("] of int;");
    let e = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || errors(&src))
        .expect("thread")
        .join()
        .expect("no stack overflow");
    assert!(e.contains("nesting deeper than"), "{e}");
}

#[test]
fn kernel_side_senders_write_out_names() {
    // A KernelServer's replies and a KernelUser's requests carry the out-name (the kernel
    // hands over a right it holds); everyone else writes the in-name.
    let body = format!(
        "{TYPES}routine r(server: mach_port_t; p: mach_port_make_send_t; out q: mach_port_make_send_t);"
    );
    let name_of = |header: &str, reply: bool| {
        let (s, d, map) = run(&format!("{header}\n{body}"), Target::X86_64);
        assert!(!d.has_errors(), "{}", d.render(&map));
        let s = s.expect("subsystem");
        let r = &s.routines[0];
        let m = if reply { &r.reply } else { &r.request };
        let f = m.fields.last().expect("a port field");
        s.send_desc(r, f.arg, reply).name
    };
    const MAKE_SEND: u32 = 20;
    const PORT_SEND: u32 = 17;
    assert_eq!(name_of("subsystem s 100;", false), MAKE_SEND);
    assert_eq!(name_of("subsystem s 100;", true), MAKE_SEND);
    assert_eq!(name_of("subsystem KernelServer s 100;", false), MAKE_SEND);
    assert_eq!(name_of("subsystem KernelServer s 100;", true), PORT_SEND);
    assert_eq!(name_of("subsystem KernelUser s 100;", false), PORT_SEND);
    assert_eq!(name_of("subsystem KernelUser s 100;", true), MAKE_SEND);
}
