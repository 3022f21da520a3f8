//! Message-byte recording: GNU MIG's generated stubs compiled into shared libraries whose
//! `mach_msg` records what it is given and answers with a canned reply.
//!
//! * [`build_library`] compiles `User.c` or `Server.c` of a GNU MIG run, plus the
//!   [`RECORDER_C`] runtime (a `mach_msg` replacement and the `mig_*` hooks) and any extra
//!   C sources (e.g. a generated driver or server functions), into
//!   `target/oracle-out/harness-<hash>/lib.so` (cached by content).
//! * [`Library::open`] loads it with `dlopen(RTLD_NOW | RTLD_LOCAL)`; [`Library::symbol`]
//!   looks up a stub, and [`Library::recorder`] gives the recorder's controls.
//!
//! User and server stubs go into separate libraries: without a server prefix, the server
//! functions have the same names as the user stubs. Server libraries are compiled with
//! `-DMIG_EOPNOTSUPP=…` so GNU MIG's weak default server functions make them
//! self-contained. The recorder's state is thread-local, so tests may run in parallel.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{OracleError, Result};
use crate::oracle::{MigRun, Oracle};
use crate::util::{self, StableHasher};

const HARNESS_VERSION: &str = "mig-conformance harness v2";
const GCC_TIMEOUT: Duration = Duration::from_secs(300);

/// The value server libraries use for `MIG_EOPNOTSUPP` (GNU Hurd's `EOPNOTSUPP`,
/// `0x4000002d`), returned by GNU MIG's weak default server functions.
pub const DEFAULT_EOPNOTSUPP: i32 = 0x4000_002d;

/// `MACH_RCV_TIMED_OUT`: what the recorder's `mach_msg` returns for a receive when no
/// canned reply is set.
pub const MACH_RCV_TIMED_OUT: i32 = 0x1000_4003;

/// The C runtime linked into every harness library.
pub const RECORDER_C: &str = r#"/* mig-conformance recorder: a mach_msg that records and replays. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <mach/message.h>
#include <mach/mig_support.h>

#define MIGREC_MAX (1u << 20)

struct migrec_call {
	uint32_t option, send_size, rcv_size, rcv_name, timeout, notify;
};

struct migrec_counters {
	uint32_t mach_msg, get_reply_port, put_reply_port, dealloc_reply_port;
	uint32_t allocate, deallocate, strncpy, last_dealloc_port;
};

struct migrec_state {
	unsigned char *sent;
	size_t sent_len;
	unsigned char *reply;
	size_t reply_len;
	int have_reply;
	mach_msg_return_t send_result, rcv_result;
	mach_port_t reply_port;
	struct migrec_call call;
	struct migrec_counters n;
};

static __thread struct migrec_state *migrec_st;

static struct migrec_state *migrec(void)
{
	if (!migrec_st) {
		migrec_st = calloc(1, sizeof *migrec_st);
		if (!migrec_st)
			abort();
		migrec_st->sent = calloc(1, MIGREC_MAX);
		migrec_st->reply = calloc(1, MIGREC_MAX);
		if (!migrec_st->sent || !migrec_st->reply)
			abort();
		migrec_st->reply_port = 0x0000abcd;
	}
	return migrec_st;
}

void migrec_reset(void)
{
	struct migrec_state *s = migrec();
	s->sent_len = 0;
	s->reply_len = 0;
	s->have_reply = 0;
	s->send_result = MACH_MSG_SUCCESS;
	s->rcv_result = MACH_MSG_SUCCESS;
	s->reply_port = 0x0000abcd;
	memset(&s->call, 0, sizeof s->call);
	memset(&s->n, 0, sizeof s->n);
}

void migrec_set_reply(const void *bytes, size_t len)
{
	struct migrec_state *s = migrec();
	if (len > MIGREC_MAX)
		len = MIGREC_MAX;
	memcpy(s->reply, bytes, len);
	s->reply_len = len;
	s->have_reply = 1;
}

