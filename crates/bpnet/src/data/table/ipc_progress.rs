//! The progress of a whole-file Arrow IPC read, told to the hook of
//! [`super::set_read_progress`] after each record batch: the batches read
//! as a share of the file's bytes, and the rows so far; the last report
//! (done) when the batches end.

use std::path::Path;

use super::ReadProgress;
use super::columnar::Batches;
use super::read::{report, share_of};

/// `batches`, reporting as they are read (see the module docs).
pub(super) struct Reporting {
    batches: Batches,
    /// Batches read, and how many the file has.
    read: u64,
    count: u64,
    rows: u64,
    /// The file's size; `None` once the last report is made.
    bytes: Option<u64>,
}

impl Reporting {
    /// `batches`, the `count` record batches of the file at `path`.
    pub(super) fn new(path: &Path, batches: Batches, count: usize) -> Self {
        Reporting {
            batches,
            read: 0,
            count: count as u64,
            rows: 0,
            bytes: Some(std::fs::metadata(path).map_or(0, |m| m.len())),
        }
    }
}

impl Iterator for Reporting {
    type Item = <Batches as Iterator>::Item;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.batches.next();
        let Some(total) = self.bytes else {
            return next;
        };
        match &next {
            Some(Ok(batch)) => {
                self.read += 1;
                self.rows += batch.num_rows() as u64;
                report(ReadProgress {
                    bytes: share_of(total, self.read, self.count),
                    total,
                    rows: self.rows,
                    done: false,
                });
            }
            Some(Err(_)) => {}
            None => {
                self.bytes = None;
                report(ReadProgress {
                    bytes: total,
                    total,
                    rows: self.rows,
                    done: true,
                });
            }
        }
        next
    }
}
