//! Text encodings other than UTF-8: which one a file is in (ENCODING, a
//! byte-order mark, or bytes that are not UTF-8 at all), and the file
//! rewritten as UTF-8 into the work root before the phases map it. Every
//! character is kept; only its bytes change.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

/// An encoding COPY reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    /// ISO-8859-1: each byte is the code point of the same number.
    Latin1,
    Windows1252,
    Utf16Le,
    Utf16Be,
}

impl TextEncoding {
    /// The encoding an ENCODING option names (case and `-`/`_` ignored);
    /// `utf-16` alone is little-endian unless a byte-order mark says
    /// otherwise.
    pub fn parse(name: &str) -> Option<TextEncoding> {
        let n: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match n.as_str() {
            "utf8" => TextEncoding::Utf8,
            "latin1" | "iso88591" | "l1" => TextEncoding::Latin1,
            "windows1252" | "cp1252" | "win1252" => TextEncoding::Windows1252,
            "utf16" | "utf16le" => TextEncoding::Utf16Le,
            "utf16be" => TextEncoding::Utf16Be,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Latin1 => "latin-1",
            TextEncoding::Windows1252 => "windows-1252",
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
        }
    }
}

/// The encoding of a file starting with `head`, and why: the given one
/// (a UTF-16 byte-order mark still picks the byte order), else a UTF-16
/// byte-order mark, else Windows-1252 when the head has bytes that are not
/// UTF-8, all of them plausible Windows-1252 text, and not one character
/// UTF-8 encodes in several bytes (a file with both is UTF-8 with bad
/// fields, which are row errors), else UTF-8.
pub fn detect(head: &[u8], given: Option<TextEncoding>) -> (TextEncoding, String) {
    let bom = if head.starts_with(b"\xFF\xFE") {
        Some(TextEncoding::Utf16Le)
    } else if head.starts_with(b"\xFE\xFF") {
        Some(TextEncoding::Utf16Be)
    } else {
        None
    };
    match (given, bom) {
        (Some(TextEncoding::Utf16Le | TextEncoding::Utf16Be), Some(b)) => {
            return (b, "given; byte order from its byte-order mark".into());
        }
        (Some(g), _) => return (g, "given".into()),
        (None, Some(b)) => return (b, "detected from its byte-order mark".into()),
        (None, None) => {}
    }
    if head.contains(&0) {
        // NUL bytes are no text's: a binary file, which the analysis
        // names, not one to rewrite.
        return (TextEncoding::Utf8, String::new());
    }
    let (mut invalid, mut multibyte, mut implausible) = (0usize, 0usize, 0usize);
    let mut rest = head;
    loop {
        let (valid, err) = match std::str::from_utf8(rest) {
            Ok(s) => (s, None),
            Err(e) => (
                std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(),
                Some(e),
            ),
        };
        multibyte += valid.chars().filter(|c| c.len_utf8() > 1).count();
        let Some(e) = err else { break };
        // A sequence cut by the end of the head is not an error.
        let Some(bad) = e.error_len() else { break };
        let at = e.valid_up_to();
        invalid += bad;
        implausible += rest[at..at + bad]
            .iter()
            .filter(|&&b| !plausible_1252(b))
            .count();
        rest = &rest[e.valid_up_to() + bad..];
    }
    if invalid > 0 && multibyte == 0 && implausible == 0 {
        (
            TextEncoding::Windows1252,
            format!("detected: {invalid} bytes are not UTF-8 and none encodes a UTF-8 character"),
        )
    } else {
        (TextEncoding::Utf8, String::new())
    }
}

/// Whether a byte that is not UTF-8 is one Windows-1252 text holds: a
/// letter, a sign or punctuation, not a byte the code page leaves
/// undefined, nor `þ` and `ÿ` (0xFE, 0xFF), which in practice are a
/// UTF-16 mark or a broken UTF-8 file, not text.
fn plausible_1252(b: u8) -> bool {
    b >= 0x80 && !matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D | 0xFE | 0xFF)
}

