//! A check of an Arrow IPC file's compressed buffers before arrow-rs reads
//! it: each compressed buffer starts with its uncompressed length (8 bytes),
//! and the reader allocates that much before decompressing. A damaged
//! length (random bytes: typically petabytes) makes that allocation fail,
//! which aborts the process (`tests/columnar_mutations.rs` found it). No
//! codec of the IPC format expands data more than [`MAX_RATIO`] to one
//! (LZ4 frames at most about 255:1; zstd's densest block, run-length
//! encoded, 128 KiB from 4 bytes), so a length beyond that bound is a
//! damaged file, refused here with an error naming it.
//!
//! The same goes for a batch's own length (the reader allocates it before
//! reading): a batch that would end past the end of the file is refused.
//!
//! The check reads the footer and each batch (as the reader will).
//! Anything it cannot parse is left to the reader, which reports it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use arrow_ipc::{Block, CompressionType, root_as_footer, root_as_message};

/// Bytes out per byte in that no IPC codec exceeds (see the module docs).
const MAX_RATIO: u64 = 32_768;
/// Slack for frame headers on tiny buffers.
const SLACK: u64 = 1 << 20;

/// `Err(reason)` when a compressed buffer of the IPC file at `path` claims
/// an uncompressed length that no codec can produce from its bytes.
pub(super) fn check_compressed_lengths(path: &Path) -> std::result::Result<(), String> {
    check_blocks(path, None)
}

/// [`check_compressed_lengths`] for every dictionary and record batch
/// (`batch` `None`) or record batch `batch` alone; a file whose footer
/// does not parse is left to the reader.
fn check_blocks(path: &Path, batch: Option<usize>) -> std::result::Result<(), String> {
    let Ok(mut file) = File::open(path) else {
        return Ok(());
    };
    let Some(footer) = footer_bytes(&mut file) else {
        return Ok(());
    };
    let Ok(footer) = root_as_footer(&footer) else {
        return Ok(());
    };
    let blocks: Vec<Block> = match batch {
        None => footer
            .dictionaries()
            .into_iter()
            .chain(footer.recordBatches())
            .flatten()
            .copied()
            .collect(),
        Some(i) => footer
            .recordBatches()
            .and_then(|b| (i < b.len()).then(|| *b.get(i)))
            .into_iter()
            .collect(),
    };
    for block in &blocks {
        check_block(&mut file, block)?;
    }
    Ok(())
}

/// The rows of each record batch of the IPC file at `path`, from each
/// batch's message metadata alone (its body is not read), and a check of
/// the dictionary batches (which the reader reads when it opens the file).
/// `Err(reason)` when the footer or a batch's metadata does not parse.
pub(super) fn batch_rows(path: &Path) -> std::result::Result<Vec<usize>, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let footer = footer_bytes(&mut file).ok_or("no footer")?;
    let footer =
        root_as_footer(&footer).map_err(|e| format!("footer: {}", e.to_string().lines().next().unwrap_or("")))?;
    for block in footer.dictionaries().into_iter().flatten() {
        check_block(&mut file, block)?;
    }
    let mut rows = Vec::new();
    for block in footer.recordBatches().into_iter().flatten() {
        let (Ok(offset), Ok(meta_len)) = (u64::try_from(block.offset()), u64::try_from(block.metaDataLength())) else {
            return Err("a batch with a negative offset or length".into());
        };
        let meta = read_at(&mut file, offset, meta_len).ok_or("a batch's metadata lies past the end of the file")?;
        let skip = if meta.starts_with(&[0xff; 4]) { 8 } else { 4 };
        let batch = meta
            .get(skip..)
            .and_then(|m| root_as_message(m).ok())
            .and_then(|m| m.header_as_record_batch().map(|b| b.length()))
            .ok_or_else(|| format!("the batch at byte {offset} has no readable metadata"))?;
        rows.push(usize::try_from(batch).map_err(|_| format!("the batch at byte {offset} claims {batch} rows"))?);
    }
    Ok(rows)
}

