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
//! - FLAC metadata: `VORBIS_COMMENT` string lengths and `PICTURE` field
//!   lengths (symphonia zero-fills a buffer of the declared size first: a
//!   40-byte file asked for 3.3 GB).
//! - Vorbis comment headers in Ogg (`\x03vorbis`, `OpusTags`): the same
//!   string lengths.
//! - ID3v2 tags (MP3): each frame's size against what is left of its tag.
//!
//! (All found by the `audio_container` fuzz target, `crates/hoosh-fuzz`.)

use crate::AudioError;

/// Refuses a file that declares more table entries than it holds.
pub(crate) fn check(bytes: &[u8]) -> Result<(), AudioError> {
    // The probe starts the MP4 reader at the box holding the first `ftyp`.
    if let Some(start) = bytes.windows(4).position(|w| w == b"ftyp").and_then(|p| p.checked_sub(4)) {
        mp4_boxes(&bytes[start..], b"", bytes.len())?;
    }
    if let Some(start) = find(bytes, b"fLaC") {
        flac_blocks(&bytes[start + 4..])?;
    }
    if bytes.starts_with(b"OggS") {
        ogg_comment_packets(bytes)?;
    }
    // The probe reads every ID3v2 tag it meets before the format's marker,
    // and goes on scanning after each.
    let mut from = 0;
    while let Some(start) = id3_header(&bytes[from..]).map(|at| from + at) {
        id3_frames(&bytes[start..])?;
        from = start + 10 + syncsafe(&bytes[start + 6..start + 10]);
        if from >= bytes.len() {
            break;
        }
    }
    Ok(())
}

/// Where the probe would read the next ID3v2 tag: at the first format marker in
/// the stream, when that marker is `ID3` (junk before it is skipped by the
/// probe as by this scan; an `ID3` inside audio after another marker is
/// never read as a tag). Versions 2 to 4 only: others are refused before
/// anything is allocated.
fn id3_header(bytes: &[u8]) -> Option<usize> {
    const SCAN: usize = 1024 * 1024;
    let end = bytes.len().min(SCAN);
    for i in 0..end {
        let rest = &bytes[i..];
        let mpeg_sync = rest.len() >= 2 && rest[0] == 0xff && rest[1] & 0xe0 == 0xe0;
        let other = [&b"RIFF"[..], b"fLaC", b"OggS"].iter().any(|m| rest.starts_with(m))
            || (i >= 4 && rest.starts_with(b"ftyp"));
        if rest.starts_with(b"ID3") {
            return rest.get(3).filter(|v| (2..=4).contains(*v)).map(|_| i).filter(|_| rest.len() >= 10);
        }
        if mpeg_sync || other {
            return None;
        }
    }
    None
}

fn syncsafe(b: &[u8]) -> usize {
    b.iter().fold(0usize, |n, &x| (n << 7) | usize::from(x & 0x7f))
}

/// The frames of an ID3v2 tag: each declared size must fit in the tag.
fn id3_frames(tag: &[u8]) -> Result<(), AudioError> {
    let version = tag[3];
    let end = (10 + syncsafe(&tag[6..10])).min(tag.len());
    let mut at = 10;
    if tag[5] & 0x40 != 0 && version >= 3 {
        // An extended header: its size (syncsafe in 2.4, plain in 2.3; 2.3's excludes itself).
        let Some(b) = tag.get(10..14) else { return Ok(()) };
        at += if version == 4 { syncsafe(b) } else { 4 + u32_at(b, 0, true).unwrap_or(usize::MAX) };
    }
    let header = if version == 2 { 6 } else { 10 };
    while at + header <= end {
        let h = &tag[at..at + header];
        if h[0] == 0 {
            return Ok(()); // padding
        }
        let size = match version {
            2 => usize::from(h[3]) << 16 | usize::from(h[4]) << 8 | usize::from(h[5]),
            3 => u32_at(h, 4, true).unwrap_or(usize::MAX),
            _ => syncsafe(&h[4..8]),
        };
        let left = end - at - header;
        if size > left {
            return Err(corrupt(format!(
                "an ID3v2 frame `{}` declares {size} bytes where {left} remain in its tag",
                String::from_utf8_lossy(&h[..header - if version == 2 { 3 } else { 6 }])
            )));
        }
        at += header + size;
    }
    Ok(())
}

