//! What the generated conformance code calls: the test values, the canonical rendering of
//! received values, the test transport of the mig-rs clients, and the C runtime linked into
//! the GNU MIG libraries.

use std::cell::{Cell, RefCell};

use mig_runtime::msg::OolData;
use mig_runtime::{
    KernReturn, MsgBuf, OolBuffer, Poly, PortName, ReceiveRight, ReceivedRight, SendOnceRight,
    SendRight, SpaceId, Transport,
};

pub use crate::values::*;
use crate::wire::{self, Delivered};

// ---- tables ----------------------------------------------------------------------------

/// One routine of a generated subsystem.
#[derive(Debug)]
pub struct RtInfo {
    pub name: &'static str,
    pub number: u32,
    pub msg_id: i32,
    pub simple: bool,
    /// What the server returns in the error variant.
    pub error_code: u32,
    /// The request's `msgh_size` with every variable-size field empty (GNU MIG's minimum).
    pub req_min: u32,
    /// The request's variable-size fields, in order.
    pub req_vars: &'static [VarField],
}

/// A variable-size field of a request: where GNU MIG's server stub reads its count, and how
/// it turns the count into a size (`eb · msgt_number`, rounded up to 8, in 32-bit unsigned
/// arithmetic).
#[derive(Debug, Clone, Copy)]
pub struct VarField {
    /// Offset of the descriptor with every preceding variable-size field empty.
    pub desc: u32,
    /// Wire bytes per descriptor element (`msgt_size / 8`; inline ports: 8).
    pub eb: u32,
    /// An array of ports (GNU MIG's stub converts inline ones in place, element by element).
    pub port: bool,
    /// Inline or out-of-line (`msgt_inline` decides); out-of-line takes a pointer's room.
    pub indefinite: bool,
}

/// One generated subsystem (a `.defs` file with cpp defines).
#[derive(Debug)]
pub struct SubInfo {
    /// Relative to the oracle's include directory.
    pub file: &'static str,
    pub defines: &'static [&'static str],
    pub subsystem: &'static str,
    pub demux: &'static str,
    /// mig-rs's `MAX_REPLY_SIZE`.
    pub max_reply: usize,
    /// The C driver of GNU MIG's client stubs.
    pub c_client: &'static str,
    /// The C server functions.
    pub c_server: &'static str,
    pub routines: &'static [RtInfo],
}

/// A generated subsystem and its Rust entry points.
pub struct SubEntry {
    pub info: &'static SubInfo,
    /// Calls routine `ri` with the values of variant `v` through the mig-rs client; renders
    /// what it decoded.
    pub client: fn(usize, usize, &TestTransport<'_>) -> String,
    /// Runs the mig-rs demux with the server of variant `v`; returns its result and what
    /// the server received.
    pub demux: fn(usize, &mut MsgBuf<'_>, &mut MsgBuf<'_>) -> (bool, String),
    /// What a server must receive for (routine, variant).
    pub expect_server: fn(usize, usize) -> String,
    /// What a client must decode for (routine, variant).
    pub expect_client: fn(usize, usize) -> String,
}

/// A `.defs` file mig-rs could not generate.
#[derive(Debug)]
pub struct GenFailure {
    pub file: &'static str,
    pub defines: &'static [&'static str],
    pub message: &'static str,
}

// ---- canonical rendering ---------------------------------------------------------------

/// The canonical rendering of values, shared with the C side (`conf_rec_*`): `name=<hex of
/// the little-endian bytes>;`, `name[<count>]=<hex>;` for arrays, `name="<hex>";` for
/// strings, `@routine;` when a server function starts.
#[derive(Default, Debug)]
pub struct Rec(pub String);

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Turns rendering off (or on again) on this thread: the servers then record nothing, as
/// `conf_set_quiet` does for the C side (the differential test only compares replies).
pub fn set_quiet(quiet: bool) {
    QUIET.with(|q| q.set(quiet));
}

