//! Text files that are not UTF-8: a CSV saved as UTF-16 (spreadsheets'
//! "Unicode text"), UTF-32, or a legacy 8-bit encoding such as Latin-1 /
//! Windows-1252. Each is named as such, with the command that converts it,
//! instead of the parse error it would otherwise cause.

use std::path::Path;

/// Bytes at the start of a file examined for UTF-16 without a byte order mark.
const WINDOW: usize = 4096;

/// Refuses UTF-16 and UTF-32 (by byte order mark, or by the NUL bytes that
/// ASCII text in UTF-16 has in every other byte) and other NUL bytes; the
/// reason is one line. Linear time: one scan for NUL.
pub(crate) fn check_not_utf16(bytes: &[u8], path: &Path) -> Result<(), String> {
    let encoding = match bytes {
        [0xFF, 0xFE, 0, 0, ..] => Some(("UTF-32 (little-endian)", "UTF-32LE")),
        [0, 0, 0xFE, 0xFF, ..] => Some(("UTF-32 (big-endian)", "UTF-32BE")),
        [0xFF, 0xFE, ..] => Some(("UTF-16 (little-endian)", "UTF-16LE")),
        [0xFE, 0xFF, ..] => Some(("UTF-16 (big-endian)", "UTF-16BE")),
        _ if !bytes.contains(&0) => return Ok(()),
        _ => utf16_without_bom(&bytes[..bytes.len().min(WINDOW)]),
    };
    if let Some((name, iconv)) = encoding {
        return Err(format!(
            "the file is {name} encoded, not UTF-8; convert it, e.g. {}",
            convert(iconv, path)
        ));
    }
    let at = bytes.iter().position(|&b| b == 0).unwrap_or(0);
    Err(format!(
        "line {}: a NUL byte (0x00) at byte {at}: not a text CSV file",
        line_of(bytes, at)
    ))
}

/// UTF-16 without a byte order mark: most NUL bytes at odd offsets (ASCII
/// little-endian) or at even ones (big-endian).
fn utf16_without_bom(window: &[u8]) -> Option<(&'static str, &'static str)> {
    let zeros = |parity: usize| window.iter().skip(parity).step_by(2).filter(|&&b| b == 0).count();
    let (even, odd) = (zeros(0), zeros(1));
    let half = window.len() / 2;
    if odd * 4 > half * 3 && even * 4 < half {
        Some(("UTF-16 (little-endian)", "UTF-16LE"))
    } else if even * 4 > half * 3 && odd * 4 < half {
        Some(("UTF-16 (big-endian)", "UTF-16BE"))
    } else {
        None
    }
}

/// `line N: <latin1_hint>` for the first byte of `bytes` that is not UTF-8,
/// or `None` when all of it is.
pub(crate) fn not_utf8(bytes: &[u8], path: &Path) -> Option<String> {
    let e = std::str::from_utf8(bytes).err()?;
    let at = e.valid_up_to();
    let byte = bytes.get(at).copied().unwrap_or(0);
    Some(format!("line {}: {}", line_of(bytes, at), latin1_hint(byte, path)))
}

/// What an invalid UTF-8 `byte` probably is and how to convert the file.
pub(crate) fn latin1_hint(byte: u8, path: &Path) -> String {
    let (charset, looks, iconv) = match byte {
        0x80..=0x9F => ("Windows-1252", "Windows-1252", "WINDOWS-1252"),
        _ => ("Latin-1", "Latin-1 / Windows-1252", "LATIN1"),
    };
    let shown = windows_1252(byte).map_or(String::new(), |c| format!(", which is '{c}' in {charset}"));
    format!(
        "invalid UTF-8 (byte 0x{byte:02x}{shown}): the file looks {looks} encoded; convert it to UTF-8, e.g. {}",
        convert(iconv, path)
    )
}

/// The character `byte` stands for in Windows-1252 (a superset of Latin-1's
/// printable characters).
fn windows_1252(byte: u8) -> Option<char> {
    const C1: &str = "€\u{0}‚ƒ„…†‡ˆ‰Š‹Œ\u{0}Ž\u{0}\u{0}‘’“”•–—˜™š›œ\u{0}žŸ";
    match byte {
        0x80..=0x9F => C1.chars().nth(usize::from(byte - 0x80)).filter(|&c| c != '\0'),
        0xA1..=0xFF => char::from_u32(u32::from(byte)),
        _ => None,
    }
}

/// `iconv -f FROM -t UTF-8 data.csv > data-utf8.csv`.
fn convert(from: &str, path: &Path) -> String {
    let stem = path.file_stem().map_or("data".into(), |s| s.to_string_lossy());
    let ext = path
        .extension()
        .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
    let out = path.with_file_name(format!("{stem}-utf8{ext}"));
    format!("iconv -f {from} -t UTF-8 {} > {}", path.display(), out.display())
}

/// 1-based line of byte offset `at` (lines counted as the CSV readers count).
fn line_of(bytes: &[u8], at: usize) -> usize {
    super::csv::line_ends(&bytes[..at.min(bytes.len())], super::csv::cr_lines(bytes)) as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c1_table_has_32_entries() {
        assert_eq!(windows_1252(0x80), Some('€'));
        assert_eq!(windows_1252(0x92), Some('’'));
        assert_eq!(windows_1252(0x9F), Some('Ÿ'));
        assert_eq!(windows_1252(0x81), None);
        assert_eq!(windows_1252(0xE9), Some('é'));
    }

    #[test]
    fn utf16_without_bom_is_recognised() {
        let le: Vec<u8> = "a,b\n1,2\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = "a,b\n1,2\n".encode_utf16().flat_map(u16::to_be_bytes).collect();
        let p = Path::new("x.csv");
        assert!(check_not_utf16(&le, p).unwrap_err().contains("UTF-16 (little-endian)"));
        assert!(check_not_utf16(&be, p).unwrap_err().contains("UTF-16 (big-endian)"));
        assert!(
            check_not_utf16(b"a,b\n1,\x002\n", p)
                .unwrap_err()
                .contains("line 2: a NUL byte")
        );
        assert!(check_not_utf16(b"a,b\n1,2\n", p).is_ok());
    }
}
