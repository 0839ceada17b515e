//! PNG encoding of an RGB pixel buffer (the `png` crate; no image library).

use bpnet::error::{Error, Result};

/// Encodes `rgb: [height * width * 3]` bytes (row-major, 8 bits per channel)
/// as a PNG file.
pub fn png_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let fail = |e: png::EncodingError| Error::State(format!("encoding a {width}x{height} PNG: {e}"));
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Balanced);
    let mut writer = enc.write_header().map_err(fail)?;
    writer.write_image_data(rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}