fn quiet() -> bool {
    QUIET.with(|q| q.get())
}

impl Rec {
    fn hex(&mut self, b: &[u8]) {
        if quiet() {
            return;
        }
        const D: &[u8; 16] = b"0123456789abcdef";
        self.0.reserve(b.len() * 2);
        for x in b {
            self.0.push(D[(x >> 4) as usize] as char);
            self.0.push(D[(x & 15) as usize] as char);
        }
    }
    pub fn note(&mut self, s: &str) {
        if quiet() {
            return;
        }
        self.0.push_str(s);
        self.0.push(';');
    }
    pub fn u(&mut self, name: &str, b: &[u8]) {
        if quiet() {
            return;
        }
        self.0.push_str(name);
        self.0.push('=');
        self.hex(b);
        self.0.push(';');
    }
    /// The low `bytes` bytes of `v`.
    pub fn un(&mut self, name: &str, bytes: usize, v: u64) {
        self.u(name, &v.to_le_bytes()[..bytes]);
    }
    pub fn u4(&mut self, name: &str, v: u64) {
        self.un(name, 4, v);
    }
    pub fn kr(&mut self, code: u32) {
        self.u("kr", &code.to_le_bytes());
    }
    pub fn arr(&mut self, name: &str, count: u64, b: &[u8]) {
        if quiet() {
            return;
        }
        self.0.push_str(name);
        self.0.push('[');
        self.0.push_str(&count.to_string());
        self.0.push_str("]=");
        self.hex(b);
        self.0.push(';');
    }
    pub fn s(&mut self, name: &str, b: &[u8]) {
        if quiet() {
            return;
        }
        self.0.push_str(name);
        self.0.push_str("=\"");
        self.hex(b);
        self.0.push_str("\";");
    }
}

/// A received value rendered canonically.
pub trait Canon {
    fn canon(self, r: &mut Rec, name: &str);
}

/// Renders `v` as `name`.
pub fn canon<T: Canon>(r: &mut Rec, name: &str, v: T) {
    v.canon(r, name)
}

/// An array element: its bytes as a GNU MIG C array holds them (ports as 4-byte names).
pub trait ElemBytes {
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl ElemBytes for $t {
            fn put(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()); }
        }
        impl Canon for $t {
            fn canon(self, r: &mut Rec, name: &str) { r.u(name, &self.to_le_bytes()); }
        }
        impl FromMix for $t {
            fn from_mix(x: u64) -> Self { x as $t }
        }
    )*};
}
ints!(u8, u16, u32, u64, i8, i16, i32, i64);

macro_rules! rights {
    ($($t:ty),*) => {$(
        impl ElemBytes for $t {
            fn put(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.into_raw().0.to_le_bytes()); }
        }
        impl Canon for $t {
            fn canon(self, r: &mut Rec, name: &str) { r.u(name, &self.into_raw().0.to_le_bytes()); }
        }
    )*};
}
rights!(SendRight, SendOnceRight, ReceiveRight);