void migrec_clear_reply(void)
{
	migrec()->have_reply = 0;
}

void migrec_set_results(mach_msg_return_t send_result, mach_msg_return_t rcv_result)
{
	migrec()->send_result = send_result;
	migrec()->rcv_result = rcv_result;
}

void migrec_set_reply_port(mach_port_t port)
{
	migrec()->reply_port = port;
}

size_t migrec_sent(const unsigned char **bytes)
{
	*bytes = migrec()->sent;
	return migrec()->sent_len;
}

void migrec_last_call(struct migrec_call *out)
{
	*out = migrec()->call;
}

void migrec_get_counters(struct migrec_counters *out)
{
	*out = migrec()->n;
}

typedef mach_msg_return_t (*migrec_hook_t)(mach_msg_header_t *, mach_msg_option_t,
					     mach_msg_size_t, mach_msg_size_t);
static __thread migrec_hook_t migrec_hook;

/* Non-null: mach_msg calls `hook` instead of recording (e.g. a loopback to a demux). */
void migrec_set_hook(migrec_hook_t hook)
{
	migrec_hook = hook;
}

mach_msg_return_t mach_msg(mach_msg_header_t *msg, mach_msg_option_t option,
			   mach_msg_size_t send_size, mach_msg_size_t rcv_size,
			   mach_port_name_t rcv_name, mach_msg_timeout_t timeout,
			   mach_port_name_t notify)
{
	if (migrec_hook)
		return migrec_hook(msg, option, send_size, rcv_size);
	struct migrec_state *s = migrec();
	s->n.mach_msg++;
	s->call.option = (uint32_t) option;
	s->call.send_size = send_size;
	s->call.rcv_size = rcv_size;
	s->call.rcv_name = rcv_name;
	s->call.timeout = timeout;
	s->call.notify = notify;
	if (option & MACH_SEND_MSG) {
		size_t n = send_size < MIGREC_MAX ? send_size : MIGREC_MAX;
		memcpy(s->sent, msg, n);
		s->sent_len = n;
		if (s->send_result != MACH_MSG_SUCCESS)
			return s->send_result;
	}
	if (option & MACH_RCV_MSG) {
		if (!s->have_reply)
			return MACH_RCV_TIMED_OUT;
		if (s->reply_len > rcv_size)
			return MACH_RCV_TOO_LARGE;
		memcpy(msg, s->reply, s->reply_len);
		return s->rcv_result;
	}
	return MACH_MSG_SUCCESS;
}

mach_port_t mig_get_reply_port(void)
{
	migrec()->n.get_reply_port++;
	return migrec()->reply_port;
}

void mig_put_reply_port(mach_port_t port)
{
	(void) port;
	migrec()->n.put_reply_port++;
}

void mig_dealloc_reply_port(mach_port_t port)
{
	migrec()->n.dealloc_reply_port++;
	migrec()->n.last_dealloc_port = port;
}

void mig_allocate(vm_offset_t *addr, vm_size_t size)
{
	migrec()->n.allocate++;
	*addr = (vm_offset_t) calloc(1, size ? size : 1);
}

void mig_deallocate(vm_offset_t addr, vm_size_t size)
{
	/* Out-of-line addresses in canned messages are fake: never free them. */
	(void) addr;
	(void) size;
	migrec()->n.deallocate++;
}

/* As current glibc's: copies at most len - 1 bytes, pads the first len - 1 bytes with
   NULs, terminates a truncated string, and returns the number of bytes copied (the
   string length, at most len - 1). GNU MIG's stubs send `ret < N ? ret + 1 : ret`
   bytes for a variable c_string. (Old glibc returned the length plus one.) */
vm_size_t mig_strncpy(char *dst, const char *src, vm_size_t len)
{
	vm_size_t i, n;
	migrec()->n.strncpy++;
	if (len == 0)
		return 0;
	for (n = 0; n < len - 1 && src[n]; n++)
		dst[n] = src[n];
	for (i = n; i < len - 1; i++)
		dst[i] = '\0';
	if (n == len - 1)
		dst[n] = '\0';
	return n;
}
"#;

