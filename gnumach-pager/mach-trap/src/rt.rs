//! What a static, no-libc program needs from "libc" (feature `rt`): `memcpy`, `memmove`,
//! `memset`, `memcmp`, `bcmp`, `strlen` (the compiler and `core` call them), and the two
//! unwinding symbols the precompiled `alloc` refers to although a `panic = "abort"` program
//! never unwinds.
//!
//! The memory functions are x86 string instructions in inline assembly, so the compiler
//! cannot turn them back into calls to themselves.

use core::arch::asm;

/// `memcpy`.
///
/// # Safety
/// The C contract: `src` readable and `dst` writable for `n` bytes, not overlapping.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the ranges; `rep movsb` copies exactly `n` bytes
    // forwards (the direction flag is clear per the ABI).
    unsafe {
        asm!("rep movsb", inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") n => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// `memmove`.
///
/// # Safety
/// The C contract: `src` readable and `dst` writable for `n` bytes (they may overlap).
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // Forward copy is safe: dst is below src, or the ranges do not overlap.
        // SAFETY: as in `memcpy`.
        unsafe { memcpy(dst, src, n) }
    } else {
        // SAFETY: copy backwards from the last byte with the direction flag set, then clear
        // it again as the ABI requires; the caller guarantees both ranges.
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rdi") dst.add(n).wrapping_sub(1) => _,
                 inout("rsi") src.add(n).wrapping_sub(1) => _,
                 inout("rcx") n => _,
                 options(nostack));
        }
        dst
    }
}

/// `memset`.
///
/// # Safety
/// The C contract: `dst` writable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range; `rep stosb` stores `n` bytes forwards.
    unsafe {
        asm!("rep stosb", inout("rdi") dst => _, inout("rcx") n => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dst
}

/// `memcmp`.
///
/// # Safety
/// The C contract: both pointers readable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: `i < n`, inside both ranges. Volatile keeps the compiler from turning
        // this loop into a call to `memcmp`.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// `bcmp`.
///
/// # Safety
/// As `memcmp`.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

/// `strlen`.
///
/// # Safety
/// The C contract: `s` points to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the string is NUL-terminated, so every byte up to the NUL is readable.
    while unsafe { s.add(n).read_volatile() } != 0 {
        n += 1;
    }
    n
}

/// Never called: a `panic = "abort"` program does not unwind, but the precompiled `alloc`
/// has landing pads that name it.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    loop {
        crate::trap::swtch();
    }
}

/// Never called (see [`_Unwind_Resume`]).
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