impl ElemBytes for PortName {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
    }
}
impl Canon for PortName {
    fn canon(self, r: &mut Rec, name: &str) {
        r.u(name, &self.0.to_le_bytes());
    }
}
impl ElemBytes for ReceivedRight {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.into_raw().0 .0.to_le_bytes());
    }
}
impl Canon for ReceivedRight {
    fn canon(self, r: &mut Rec, name: &str) {
        let (n, t) = self.into_raw();
        r.u(name, &n.0.to_le_bytes());
        r.u(&format!("{name}Poly"), &t.to_le_bytes());
    }
}
impl<T: ElemBytes, const N: usize> ElemBytes for [T; N] {
    fn put(self, out: &mut Vec<u8>) {
        for x in self {
            x.put(out);
        }
    }
}
impl<T: ElemBytes, const N: usize> Canon for [T; N] {
    fn canon(self, r: &mut Rec, name: &str) {
        let mut b = Vec::new();
        self.put(&mut b);
        r.arr(name, N as u64, &b);
    }
}
impl<T: ElemBytes> Canon for Vec<T> {
    fn canon(self, r: &mut Rec, name: &str) {
        let n = self.len() as u64;
        let mut b = Vec::new();
        for x in self {
            x.put(&mut b);
        }
        r.arr(name, n, &b);
    }
}
impl<T: ElemBytes + Copy> Canon for &[T] {
    fn canon(self, r: &mut Rec, name: &str) {
        let mut b = Vec::new();
        for x in self {
            x.put(&mut b);
        }
        r.arr(name, self.len() as u64, &b);
    }
}
impl Canon for OolBuffer {
    fn canon(self, r: &mut Rec, name: &str) {
        r.arr(name, self.len() as u64, &self);
    }
}
impl Canon for OolData<'_> {
    fn canon(self, r: &mut Rec, name: &str) {
        let b = self.bytes();
        r.arr(name, b.len() as u64, b);
    }
}

// ---- values ----------------------------------------------------------------------------

/// An integer cut from a [`mix`] value.
pub trait FromMix {
    fn from_mix(x: u64) -> Self;
}

/// `n` generated integers.
pub fn gv<T: FromMix>(seed: u64, n: u64) -> Vec<T> {
    (0..n).map(|i| T::from_mix(mix(seed, i))).collect()
}

/// `n` generated groups of `G` integers (element `j·G + k` of the stream).
pub fn gg<T: FromMix + Copy + Default, const G: usize>(seed: u64, n: u64) -> Vec<[T; G]> {
    (0..n)
        .map(|j| {
            let mut g = [T::default(); G];
            for (k, x) in g.iter_mut().enumerate() {
                *x = T::from_mix(mix(seed, j * G as u64 + k as u64));
            }
            g
        })
        .collect()
}

/// A generated fixed array.
pub fn ga<T: FromMix + Copy + Default, const N: usize>(seed: u64) -> [T; N] {
    let mut a = [T::default(); N];
    for (i, x) in a.iter_mut().enumerate() {
        *x = T::from_mix(mix(seed, i as u64));
    }
    a
}

/// A generated string of `len` letters.
pub fn gs(seed: u64, len: u64) -> Vec<u8> {
    (0..len).map(|i| str_byte(seed, i)).collect()
}

/// `n` generated port names.
pub fn gp(seed: u64, n: u64) -> Vec<PortName> {
    (0..n).map(|i| PortName(port_name(seed, i))).collect()
}

/// The bytes of `count` generated integers of `eb` bytes each.
pub fn gbytes(seed: u64, count: u64, eb: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity((count * eb) as usize);
    for i in 0..count {
        b.extend_from_slice(&mix(seed, i).to_le_bytes()[..eb as usize]);
    }
    b
}

/// The bytes of `n` generated port names.
pub fn gpbytes(seed: u64, n: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(n as usize * 4);
    for i in 0..n {
        b.extend_from_slice(&port_name(seed, i).to_le_bytes());
    }
    b
}

const SP: SpaceId = SpaceId(0);

pub fn pn(x: u64) -> PortName {
    PortName(x as u32)
}
pub fn sr(x: u64) -> SendRight {
    SendRight::from_raw(SP, pn(x))
}
pub fn so(x: u64) -> SendOnceRight {
    SendOnceRight::from_raw(SP, pn(x))
}
pub fn rr(x: u64) -> ReceiveRight {
    ReceiveRight::from_raw(SP, pn(x))
}

/// Rights lent for `'static` to `Poly::CopySend`/`MakeSend`/`MakeSendOnce`: one per name,
/// kept for the life of the process (reachable, so leak checkers stay quiet).
static KEPT_SEND: std::sync::Mutex<std::collections::BTreeMap<u64, &'static SendRight>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
static KEPT_RECEIVE: std::sync::Mutex<std::collections::BTreeMap<u64, &'static ReceiveRight>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn kept_send(x: u64) -> &'static SendRight {
    let mut m = KEPT_SEND.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(x).or_insert_with(|| Box::leak(Box::new(sr(x))))
}