/// Which generated file a harness library holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StubSide {
    /// `User.c`: the client stubs.
    User,
    /// `Server.c`: the `_X…` stubs and the demux.
    Server,
}

/// What automatic (stack) variables start out as: GNU MIG's stubs leave some message bytes
/// unwritten (the upper halves of the 8-byte header port slots and of inline port names,
/// `…Pad` bytes), so they carry whatever was on the stack. Compiling with gcc's
/// `-ftrivial-auto-var-init` makes them deterministic; comparing a `Zero` and a `Pattern`
/// build reveals exactly which bytes GNU MIG defines (see [`undefined_bytes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AutoVarInit {
    /// `-ftrivial-auto-var-init=zero` (the default: deterministic recordings).
    #[default]
    Zero,
    /// `-ftrivial-auto-var-init=pattern` (gcc fills with `0xfe` bytes).
    Pattern,
    /// No flag: real stack garbage.
    Uninitialized,
}

/// The offsets at which two recordings of the same message differ (e.g. a
/// [`AutoVarInit::Zero`] and a [`AutoVarInit::Pattern`] build): the bytes GNU MIG leaves
/// undefined. A length difference counts the excess bytes as differing.
pub fn undefined_bytes(a: &[u8], b: &[u8]) -> Vec<usize> {
    (0..a.len().max(b.len()))
        .filter(|&i| a.get(i) != b.get(i))
        .collect()
}

/// Extra inputs for [`build_library`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Extra C sources compiled into the library: (file name, contents).
    pub extra_sources: Vec<(String, String)>,
    /// Extra compiler flags (e.g. `-DTypeCheck=0`).
    pub cflags: Vec<String>,
    /// `MIG_EOPNOTSUPP` for server libraries (`None`: [`DEFAULT_EOPNOTSUPP`]).
    pub eopnotsupp: Option<i32>,
    /// Initialisation of stack variables (and so of the bytes GNU MIG does not write).
    pub auto_var_init: AutoVarInit,
}

