//! A pretty printer for GNU Mach typed messages, and a [`Transport`] wrapper that reports every
//! message sent and received.
//!
//! [`format_message`] prints the header (with symbolic dispositions), then every descriptor
//! with its name, size, number, flags and values: integers, a string preview for chars, port
//! names, out-of-line address and size. It never panics: whatever cannot be decoded is shown
//! as `<truncated …>` or `<invalid …>` and printing stops there.

use crate::msg::MsgBuf;
use crate::rights::SpaceId;
use crate::transport::Transport;
use crate::wire::{
    bytes, msg_return as mr, msgh_bits, type_name as tn, KernReturn, MsgHeader, PortName, Target,
    TypeDesc,
};
use alloc::string::String;
use core::fmt::Write;

/// How many elements of an array are printed before "…".
pub const MAX_ELEMENTS: usize = 16;
/// How many characters of a char array are previewed.
pub const MAX_CHARS: usize = 64;

fn disposition(t: u32) -> &'static str {
    match t {
        0 => "0",
        tn::MOVE_RECEIVE => "MOVE_RECEIVE",
        tn::MOVE_SEND => "MOVE_SEND",
        tn::MOVE_SEND_ONCE => "MOVE_SEND_ONCE",
        tn::COPY_SEND => "COPY_SEND",
        tn::MAKE_SEND => "MAKE_SEND",
        tn::MAKE_SEND_ONCE => "MAKE_SEND_ONCE",
        tn::PROTECTED_PAYLOAD => "PROTECTED_PAYLOAD",
        _ => "?",
    }
}

fn short_type_name(n: u32) -> String {
    let c = tn::c_name(n);
    match c.strip_prefix("MACH_MSG_TYPE_") {
        Some(s) => String::from(s),
        None => alloc::format!("type#{n}"),
    }
}

fn port_name(n: u32) -> String {
    alloc::format!("{:?}", PortName(n))
}

fn write_chars(out: &mut String, data: &[u8]) {
    out.push('"');
    for &b in data.iter().take(MAX_CHARS) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            b'\n' => out.push_str("\\n"),
            0 => out.push_str("\\0"),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if data.len() > MAX_CHARS {
        out.push('…');
    }
}

/// Prints `number` elements of `size` bits from `data`.
fn write_values(out: &mut String, name: u32, size: u32, number: u32, data: &[u8]) {
    if name == tn::CHAR || name == tn::STRING || (size == 8 && name == tn::BYTE) {
        write_chars(out, data);
        return;
    }
    let width = match size {
        8 | 16 | 32 | 64 => (size / 8) as usize,
        _ => {
            // Odd widths (bits, 128-bit longs…): raw bytes.
            out.push_str("bytes ");
            for b in data.iter().take(MAX_ELEMENTS * 4) {
                let _ = write!(out, "{b:02x}");
            }
            if data.len() > MAX_ELEMENTS * 4 {
                out.push('…');
            }
            return;
        }
    };
    out.push('[');
    for i in 0..(number as usize).min(MAX_ELEMENTS) {
        let o = i * width;
        let v = match width {
            1 => data.get(o).map(|&b| u64::from(b)),
            2 => bytes::get_u16(data, o).ok().map(u64::from),
            4 => bytes::get_u32(data, o).ok().map(u64::from),
            _ => bytes::get_u64(data, o).ok(),
        };
        if i > 0 {
            out.push_str(", ");
        }
        match v {
            None => {
                out.push_str("<truncated>");
                break;
            }
            Some(v) => {
                let signed = match width {
                    1 => i64::from(v as u8 as i8),
                    2 => i64::from(v as u16 as i16),
                    4 => i64::from(v as u32 as i32),
                    _ => v as i64,
                };
                match name {
                    tn::INTEGER_8 | tn::INTEGER_16 | tn::INTEGER_32 | tn::INTEGER_64 => {
                        let _ = write!(out, "{signed}");
                    }
                    tn::PORT_NAME => out.push_str(&port_name(v as u32)),
                    _ => {
                        let _ = write!(out, "{v:#x}");
                    }
                }
            }
        }
    }
    if number as usize > MAX_ELEMENTS {
        out.push_str(", …");
    }
    out.push(']');
}

