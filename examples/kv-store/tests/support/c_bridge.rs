//! GNU MIG's C client for `kv.defs`, linked against the Rust runtime.
//!
//! [`CClient::build`] runs the oracle's GNU MIG (Debian 13's `mig-x86-64-gnu`) on `kv.defs`
//! and compiles its `User.c` with a small C shim into a shared library under `target/`
//! (nothing generated is ever committed). The shim defines the symbols GNU MIG's stubs call —
//! `mach_msg`, `mig_get_reply_port`, `mig_put_reply_port`, `mig_dealloc_reply_port`,
//! `mig_strncpy` — and forwards the first four to Rust `extern "C"` functions, which call the
//! calling thread's [`Task`] of the userspace IPC. Out-of-line memory is translated: regions
//! a C request points to are attached to the message for the transport, and regions a reply
//! brings are handed to C as plain heap memory (freed by [`free_ool`], the `vm_deallocate`
//! of this world).

#![allow(dead_code)]

use mig_conformance::harness::Library;
use mig_conformance::oracle::Outputs;
use mig_conformance::Oracle;
use mig_runtime::ipc::Task;
use mig_runtime::wire::{msg_return, msgh_bits, option, Target, TypeDesc};
use mig_runtime::{stub, MsgBuf, PortName, Transport};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;

/// C types GNU MIG's output expects from the `.defs` author (normally from an `import`ed
/// header); given with `gcc -include`.
const KV_C_TYPES: &str = "\
#include <stdint.h>
typedef char *kv_name_t;
typedef const char *const_kv_name_t;
typedef char *kv_value_t;
typedef char *kv_blob_t;
typedef uint32_t kv_version_t;
typedef uint32_t kv_count_t;
";

/// The shim: the Mach and MIG runtime entry points, forwarding to Rust.
const BRIDGE_C: &str = r#"/* kv-store example: GNU MIG's runtime calls, forwarded to Rust. */
#include <stdint.h>
#include <mach/message.h>
#include <mach/mig_support.h>

