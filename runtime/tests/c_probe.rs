//! Compares `mig_runtime::wire` with the C headers of Debian 13's gnumach-dev: a small C
//! program, compiled with `gcc` against `target/debian13/root/usr/include/x86_64-linux-gnu`,
//! prints sizes, offsets, constants and the bytes of descriptors built with C bitfield
//! initializers; every value is compared with the Rust side. Every `#define` of the families
//! we mirror that the headers contain must be mirrored (or explicitly listed as not).
//!
//! Without the headers (or gcc): fails when `CI` is set, otherwise prints `SKIP: …` and passes.

use mig_runtime::ipc::{PortType, QLIMIT_DEFAULT, QLIMIT_MAX};
use mig_runtime::wire::{
    msg_return as mr, msgh_bits as mb, notify, option as opt, type_name as tn, KernReturn, Target,
    TypeDesc, MSG_TIMEOUT_NONE,
};
use mig_runtime::RightKind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("c_probe: {why} (CI is set, so this is a failure)");
    }
    println!("SKIP: c_probe: {why}");
}

fn headers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/debian13/root/usr/include/x86_64-linux-gnu")
}

/// (C expression, expected value).
fn constants() -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = Vec::new();
    let mut c = |name: &str, val: i64| v.push((name.to_string(), val));
    // MACH_MSG_TYPE_*
    for (n, x) in [
        ("UNSTRUCTURED", tn::UNSTRUCTURED),
        ("BIT", tn::BIT),
        ("BOOLEAN", tn::BOOLEAN),
        ("INTEGER_16", tn::INTEGER_16),
        ("INTEGER_32", tn::INTEGER_32),
        ("CHAR", tn::CHAR),
        ("BYTE", tn::BYTE),
        ("INTEGER_8", tn::INTEGER_8),
        ("REAL", tn::REAL),
        ("INTEGER_64", tn::INTEGER_64),
        ("STRING", tn::STRING),
        ("STRING_C", tn::STRING_C),
        ("PORT_NAME", tn::PORT_NAME),
        ("MOVE_RECEIVE", tn::MOVE_RECEIVE),
        ("MOVE_SEND", tn::MOVE_SEND),
        ("MOVE_SEND_ONCE", tn::MOVE_SEND_ONCE),
        ("COPY_SEND", tn::COPY_SEND),
        ("MAKE_SEND", tn::MAKE_SEND),
        ("MAKE_SEND_ONCE", tn::MAKE_SEND_ONCE),
        ("PORT_RECEIVE", tn::PORT_RECEIVE),
        ("PORT_SEND", tn::PORT_SEND),
        ("PORT_SEND_ONCE", tn::PORT_SEND_ONCE),
        ("PROTECTED_PAYLOAD", tn::PROTECTED_PAYLOAD),
        ("LAST", tn::LAST),
        ("POLYMORPHIC", tn::POLYMORPHIC),
    ] {
        c(&format!("MACH_MSG_TYPE_{n}"), i64::from(x));
    }
    // MACH_MSGH_BITS_*
    for (n, x) in [
        ("ZERO", mb::ZERO),
        ("REMOTE_MASK", mb::REMOTE_MASK),
        ("LOCAL_MASK", mb::LOCAL_MASK),
        ("COMPLEX", mb::COMPLEX),
        ("CIRCULAR", mb::CIRCULAR),
        ("COMPLEX_PORTS", mb::COMPLEX_PORTS),
        ("COMPLEX_DATA", mb::COMPLEX_DATA),
        ("MIGRATED", mb::MIGRATED),
        ("UNUSED", mb::UNUSED),
        ("PORTS_MASK", mb::PORTS_MASK),
    ] {
        c(&format!("MACH_MSGH_BITS_{n}"), i64::from(x));
    }
    // The function-like macros, on a few values.
    for (r, l) in [(19u32, 21u32), (17, 0), (18, 20), (0xff, 0xff)] {
        c(
            &format!("MACH_MSGH_BITS({r}, {l})"),
            i64::from(mb::make(r, l)),
        );
    }
    for bits in [0x1513u32, 0x8000_1513, 0xffff_ffff, 0x1200] {
        c(
            &format!("MACH_MSGH_BITS_REMOTE({bits:#x}u)"),
            i64::from(mb::remote(bits)),
        );
        c(
            &format!("MACH_MSGH_BITS_LOCAL({bits:#x}u)"),
            i64::from(mb::local(bits)),
        );
        c(
            &format!("MACH_MSGH_BITS_PORTS({bits:#x}u)"),
            i64::from(mb::ports(bits)),
        );
        c(
            &format!("MACH_MSGH_BITS_OTHER({bits:#x}u)"),
            i64::from(mb::other(bits)),
        );
    }
    for x in 0u32..30 {
        c(
            &format!("!!MACH_MSG_TYPE_PORT_ANY({x})"),
            i64::from(tn::is_port_any(x)),
        );
        c(
            &format!("!!MACH_MSG_TYPE_PORT_ANY_SEND({x})"),
            i64::from(tn::is_port_any_send(x)),
        );
        c(
            &format!("!!MACH_MSG_TYPE_PORT_ANY_RIGHT({x})"),
            i64::from(tn::is_port_any_right(x)),
        );
    }
    // Options.
    for (n, x) in [
        ("MACH_MSG_OPTION_NONE", opt::NONE),
        ("MACH_SEND_MSG", opt::SEND_MSG),
        ("MACH_RCV_MSG", opt::RCV_MSG),
        ("MACH_SEND_TIMEOUT", opt::SEND_TIMEOUT),
        ("MACH_SEND_NOTIFY", opt::SEND_NOTIFY),
        ("MACH_SEND_INTERRUPT", opt::SEND_INTERRUPT),
        ("MACH_SEND_CANCEL", opt::SEND_CANCEL),
        ("MACH_RCV_TIMEOUT", opt::RCV_TIMEOUT),
        ("MACH_RCV_NOTIFY", opt::RCV_NOTIFY),
        ("MACH_RCV_INTERRUPT", opt::RCV_INTERRUPT),
        ("MACH_RCV_LARGE", opt::RCV_LARGE),
        ("MACH_SEND_ALWAYS", opt::SEND_ALWAYS),
        ("MACH_MSG_TIMEOUT_NONE", MSG_TIMEOUT_NONE),
    ] {
        c(n, i64::from(x));
    }
    // mach_msg return codes.
    for (n, x) in [
        ("MACH_MSG_SUCCESS", mr::SUCCESS),
        ("MACH_MSG_MASK", mr::MASK),
        ("MACH_MSG_IPC_SPACE", mr::IPC_SPACE),
        ("MACH_MSG_VM_SPACE", mr::VM_SPACE),
        ("MACH_MSG_IPC_KERNEL", mr::IPC_KERNEL),
        ("MACH_MSG_VM_KERNEL", mr::VM_KERNEL),
        ("MACH_SEND_IN_PROGRESS", mr::SEND_IN_PROGRESS),
        ("MACH_SEND_INVALID_DATA", mr::SEND_INVALID_DATA),
        ("MACH_SEND_INVALID_DEST", mr::SEND_INVALID_DEST),
        ("MACH_SEND_TIMED_OUT", mr::SEND_TIMED_OUT),
        ("MACH_SEND_WILL_NOTIFY", mr::SEND_WILL_NOTIFY),
        ("MACH_SEND_NOTIFY_IN_PROGRESS", mr::SEND_NOTIFY_IN_PROGRESS),
        ("MACH_SEND_INTERRUPTED", mr::SEND_INTERRUPTED),
        ("MACH_SEND_MSG_TOO_SMALL", mr::SEND_MSG_TOO_SMALL),
        ("MACH_SEND_INVALID_REPLY", mr::SEND_INVALID_REPLY),
        ("MACH_SEND_INVALID_RIGHT", mr::SEND_INVALID_RIGHT),
        ("MACH_SEND_INVALID_NOTIFY", mr::SEND_INVALID_NOTIFY),
        ("MACH_SEND_INVALID_MEMORY", mr::SEND_INVALID_MEMORY),
        ("MACH_SEND_NO_BUFFER", mr::SEND_NO_BUFFER),
        ("MACH_SEND_NO_NOTIFY", mr::SEND_NO_NOTIFY),
        ("MACH_SEND_INVALID_TYPE", mr::SEND_INVALID_TYPE),
        ("MACH_SEND_INVALID_HEADER", mr::SEND_INVALID_HEADER),
        ("MACH_RCV_IN_PROGRESS", mr::RCV_IN_PROGRESS),
        ("MACH_RCV_INVALID_NAME", mr::RCV_INVALID_NAME),
        ("MACH_RCV_TIMED_OUT", mr::RCV_TIMED_OUT),
        ("MACH_RCV_TOO_LARGE", mr::RCV_TOO_LARGE),
        ("MACH_RCV_INTERRUPTED", mr::RCV_INTERRUPTED),
        ("MACH_RCV_PORT_CHANGED", mr::RCV_PORT_CHANGED),
        ("MACH_RCV_INVALID_NOTIFY", mr::RCV_INVALID_NOTIFY),
        ("MACH_RCV_INVALID_DATA", mr::RCV_INVALID_DATA),
        ("MACH_RCV_PORT_DIED", mr::RCV_PORT_DIED),
        ("MACH_RCV_IN_SET", mr::RCV_IN_SET),
        ("MACH_RCV_HEADER_ERROR", mr::RCV_HEADER_ERROR),
        ("MACH_RCV_BODY_ERROR", mr::RCV_BODY_ERROR),
    ] {
        c(n, i64::from(x));
        if n.starts_with("MACH_SEND_") || n.starts_with("MACH_RCV_") {
            assert_eq!(KernReturn(x as i32).name(), Some(n), "symbolic name of {n}");
        }
    }
    // kern_return_t and MIG codes.
    for k in [
        KernReturn::KERN_SUCCESS,
        KernReturn::KERN_INVALID_ADDRESS,
        KernReturn::KERN_PROTECTION_FAILURE,
        KernReturn::KERN_NO_SPACE,
        KernReturn::KERN_INVALID_ARGUMENT,
        KernReturn::KERN_FAILURE,
        KernReturn::KERN_RESOURCE_SHORTAGE,
        KernReturn::KERN_NOT_RECEIVER,
        KernReturn::KERN_NO_ACCESS,
        KernReturn::KERN_MEMORY_FAILURE,
        KernReturn::KERN_MEMORY_ERROR,
        KernReturn::KERN_NOT_IN_SET,
        KernReturn::KERN_NAME_EXISTS,
        KernReturn::KERN_ABORTED,
        KernReturn::KERN_INVALID_NAME,
        KernReturn::KERN_INVALID_TASK,
        KernReturn::KERN_INVALID_RIGHT,
        KernReturn::KERN_INVALID_VALUE,
        KernReturn::KERN_UREFS_OVERFLOW,
        KernReturn::KERN_INVALID_CAPABILITY,
        KernReturn::KERN_RIGHT_EXISTS,
        KernReturn::KERN_INVALID_HOST,
        KernReturn::KERN_MEMORY_PRESENT,
        KernReturn::KERN_WRITE_PROTECTION_FAILURE,
        KernReturn::KERN_TERMINATED,
        KernReturn::KERN_TIMEDOUT,
        KernReturn::KERN_INTERRUPTED,
        KernReturn::MIG_TYPE_ERROR,
        KernReturn::MIG_REPLY_MISMATCH,
        KernReturn::MIG_REMOTE_ERROR,
        KernReturn::MIG_BAD_ID,
        KernReturn::MIG_BAD_ARGUMENTS,
        KernReturn::MIG_NO_REPLY,
        KernReturn::MIG_EXCEPTION,
        KernReturn::MIG_ARRAY_TOO_LARGE,
        KernReturn::MIG_SERVER_DIED,
        KernReturn::MIG_DESTROY_REQUEST,
    ] {
        let name = k.name().expect("named");
        c(name, i64::from(k.0));
    }
    // Notifications.
    for (n, x) in [
        ("FIRST", notify::FIRST),
        ("PORT_DELETED", notify::PORT_DELETED),
        ("MSG_ACCEPTED", notify::MSG_ACCEPTED),
        ("PORT_DESTROYED", notify::PORT_DESTROYED),
        ("NO_SENDERS", notify::NO_SENDERS),
        ("SEND_ONCE", notify::SEND_ONCE),
        ("DEAD_NAME", notify::DEAD_NAME),
        ("LAST", notify::LAST),
    ] {
        c(&format!("MACH_NOTIFY_{n}"), i64::from(x));
    }
    // Ports.
    c("MACH_PORT_QLIMIT_DEFAULT", i64::from(QLIMIT_DEFAULT));
    c("MACH_PORT_QLIMIT_MAX", i64::from(QLIMIT_MAX));
    for (n, k) in [
        ("SEND", RightKind::Send),
        ("RECEIVE", RightKind::Receive),
        ("SEND_ONCE", RightKind::SendOnce),
        ("PORT_SET", RightKind::PortSet),
        ("DEAD_NAME", RightKind::DeadName),
    ] {
        c(&format!("MACH_PORT_RIGHT_{n}"), i64::from(k.number()));
        c(&format!("MACH_PORT_TYPE_{n}"), i64::from(PortType::of(k).0));
    }
    c("MACH_PORT_TYPE_NONE", i64::from(PortType::NONE.0));
    c(
        "MACH_PORT_TYPE_SEND_RECEIVE",
        i64::from(PortType::SEND_RECEIVE.0),
    );
    c("MACH_PORT_TYPE_DNREQUEST", i64::from(PortType::DNREQUEST.0));
    c("MACH_MSG_USER_ALIGNMENT", i64::from(Target::X86_64.align()));
    v
}