/// Formats a message image (`buf` holds at least the header; `msgh_size` bytes are read,
/// clamped to `buf`). `msg`, when given, supplies out-of-line regions for previews.
fn format_impl(buf: &[u8], target: Target, msg: Option<&MsgBuf<'_>>) -> String {
    let mut out = String::new();
    let h = match MsgHeader::decode(target, buf) {
        Ok(h) => h,
        Err(_) => {
            let _ = write!(
                out,
                "<truncated header: {} of {} bytes>",
                buf.len(),
                target.header_size()
            );
            return out;
        }
    };
    let _ = writeln!(
        out,
        "mach_msg ({}) id={} size={} seqno={}",
        target.name(),
        h.id,
        h.size,
        h.seqno
    );
    let mut flags = String::new();
    if h.bits & msgh_bits::COMPLEX != 0 {
        flags.push_str(" COMPLEX");
    }
    if h.bits & msgh_bits::CIRCULAR != 0 {
        flags.push_str(" CIRCULAR");
    }
    let other = msgh_bits::other(h.bits) & !(msgh_bits::COMPLEX | msgh_bits::CIRCULAR);
    if other != 0 {
        let _ = write!(flags, " other={other:#x}");
    }
    let _ = writeln!(
        out,
        "  bits={:#010x} remote={} local={}{}",
        h.bits,
        disposition(msgh_bits::remote(h.bits)),
        disposition(msgh_bits::local(h.bits)),
        flags
    );
    let _ = writeln!(
        out,
        "  remote_port={} local_port={}",
        port_name(h.remote.0),
        port_name(h.local.0)
    );
    let end = (h.size as usize).min(buf.len());
    if (h.size as usize) > buf.len() {
        let _ = writeln!(
            out,
            "  <truncated: msgh_size {} but only {} bytes>",
            h.size,
            buf.len()
        );
    }
    let body = &buf[..end];
    let align = target.align() as usize;
    let mut off = target.header_size() as usize;
    while off < end {
        let d = match TypeDesc::decode(target, body, off) {
            Ok(d) => d,
            Err(_) => {
                let _ = writeln!(out, "  [{off}] <truncated descriptor>");
                break;
            }
        };
        let t = d.desc;
        let mut fl = String::new();
        fl.push_str(if t.inline { "inline" } else { "out-of-line" });
        if t.longform {
            fl.push_str(" longform");
        }
        if t.deallocate {
            fl.push_str(" dealloc");
        }
        if t.unused != 0 {
            let _ = write!(fl, " <invalid unused={:#x}>", t.unused);
        }
        if d.header_fields != 0 {
            let _ = write!(fl, " <invalid long header {:#x}>", d.header_fields);
        }
        let _ = write!(
            out,
            "  [{off}] {} size={} number={} {}: ",
            short_type_name(t.name),
            t.size,
            t.number,
            fl
        );
        off += d.wire_size;
        let length = (u64::from(t.number) * u64::from(t.size)).div_ceil(8);
        let is_port = tn::is_port_any(t.name);
        if t.inline {
            let len = match usize::try_from(length) {
                Ok(l) if off.checked_add(l).is_some_and(|e| e <= end) => l,
                _ => {
                    let _ = writeln!(out, "<truncated: {length} bytes past the end>");
                    break;
                }
            };
            let data = &body[off..off + len];
            if is_port {
                let stride = (t.size / 8).max(1) as usize;
                out.push('[');
                for i in 0..(t.number as usize).min(MAX_ELEMENTS) {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    match bytes::get_u32(data, i * stride) {
                        Ok(n) => out.push_str(&port_name(n)),
                        Err(_) => out.push_str("<truncated>"),
                    }
                }
                if t.number as usize > MAX_ELEMENTS {
                    out.push_str(", …");
                }
                out.push(']');
            } else {
                write_values(&mut out, t.name, t.size, t.number, data);
            }
            out.push('\n');
            off += len;
        } else {
            let addr = match target {
                Target::X86_64 => bytes::get_u64(body, off),
                Target::I386 => bytes::get_u32(body, off).map(u64::from),
            };
            let addr = match addr {
                Ok(a) => a,
                Err(_) => {
                    let _ = writeln!(out, "<truncated address>");
                    break;
                }
            };
            let bytes_len = if is_port {
                u64::from(t.number) * 4
            } else {
                length
            };
            let _ = write!(out, "addr={addr:#x} size={bytes_len}");
            let region = msg.and_then(|m| {
                usize::try_from(bytes_len)
                    .ok()
                    .and_then(|l| m.find_ool(addr, l))
            });
            match region {
                Some(r) if !r.is_empty() => {
                    out.push(' ');
                    if is_port {
                        out.push('[');
                        for (i, c) in r.chunks_exact(4).take(MAX_ELEMENTS).enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            out.push_str(&port_name(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                        }
                        if t.number as usize > MAX_ELEMENTS {
                            out.push_str(", …");
                        }
                        out.push(']');
                    } else {
                        write_values(&mut out, t.name, t.size, t.number, r);
                    }
                }
                Some(_) => {}
                None if msg.is_some() && bytes_len > 0 => out.push_str(" <not attached>"),
                None => {}
            }
            out.push('\n');
            off += target.pointer_size() as usize;
        }
        off = off.div_ceil(align) * align;
    }
    out
}

/// Formats a message image.
pub fn format_message(buf: &[u8], target: Target) -> String {
    format_impl(buf, target, None)
}

/// Formats the message in a buffer, previewing out-of-line regions from its side table.
pub fn format_msgbuf(msg: &MsgBuf<'_>, target: Target) -> String {
    let b = msg.bytes();
    let n = (msg.msgh_size() as usize).min(b.len());
    format_impl(
        &b[..n.max(target.header_size() as usize).min(b.len())],
        target,
        Some(msg),
    )
}

/// Which way a traced message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Send,
    Receive,
}

