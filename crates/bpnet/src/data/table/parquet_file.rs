//! The file handle the Parquet reader reads through. parquet-rs reads a
//! page header from a [`std::io::Read`] and, skipping a field whose damaged
//! length runs past the end of the file, keeps calling `read`, which
//! returns 0 at the end forever: the fuzz target (`fuzz/`) found a 6.9 KB
//! file that kept `bpnet train` reading for minutes. And it allocates a
//! range's claimed length before reading it. Here, reading at the end is
//! an error, and a range must lie within the file.

use std::fs::File;
use std::io::{BufReader, Read};

use bytes::Bytes;
use parquet::errors::{ParquetError, Result};
use parquet::file::reader::{ChunkReader, Length};

/// A Parquet file whose reads stop at its end (see the module docs).
pub(super) struct ParquetFile {
    file: File,
    len: u64,
}

impl ParquetFile {
    pub(super) fn new(file: File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(ParquetFile { file, len })
    }
}

impl Length for ParquetFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader for which the end of the data is an error, not a 0-byte read.
pub(super) struct EndIsError<R>(R);

impl<R: Read> Read for EndIsError<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 if !buf.is_empty() => Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => Ok(n),
        }
    }
}

impl ChunkReader for ParquetFile {
    type T = EndIsError<BufReader<File>>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        Ok(EndIsError(self.file.get_read(start)?))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        let end = start.checked_add(length as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(ParquetError::EOF(format!(
                "a range of {length} bytes at byte {start} runs past the end of the {}-byte file",
                self.len
            )));
        }
        self.file.get_bytes(start, length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_at_the_end_is_an_error_and_ranges_stay_within_the_file() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, b"0123456789").unwrap();
        let f = ParquetFile::new(tmp.reopen().unwrap()).unwrap();
        let mut r = f.get_read(8).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        assert_eq!(r.read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(&f.get_bytes(2, 3).unwrap()[..], b"234");
        assert!(f.get_bytes(8, 3).is_err());
        assert!(f.get_bytes(u64::MAX, 2).is_err());
    }
}