/// Names the headers define that we deliberately do not mirror.
const NOT_MIRRORED: &[&str] = &[
    "MACH_MSG_SIZE_MAX",
    "MACH_MSG_KERNEL_ALIGNMENT",
    "MACH_MSG_TYPE_PORT_ANY",
    "MACH_MSG_TYPE_PORT_ANY_SEND",
    "MACH_MSG_TYPE_PORT_ANY_RIGHT",
    "MACH_MSGH_BITS",
    "MACH_MSGH_BITS_REMOTE",
    "MACH_MSGH_BITS_LOCAL",
    "MACH_MSGH_BITS_PORTS",
    "MACH_MSGH_BITS_OTHER",
    "MACH_PORT_RIGHT_NUMBER",
    "MACH_PORT_TYPE_MAREQUEST",
    "MACH_PORT_TYPE_COMPAT",
    "MACH_PORT_TYPE_ALL_RIGHTS",
    "MACH_PORT_TYPE_SEND_RIGHTS",
    "MACH_PORT_TYPE_PORT_RIGHTS",
    "MACH_PORT_TYPE_PORT_OR_DEAD",
    "MACH_PORT_TYPE",
    "KERN_RETURN_MAX",
];

/// Every `#define NAME` of the mirrored families in the headers.
fn defined_names(dir: &Path) -> BTreeSet<String> {
    let prefixes = [
        "MACH_MSG_",
        "MACH_MSGH_BITS",
        "MACH_SEND_",
        "MACH_RCV_",
        "KERN_",
        "MIG_",
        "MACH_NOTIFY_",
        "MACH_PORT_RIGHT_",
        "MACH_PORT_TYPE_",
        "MACH_PORT_QLIMIT_",
    ];
    let mut out = BTreeSet::new();
    for f in [
        "mach/message.h",
        "mach/kern_return.h",
        "mach/mig_errors.h",
        "mach/notify.h",
        "mach/port.h",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        for line in text.lines() {
            let l = line.trim_start();
            let Some(rest) = l.strip_prefix('#') else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix("define") else {
                continue;
            };
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if prefixes.iter().any(|p| name.starts_with(p)) && !name.ends_with("_H_") {
                out.insert(name);
            }
        }
    }
    out
}