/// [`check_compressed_lengths`] for record batch `index` alone.
pub(super) fn check_batch(path: &Path, index: usize) -> std::result::Result<(), String> {
    check_blocks(path, Some(index))
}

/// The footer's flatbuffer: the file ends with its length (i32) and
/// `ARROW1`.
fn footer_bytes(file: &mut File) -> Option<Vec<u8>> {
    let size = file.seek(SeekFrom::End(0)).ok()?;
    let mut tail = [0u8; 10];
    file.seek(SeekFrom::Start(size.checked_sub(10)?)).ok()?;
    file.read_exact(&mut tail).ok()?;
    let len = u64::try_from(i32::from_le_bytes(tail[..4].try_into().ok()?)).ok()?;
    let start = size.checked_sub(10 + len)?;
    read_at(file, start, len)
}

/// `len` bytes at `offset` (`None` past the end or for absurd lengths).
fn read_at(file: &mut File, offset: u64, len: u64) -> Option<Vec<u8>> {
    let size = file.seek(SeekFrom::End(0)).ok()?;
    if offset.checked_add(len)? > size {
        return None;
    }
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Checks that one record or dictionary batch lies within the file (the
/// reader allocates its claimed size before reading it: gigabytes for a
/// damaged length) and that its compressed buffers claim possible sizes.
fn check_block(file: &mut File, block: &Block) -> std::result::Result<(), String> {
    let (Ok(offset), Ok(meta_len)) = (u64::try_from(block.offset()), u64::try_from(block.metaDataLength())) else {
        return Ok(());
    };
    let size = file.seek(SeekFrom::End(0)).unwrap_or(u64::MAX);
    let body_len = u64::try_from(block.bodyLength()).unwrap_or(0);
    let end = offset.saturating_add(meta_len).saturating_add(body_len);
    if end > size {
        return Err(format!(
            "a batch at byte {offset} claims {} bytes, past the end of the {size}-byte file",
            meta_len.saturating_add(body_len)
        ));
    }
    // The block as the reader reads it: metadata and body together (the
    // message's flatbuffer may point past its metadata into the body, and
    // the reader accepts that), then the message after a continuation
    // marker and its length, or (the legacy format) its length alone.
    let Some(block_bytes) = read_at(file, offset, meta_len + body_len) else {
        return Ok(());
    };
    let skip = if block_bytes.starts_with(&[0xff; 4]) { 8 } else { 4 };
    let Some(Ok(message)) = block_bytes.get(skip..).map(root_as_message) else {
        return Ok(());
    };
    let batch = message
        .header_as_record_batch()
        .or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
    let Some(batch) = batch else {
        return Ok(());
    };
    let (Some(compression), Some(buffers)) = (batch.compression(), batch.buffers()) else {
        return Ok(());
    };
    let codec = match compression.codec() {
        CompressionType::LZ4_FRAME => "LZ4",
        _ => "zstd",
    };
    let body = &block_bytes[usize::try_from(meta_len).unwrap_or(usize::MAX).min(block_bytes.len())..];
    for buffer in buffers {
        let (Ok(at), Ok(len)) = (usize::try_from(buffer.offset()), u64::try_from(buffer.length())) else {
            continue;
        };
        if len < 8 {
            continue;
        }
        let Some(prefix) = at.checked_add(8).and_then(|end| body.get(at..end)) else {
            continue;
        };
        let claimed = i64::from_le_bytes(prefix.try_into().unwrap_or([0; 8]));
        // −1: stored uncompressed.
        if claimed < 0 {
            continue;
        }
        let bound = (len - 8).saturating_mul(MAX_RATIO).saturating_add(SLACK);
        if claimed as u64 > bound {
            return Err(format!(
                "a {codec} buffer of {len} bytes claims {claimed} bytes uncompressed"
            ));
        }
    }
    Ok(())
}