fn kept_receive(x: u64) -> &'static ReceiveRight {
    let mut m = KEPT_RECEIVE.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(x).or_insert_with(|| Box::leak(Box::new(rr(x))))
}

/// A polymorphic right with disposition `d` (the typed variant where there is one).
pub fn poly(x: u64, d: u64) -> Poly<'static> {
    match d as u32 {
        17 => Poly::MoveSend(sr(x)),
        18 => Poly::MoveSendOnce(so(x)),
        16 => Poly::MoveReceive(rr(x)),
        19 => Poly::CopySend(kept_send(x)),
        20 => Poly::MakeSend(kept_receive(x)),
        21 => Poly::MakeSendOnce(kept_receive(x)),
        d => Poly::Raw(pn(x), d),
    }
}

/// Out-of-line bytes the sender gives away (`owned`) or keeps.
pub fn ool_maybe(v: Vec<u8>, owned: bool) -> OolData<'static> {
    if owned {
        OolData::Owned(OolBuffer::from_vec(v))
    } else {
        OolData::Borrowed(Box::leak(v.into_boxed_slice()))
    }
}

// ---- the test transport ----------------------------------------------------------------

/// What a mig-rs client sent.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    pub bytes: Vec<u8>,
    /// Out-of-line regions, in descriptor order.
    pub regions: Vec<Vec<u8>>,
    /// `option, send_size, rcv_size, rcv_name, timeout, notify`.
    pub call: [u32; 6],
}

/// Answers a request (sent form and regions) with a delivered reply, or none.
pub type Handler<'h> = dyn Fn(&[u8], &[Vec<u8>]) -> Result<Option<Delivered>, String> + 'h;

/// A [`Transport`] recording the request and answering through a handler (e.g. GNU MIG's
/// C demux); `mig_get_reply_port` gives [`REPLY_PORT`], as the C recorder does.
pub struct TestTransport<'h> {
    pub handler: &'h Handler<'h>,
    pub sent: RefCell<Option<Sent>>,
    pub error: RefCell<Option<String>>,
    /// `mig_get_reply_port`, `mig_put_reply_port`, `mig_dealloc_reply_port` calls.
    pub counters: Cell<[u32; 3]>,
}

impl<'h> TestTransport<'h> {
    pub fn new(handler: &'h Handler<'h>) -> Self {
        TestTransport {
            handler,
            sent: RefCell::new(None),
            error: RefCell::new(None),
            counters: Cell::new([0; 3]),
        }
    }
    fn count(&self, i: usize) {
        let mut c = self.counters.get();
        c[i] += 1;
        self.counters.set(c);
    }
}

