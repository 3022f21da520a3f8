//! Page checksums: computed when a page is written, verified when it is read back (the
//! Hurd pager's `CHECKSUM` option; a mismatch is answered with `data_error`, never with the
//! bad data).

/// A 32-bit checksum of `data` (a multiply-rotate hash over 64-bit words in four independent
/// lanes, so that a page costs a quarter of one serial chain; any change of a single byte
/// changes its lane, and so the 64-bit result, which is then folded to 32 bits).
pub fn checksum(data: &[u8]) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    #[inline(always)]
    fn step(h: u64, w: u64) -> u64 {
        (h ^ w).wrapping_mul(K).rotate_left(29)
    }
    #[inline(always)]
    fn word(b: &[u8], i: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    }
    let seed = 0x243f_6a88_85a3_08d3 ^ data.len() as u64;
    let mut h = [seed, seed ^ K, seed.rotate_left(17), seed.rotate_left(43)];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        h[0] = step(h[0], word(b, 0));
        h[1] = step(h[1], word(b, 1));
        h[2] = step(h[2], word(b, 2));
        h[3] = step(h[3], word(b, 3));
    }
    let mut x = step(step(step(h[0], h[1]), h[2]), h[3]);
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        x = step(x, word(w, 0));
    }
    for &b in words.remainder() {
        x = step(x, u64::from(b));
    }
    x ^= x >> 32;
    x = x.wrapping_mul(K);
    (x ^ (x >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::checksum;

    #[test]
    fn every_single_byte_change_is_seen() {
        let mut page = alloc::vec![0u8; 4096];
        for (i, b) in page.iter_mut().enumerate() {
            *b = (i * 7 % 256) as u8;
        }
        let base = checksum(&page);
        for i in (0..4096).step_by(61) {
            let mut p = page.clone();
            p[i] ^= 1;
            assert_ne!(checksum(&p), base, "byte {i}");
        }
        assert_ne!(checksum(&[0u8; 4096]), checksum(&[0u8; 4095]));
    }
}
