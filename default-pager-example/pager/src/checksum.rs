//! Page checksums: computed when a page is written, verified when it is read back (the
//! Hurd pager's `CHECKSUM` option; a mismatch is answered with `data_error`, never with the
//! bad data).

/// A 32-bit checksum of `data` (a multiply-rotate hash over 64-bit words; any change of a
/// single byte changes it).
pub fn checksum(data: &[u8]) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ data.len() as u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(K);
    (h ^ (h >> 32)) as u32
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
