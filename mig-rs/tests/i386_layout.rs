//! i386 wire layouts from the IR, against the expected values of mig-language.md §4
//! (no Debian package generates i386 code, so these come from the specification).

use std::path::Path;

use mig_rs::driver::{compile_with, Options};
use mig_rs::ir::{Field, Routine, Subsystem};
use mig_rs::preprocess::MemLoader;
use mig_runtime::wire::{Target, TypeDesc};

const TYPES: &str = "
type int32_t = MACH_MSG_TYPE_INTEGER_32;
type int64_t = MACH_MSG_TYPE_INTEGER_64;
type loff_t = int64;
type mach_port_t = MACH_MSG_TYPE_COPY_SEND;
type mach_port_make_send_t = MACH_MSG_TYPE_MAKE_SEND ctype: mach_port_t;
type mach_port_array_t = array[] of mach_port_t;
type data_t = ^array[] of MACH_MSG_TYPE_CHAR;
type var_ints_t = array[*:10] of int32_t;
type mixed_t = struct { int32_t a; char b; int64_t c; };
type wide_t = (MACH_MSG_TYPE_INTEGER_8, 512);
";

fn compile_i386(body: &str) -> Subsystem {
    let src = format!("subsystem io 21000;\n{TYPES}\n{body}");
    let main = Path::new("/mem/io.defs");
    let mut loader = MemLoader::new().with(main, src.into_bytes());
    let opts = Options {
        target: Target::I386,
        ..Options::default()
    };
    let comp = compile_with(main, &opts, &mut loader);
    assert!(!comp.has_errors(), "{}", comp.render_diagnostics());
    comp.subsystem.expect("a subsystem")
}

fn offsets(fields: &[Field]) -> Vec<(u32, u32, u32)> {
    fields
        .iter()
        .map(|f| (f.desc_offset, f.desc_size, f.data_offset))
        .collect()
}

