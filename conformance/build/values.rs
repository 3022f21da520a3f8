//! Deterministic test values shared by the conformance generator (the build script) and the
//! conformance test at run time. The C side (`CONF_RT_C` in the test) mirrors [`mix`],
//! [`port_name`] and [`str_byte`] exactly.
#![allow(dead_code)]

/// Variants per routine: 0 = empty variable data, 1 = mid-size, 2 = at the inline limit,
/// 3 = above it (out-of-line where the type allows; over-long strings), 4 = the server
/// returns an error code.
pub const VARIANTS: usize = 5;
/// The variant whose server function fails.
pub const ERROR_VARIANT: usize = 4;
/// The reply port `mig_get_reply_port` hands out on both sides.
pub const REPLY_PORT: u32 = 0x0000_5e71;
/// The sequence number the simulated kernel stamps on delivered messages.
pub const SEQNO: u32 = 0x0000_0a51;

/// splitmix64 of `seed + i·φ`: element `i` of the value stream `seed`.
pub fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Element `i` of a port-name array (never `MACH_PORT_NULL` or `MACH_PORT_DEAD`).
pub fn port_name(seed: u64, i: u64) -> u32 {
    0x2000 + (mix(seed, i) & 0x1fff) as u32
}

/// Byte `i` of a test string (a lowercase letter, never NUL).
pub fn str_byte(seed: u64, i: u64) -> u8 {
    b'a' + (mix(seed, i) % 26) as u8
}

/// The received form of a port disposition (what the kernel writes on delivery).
pub fn received_form(d: u32) -> u32 {
    match d {
        19 | 20 => 17,
        21 => 18,
        x => x,
    }
}