/// Compiles one side of `run` (which must have the `User.c`/`User.h` or `Server.c`
/// outputs) with the recorder into a shared library; returns its path. Cached.
pub fn build_library(
    oracle: &Oracle,
    run: &MigRun,
    side: StubSide,
    options: &BuildOptions,
) -> Result<PathBuf> {
    let (source, name) = match side {
        StubSide::User => (&run.user_c, "User.c"),
        StubSide::Server => (&run.server_c, "Server.c"),
    };
    let source = source.as_ref().ok_or_else(|| {
        OracleError::new(format!(
            "GNU MIG wrote no {name} for {} (exit {:?})",
            run.defs.display(),
            run.exit_code
        ))
    })?;
    let mut flags: Vec<String> = vec![
        "-std=gnu11".into(),
        "-O0".into(),
        "-g".into(),
        "-w".into(),
        "-fPIC".into(),
        "-shared".into(),
        "-Wl,-z,defs".into(),
        "-Wl,-Bsymbolic".into(),
    ];
    match options.auto_var_init {
        AutoVarInit::Zero => flags.push("-ftrivial-auto-var-init=zero".into()),
        AutoVarInit::Pattern => flags.push("-ftrivial-auto-var-init=pattern".into()),
        AutoVarInit::Uninitialized => {}
    }
    if side == StubSide::Server {
        let v = options.eopnotsupp.unwrap_or(DEFAULT_EOPNOTSUPP);
        flags.push(format!("-DMIG_EOPNOTSUPP={v}"));
    }
    flags.extend(options.cflags.iter().cloned());

    let mut h = StableHasher::new();
    h.str(HARNESS_VERSION)
        .str(oracle.identity())
        .str(RECORDER_C)
        .str(crate::layout::MIG_SUPPORT_SHIM)
        .item(&fs::read(source).map_err(|e| OracleError::io("cannot read", source, e))?);
    if let Some(header) = &run.header_h {
        h.item(&fs::read(header).map_err(|e| OracleError::io("cannot read", header, e))?);
    }
    for f in &flags {
        h.str(f);
    }
    for (n, c) in &options.extra_sources {
        h.str(n).str(c);
    }
    let dest = oracle.cache_dir().join(format!("harness-{}", h.hex()));
    let lib = dest.join("lib.so");
    if lib.is_file() {
        return Ok(lib);
    }
    fs::create_dir_all(oracle.cache_dir())
        .map_err(|e| OracleError::io("cannot create", oracle.cache_dir(), e))?;
    let scratch = util::scratch_dir(oracle.cache_dir(), "harness")?;
    let built = (|| -> Result<()> {
        let write = |n: &str, c: &[u8]| -> Result<PathBuf> {
            if n.contains('/') || n.starts_with('.') {
                return Err(OracleError::new(format!("bad extra source name {n:?}")));
            }
            let p = scratch.join(n);
            fs::write(&p, c).map_err(|e| OracleError::io("cannot write", &p, e))?;
            Ok(p)
        };
        let mut sources = vec![
            write(
                name,
                &fs::read(source).map_err(|e| OracleError::io("cannot read", source, e))?,
            )?,
            write("migrec.c", RECORDER_C.as_bytes())?,
        ];
        if let Some(header) = &run.header_h {
            let file = header
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("User.h");
            write(
                file,
                &fs::read(header).map_err(|e| OracleError::io("cannot read", header, e))?,
            )?;
        }
        for (n, c) in &options.extra_sources {
            sources.push(write(n, c.as_bytes())?);
        }
        let mut gcc = oracle.gcc()?;
        gcc.arg(format!("-I{}", scratch.display()))
            .args(&flags)
            .arg("-o")
            .arg(scratch.join("lib.so"))
            .args(&sources);
        util::run_checked(&mut gcc, GCC_TIMEOUT).map(|_| ())
    })();
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&scratch);
        return Err(e.context(format!(
            "building the {side:?} harness for {}",
            run.defs.display()
        )));
    }
    util::publish_dir(&scratch, &dest)?;
    Ok(lib)
}

extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *mut c_char;
}

const RTLD_NOW: c_int = 2;
const RTLD_LOCAL: c_int = 0;

fn last_dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl call.
    unsafe {
        let e = dlerror();
        if e.is_null() {
            "unknown dl error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// A loaded harness library. It is never unloaded (so symbols stay valid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    path: PathBuf,
    handle: usize,
}

impl Library {
    /// `dlopen`s `path` with `RTLD_NOW | RTLD_LOCAL`.
    pub fn open(path: &Path) -> Result<Library> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| OracleError::new(format!("path with NUL: {}", path.display())))?;
        // SAFETY: dlopen with a valid C string; the library only runs its (empty)
        // constructors. The handle is kept for the life of the process.
        let handle = unsafe { dlopen(c.as_ptr(), RTLD_NOW | RTLD_LOCAL) };
        if handle.is_null() {
            return Err(OracleError::new(format!(
                "dlopen {}: {}",
                path.display(),
                last_dl_error()
            )));
        }
        Ok(Library {
            path: path.to_path_buf(),
            handle: handle as usize,
        })
    }

    /// The library's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The address of symbol `name`.
    pub fn address(&self, name: &str) -> Result<*mut c_void> {
        let c = CString::new(name)
            .map_err(|_| OracleError::new(format!("symbol name with NUL: {name:?}")))?;
        // SAFETY: the handle came from a successful dlopen and is never closed.
        let p = unsafe { dlsym(self.handle as *mut c_void, c.as_ptr()) };
        if p.is_null() {
            return Err(OracleError::new(format!(
                "{}: no symbol {name}: {}",
                self.path.display(),
                last_dl_error()
            )));
        }
        Ok(p)
    }

    /// Symbol `name` as a function pointer of type `F`.
    ///
    /// # Safety
    ///
    /// `F` must be an `extern "C" fn` type matching the C declaration of `name` exactly.
    pub unsafe fn symbol<F: Copy>(&self, name: &str) -> Result<F> {
        assert_eq!(
            std::mem::size_of::<F>(),
            std::mem::size_of::<*mut c_void>(),
            "symbol type must be a function pointer"
        );
        let p = self.address(name)?;
        // SAFETY: the caller guarantees F is the matching function pointer type; sizes
        // are checked above.
        Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
    }

    /// The recorder controls of this library.
    pub fn recorder(&self) -> Result<Recorder> {
        // SAFETY: the signatures match RECORDER_C.
        unsafe {
            Ok(Recorder {
                reset: self.symbol("migrec_reset")?,
                set_reply: self.symbol("migrec_set_reply")?,
                clear_reply: self.symbol("migrec_clear_reply")?,
                set_results: self.symbol("migrec_set_results")?,
                set_reply_port: self.symbol("migrec_set_reply_port")?,
                sent: self.symbol("migrec_sent")?,
                last_call: self.symbol("migrec_last_call")?,
                counters: self.symbol("migrec_get_counters")?,
            })
        }
    }
}

