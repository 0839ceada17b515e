//! CSV files in another encoding than UTF-8 fail with one line that names
//! the encoding and the command that converts the file, instead of a parse
//! error such as "line 135: too few fields"; the file is left as it was.

use std::path::Path;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Trains on `name` holding `bytes`; returns stderr after checking the
/// failure is one line, the file unchanged and no model written.
fn train_on(dir: &Path, name: &str, bytes: &[u8]) -> String {
    std::fs::write(dir.join(name), bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args([
            "train",
            "--data",
            name,
            "--target",
            "cultivar",
            "--epochs",
            "1",
            "--out",
            "m.safetensors",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: {name}: ")) && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert_eq!(std::fs::read(dir.join(name)).unwrap(), bytes, "{name} changed");
    assert!(!dir.join("m.safetensors").exists());
    stderr
}

fn wine() -> String {
    std::fs::read_to_string(format!("{ROOT}/data/wine.csv")).unwrap()
}

fn utf16(text: &str, bom: bool, little: bool) -> Vec<u8> {
    let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
    units
        .flat_map(|u| if little { u.to_le_bytes() } else { u.to_be_bytes() })
        .collect()
}

#[test]
fn utf16_files_are_named_with_the_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "le.csv",
            true,
            true,
            "UTF-16 (little-endian)",
            "iconv -f UTF-16LE -t UTF-8 le.csv > le-utf8.csv",
        ),
        (
            "be.csv",
            true,
            false,
            "UTF-16 (big-endian)",
            "iconv -f UTF-16BE -t UTF-8 be.csv > be-utf8.csv",
        ),
        ("nobom.csv", false, true, "UTF-16 (little-endian)", "-f UTF-16LE"),
    ];
    for (name, bom, little, encoding, iconv) in cases {
        let err = train_on(dir.path(), name, &utf16(&wine(), bom, little));
        assert!(err.contains(encoding) && err.contains(iconv), "{err}");
        assert!(!err.contains("fields"), "{err}");
    }
}

#[test]
fn latin1_files_name_the_line_column_and_conversion() {
    let dir = tempfile::tempdir().unwrap();
    // 'é' as one Latin-1 byte in a text column, and a Windows-1252 quote.
    let text = wine().replacen("class_0", "caf\u{e9}", 1);
    let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    let err = train_on(dir.path(), "latin1.csv", &latin1);
    for want in [
        "line 2, column 'cultivar'",
        "0xe9",
        "'é'",
        "Latin-1",
        "iconv -f LATIN1 -t UTF-8 latin1.csv",
    ] {
        assert!(err.contains(want), "'{want}' not in {err}");
    }
    let mut cp1252 = wine().into_bytes();
    let at = cp1252.iter().position(|&b| b == b'\n').unwrap() + 1;
    cp1252.splice(at..at, [0x92, b'x', b'\n']); // a line that is also ragged
    let err = train_on(dir.path(), "cp1252.csv", &cp1252);
    for want in ["line 2", "0x92", "'’'", "Windows-1252", "iconv -f WINDOWS-1252"] {
        assert!(err.contains(want), "'{want}' not in {err}");
    }
}

#[test]
fn nul_bytes_are_not_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = wine().into_bytes();
    let at = bytes.iter().position(|&b| b == b'\n').unwrap() + 3;
    bytes[at] = 0;
    let err = train_on(dir.path(), "nul.csv", &bytes);
    assert!(err.contains("line 2: a NUL byte"), "{err}");
}

/// A quote opened in the wine data and never closed: one line naming the
/// record's line, instead of training on the rows before it with the rest
/// of the file read as one value.
#[test]
fn an_unclosed_quote_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = wine().lines().map(str::to_string).collect();
    let (at, n) = (40, lines.len());
    lines[at].insert(0, '"');
    let stderr = train_on(dir.path(), "open.csv", (lines.join("\n") + "\n").as_bytes());
    assert!(
        stderr.contains(&format!("line {}: a quoted field opens", at + 1)) && n > at + 100,
        "{stderr}"
    );
}