/// Rewrites `src` (in `encoding`) as UTF-8 into `dst`, without a
/// byte-order mark; the bytes written.
pub fn transcode(src: &Path, dst: &Path, encoding: TextEncoding) -> std::io::Result<u64> {
    let mut input = std::io::BufReader::with_capacity(1 << 20, File::open(src)?);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dst)?);
    let mut decoder = match encoding {
        TextEncoding::Utf8 | TextEncoding::Latin1 => None,
        TextEncoding::Windows1252 => {
            Some(encoding_rs::WINDOWS_1252.new_decoder_without_bom_handling())
        }
        TextEncoding::Utf16Le => Some(encoding_rs::UTF_16LE.new_decoder_with_bom_removal()),
        TextEncoding::Utf16Be => Some(encoding_rs::UTF_16BE.new_decoder_with_bom_removal()),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut text = String::with_capacity(3 << 20);
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let last = n == 0;
        text.clear();
        match decoder.as_mut() {
            Some(d) => {
                text.reserve(d.max_utf8_buffer_length(n).unwrap_or(n * 3));
                // Bytes no character maps to become U+FFFD here, so the
                // row that holds one fails as any bad value does.
                let _ = d.decode_to_string(&buf[..n], &mut text, last);
            }
            None if encoding == TextEncoding::Latin1 => {
                text.extend(buf[..n].iter().map(|&b| b as char));
            }
            None => {
                out.write_all(&buf[..n])?;
                total += n as u64;
                if last {
                    break;
                }
                continue;
            }
        }
        out.write_all(text.as_bytes())?;
        total += text.len() as u64;
        if last {
            break;
        }
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_detection() {
        assert_eq!(TextEncoding::parse("UTF-16"), Some(TextEncoding::Utf16Le));
        assert_eq!(
            TextEncoding::parse("ISO_8859-1"),
            Some(TextEncoding::Latin1)
        );
        assert_eq!(
            TextEncoding::parse("cp1252"),
            Some(TextEncoding::Windows1252)
        );
        assert_eq!(TextEncoding::parse("ebcdic"), None);
        assert_eq!(detect(b"a,b\n1,2\n", None).0, TextEncoding::Utf8);
        assert_eq!(detect("a,é\n".as_bytes(), None).0, TextEncoding::Utf8);
        assert_eq!(detect(b"a,\xe9t\xe9\n", None).0, TextEncoding::Windows1252);
        assert_eq!(detect(b"\xFF\xFEa\0", None).0, TextEncoding::Utf16Le);
        assert_eq!(
            detect(b"\xFE\xFF\0a", Some(TextEncoding::Utf16Le)).0,
            TextEncoding::Utf16Be
        );
        // A UTF-8 file with one bad byte stays UTF-8, and so does one
        // whose only odd bytes are no text's.
        assert_eq!(detect(b"\xc3\xa9,\xe9", None).0, TextEncoding::Utf8);
        assert_eq!(detect(b"ok,bad\xff\xfe\n", None).0, TextEncoding::Utf8);
        assert_eq!(detect(b"PAR1\x15\0\xe9", None).0, TextEncoding::Utf8);
    }

    #[test]
    fn transcodes_every_character() {
        let dir = std::env::temp_dir().join(format!("sluice-enc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (src, dst) = (dir.join("in"), dir.join("out"));
        let cases: [(&[u8], TextEncoding, &str); 4] = [
            (b"caf\xe9,\x80\n", TextEncoding::Windows1252, "café,€\n"),
            (b"caf\xe9,\x80\n", TextEncoding::Latin1, "café,\u{80}\n"),
            (b"\xFF\xFEa\0,\0\xe9\0\n\0", TextEncoding::Utf16Le, "a,é\n"),
            (b"\xFE\xFF\0a\0,\0\xe9\0\n", TextEncoding::Utf16Be, "a,é\n"),
        ];
        for (bytes, enc, want) in cases {
            std::fs::write(&src, bytes).unwrap();
            transcode(&src, &dst, enc).unwrap();
            assert_eq!(std::fs::read_to_string(&dst).unwrap(), want, "{enc:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