/// The arguments of the last `mach_msg` call.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MachMsgCall {
    /// `option`
    pub option: u32,
    /// `send_size`
    pub send_size: u32,
    /// `rcv_size`
    pub rcv_size: u32,
    /// `rcv_name`
    pub rcv_name: u32,
    /// `timeout`
    pub timeout: u32,
    /// `notify`
    pub notify: u32,
}

/// How often the runtime hooks were called since the last reset.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// `mach_msg`
    pub mach_msg: u32,
    /// `mig_get_reply_port`
    pub get_reply_port: u32,
    /// `mig_put_reply_port`
    pub put_reply_port: u32,
    /// `mig_dealloc_reply_port`
    pub dealloc_reply_port: u32,
    /// `mig_allocate`
    pub allocate: u32,
    /// `mig_deallocate`
    pub deallocate: u32,
    /// `mig_strncpy`
    pub strncpy: u32,
    /// The argument of the last `mig_dealloc_reply_port`.
    pub last_dealloc_port: u32,
}

/// The recorder of one harness library (state is per thread).
#[derive(Debug, Clone, Copy)]
pub struct Recorder {
    reset: extern "C" fn(),
    set_reply: extern "C" fn(*const u8, usize),
    clear_reply: extern "C" fn(),
    set_results: extern "C" fn(i32, i32),
    set_reply_port: extern "C" fn(u32),
    sent: extern "C" fn(*mut *const u8) -> usize,
    last_call: extern "C" fn(*mut MachMsgCall),
    counters: extern "C" fn(*mut Counters),
}

impl Recorder {
    /// Clears the recorded message, the canned reply, results and counters; the reply
    /// port handed out by `mig_get_reply_port` becomes `0xabcd` again.
    pub fn reset(&self) {
        (self.reset)()
    }

    /// The bytes the next receiving `mach_msg` copies into the caller's buffer.
    pub fn set_reply(&self, bytes: &[u8]) {
        (self.set_reply)(bytes.as_ptr(), bytes.len())
    }

    /// No canned reply: a receive returns [`MACH_RCV_TIMED_OUT`].
    pub fn clear_reply(&self) {
        (self.clear_reply)()
    }

    /// What `mach_msg` returns after sending / after receiving.
    pub fn set_results(&self, send_result: i32, rcv_result: i32) {
        (self.set_results)(send_result, rcv_result)
    }

    /// The name `mig_get_reply_port` returns.
    pub fn set_reply_port(&self, port: u32) {
        (self.set_reply_port)(port)
    }