typedef int (*kvb_msg_fn)(void *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
typedef uint32_t (*kvb_get_fn)(void);
typedef void (*kvb_port_fn)(uint32_t);

static kvb_msg_fn kvb_msg;
static kvb_get_fn kvb_get;
static kvb_port_fn kvb_put, kvb_dealloc;

void kvbridge_install(kvb_msg_fn m, kvb_get_fn g, kvb_port_fn p, kvb_port_fn d)
{
	kvb_msg = m;
	kvb_get = g;
	kvb_put = p;
	kvb_dealloc = d;
}

mach_msg_return_t mach_msg(mach_msg_header_t *msg, mach_msg_option_t option,
			   mach_msg_size_t send_size, mach_msg_size_t rcv_size,
			   mach_port_name_t rcv_name, mach_msg_timeout_t timeout,
			   mach_port_name_t notify)
{
	return kvb_msg(msg, option, send_size, rcv_size, rcv_name, timeout, notify);
}

mach_port_t mig_get_reply_port(void) { return kvb_get(); }
void mig_put_reply_port(mach_port_t port) { kvb_put(port); }
void mig_dealloc_reply_port(mach_port_t port) { kvb_dealloc(port); }

vm_size_t mig_strncpy(char *dst, const char *src, vm_size_t len)
{
	vm_size_t i;
	if (len == 0)
		return 0;
	for (i = 1; i < len; i++)
		if (!(*dst++ = *src++))
			return i;
	*dst = '\0';
	return i;
}
"#;

thread_local! {
    /// The task the calling thread's C stubs run in.
    static TASK: RefCell<Option<Task>> = const { RefCell::new(None) };
    /// Out-of-line regions handed to C, by address.
    static OOL: RefCell<HashMap<usize, Box<[u8]>>> = RefCell::new(HashMap::new());
}

const T: Target = Target::X86_64;

/// Calls `f(addr, len, desc_data_offset)` for every out-of-line descriptor of the message.
fn each_ool(bytes: &[u8], size: usize, mut f: impl FnMut(u64, usize, usize)) {
    let size = size.min(bytes.len());
    if stub::msgh_bits(bytes) & msgh_bits::COMPLEX == 0 {
        return;
    }
    let mut off = T.header_size() as usize;
    while off < size {
        let Ok(d) = TypeDesc::decode(T, &bytes[..size], off) else {
            return;
        };
        let data = stub::align(T, off + d.wire_size);
        let len = (u64::from(d.desc.size) * u64::from(d.desc.number)).div_ceil(8) as usize;
        if d.desc.inline {
            off = stub::align(T, data + len);
        } else {
            f(stub::rd_u64(bytes, data), len, data);
            off = stub::align(T, data + 8);
        }
    }
}

extern "C" fn rs_mach_msg(
    msg: *mut c_void,
    opt: u32,
    send_size: u32,
    rcv_size: u32,
    rcv_name: u32,
    timeout: u32,
    notify: u32,
) -> i32 {
    let Some(task) = TASK.with(|t| t.borrow().clone()) else {
        return msg_return::SEND_INVALID_DEST as i32;
    };
    let len = send_size.max(rcv_size) as usize;
    // SAFETY: GNU MIG's stubs pass a buffer of at least max(send_size, rcv_size) bytes
    // (their Request/Reply union) that nothing else touches during the call.
    let buf = unsafe { std::slice::from_raw_parts_mut(msg.cast::<u8>(), len) };
    let mut sent_regions: Vec<(u64, usize)> = Vec::new();
    if opt & option::SEND_MSG != 0 {
        each_ool(buf, send_size as usize, |addr, n, _| {
            if addr != 0 && n != 0 {
                sent_regions.push((addr, n));
            }
        });
    }
    let mut m = MsgBuf::new(buf);
    for (addr, n) in sent_regions {
        // SAFETY: the C caller's out-of-line data stays valid for the call.
        let data = unsafe { std::slice::from_raw_parts(addr as usize as *const u8, n) };
        m.attach_ool(data);
    }
    let r = task.mach_msg(
        &mut m,
        opt,
        send_size,
        rcv_size,
        PortName(rcv_name),
        timeout,
        PortName(notify),
    );
    if r.0 == 0 && opt & option::RCV_MSG != 0 {
        // Hand every received region to C as plain memory at the address the message says.
        let size = m.msgh_size() as usize;
        let mut fix: Vec<(usize, u64, usize)> = Vec::new();
        each_ool(m.bytes(), size, |addr, n, at| fix.push((at, addr, n)));
        for (at, addr, n) in fix {
            let region = m
                .take_ool(addr, n)
                .map(|b| b.into_vec())
                .unwrap_or_default();
            let boxed = region.into_boxed_slice();
            let new = if boxed.is_empty() {
                0
            } else {
                boxed.as_ptr() as usize
            };
            if new != 0 {
                OOL.with(|o| o.borrow_mut().insert(new, boxed));
            }
            stub::wr_u64(m.bytes_mut(), at, new as u64);
        }
    }
    r.0
}

extern "C" fn rs_get_reply_port() -> u32 {
    TASK.with(|t| t.borrow().as_ref().map_or(0, |t| t.get_reply_port().0))
}

extern "C" fn rs_put_reply_port(port: u32) {
    TASK.with(|t| {
        if let Some(t) = t.borrow().as_ref() {
            t.put_reply_port(PortName(port));
        }
    })
}

extern "C" fn rs_dealloc_reply_port(port: u32) {
    TASK.with(|t| {
        if let Some(t) = t.borrow().as_ref() {
            t.dealloc_reply_port(PortName(port));
        }
    })
}

/// Releases a region a C stub received (what `vm_deallocate` would do).
pub fn free_ool(addr: *const c_char) -> bool {
    OOL.with(|o| o.borrow_mut().remove(&(addr as usize)).is_some())
}

/// Number of received regions not yet freed.
pub fn live_ool() -> usize {
    OOL.with(|o| o.borrow().len())
}

type KernReturnT = i32;

/// GNU MIG's client stubs for `kv.defs` (signatures of its `User.h`).
pub struct CClient {
    pub kv_open: unsafe extern "C" fn(u32, *const c_char, *mut u32) -> KernReturnT,
    pub kv_put:
        unsafe extern "C" fn(u32, *const c_char, *const c_char, u32, *mut u32) -> KernReturnT,
    pub kv_get:
        unsafe extern "C" fn(u32, *const c_char, *mut c_char, *mut u32, *mut u32) -> KernReturnT,
    pub kv_dump: unsafe extern "C" fn(u32, *mut *mut c_char, *mut u32) -> KernReturnT,
    pub kv_load: unsafe extern "C" fn(u32, *const c_char, u32, *mut u32) -> KernReturnT,
    pub kv_clear: unsafe extern "C" fn(u32) -> KernReturnT,
    pub library: PathBuf,
}

/// A function of the library.
///
/// # Safety
///
/// `F` must be the `extern "C" fn` type of the C declaration of `name`.
unsafe fn sym<F: Copy>(l: &Library, name: &str) -> Result<F, String> {
    // SAFETY: forwarded to the caller.
    unsafe { l.symbol(name) }.map_err(|e| e.message().to_string())
}

type InstallFn = unsafe extern "C" fn(
    extern "C" fn(*mut c_void, u32, u32, u32, u32, u32, u32) -> i32,
    extern "C" fn() -> u32,
    extern "C" fn(u32),
    extern "C" fn(u32),
);

impl CClient {
    /// Generates (GNU MIG) and compiles (gcc) the C client of `defs` into `out_dir`.
    pub fn build(oracle: &Oracle, defs: &Path, out_dir: &Path) -> Result<CClient, String> {
        let outputs = Outputs {
            list: false,
            server: false,
            user: true,
            header: true,
            sheader: false,
        };
        let run = oracle
            .run(defs, &[], outputs)
            .map_err(|e| format!("GNU MIG: {}", e.message()))?;
        let user_c = run
            .user_c
            .clone()
            .ok_or_else(|| format!("GNU MIG wrote no User.c:\n{}", run.stderr))?;
        let header = run.header_h.clone().ok_or("GNU MIG wrote no User.h")?;
        std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
        let write = |name: &str, text: &[u8]| -> Result<PathBuf, String> {
            let p = out_dir.join(name);
            std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(p)
        };
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let user = write("User.c", &read(&user_c)?)?;
        write("User.h", &read(&header)?)?;
        let types = write("kv_c_types.h", KV_C_TYPES.as_bytes())?;
        let bridge = write("bridge.c", BRIDGE_C.as_bytes())?;
        let lib = out_dir.join("libkvclient.so");
        let mut gcc: Command = oracle.gcc().map_err(|e| e.message().to_string())?;
        gcc.arg(format!("-I{}", out_dir.display()))
            .args(["-O0", "-g", "-w", "-fPIC", "-shared", "-Wl,-Bsymbolic"])
            .arg("-include")
            .arg(&types)
            .arg("-o")
            .arg(&lib)
            .arg(&user)
            .arg(&bridge);
        let out = gcc.output().map_err(|e| format!("running gcc: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "gcc failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let l = Library::open(&lib).map_err(|e| e.message().to_string())?;
        // SAFETY: the types match the C declarations of User.h and bridge.c above.
        unsafe {
            let install: InstallFn = l
                .symbol("kvbridge_install")
                .map_err(|e| e.message().to_string())?;
            install(
                rs_mach_msg,
                rs_get_reply_port,
                rs_put_reply_port,
                rs_dealloc_reply_port,
            );
            Ok(CClient {
                kv_open: sym(&l, "kv_open")?,
                kv_put: sym(&l, "kv_put")?,
                kv_get: sym(&l, "kv_get")?,
                kv_dump: sym(&l, "kv_dump")?,
                kv_load: sym(&l, "kv_load")?,
                kv_clear: sym(&l, "kv_clear")?,
                library: lib,
            })
        }
    }

    /// Runs `f` with the calling thread's C stubs talking through `task`.
    pub fn with_task<R>(&self, task: &Task, f: impl FnOnce() -> R) -> R {
        TASK.with(|t| *t.borrow_mut() = Some(task.clone()));
        let r = f();
        TASK.with(|t| *t.borrow_mut() = None);
        r
    }
}

fn kr(code: i32) -> String {
    format!("{}", mig_runtime::KernReturn(code))
}

/// GNU MIG's C client drives the Rust [`Store`](kv_store::store::Store) over the userspace
/// IPC; returns the transcript. `out_dir` receives the generated C and the library.
pub fn run_c_client(oracle: &Oracle, out_dir: &Path) -> Result<Vec<String>, String> {
    use kv_store::demo::Harness;
    use kv_store::store::Store;
    use std::ffi::CString;

    let defs = Path::new(env!("CARGO_MANIFEST_DIR")).join("kv.defs");
    let c = CClient::build(oracle, &defs, out_dir)?;
    let h = Harness::new().map_err(|e| format!("ipc: {e}"))?;
    let store = Store::new(h.server_task.clone(), h.service, h.port_set);
    let service = h
        .service_right()
        .map_err(|e| format!("service right: {e}"))?;
    let mut out = vec![format!(
        "GNU MIG's C client ({}) -> Rust server, over mig_runtime::ipc",
        c.library.display()
    )];
    let cs = |s: &str| CString::new(s).unwrap_or_default();
    let result = h.serve_while(&store, || {
        c.with_task(&h.client_task, || -> Result<(), String> {
            let mut log = |s: String| out.push(s);
            let check = |what: &str, r: i32| {
                if r == 0 {
                    Ok(())
                } else {
                    Err(format!("{what} failed: {}", kr(r)))
                }
            };
            // SAFETY (all calls below): the arguments follow User.h; buffers are as large as
            // the declared maximums (kv_value_t: 1024 bytes).
            unsafe {
                let mut bucket = 0u32;
                check(
                    "kv_open",
                    (c.kv_open)(service.name().0, cs("veggies").as_ptr(), &mut bucket),
                )?;
                log(format!(
                    "[C] kv_open(\"veggies\") -> bucket port name {bucket:#x}"
                ));
                let mut version = 0u32;
                let v = b"orange";
                check(
                    "kv_put",
                    (c.kv_put)(
                        bucket,
                        cs("carrot").as_ptr(),
                        v.as_ptr().cast(),
                        v.len() as u32,
                        &mut version,
                    ),
                )?;
                log(format!(
                    "[C] kv_put(\"carrot\", \"orange\", 0) -> version {version}"
                ));
                let mut stale = 7u32;
                let r = (c.kv_put)(
                    bucket,
                    cs("carrot").as_ptr(),
                    v.as_ptr().cast(),
                    v.len() as u32,
                    &mut stale,
                );
                log(format!(
                    "[C] kv_put(\"carrot\", \"orange\", 7) -> {}",
                    kr(r)
                ));
                let mut value = [0 as c_char; 1024];
                let mut count = value.len() as u32;
                let mut got_version = 0u32;
                check(
                    "kv_get",
                    (c.kv_get)(
                        bucket,
                        cs("carrot").as_ptr(),
                        value.as_mut_ptr(),
                        &mut count,
                        &mut got_version,
                    ),
                )?;
                let bytes: Vec<u8> = value[..count as usize].iter().map(|&b| b as u8).collect();
                log(format!(
                    "[C] kv_get(\"carrot\") -> {:?} version {got_version}",
                    String::from_utf8_lossy(&bytes)
                ));
                let lines = b"leek=green\nbeet=purple\n";
                let mut n = 0u32;
                check(
                    "kv_load",
                    (c.kv_load)(bucket, lines.as_ptr().cast(), lines.len() as u32, &mut n),
                )?;
                log(format!(
                    "[C] kv_load(<{} bytes out of line>) -> {n} entries",
                    lines.len()
                ));
                let mut data: *mut c_char = std::ptr::null_mut();
                let mut len = 0u32;
                check("kv_dump", (c.kv_dump)(bucket, &mut data, &mut len))?;
                let text = if data.is_null() {
                    String::new()
                } else {
                    let s = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
                    String::from_utf8_lossy(s).into_owned()
                };
                log(format!("[C] kv_dump() -> {len} bytes out of line:"));
                for l in text.lines() {
                    log(format!("      {l}"));
                }
                if !free_ool(data) {
                    return Err("kv_dump's region was not handed to C".into());
                }
                check("kv_clear", (c.kv_clear)(bucket))?;
                log("[C] kv_clear() (simpleroutine)".into());
                let mut count = value.len() as u32;
                let r = (c.kv_get)(
                    bucket,
                    cs("carrot").as_ptr(),
                    value.as_mut_ptr(),
                    &mut count,
                    &mut got_version,
                );
                log(format!("[C] kv_get(\"carrot\") -> {}", kr(r)));
                // The bucket's send right belongs to the C side; release it.
                drop(mig_runtime::SendRight::from_raw(
                    h.client_task.space_id(),
                    PortName(bucket),
                ));
            }
            Ok(())
        })
    });
    result?;
    if live_ool() != 0 {
        return Err(format!("{} received regions were not freed", live_ool()));
    }
    out.push(format!("server buckets: {:?}", store.bucket_names()));
    h.kernel
        .check_consistency()
        .map_err(|e| format!("kernel state: {e}"))?;
    Ok(out)
}