/// A transport that calls `hook(direction, message bytes)` for every message sent (before
/// the send) and received (after a successful receive, or the header of a
/// `MACH_RCV_TOO_LARGE`).
pub struct Traced<T, F> {
    inner: T,
    hook: F,
}

impl<T, F> Traced<T, F>
where
    T: Transport,
    F: Fn(Direction, &[u8]),
{
    pub fn new(inner: T, hook: F) -> Self {
        Traced { inner, hook }
    }
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

/// A hook for [`Traced`] that formats each message and hands the text to `sink`.
pub fn printer(target: Target, sink: impl Fn(&str)) -> impl Fn(Direction, &[u8]) {
    move |d, b| {
        let mut s = String::from(match d {
            Direction::Send => "send ",
            Direction::Receive => "receive ",
        });
        s.push_str(&format_message(b, target));
        sink(&s)
    }
}

impl<T, F> Transport for Traced<T, F>
where
    T: Transport,
    F: Fn(Direction, &[u8]),
{
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
        if option & crate::wire::option::SEND_MSG != 0 {
            let b = msg.bytes();
            (self.hook)(Direction::Send, &b[..(send_size as usize).min(b.len())]);
        }
        let r = self
            .inner
            .mach_msg(msg, option, send_size, rcv_size, rcv_name, timeout, notify);
        let code = r.0 as u32;
        if option & crate::wire::option::RCV_MSG != 0
            && (code == mr::SUCCESS || code == mr::RCV_TOO_LARGE)
        {
            let hs = self.inner.target().header_size() as usize;
            let n = if code == mr::SUCCESS {
                msg.message().len()
            } else {
                hs.min(msg.bytes().len())
            };
            (self.hook)(Direction::Receive, &msg.bytes()[..n]);
        }
        r
    }
    fn get_reply_port(&self) -> PortName {
        self.inner.get_reply_port()
    }
    fn put_reply_port(&self, port: PortName) {
        self.inner.put_reply_port(port)
    }
    fn dealloc_reply_port(&self, port: PortName) {
        self.inner.dealloc_reply_port(port)
    }
    fn space(&self) -> SpaceId {
        self.inner.space()
    }
    fn target(&self) -> Target {
        self.inner.target()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::MsgBuilder;
    use proptest::prelude::*;

    const X: Target = Target::X86_64;

    #[test]
    fn formats_header_and_descriptors() {
        let m = MsgBuilder::new(X)
            .header(
                msgh_bits::COMPLEX | msgh_bits::make(tn::COPY_SEND, tn::MAKE_SEND_ONCE),
                PortName(0x103),
                PortName(0x205),
                21002,
            )
            .int64(-5)
            .int32(7)
            .chars(b"hello\n\"world\"\x01")
            .ports(tn::MOVE_SEND, &[PortName(9), PortName::NULL])
            .ool_bytes(100, 0xdead_0000, true)
            .finish();
        let s = format_message(&m, X);
        for needle in [
            "id=21002",
            "remote=COPY_SEND local=MAKE_SEND_ONCE COMPLEX",
            "remote_port=port#0x103 local_port=port#0x205",
            "INTEGER_64 size=64 number=1 inline: [-5]",
            "INTEGER_32 size=32 number=1 inline: [7]",
            r#"CHAR size=8 number=14 inline: "hello\n\"world\"\x01""#,
            "MOVE_SEND size=64 number=2 inline: [port#0x9, MACH_PORT_NULL]",
            "CHAR size=8 number=100 out-of-line longform dealloc: addr=0xdead0000 size=100",
        ] {
            assert!(s.contains(needle), "missing {needle:?} in\n{s}");
        }
        // Truncation and invalid bits are reported, not fatal.
        let mut bad = m.clone();
        bad[32 + 3] |= 0x01; // msgt_unused
        let s = format_message(&bad[..60], X);
        assert!(s.contains("<truncated"), "{s}");
        assert!(s.contains("<invalid unused=0x1>"), "{s}");
        assert!(format_message(&m[..10], X).contains("<truncated header"));
        let i386 = MsgBuilder::new(Target::I386)
            .header(
                msgh_bits::make(tn::COPY_SEND, 0),
                PortName(1),
                PortName::NULL,
                5,
            )
            .int32(3)
            .finish();
        assert!(
            format_message(&i386, Target::I386).contains("INTEGER_32 size=32 number=1 inline: [3]")
        );
    }

    #[test]
    fn msgbuf_preview_of_out_of_line_regions() {
        let data = b"out of line".to_vec();
        let mut b = MsgBuf::with_capacity(128);
        let a = b.attach_ool(&data);
        let m = MsgBuilder::new(X)
            .header(
                msgh_bits::make(tn::COPY_SEND, 0),
                PortName(1),
                PortName::NULL,
                5,
            )
            .ool_bytes(data.len() as u32, a, false)
            .ool_bytes(4, 0x1000, false)
            .finish();
        b.bytes_mut()[..m.len()].copy_from_slice(&m);
        let s = format_msgbuf(&b, X);
        assert!(s.contains("\"out of line\""), "{s}");
        assert!(s.contains("<not attached>"), "{s}");
    }

    #[cfg(feature = "std")]
    #[test]
    fn traced_transport_reports_both_directions() {
        use crate::ipc::Kernel;
        use crate::rights::RightKind;
        use crate::wire::option;
        use std::sync::Mutex;
        let k = Kernel::new();
        let t = k.new_task();
        let p = t.port_allocate(RightKind::Receive).unwrap();
        t.port_insert_right(p, p, tn::MAKE_SEND).unwrap();
        let log = Mutex::new(alloc::vec::Vec::new());
        let traced = Traced::new(
            &t,
            printer(X, |s| log.lock().unwrap().push(String::from(s))),
        );
        let m = MsgBuilder::new(X)
            .header(msgh_bits::make(tn::COPY_SEND, 0), p, PortName::NULL, 77)
            .int32(1)
            .finish();
        let mut b = MsgBuf::with_capacity(64);
        b.bytes_mut()[..m.len()].copy_from_slice(&m);
        let r = traced.mach_msg(
            &mut b,
            option::SEND_MSG | option::RCV_MSG,
            m.len() as u32,
            64,
            p,
            0,
            PortName::NULL,
        );
        assert_eq!(r, KernReturn::KERN_SUCCESS);
        drop(traced);
        let log = log.into_inner().unwrap();
        assert_eq!(log.len(), 2);
        assert!(log[0].starts_with("send ") && log[0].contains("remote=COPY_SEND"));
        assert!(
            log[1].starts_with("receive ") && log[1].contains("local=MOVE_SEND"),
            "{}",
            log[1]
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..300), size in any::<u32>()) {
            let mut d = data;
            if d.len() >= 8 {
                d[4..8].copy_from_slice(&(size % 400).to_le_bytes());
            }
            for t in Target::ALL {
                let _ = format_message(&d, t);
            }
        }
    }
}