/// Descriptors built with C bitfield initializers: (C initializer, Rust value).
fn descriptors() -> Vec<(&'static str, &'static str, TypeDesc)> {
    let d = |name, size, number, inline, longform, deallocate, unused| TypeDesc {
        name,
        size,
        number,
        inline,
        longform,
        deallocate,
        unused,
    };
    vec![
        (
            "mach_msg_type_t",
            ".msgt_name = MACH_MSG_TYPE_INTEGER_32, .msgt_size = 32, .msgt_number = 1, .msgt_inline = 1",
            TypeDesc::inline(tn::INTEGER_32, 32, 1),
        ),
        (
            "mach_msg_type_t",
            ".msgt_name = MACH_MSG_TYPE_COPY_SEND, .msgt_size = 64, .msgt_number = 1, .msgt_inline = 1",
            TypeDesc::inline(tn::COPY_SEND, 64, 1),
        ),
        (
            "mach_msg_type_t",
            ".msgt_name = MACH_MSG_TYPE_INTEGER_64, .msgt_size = 64, .msgt_number = 3, .msgt_inline = 1, .msgt_longform = 1",
            d(tn::INTEGER_64, 64, 3, true, true, false, 0),
        ),
        (
            "mach_msg_type_long_t",
            ".msgtl_name = MACH_MSG_TYPE_CHAR, .msgtl_size = 8, .msgtl_number = 100, .msgtl_inline = 0, .msgtl_longform = 1, .msgtl_deallocate = 1",
            d(tn::CHAR, 8, 100, false, true, true, 0),
        ),
        (
            "mach_msg_type_t",
            ".msgt_name = MACH_MSG_TYPE_INTEGER_32, .msgt_size = 512, .msgt_number = 7, .msgt_inline = 1",
            d(tn::INTEGER_32, 512, 7, true, false, false, 0),
        ),
        (
            "mach_msg_type_t",
            ".msgt_name = 0xff, .msgt_size = 0xffff, .msgt_number = 0xffffffffu, .msgt_unused = 0x1f",
            d(0xff, 0xffff, u32::MAX, false, false, false, 0x1f),
        ),
        (
            "mach_msg_type_t",
            ".msgt_name = MACH_MSG_TYPE_MOVE_SEND, .msgt_size = 32, .msgt_number = 4, .msgt_inline = 0, .msgt_deallocate = 1",
            d(tn::MOVE_SEND, 32, 4, false, false, true, 0),
        ),
    ]
}