impl Transport for TestTransport<'_> {
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
        const SEND: u32 = mig_runtime::wire::option::SEND_MSG;
        const RCV: u32 = mig_runtime::wire::option::RCV_MSG;
        let mut reply = None;
        if option & SEND != 0 {
            let n = (send_size as usize).min(msg.capacity());
            let bytes = msg.bytes()[..n].to_vec();
            let mut regions = Vec::new();
            match wire::ool_fields(&bytes) {
                Ok(fields) => {
                    for f in fields {
                        match msg.find_ool(f.addr, f.len) {
                            Some(b) => regions.push(b.to_vec()),
                            None => {
                                *self.error.borrow_mut() = Some(format!(
                                    "the request names out-of-line memory at {:#x} ({} bytes) that is not attached to the MsgBuf",
                                    f.addr, f.len
                                ));
                                return KernReturn(
                                    mig_runtime::wire::msg_return::SEND_INVALID_MEMORY as i32,
                                );
                            }
                        }
                    }
                }
                Err(e) => {
                    *self.error.borrow_mut() = Some(format!("unparsable request: {e}"));
                    return KernReturn(mig_runtime::wire::msg_return::SEND_INVALID_DATA as i32);
                }
            }
            // The kernel has copied (or moved) everything.
            msg.clear_ool();
            match (self.handler)(&bytes, &regions) {
                Ok(r) => reply = r,
                Err(e) => *self.error.borrow_mut() = Some(e),
            }
            *self.sent.borrow_mut() = Some(Sent {
                bytes,
                regions,
                call: [option, send_size, rcv_size, rcv_name.0, timeout, notify.0],
            });
        }
        if option & RCV != 0 {
            let Some(d) = reply else {
                return KernReturn(mig_runtime::wire::msg_return::RCV_TIMED_OUT as i32);
            };
            if d.bytes.len() > rcv_size as usize || d.bytes.len() > msg.capacity() {
                return KernReturn(mig_runtime::wire::msg_return::RCV_TOO_LARGE as i32);
            }
            wire::into_msgbuf(&d, msg);
        }
        KernReturn(0)
    }

    fn get_reply_port(&self) -> PortName {
        self.count(0);
        PortName(REPLY_PORT)
    }
    fn put_reply_port(&self, _port: PortName) {
        self.count(1);
    }
    fn dealloc_reply_port(&self, _port: PortName) {
        self.count(2);
    }
    fn space(&self) -> SpaceId {
        SP
    }
}

// ---- the C runtime ---------------------------------------------------------------------

/// Declarations for the generated C (replaces its `#include "conf_rt.h"`).
pub const CONF_RT_H: &str = r#"
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <mach/message.h>
#include <mach/kern_return.h>
/* The address of the data of `x`, an object of type T (struct or array) or a pointer
   (an array parameter): both branches type-check for any lvalue. */
#define CONF_PTR(x, T) __builtin_choose_expr(__builtin_types_compatible_p(__typeof__(x), T), \
	(const void *) &(x), *(const void * const *) &(x))
#define CONF_MPTR(x, T) __builtin_choose_expr(__builtin_types_compatible_p(__typeof__(x), T), \
	(void *) &(x), *(void * const *) &(x))
void conf_rec_u(const char *name, uint64_t v, int bytes);
void conf_rec_arr(const char *name, const void *p, uint64_t count, size_t nbytes);
void conf_rec_str(const char *name, const char *s, size_t max);
void conf_rec_note(const char *s);
void conf_fill(void *dst, uint64_t seed, uint64_t count, int eb);
void conf_fill_str(char *dst, uint64_t seed, uint64_t len);
void conf_fill_ports(mach_port_t *dst, uint64_t seed, uint64_t n);
void *conf_alloc(size_t n);
int conf_variant(void);
"#;

/// The C runtime: rendering (as [`Rec`]), value generation (as [`mix`]), an arena whose
/// blocks stay valid until reset (out-of-line data is read after the stubs return), and
/// the variant of the server functions. All state is per thread.
pub const CONF_RT_C: &str = r#"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mach/message.h>

static __thread char *rec_buf;
static __thread size_t rec_len, rec_cap;
static __thread int conf_v;
/* Set: the conf_rec_* functions record nothing and read nothing (the differential test
   feeds hostile requests, whose counts and pointers the server functions must not follow). */
static __thread int conf_quiet;

void conf_set_quiet(int q) { conf_quiet = q; }

struct conf_blk { unsigned char *p; size_t n; };
static __thread struct conf_blk *blks;
static __thread size_t nblk, capblk;

static void rec_put(const char *s, size_t n)
{
	if (rec_len + n + 1 > rec_cap) {
		size_t c = rec_cap ? rec_cap : 4096;
		while (c < rec_len + n + 1)
			c *= 2;
		rec_buf = realloc(rec_buf, c);
		if (!rec_buf)
			abort();
		rec_cap = c;
	}
	memcpy(rec_buf + rec_len, s, n);
	rec_len += n;
	rec_buf[rec_len] = 0;
}