/// The packets of an Ogg file, reassembled per logical stream from its
/// pages (a packet may span pages); a comment header packet is checked.
/// Parsing stops at the first malformed page, which the decoder refuses.
fn ogg_comment_packets(mut data: &[u8]) -> Result<(), AudioError> {
    let mut open: std::collections::HashMap<u32, Vec<u8>> = std::collections::HashMap::new();
    while data.len() >= 27 && data.starts_with(b"OggS") {
        let serial = u32::from_le_bytes([data[14], data[15], data[16], data[17]]);
        let segments = usize::from(data[26]);
        let Some(table) = data.get(27..27 + segments) else { return Ok(()) };
        let mut at = 27 + segments;
        for &lace in table {
            let Some(segment) = data.get(at..at + usize::from(lace)) else { return Ok(()) };
            at += usize::from(lace);
            let packet = open.entry(serial).or_default();
            packet.extend_from_slice(segment);
            if lace < 255 {
                let packet = std::mem::take(packet);
                for marker in [&b"\x03vorbis"[..], b"OpusTags"] {
                    if let Some(body) = packet.strip_prefix(marker) {
                        comments(body, "Ogg")?;
                    }
                }
            }
        }
        data = &data[at..];
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn corrupt(detail: String) -> AudioError {
    AudioError::Corrupt { detail }
}

/// A length field read at `at`, little- or big-endian; `None` past the end.
fn u32_at(data: &[u8], at: usize, big_endian: bool) -> Option<usize> {
    let b: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    let n = if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) };
    usize::try_from(n).ok()
}

/// FLAC metadata blocks after the marker: a header byte (last-block flag,
/// type), a 24-bit length, the body. Comment and picture bodies are checked;
/// a block cut by the end of the file is left to the decoder (it reads past
/// the end and fails).
fn flac_blocks(mut data: &[u8]) -> Result<(), AudioError> {
    while data.len() >= 4 {
        let (last, kind) = (data[0] & 0x80 != 0, data[0] & 0x7f);
        let len = usize::from(data[1]) << 16 | usize::from(data[2]) << 8 | usize::from(data[3]);
        let body = &data[4..(4 + len).min(data.len())];
        match kind {
            4 => comments(body, "FLAC")?,
            6 => picture(body)?,
            _ => {}
        }
        if last || 4 + len > data.len() {
            return Ok(());
        }
        data = &data[4 + len..];
    }
    Ok(())
}

/// A Vorbis comment block: vendor length and string, a count, then each
/// comment's length and string (little-endian). Every length must fit in
/// what is left of `body`.
fn comments(body: &[u8], what: &str) -> Result<(), AudioError> {
    let too_long = |n: usize, left: usize| corrupt(format!("a {what} comment declares {n} bytes where {left} remain"));
    let Some(vendor) = u32_at(body, 0, false) else { return Ok(()) };
    let mut at = 4usize;
    if vendor > body.len() - at {
        return Err(too_long(vendor, body.len() - at));
    }
    at += vendor;
    let Some(count) = u32_at(body, at, false) else { return Ok(()) };
    at += 4;
    for _ in 0..count {
        let Some(n) = u32_at(body, at, false) else { return Ok(()) };
        at += 4;
        if n > body.len() - at {
            return Err(too_long(n, body.len() - at));
        }
        at += n;
    }
    Ok(())
}

/// A FLAC picture block: type, then big-endian length-prefixed media type
/// and description, four numbers, and the length-prefixed picture.
fn picture(body: &[u8]) -> Result<(), AudioError> {
    let mut at = 4usize;
    for field in ["media type", "description", "picture data"] {
        let Some(n) = u32_at(body, at, true) else { return Ok(()) };
        at += 4;
        if n > body.len() - at {
            return Err(corrupt(format!(
                "a FLAC picture's {field} declares {n} bytes where {} remain",
                body.len() - at
            )));
        }
        at += n;
        if field == "description" {
            at += 16; // width, height, depth, colours
        }
    }
    Ok(())
}

