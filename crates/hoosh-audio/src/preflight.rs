//! Header fields that symphonia trusts to size an allocation, checked
//! against the bytes before it parses them.
//!
//! Symphonia sizes some tables by the count a file declares, before reading
//! an entry: a few bytes claiming 2^32 entries make it ask the allocator for
//! tens of gigabytes, and a failed allocation aborts the whole process — no
//! `catch_unwind` contains that. Each check here refuses a file whose count
//! cannot fit in the bytes it has, which no valid file does.
//!
//! - MP4/M4A sample tables (`moov/trak/mdia/minf/stbl` → `stts`, `stsc`,
//!   `stsz`, `stco`, `co64`), found by the `ftyp` marker the probe finds.
//!   (Found by the `audio_container` fuzz target, `crates/hoosh-fuzz`.)

use crate::AudioError;

/// Refuses a file that declares more table entries than it holds.
pub(crate) fn check(bytes: &[u8]) -> Result<(), AudioError> {
    // The probe starts the MP4 reader at the box holding the first `ftyp`.
    if let Some(start) = bytes.windows(4).position(|w| w == b"ftyp").and_then(|p| p.checked_sub(4)) {
        mp4_boxes(&bytes[start..], 0)?;
    }
    Ok(())
}

/// Boxes that hold the sample tables, and how deep they sit.
const MP4_PATH: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];

/// Walks the boxes in `data` (children of a box at `depth` of [`MP4_PATH`]).
/// A malformed header ends the walk: symphonia refuses such a file itself.
fn mp4_boxes(mut data: &[u8], depth: usize) -> Result<(), AudioError> {
    while data.len() >= 8 {
        let size = u64::from(u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
        let kind = &data[4..8];
        let (header, size) = match size {
            0 => (8, data.len() as u64),
            1 if data.len() >= 16 => (16, u64::from_be_bytes(data[8..16].try_into().unwrap_or_default())),
            1 => return Ok(()),
            n => (8, n),
        };
        if size < header as u64 {
            return Ok(());
        }
        let end = usize::try_from(size).unwrap_or(usize::MAX).min(data.len());
        let payload = &data[header..end];
        match MP4_PATH.get(depth) {
            Some(container) if kind == *container => mp4_boxes(payload, depth + 1)?,
            None => sample_table(kind, payload)?,
            Some(_) => {}
        }
        data = &data[end..];
    }
    Ok(())
}

/// One box inside `stbl`: its entry count against its payload.
fn sample_table(kind: &[u8], payload: &[u8]) -> Result<(), AudioError> {
    // Full boxes: version and flags, then (for stsz, a constant size and) the count.
    let (count_at, entry_bytes) = match kind {
        b"stts" => (4, 8),
        b"stsc" => (4, 12),
        b"stco" => (4, 4),
        b"co64" => (4, 8),
        b"stsz" if payload.get(4..8).is_some_and(|size| size == [0; 4]) => (8, 4),
        _ => return Ok(()),
    };
    let Some(count) = payload.get(count_at..count_at + 4) else { return Ok(()) };
    let count = u64::from(u32::from_be_bytes([count[0], count[1], count[2], count[3]]));
    let room = (payload.len() - count_at - 4) as u64;
    if count * entry_bytes > room {
        return Err(AudioError::Corrupt {
            detail: format!(
                "the MP4 `{}` table declares {count} entries but holds {} bytes",
                String::from_utf8_lossy(kind),
                room
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    /// `ftyp`, then `moov/trak/mdia/minf/stbl` holding `table`.
    fn file(table: &[u8]) -> Vec<u8> {
        let mut inner = table.to_vec();
        for kind in MP4_PATH.iter().rev() {
            inner = mp4_box(kind, &inner);
        }
        [mp4_box(b"ftyp", b"M4A \0\0\0\0"), inner].concat()
    }

    #[test]
    fn a_count_the_table_can_hold_passes_one_it_cannot_is_refused() {
        // stsc: version/flags, count 2, two 12-byte entries.
        let mut stsc = vec![0, 0, 0, 0, 0, 0, 0, 2];
        stsc.extend_from_slice(&[1; 24]);
        assert_eq!(check(&file(&mp4_box(b"stsc", &stsc))), Ok(()));
        stsc[4..8].copy_from_slice(&0x4000_0000u32.to_be_bytes());
        let err = check(&file(&mp4_box(b"stsc", &stsc))).unwrap_err();
        assert!(err.to_string().contains("`stsc` table declares 1073741824 entries"), "{err}");
    }

    #[test]
    fn stsz_counts_only_when_sizes_vary() {
        let constant = [0, 0, 0, 0, 0, 0, 4, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(check(&file(&mp4_box(b"stsz", &constant))), Ok(()));
        let variable = [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(check(&file(&mp4_box(b"stsz", &variable))).is_err());
    }

    #[test]
    fn other_files_and_malformed_boxes_are_left_to_the_decoder() {
        assert_eq!(check(b"RIFF\0\0\0\0WAVEfmt "), Ok(()));
        assert_eq!(check(&[0, 0, 0, 4, b'f', b't', b'y', b'p']), Ok(()));
        let mut cut = file(&mp4_box(b"stco", &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9]));
        assert_eq!(check(&cut), Ok(()));
        cut.truncate(cut.len() - 2);
        assert!(check(&cut).is_err(), "an entry cut off by the end of the file");
    }
}