fn c_source() -> String {
    let mut s = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <string.h>\n\
         #include <mach/message.h>\n#include <mach/mig_errors.h>\n#include <mach/notify.h>\n\
         #include <mach/kern_return.h>\n#include <mach/port.h>\n\
         static void bytes(const char *k, const void *p, size_t n) {\n\
           const unsigned char *b = p; printf(\"%s \", k);\n\
           for (size_t i = 0; i < n; i++) printf(\"%02x\", b[i]);\n printf(\"\\n\"); }\n\
         int main(void) {\n",
    );
    let p = |s: &mut String, k: &str, e: &str| {
        s.push_str(&format!(
            "  printf(\"%s %lld\\n\", \"{k}\", (long long)({e}));\n"
        ));
    };
    for t in [
        "mach_msg_header_t",
        "mach_msg_type_t",
        "mach_msg_type_long_t",
        "mig_reply_header_t",
        "mach_port_name_inlined_t",
        "mach_port_name_t",
        "mach_port_deleted_notification_t",
        "mach_msg_accepted_notification_t",
        "mach_port_destroyed_notification_t",
        "mach_no_senders_notification_t",
        "mach_send_once_notification_t",
        "mach_dead_name_notification_t",
    ] {
        p(&mut s, &format!("sizeof.{t}"), &format!("sizeof({t})"));
    }
    p(
        &mut s,
        "alignof.mach_msg_type_t",
        "__alignof__(mach_msg_type_t)",
    );
    for f in [
        "msgh_bits",
        "msgh_size",
        "msgh_remote_port",
        "msgh_local_port",
        "msgh_protected_payload",
        "msgh_seqno",
        "msgh_id",
    ] {
        p(
            &mut s,
            &format!("offsetof.{f}"),
            &format!("offsetof(mach_msg_header_t, {f})"),
        );
    }
    p(
        &mut s,
        "offsetof.RetCodeType",
        "offsetof(mig_reply_header_t, RetCodeType)",
    );
    p(
        &mut s,
        "offsetof.RetCode",
        "offsetof(mig_reply_header_t, RetCode)",
    );
    p(
        &mut s,
        "offsetof.not_port",
        "offsetof(mach_dead_name_notification_t, not_port)",
    );
    p(
        &mut s,
        "offsetof.not_count",
        "offsetof(mach_no_senders_notification_t, not_count)",
    );
    for (i, (ty, init, _)) in descriptors().iter().enumerate() {
        s.push_str(&format!(
            "  {{ {ty} d; memset(&d, 0, sizeof d); d = ({ty}){{ {init} }}; bytes(\"desc.{i}\", &d, sizeof d); }}\n"
        ));
    }
    for (expr, _) in constants() {
        p(&mut s, &format!("const.{expr}"), &expr);
    }
    s.push_str("  return 0;\n}\n");
    s
}

#[test]
fn c_headers_agree_with_wire() {
    let inc = headers();
    if !inc.join("mach/message.h").exists() {
        return skip_or_fail(&format!("gnumach headers not found in {}", inc.display()));
    }
    if Command::new("gcc").arg("--version").output().is_err() {
        return skip_or_fail("gcc not found");
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_probe");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&src, c_source()).unwrap();
    let out = Command::new("gcc")
        .arg("-std=gnu11")
        .arg("-Wall")
        .arg("-I")
        .arg(&inc)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    let got: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let num = |k: &str| -> i64 {
        got.get(k)
            .unwrap_or_else(|| panic!("probe printed no {k}"))
            .parse()
            .unwrap()
    };
    let x = Target::X86_64;
    let errors = std::cell::RefCell::new(Vec::new());
    let check = |what: &str, c: i64, rust: i64| {
        if c != rust {
            errors
                .borrow_mut()
                .push(format!("{what}: C {c} ({c:#x}), Rust {rust} ({rust:#x})"));
        }
    };
    check(
        "sizeof header",
        num("sizeof.mach_msg_header_t"),
        i64::from(x.header_size()),
    );
    check(
        "sizeof type",
        num("sizeof.mach_msg_type_t"),
        i64::from(x.type_size()),
    );
    check(
        "sizeof long type",
        num("sizeof.mach_msg_type_long_t"),
        i64::from(x.type_long_size()),
    );
    check(
        "alignof type",
        num("alignof.mach_msg_type_t"),
        i64::from(x.align()),
    );
    check(
        "sizeof mig_reply_header_t",
        num("sizeof.mig_reply_header_t"),
        i64::from(x.reply_header_size()),
    );
    check(
        "sizeof inlined port",
        num("sizeof.mach_port_name_inlined_t"),
        i64::from(x.port_size()),
    );
    check(
        "sizeof port name",
        num("sizeof.mach_port_name_t"),
        i64::from(x.port_name_size()),
    );
    check(
        "offsetof RetCode",
        num("offsetof.RetCode"),
        i64::from(x.retcode_offset()),
    );
    check(
        "offsetof RetCodeType",
        num("offsetof.RetCodeType"),
        i64::from(x.header_size()),
    );
    use mig_runtime::wire::header;
    check(
        "offsetof bits",
        num("offsetof.msgh_bits"),
        header::BITS as i64,
    );
    check(
        "offsetof size",
        num("offsetof.msgh_size"),
        header::SIZE as i64,
    );
    check(
        "offsetof remote",
        num("offsetof.msgh_remote_port"),
        header::REMOTE as i64,
    );
    check(
        "offsetof local",
        num("offsetof.msgh_local_port"),
        header::local(x) as i64,
    );
    check(
        "offsetof payload",
        num("offsetof.msgh_protected_payload"),
        header::local(x) as i64,
    );
    check(
        "offsetof seqno",
        num("offsetof.msgh_seqno"),
        header::seqno(x) as i64,
    );
    check("offsetof id", num("offsetof.msgh_id"), header::id(x) as i64);
    // Notification layouts: what the userspace IPC generates (see ipc tests).
    for (t, size) in [
        ("mach_port_deleted_notification_t", 48),
        ("mach_msg_accepted_notification_t", 48),
        ("mach_port_destroyed_notification_t", 48),
        ("mach_no_senders_notification_t", 48),
        ("mach_send_once_notification_t", 32),
        ("mach_dead_name_notification_t", 48),
    ] {
        check(t, num(&format!("sizeof.{t}")), size);
    }
    check("not_port", num("offsetof.not_port"), 40);
    check("not_count", num("offsetof.not_count"), 40);
    for (i, (_, init, d)) in descriptors().iter().enumerate() {
        let mut b = [0u8; 8];
        d.encode(x, &mut b).unwrap();
        let rust: String = b.iter().map(|v| format!("{v:02x}")).collect();
        let c = got.get(&format!("desc.{i}")).cloned().unwrap_or_default();
        if c != rust {
            errors
                .borrow_mut()
                .push(format!("descriptor {{{init}}}: C {c}, Rust {rust}"));
        }
        let back = TypeDesc::decode(x, &b, 0).unwrap().desc;
        assert_eq!(back, *d);
    }
    let consts = constants();
    for (expr, val) in &consts {
        check(expr, num(&format!("const.{expr}")), *val);
    }
    // Completeness: every define of the mirrored families is compared (or listed).
    let compared: BTreeSet<String> = consts
        .iter()
        .map(|(e, _)| {
            e.trim_start_matches("!!")
                .split('(')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    for name in defined_names(&inc) {
        if !compared.contains(&name) && !NOT_MIRRORED.contains(&name.as_str()) {
            errors
                .borrow_mut()
                .push(format!("{name} is defined in the headers but not compared"));
        }
    }
    let errors = errors.into_inner();
    assert!(errors.is_empty(), "mismatches:\n{}", errors.join("\n"));
    println!("c_probe: {} values compared", got.len());
}