fn field<'a>(r: &'a Routine, fields: &'a [Field], name: &str) -> &'a Field {
    fields
        .iter()
        .find(|f| r.arg(f.arg).name == name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

fn word(d: TypeDesc) -> u32 {
    d.i386_short_word().expect("fits a short i386 descriptor")
}

fn encode(d: TypeDesc) -> Vec<u8> {
    let mut buf = [0u8; 16];
    let n = d.encode(Target::I386, &mut buf).expect("encodes");
    buf[..n].to_vec()
}

#[test]
fn io_seek_worked_example() {
    // §4.3: io_seek (id 21002): request and reply 44 bytes on i386.
    let s = compile_i386(
        "skip; skip;\n\
         routine io_seek(io_object: mach_port_t; offset: loff_t; whence: int; out newp: loff_t);",
    );
    let r = &s.routines[0];
    assert_eq!((r.msg_id, r.reply_id), (21002, 21102));
    assert!(r.request.is_fixed() && r.reply.is_fixed());
    assert_eq!((r.request.min_size, r.reply.min_size), (44, 44));
    // Request: header 24, offsetType 24, offset 28 (int64 at 4-byte alignment), whenceType
    // 36, whence 40.
    assert_eq!(offsets(&r.request.fields), vec![(24, 4, 28), (36, 4, 40)]);
    let offset = field(r, &r.request.fields, "offset");
    assert_eq!((offset.data_size, offset.pad_size), (8, 0));
    let whence = field(r, &r.request.fields, "whence");
    assert_eq!((whence.data_size, whence.pad_size), (4, 0));
    assert_eq!(word(s.send_desc(r, offset.arg, false)), 0x1001_400B);
    assert_eq!(word(s.send_desc(r, whence.arg, false)), 0x1001_2002);
    assert_eq!(
        encode(s.send_desc(r, whence.arg, false)),
        [0x02, 0x20, 0x01, 0x10]
    );
    // Reply: RetCodeType 24, RetCode 28, newpType 32, newp 36.
    assert_eq!(offsets(&r.reply.fields), vec![(24, 4, 28), (32, 4, 36)]);
    let ret = field(r, &r.reply.fields, "RetCode");
    assert_eq!(word(s.send_desc(r, ret.arg, true)), 0x1001_2002);
    assert_eq!(word(s.check_desc(r, ret.arg)), 0x1001_2002);
    let newp = field(r, &r.reply.fields, "newp");
    assert_eq!(word(s.send_desc(r, newp.arg, true)), 0x1001_400B);
    assert_eq!(word(s.check_desc(r, newp.arg)), 0x1001_400B);
    assert!(r.request.send.simple && r.reply.check.simple);
}

#[test]
fn reply_header_is_32_bytes() {
    let s = compile_i386("routine nothing(server: mach_port_t);");
    let r = &s.routines[0];
    assert_eq!((r.request.min_size, r.reply.min_size), (24, 32));
    assert_eq!(offsets(&r.reply.fields), vec![(24, 4, 28)]);
}

#[test]
fn ports_take_four_bytes() {
    let s = compile_i386(
        "routine give(server: mach_port_t; p: mach_port_make_send_t; out q: mach_port_t);",
    );
    let r = &s.routines[0];
    let p = field(r, &r.request.fields, "p");
    assert_eq!(
        (p.desc_offset, p.data_offset, p.data_size, p.pad_size),
        (24, 28, 4, 0)
    );
    // MAKE_SEND (20), 32 bits, 1, inline; the receiver checks PORT_SEND (17).
    assert_eq!(word(s.send_desc(r, p.arg, false)), 0x1001_2014);
    assert_eq!(word(s.check_desc(r, p.arg)), 0x1001_2011);
    assert_eq!(r.request.min_size, 32);
    assert!(
        r.request.send.fixed && !r.request.send.simple,
        "ports make it complex"
    );
    let q = field(r, &r.reply.fields, "q");
    assert_eq!((q.desc_offset, q.data_offset, q.data_size), (32, 36, 4));
    assert_eq!(word(s.send_desc(r, q.arg, true)), 0x1001_2013, "COPY_SEND");
    assert_eq!(r.reply.min_size, 40);
    // An indefinite port array holds 2048 / 4 = 512 ports inline on i386.
    let s = compile_i386("routine ports(server: mach_port_t; a: mach_port_array_t);");
    let r = &s.routines[0];
    let a = field(r, &r.request.fields, "a");
    let d = s.send_desc(r, a.arg, false);
    assert_eq!((d.name, d.size, d.number, d.longform), (19, 32, 512, true));
    assert_eq!((a.desc_size, a.data_offset, a.data_size), (12, 36, 2048));
}

#[test]
fn long_descriptor_is_12_bytes_with_trailing_fields() {
    // §4.2: out-of-line, dealloc, CHAR x 100 = 00 00 00 60 | 08 00 | 08 00 | 64 00 00 00.
    let s = compile_i386("routine put(server: mach_port_t; data: data_t, dealloc);");
    let r = &s.routines[0];
    let f = field(r, &r.request.fields, "data");
    assert_eq!(
        (f.desc_offset, f.desc_size, f.data_offset, f.data_size),
        (24, 12, 36, 4)
    );
    assert_eq!(r.request.min_size, 40);
    let mut d = s.send_desc(r, f.arg, false);
    assert!(d.longform && !d.inline && d.deallocate);
    assert_eq!((d.name, d.size), (8, 8));
    d.number = 100; // the count is set at run time
    assert_eq!(
        encode(d),
        [0x00, 0x00, 0x00, 0x60, 0x08, 0x00, 0x08, 0x00, 0x64, 0x00, 0x00, 0x00]
    );
    // A 512-bit element needs the long form (size >= 256); inline, not deallocated.
    let s = compile_i386("routine wide(server: mach_port_t; w: wide_t);");
    let r = &s.routines[0];
    let f = field(r, &r.request.fields, "w");
    assert_eq!((f.desc_size, f.data_offset, f.data_size), (12, 36, 64));
    assert_eq!(r.request.min_size, 100);
    let d = s.send_desc(r, f.arg, false);
    assert_eq!(
        encode(d),
        [0x00, 0x00, 0x00, 0x30, 0x09, 0x00, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00]
    );
}

#[test]
fn struct_alignment_on_i386() {
    // §2: struct {int a; char b; int64_t c;} is INTEGER_32 x 4 on i386 (int64 aligns to 4).
    let s = compile_i386("routine st(server: mach_port_t; m: mixed_t; h: short);");
    let r = &s.routines[0];
    let m = field(r, &r.request.fields, "m");
    let d = s.send_desc(r, m.arg, false);
    assert_eq!((d.name, d.size, d.number), (2, 32, 4));
    assert_eq!(
        (m.desc_offset, m.data_offset, m.data_size, m.pad_size),
        (24, 28, 16, 0)
    );
    // A short is 2 bytes plus 2 of padding on i386.
    let h = field(r, &r.request.fields, "h");
    assert_eq!(
        (h.desc_offset, h.data_offset, h.data_size, h.pad_size),
        (44, 48, 2, 2)
    );
    assert_eq!(word(s.send_desc(r, h.arg, false)), 0x1001_1001);
    assert_eq!(r.request.min_size, 52);
}

#[test]
fn variable_arrays_on_i386() {
    let s = compile_i386(
        "routine v(server: mach_port_t; a: var_ints_t; b: int32_t; out c: var_ints_t);",
    );
    let r = &s.routines[0];
    assert!(!r.request.is_fixed());
    // Empty array: aType 24, a (0 bytes) 28, bType 28, b 32.
    assert_eq!(offsets(&r.request.fields), vec![(24, 4, 28), (28, 4, 32)]);
    let b = field(r, &r.request.fields, "b");
    assert_eq!(b.var_pos, 1);
    assert_eq!((r.request.min_size, r.request.max_size), (36, 76));
    assert_eq!((r.reply.min_size, r.reply.max_size), (36, 76));
    let a = field(r, &r.request.fields, "a");
    assert_eq!(
        word(s.send_desc(r, a.arg, false)),
        0x100A_2002,
        "maximum count 10"
    );
}