/// Boxes whose payload is a list of boxes (`meta` after 4 bytes of version
/// and flags, as symphonia reads it; so are the tags inside `ilst`). Only
/// the sample tables inside `stbl` are read further.
const MP4_CONTAINERS: [&[u8; 4]; 13] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"mvex", b"moof", b"traf", b"meta", b"ilst",
];

/// Walks the boxes in `data` (children of `parent`). Every box must fit in
/// what holds it: symphonia sizes buffers by a box's declared length (a
/// `hdlr` name, `ilst` values) before reading it. A header too short to
/// read ends the walk: symphonia refuses such a file itself.
fn mp4_boxes(mut data: &[u8], parent: &[u8], file_len: usize) -> Result<(), AudioError> {
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
        if size > data.len() as u64 {
            // Only the last top-level box (usually `mdat`) may be cut short
            // by its file; nothing is sized from its length.
            if !parent.is_empty() || kind != b"mdat" {
                return Err(corrupt(format!(
                    "the MP4 box `{}` declares {size} bytes where {} remain",
                    String::from_utf8_lossy(kind),
                    data.len()
                )));
            }
            return Ok(());
        }
        let end = size as usize;
        let payload = &data[header..end];
        // `ilst` holds one box per tag (`©nam`, `trkn`, …), each holding `data` boxes.
        if MP4_CONTAINERS.iter().any(|c| kind == *c) || parent == b"ilst" {
            let children = if kind == b"meta" { payload.get(4..).unwrap_or_default() } else { payload };
            mp4_boxes(children, kind, file_len)?;
        } else if parent == b"stbl" {
            sample_table(kind, payload, file_len)?;
        }
        data = &data[end..];
    }
    Ok(())
}