    /// The bytes of the last message sent (`send_size` bytes).
    pub fn sent(&self) -> Vec<u8> {
        let mut p: *const u8 = std::ptr::null();
        let n = (self.sent)(&mut p);
        if p.is_null() || n == 0 {
            return Vec::new();
        }
        // SAFETY: the recorder returns a pointer to n initialised bytes in its
        // thread-local buffer, valid until the next call on this thread.
        unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
    }

    /// The arguments of the last `mach_msg` call.
    pub fn last_call(&self) -> MachMsgCall {
        let mut c = MachMsgCall::default();
        (self.last_call)(&mut c);
        c
    }

    /// Hook call counts.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        (self.counters)(&mut c);
        c
    }
}

/// Simulates the kernel delivering an x86_64 typed message to its receiver, enough for
/// feeding a user stub's request to a server stub (or a server's reply to a user stub):
/// swaps the header's remote and local ports (names are kept: both sides share one name
/// space here), converts the header dispositions and the inline port descriptors' names to
/// their received forms (COPY_SEND/MAKE_SEND → PORT_SEND, MAKE_SEND_ONCE → PORT_SEND_ONCE;
/// MOVE_* unchanged) and normalises `msgt_deallocate` (clear for inline data, set for
/// out-of-line data). Out-of-line data and port arrays are not copied; their pointers are
/// passed through unchanged.
pub fn deliver_x86_64(msg: &[u8]) -> Result<Vec<u8>> {
    let mut m = msg.to_vec();
    if m.len() < 32 {
        return Err(OracleError::new("message shorter than mach_msg_header_t"));
    }
    let rd = |m: &[u8], at: usize| u32::from_le_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]);
    let wr = |m: &mut [u8], at: usize, v: u32| m[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let received = |name: u32| match name {
        19 | 20 => 17,
        21 => 18,
        n => n,
    };
    let bits = rd(&m, 0);
    let remote = received(bits & 0xff);
    let local = received((bits >> 8) & 0xff);
    wr(&mut m, 0, (bits & !0xffff) | local | (remote << 8));
    // Swap the 8-byte port slots at 8 and 16.
    let (a, b) = (m[8..16].to_vec(), m[16..24].to_vec());
    m[8..16].copy_from_slice(&b);
    m[16..24].copy_from_slice(&a);
    let size = (rd(&m, 4) as usize).min(m.len());
    let mut off = 32;
    while off + 8 <= size {
        let word = rd(&m, off);
        let number = rd(&m, off + 4) as u64;
        let name = word & 0xff;
        let bits_per = u64::from((word >> 8) & 0xffff);
        let inline = word & 0x2000_0000 != 0;
        let new_name = if (16..=21).contains(&name) && inline {
            received(name)
        } else {
            name
        };
        let mut new_word = (word & !0xff) | new_name;
        if inline {
            new_word &= !0x8000_0000;
        } else {
            new_word |= 0x8000_0000;
        }
        wr(&mut m, off, new_word);
        off += 8;
        off += if inline {
            ((number * bits_per).div_ceil(8)).div_ceil(8) as usize * 8
        } else {
            8
        };
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_swaps_ports_and_converts_names() {
        let mut m = vec![0u8; 48];
        m[0..4].copy_from_slice(&0x8000_1513u32.to_le_bytes());
        m[4..8].copy_from_slice(&48u32.to_le_bytes());
        m[8..12].copy_from_slice(&0x11u32.to_le_bytes());
        m[16..20].copy_from_slice(&0x22u32.to_le_bytes());
        // COPY_SEND x1 inline, size 64
        m[32..40].copy_from_slice(&0x0000_0001_2000_4013u64.to_le_bytes());
        let d = deliver_x86_64(&m).expect("deliver");
        assert_eq!(u32::from_le_bytes([d[0], d[1], d[2], d[3]]), 0x8000_1112);
        assert_eq!(d[8], 0x22);
        assert_eq!(d[16], 0x11);
        assert_eq!(d[32], 17);
    }
}
