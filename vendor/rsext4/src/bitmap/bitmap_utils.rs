//! Shared bitmap utility helpers.

/// Returns the number of bytes required to store `bits` bits.
pub fn bytes_for_bits(bits: u32) -> usize {
    bits.div_ceil(8) as usize
}

/// Returns the number of set bits in a byte.
pub fn count_set_bits(byte: u8) -> u32 {
    byte.count_ones()
}

/// Counts the number of set bits in a bitmap up to `max_bits`.
pub fn count_set_bits_in_bitmap(data: &[u8], max_bits: u32) -> u32 {
    let mut count = 0u32;
    let full_bytes = (max_bits / 8) as usize;
    let remaining_bits = (max_bits % 8) as u8;

    for &byte in &data[..full_bytes.min(data.len())] {
        count += count_set_bits(byte);
    }

    if full_bytes < data.len() && remaining_bits > 0 {
        let mask = (1u8 << remaining_bits) - 1;
        count += count_set_bits(data[full_bytes] & mask);
    }

    count
}

/// Sets a bit in-place. Returns `false` if the bit is out of range.
pub fn set_bit(data: &mut [u8], bit_idx: u32) -> bool {
    let byte_idx = (bit_idx / 8) as usize;
    let bit_pos = (bit_idx % 8) as u8;

    if byte_idx >= data.len() {
        return false;
    }

    data[byte_idx] |= 1 << bit_pos;
    true
}

/// Clears a bit in-place. Returns `false` if the bit is out of range.
pub fn clear_bit(data: &mut [u8], bit_idx: u32) -> bool {
    let byte_idx = (bit_idx / 8) as usize;
    let bit_pos = (bit_idx % 8) as u8;

    if byte_idx >= data.len() {
        return false;
    }

    data[byte_idx] &= !(1 << bit_pos);
    true
}

/// Tests a bit and returns `None` when the bit is out of range.
pub fn test_bit(data: &[u8], bit_idx: u32) -> Option<bool> {
    let byte_idx = (bit_idx / 8) as usize;
    let bit_pos = (bit_idx % 8) as u8;

    if byte_idx >= data.len() {
        return None;
    }

    Some((data[byte_idx] & (1 << bit_pos)) != 0)
}

/// Toggles a bit in-place. Returns `false` if the bit is out of range.
pub fn toggle_bit(data: &mut [u8], bit_idx: u32) -> bool {
    let byte_idx = (bit_idx / 8) as usize;
    let bit_pos = (bit_idx % 8) as u8;

    if byte_idx >= data.len() {
        return false;
    }

    data[byte_idx] ^= 1 << bit_pos;
    true
}

/// Pith: the first clear bit at or after `from` and below `limit` (bit i is bit i % 8 of byte
/// i / 8, as ext4 numbers them), skipping whole 64-bit words of set bits: the allocators'
/// first-fit searches walk the full start of a filling group on every allocation.
pub fn next_clear_bit(data: &[u8], from: u32, limit: u32) -> Option<u32> {
    let limit = limit.min(u32::try_from(data.len().saturating_mul(8)).unwrap_or(u32::MAX));
    let mut bit = from;
    while bit < limit {
        if bit % 64 == 0 && bit + 64 <= limit {
            let at = (bit / 8) as usize;
            let word = u64::from_le_bytes(data[at..at + 8].try_into().ok()?);
            if word == u64::MAX {
                bit += 64;
                continue;
            }
            return Some(bit + word.trailing_ones());
        }
        if data[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Pith: the word-skipping search finds what a bit-by-bit walk finds.
    #[test]
    fn next_clear_bit_matches_a_bit_by_bit_walk() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..400u32 {
            let mut data = vec![0u8; 40];
            for byte in data.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *byte = if seed % 8 == 0 {
                    (seed >> 8) as u8
                } else {
                    0xff
                };
            }
            let limit = 200 + round % 120; // not always a multiple of 8 or 64
            let from = round % 150;
            let walk = (from..limit).find(|&bit| test_bit(&data, bit) == Some(false));
            assert_eq!(next_clear_bit(&data, from, limit), walk, "round {round}");
        }
        assert_eq!(next_clear_bit(&[0xff; 8], 0, 64), None);
        assert_eq!(next_clear_bit(&[0xff; 8], 0, 1000), None);
        assert_eq!(next_clear_bit(&[0xff, 0xff, 0x7f], 3, 24), Some(23));
    }
}