/// One box inside `stbl`: its entry count against its payload, and, for
/// `stsz`, every sample size against the file (the demuxer allocates a
/// sample's declared size before reading it).
fn sample_table(kind: &[u8], payload: &[u8], file_len: usize) -> Result<(), AudioError> {
    if kind == b"stsz"
        && let Some(constant) = u32_at(payload, 4, true).filter(|&n| n > file_len)
    {
        return Err(corrupt(format!("the MP4 sample size {constant} exceeds the file ({file_len} bytes)")));
    }
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
    if kind == b"stsz" {
        let entries = &payload[count_at + 4..count_at + 4 + (count * entry_bytes) as usize];
        if let Some(size) = entries.chunks_exact(4).filter_map(|e| u32_at(e, 0, true)).find(|&n| n > file_len) {
            return Err(corrupt(format!("the MP4 sample size {size} exceeds the file ({file_len} bytes)")));
        }
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
        for kind in [b"stbl", b"minf", b"mdia", b"trak", b"moov"] {
            inner = mp4_box(kind, &inner);
        }
        [mp4_box(b"ftyp", b"M4A \0\0\0\0"), inner].concat()
    }

    #[test]
    fn a_box_larger_than_what_holds_it_is_refused() {
        // An `hdlr` inside `mdia` claiming 2.4 GB.
        let mut hdlr = mp4_box(b"hdlr", &[0; 24]);
        hdlr[0..4].copy_from_slice(&0x9200_0000u32.to_be_bytes());
        let mdia = mp4_box(b"mdia", &hdlr);
        let file = [mp4_box(b"ftyp", b"M4A \0\0\0\0"), mp4_box(b"moov", &mp4_box(b"trak", &mdia))].concat();
        let err = check(&file).unwrap_err();
        assert!(err.to_string().contains("box `hdlr` declares 2449473536 bytes"), "{err}");
        for regression in [
            &include_bytes!("../../hoosh-fuzz/regressions/audio_container/mp4-hdlr-2gb-alloc")[..],
            include_bytes!("../../hoosh-fuzz/regressions/audio_container/mp4-ilst-data-2gb-alloc"),
        ] {
            assert!(check(regression).is_err());
        }
        // A tag's `data` box inside `ilst` is held to its tag.
        let mut data = mp4_box(b"data", &[0; 8]);
        data[0..4].copy_from_slice(&0x8800_0000u32.to_be_bytes());
        let ilst = mp4_box(b"ilst", &mp4_box(b"\xa9nam", &data));
        let meta = mp4_box(b"meta", &[&[0u8; 4][..], &ilst].concat());
        let file = [mp4_box(b"ftyp", b"M4A \0\0\0\0"), mp4_box(b"moov", &mp4_box(b"udta", &meta))].concat();
        assert!(check(&file).unwrap_err().to_string().contains("box `data`"));
        // A top-level `mdat` cut short by the end of the file is left to the decoder.
        let mut cut = [mp4_box(b"ftyp", b"M4A \0\0\0\0"), mp4_box(b"mdat", &[1; 16])].concat();
        cut.truncate(cut.len() - 4);
        assert_eq!(check(&cut), Ok(()));
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
    fn a_sample_larger_than_the_file_is_refused() {
        // stsz with one variable size: 10 bytes fits, 2.6 GB does not.
        let sizes = |n: u32| [&[0u8; 8][..], &1u32.to_be_bytes(), &n.to_be_bytes()].concat();
        assert_eq!(check(&file(&mp4_box(b"stsz", &sizes(10)))), Ok(()));
        let err = check(&file(&mp4_box(b"stsz", &sizes(0xA000_0000)))).unwrap_err();
        assert!(err.to_string().contains("sample size 2684354560 exceeds the file"), "{err}");
        let constant = [&[0u8; 4][..], &0xA000_0000u32.to_be_bytes(), &[0, 0, 0, 9]].concat();
        assert!(check(&file(&mp4_box(b"stsz", &constant))).is_err());
        let regression = include_bytes!("../../hoosh-fuzz/regressions/audio_container/mp4-sample-size-2gb-alloc");
        assert!(check(regression).is_err());
    }

    #[test]
    fn stsz_counts_only_when_sizes_vary() {
        let constant = [0, 0, 0, 0, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(check(&file(&mp4_box(b"stsz", &constant))), Ok(()));
        let variable = [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(check(&file(&mp4_box(b"stsz", &variable))).is_err());
    }

    /// `fLaC`, a STREAMINFO block, then `block` as the last one.
    fn flac(kind: u8, block: &[u8]) -> Vec<u8> {
        let mut out = b"fLaC".to_vec();
        out.extend_from_slice(&[0, 0, 0, 34]);
        out.extend_from_slice(&[0; 34]);
        let len = block.len() as u32;
        out.extend_from_slice(&[0x80 | kind, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
        out.extend_from_slice(block);
        out
    }

    /// `packet` as Ogg lacing segments (255 bytes but the last), each on a
    /// page of its own: a packet longer than 255 bytes spans pages.
    fn ogg(packet: &[u8]) -> Vec<u8> {
        let mut segments: Vec<&[u8]> = packet.chunks(255).collect();
        if packet.len().is_multiple_of(255) {
            segments.push(&[]);
        }
        let mut out = Vec::new();
        for seg in segments {
            out.extend_from_slice(b"OggS");
            out.extend_from_slice(&[0; 10]); // version, type, granule
            out.extend_from_slice(&7u32.to_le_bytes()); // serial
            out.extend_from_slice(&[0; 8]); // sequence, crc
            out.extend_from_slice(&[1, seg.len() as u8]);
            out.extend_from_slice(seg);
        }
        out
    }

    fn vorbis_comment(vendor: &str, comments: &[&str]) -> Vec<u8> {
        let mut out = (vendor.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(vendor.as_bytes());
        out.extend_from_slice(&(comments.len() as u32).to_le_bytes());
        for c in comments {
            out.extend_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(c.as_bytes());
        }
        out
    }

    #[test]
    fn flac_and_ogg_comment_lengths_must_fit_in_their_block() {
        let good = vorbis_comment("hoosh", &["TITLE=x", "ARTIST=y"]);
        assert_eq!(check(&flac(4, &good)), Ok(()));
        let mut bomb = good.clone();
        let at = 4 + 5 + 4; // the first comment's length
        bomb[at..at + 4].copy_from_slice(&0xC7BD_94A0u32.to_le_bytes());
        let err = check(&flac(4, &bomb)).unwrap_err();
        assert!(err.to_string().contains("FLAC comment declares 3351090336 bytes"), "{err}");
        let packet = |comment: &[u8]| [&b"\x03vorbis"[..], comment].concat();
        assert_eq!(check(&ogg(&packet(&good))), Ok(()));
        assert!(check(&ogg(&packet(&bomb))).unwrap_err().to_string().contains("Ogg comment"));
        // A comment packet spread over three pages (page headers inside it)
        // is reassembled before it is read: a valid one passes.
        let long = "DESCRIPTION=".to_owned() + &"x".repeat(600);
        let spanning = packet(&vorbis_comment("hoosh", &[&long, "TITLE=after the page breaks"]));
        assert!(spanning.len() > 510);
        assert_eq!(check(&ogg(&spanning)), Ok(()));
    }

    #[test]
    fn flac_picture_field_lengths_must_fit() {
        let mut pic = 3u32.to_be_bytes().to_vec();
        for field in [&b"image/png"[..], b"cover"] {
            pic.extend_from_slice(&(field.len() as u32).to_be_bytes());
            pic.extend_from_slice(field);
            if field == b"cover" {
                pic.extend_from_slice(&[0; 16]);
            }
        }
        pic.extend_from_slice(&4u32.to_be_bytes());
        pic.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(check(&flac(6, &pic)), Ok(()));
        let mut bomb = pic.clone();
        bomb[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(check(&flac(6, &bomb)).unwrap_err().to_string().contains("media type declares"));
    }

    #[test]
    fn the_fuzzer_s_flac_file_is_refused() {
        let bytes = include_bytes!("../../hoosh-fuzz/regressions/audio_container/flac-vorbis-comment-3gb-alloc");
        assert!(check(bytes).is_err());
    }

    /// An ID3v2.3 tag with one frame of `size` bytes declared, 4 held.
    fn id3(version: u8, size: u32) -> Vec<u8> {
        let mut frame = b"TSSE".to_vec();
        frame.extend_from_slice(&size.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, b'a', b'b', b'c']);
        let mut tag = vec![b'I', b'D', b'3', version, 0, 0, 0, 0, 0, frame.len() as u8];
        tag.extend(frame);
        tag.extend_from_slice(&[0xff, 0xfb, 0x90, 0x00]); // an MP3 frame header after it
        tag
    }

    #[test]
    fn id3_frames_must_fit_in_their_tag() {
        assert_eq!(check(&id3(3, 4)), Ok(()));
        let err = check(&id3(3, 0xFFFF_FFA9)).unwrap_err();
        assert!(err.to_string().contains("ID3v2 frame `TSSE` declares 4294967209 bytes"), "{err}");
        assert!(check(&id3(4, 0x0fff_ffff)).is_err(), "2.4 sizes are syncsafe and still checked");
        let regression = include_bytes!("../../hoosh-fuzz/regressions/audio_container/id3-frame-4gb-alloc");
        assert!(check(regression).is_err());
        // Junk before the tag does not hide it (the probe skips junk too).
        assert!(check(&[&b"junk"[..], &id3(3, 0xFFFF_FFA9)].concat()).is_err());
        // A size with its high bits set is read masked, as symphonia reads it.
        let masked = include_bytes!("../../hoosh-fuzz/regressions/audio_container/id3-unsync-frame-4gb-alloc");
        assert!(check(masked).is_err());
        // A second tag after the first is read too.
        let first = id3(3, 4);
        let two = [&first[..first.len() - 4], &id3(3, 0xFFFF_FFA9)].concat();
        assert!(check(&two).is_err());
        let both_fine = [&first[..first.len() - 4], &id3(3, 4)].concat();
        assert_eq!(check(&both_fine), Ok(()));
        let regression = include_bytes!("../../hoosh-fuzz/regressions/audio_container/id3-second-tag-4gb-alloc");
        assert!(check(regression).is_err());
        // Not a tag: the bytes `ID3` inside MPEG audio, after its frame sync.
        let mut mpeg = vec![0xff, 0xfb, 0x90, 0x00];
        mpeg.extend(id3(3, 0xFFFF_FFA9));
        assert_eq!(check(&mpeg), Ok(()));
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