static void rec_puts(const char *s) { rec_put(s, strlen(s)); }

static void rec_hex(const void *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	const unsigned char *b = p;
	char t[2];
	size_t i;
	for (i = 0; i < n; i++) {
		t[0] = d[b[i] >> 4];
		t[1] = d[b[i] & 15];
		rec_put(t, 2);
	}
}

void conf_rec_reset(void) { rec_len = 0; if (rec_buf) rec_buf[0] = 0; }
const char *conf_rec_get(size_t *len) { *len = rec_len; return rec_buf ? rec_buf : ""; }

void conf_rec_note(const char *s) { if (conf_quiet) return; rec_puts(s); rec_put(";", 1); }

void conf_rec_u(const char *name, uint64_t v, int bytes)
{
	if (conf_quiet)
		return;
	unsigned char b[8];
	int i;
	for (i = 0; i < 8; i++)
		b[i] = (unsigned char) (v >> (8 * i));
	rec_puts(name);
	rec_put("=", 1);
	rec_hex(b, bytes);
	rec_put(";", 1);
}

void conf_rec_arr(const char *name, const void *p, uint64_t count, size_t nbytes)
{
	if (conf_quiet)
		return;
	char t[32];
	rec_puts(name);
	snprintf(t, sizeof t, "[%llu]=", (unsigned long long) count);
	rec_puts(t);
	if (p || !nbytes)
		rec_hex(p, nbytes);
	else
		rec_puts("NULL");
	rec_put(";", 1);
}

void conf_rec_str(const char *name, const char *s, size_t max)
{
	if (conf_quiet)
		return;
	rec_puts(name);
	rec_put("=\"", 2);
	if (s)
		rec_hex(s, strnlen(s, max));
	else
		rec_puts("NULL");
	rec_put("\";", 2);
}

static uint64_t conf_mix(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void conf_fill(void *dst, uint64_t seed, uint64_t count, int eb)
{
	unsigned char *d = dst;
	uint64_t i;
	int j;
	for (i = 0; i < count; i++) {
		uint64_t x = conf_mix(seed, i);
		for (j = 0; j < eb; j++)
			d[i * eb + j] = (unsigned char) (x >> (8 * j));
	}
}

void conf_fill_str(char *dst, uint64_t seed, uint64_t len)
{
	uint64_t i;
	for (i = 0; i < len; i++)
		dst[i] = (char) ('a' + conf_mix(seed, i) % 26);
	dst[len] = 0;
}

void conf_fill_ports(mach_port_t *dst, uint64_t seed, uint64_t n)
{
	uint64_t i;
	for (i = 0; i < n; i++)
		dst[i] = (mach_port_t) (0x2000 + (conf_mix(seed, i) & 0x1fff));
}

void *conf_alloc(size_t n)
{
	unsigned char *p = calloc(1, n ? n : 1);
	if (!p)
		abort();
	if (nblk == capblk) {
		capblk = capblk ? 2 * capblk : 64;
		blks = realloc(blks, capblk * sizeof *blks);
		if (!blks)
			abort();
	}
	blks[nblk].p = p;
	blks[nblk].n = n ? n : 1;
	nblk++;
	return p;
}

void conf_arena_reset(void)
{
	size_t i;
	for (i = 0; i < nblk; i++)
		free(blks[i].p);
	nblk = 0;
}

int conf_arena_contains(uintptr_t a, size_t n)
{
	size_t i;
	for (i = 0; i < nblk; i++) {
		uintptr_t p = (uintptr_t) blks[i].p;
		if (a >= p && a + n >= a && a + n <= p + blks[i].n)
			return 1;
	}
	return 0;
}

void conf_set_variant(int v) { conf_v = v; }
int conf_variant(void) { return conf_v; }
"#;
