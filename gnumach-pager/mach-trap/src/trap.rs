//! The GNU Mach x86_64 traps themselves.
//!
//! A trap is the `syscall` instruction with the (negative) trap number in `rax` and the
//! arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9` (`r10` instead of the C ABI's `rcx`,
//! which `syscall` overwrites). The kernel's 64-bit entry (`syscall64` in GNU Mach's
//! `x86_64/locore.S`) saves the user state, and for traps with more than six arguments it
//! copies the rest from the **user stack, skipping one return address**: the seventh
//! argument of `mach_msg_trap` is read at `[rsp + 8]`. That is exactly the layout inside a
//! C function called with the System V ABI, so `mach_msg_trap` is an assembly function
//! (like glibc's) that the compiler calls with seven arguments. `syscall` clobbers `rcx` and
//! `r11`; the kernel restores the argument registers and the callee-saved ones.
//!
//! Trap numbers are those of GNU Mach's `mach/syscall_sw.h`.

use core::arch::{asm, global_asm};
use core::ffi::CStr;
use mig_runtime::PortName;

/// `mach_msg_trap`.
pub const MACH_MSG_TRAP: i64 = -25;
/// `mach_reply_port`.
pub const MACH_REPLY_PORT: i64 = -26;
/// `mach_thread_self`.
pub const MACH_THREAD_SELF: i64 = -27;
/// `mach_task_self`.
pub const MACH_TASK_SELF: i64 = -28;
/// `mach_host_self`.
pub const MACH_HOST_SELF: i64 = -29;
/// `mach_print` (a kernel debugging aid: prints a C string on the kernel console).
pub const MACH_PRINT: i64 = -30;
/// `swtch` (yield the processor).
pub const SWTCH: i64 = -60;

// `mach_msg_trap(msg, option, send_size, rcv_size, rcv_name, timeout, notify)`: a System V
// function, so the caller has put the 7th argument at [rsp + 8] (above our return
// address), where the kernel's syscall entry reads it.
global_asm!(
    ".pushsection .text.__mach_trap_rs_mach_msg,\"ax\",@progbits",
    ".globl __mach_trap_rs_mach_msg",
    ".hidden __mach_trap_rs_mach_msg",
    ".type __mach_trap_rs_mach_msg,@function",
    ".p2align 4",
    "__mach_trap_rs_mach_msg:",
    "mov r10, rcx",
    "mov rax, -25",
    "syscall",
    "ret",
    ".size __mach_trap_rs_mach_msg, . - __mach_trap_rs_mach_msg",
    ".popsection",
);

extern "C" {
    fn __mach_trap_rs_mach_msg(
        msg: *mut u8,
        option: u32,
        send_size: u32,
        rcv_size: u32,
        rcv_name: u32,
        timeout: u32,
        notify: u32,
    ) -> u32;
}

/// `mach_msg_trap`: sends and/or receives a message in the buffer at `msg`.
///
/// # Safety
/// `msg` must be valid for reads of `send_size` bytes (if `option` has `MACH_SEND_MSG`) and
/// for writes of `rcv_size` bytes (if it has `MACH_RCV_MSG`), 4-byte aligned; out-of-line
/// descriptors of a sent message must name memory the caller may give to the kernel (read,
/// or deallocated when the descriptor says so). Only meaningful on GNU Mach.
#[inline]
pub unsafe fn mach_msg(
    msg: *mut u8,
    option: u32,
    send_size: u32,
    rcv_size: u32,
    rcv_name: PortName,
    timeout: u32,
    notify: PortName,
) -> u32 {
    // SAFETY: the caller upholds the buffer contract; the assembly function follows the
    // System V ABI (it only clobbers caller-saved registers).
    unsafe {
        __mach_trap_rs_mach_msg(
            msg, option, send_size, rcv_size, rcv_name.0, timeout, notify.0,
        )
    }
}

/// A trap without arguments that returns a value in `rax`.
#[inline]
fn trap0(number: i64) -> u64 {
    let r: u64;
    // SAFETY: the traps used here (reply port, task/thread/host self, swtch) take no
    // pointers and touch no user memory; `syscall` clobbers rcx and r11, and we declare the
    // argument registers clobbered too although the kernel restores them.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => r,
            lateout("rcx") _, lateout("r11") _,
            lateout("rdi") _, lateout("rsi") _, lateout("rdx") _,
            lateout("r10") _, lateout("r8") _, lateout("r9") _,
            options(nostack),
        );
    }
    r
}

/// `mach_reply_port()`: a new receive right, for replies.
#[inline]
pub fn mach_reply_port() -> PortName {
    PortName(trap0(MACH_REPLY_PORT) as u32)
}

/// `mach_task_self()`: a send right to the calling task (adds a user reference each call,
/// so callers cache it).
#[inline]
pub fn mach_task_self() -> PortName {
    PortName(trap0(MACH_TASK_SELF) as u32)
}

/// `mach_thread_self()`: a send right to the calling thread (adds a user reference).
#[inline]
pub fn mach_thread_self() -> PortName {
    PortName(trap0(MACH_THREAD_SELF) as u32)
}

/// `mach_host_self()`: a send right to the (unprivileged) host port.
#[inline]
pub fn mach_host_self() -> PortName {
    PortName(trap0(MACH_HOST_SELF) as u32)
}

/// `swtch()`: yields the processor.
#[inline]
pub fn swtch() {
    trap0(SWTCH);
}

/// `mach_print(s)`: prints `s` on the kernel console (a debugging trap; the kernel may
/// ignore it).
#[inline]
pub fn mach_print(s: &CStr) {
    // SAFETY: the kernel only reads the NUL-terminated string at rdi, which `CStr`
    // guarantees; the register contract is as in `trap0`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") MACH_PRINT => _,
            inlateout("rdi") s.as_ptr() => _,
            lateout("rcx") _, lateout("r11") _,
            lateout("rsi") _, lateout("rdx") _,
            lateout("r10") _, lateout("r8") _, lateout("r9") _,
            options(nostack, readonly),
        );
    }
}
