//! The boot task's arguments and its entry point.
//!
//! GNU Mach starts a boot-script module (`kern/bootstrap.c`, `build_args_and_stack`) with
//! `rsp` pointing at: `argc` (8 bytes), `argc` pointers to NUL-terminated strings, a null
//! pointer, the environment pointers (none for boot-script modules), a null pointer, then
//! the strings. The argument strings are the module's command line from the boot script
//! with variables substituted, e.g. `${host-port}` and `${device-port}` become the decimal
//! names of the privileged host port and the device master port in the new task.

use core::ffi::CStr;

/// The arguments of a task started by the kernel's boot script.
#[derive(Clone, Copy)]
pub struct BootArgs {
    argv: &'static [*const core::ffi::c_char],
}

impl BootArgs {
    /// Reads the initial stack.
    ///
    /// # Safety
    /// `sp` must be the stack pointer the kernel gave the task's first thread, untouched.
    pub unsafe fn from_initial_stack(sp: *const u64) -> BootArgs {
        // SAFETY: the caller guarantees `sp` points at the kernel-built argc/argv block,
        // which stays mapped (it is the bottom of the initial stack) and is never written.
        unsafe {
            let argc = (*sp).min(4096) as usize;
            let argv =
                core::slice::from_raw_parts(sp.add(1) as *const *const core::ffi::c_char, argc);
            BootArgs { argv }
        }
    }

    /// No arguments (for tasks started another way).
    pub const fn empty() -> BootArgs {
        BootArgs { argv: &[] }
    }

    /// The number of arguments, the program name included.
    pub fn len(&self) -> usize {
        self.argv.len()
    }

    /// Whether there are no arguments at all.
    pub fn is_empty(&self) -> bool {
        self.argv.is_empty()
    }

    /// Argument `i` (0 is the program name).
    pub fn get(&self, i: usize) -> Option<&'static [u8]> {
        let p = *self.argv.get(i)?;
        if p.is_null() {
            return None;
        }
        // SAFETY: the kernel wrote a NUL-terminated string for each argv entry.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }

    /// All arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &'static [u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// Parses a decimal port name or number.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

/// Defines the program's entry point `_start`, which calls `$main(BootArgs) -> !` on an
/// aligned stack.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        ::core::arch::global_asm!(
            ".globl _start",
            ".type _start,@function",
            "_start:",
            "mov rdi, rsp",
            "and rsp, -16",
            "xor ebp, ebp",
            "call {entry}",
            "ud2",
            entry = sym __mach_trap_entry,
        );
        extern "C" fn __mach_trap_entry(sp: *const u64) -> ! {
            // SAFETY: `_start` passes the stack pointer the kernel set up, untouched.
            let args = unsafe { $crate::boot::BootArgs::from_initial_stack(sp) };
            $main(args)
        }
    };
}
