//! Real image bytes for the fake: deterministic pictures derived from a seed (so different inputs
//! give different files), PNG encoding with ComfyUI's `prompt` text chunk, small JPEG sampler
//! previews, and the `/view?preview=` conversions.

use std::io::Cursor;

use image::{ImageEncoder, ImageFormat};
use thiserror::Error;

/// The largest picture the fake renders (pixels); bigger requests are scaled down.
const MAX_PIXELS: u64 = 4096 * 4096;

/// Errors while encoding or decoding images.
#[derive(Debug, Error)]
pub enum ImagingError {
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
    #[error("image conversion failed: {0}")]
    Image(#[from] image::ImageError),
}

/// A batch of images flowing between fake nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub width: u32,
    pub height: u32,
    pub batch: u32,
    pub seed: u64,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            width: 64,
            height: 64,
            batch: 1,
            seed: 0,
        }
    }
}

/// SplitMix64: a tiny, good-enough mixer.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Width and height actually rendered (capped at [`MAX_PIXELS`]).
pub fn rendered_size(spec: &ImageSpec) -> (u32, u32) {
    let (w, h) = (spec.width.max(1) as u64, spec.height.max(1) as u64);
    if w * h <= MAX_PIXELS {
        return (w as u32, h as u32);
    }
    let scale = ((MAX_PIXELS as f64) / (w * h) as f64).sqrt();
    (
        ((w as f64 * scale) as u32).max(1),
        ((h as f64 * scale) as u32).max(1),
    )
}

/// RGB pixels of image `index` of the batch: a seed-coloured gradient with 8×8 block noise.
pub fn render_rgb(spec: &ImageSpec, index: u32) -> (u32, u32, Vec<u8>) {
    let (w, h) = rendered_size(spec);
    let seed = mix(spec.seed ^ (u64::from(index) << 40));
    let base = [seed as u8, (seed >> 8) as u8, (seed >> 16) as u8];
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        let gy = (y * 255 / h.max(1)) as u8;
        for x in 0..w {
            let gx = (x * 255 / w.max(1)) as u8;
            let block = mix(seed ^ (u64::from(x / 8) << 20) ^ u64::from(y / 8));
            let noise = (block & 0x3f) as u8;
            out.push(base[0].wrapping_add(gx / 2).wrapping_add(noise));
            out.push(base[1].wrapping_add(gy / 2).wrapping_add(noise / 2));
            out.push(base[2].wrapping_add((gx ^ gy) / 4));
        }
    }
    (w, h, out)
}

/// Encodes RGB pixels as PNG, with optional `tEXt` chunks (ComfyUI writes `prompt`/`workflow`).
pub fn encode_png(
    width: u32,
    height: u32,
    rgb: &[u8],
    text: &[(&str, String)],
) -> Result<Vec<u8>, ImagingError> {
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        for (k, v) in text {
            enc.add_text_chunk((*k).to_string(), v.clone())?;
        }
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(buf)
}

/// A small JPEG preview (at most 64 px wide) of a sampler at `step`.
pub fn preview_jpeg(spec: &ImageSpec, step: u64) -> Result<Vec<u8>, ImagingError> {
    let w = (spec.width / 8).clamp(8, 64);
    let h = (spec.height / 8).clamp(8, 64);
    let small = ImageSpec {
        width: w,
        height: h,
        batch: 1,
        seed: mix(spec.seed ^ step),
    };
    let (w, h, rgb) = render_rgb(&small, 0);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 75).write_image(
        &rgb,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// `/view?preview=FORMAT;QUALITY[&channel=…]`: re-encodes a stored image.
pub fn convert_preview(
    bytes: &[u8],
    format: &str,
    quality: u8,
    channel: &str,
) -> Result<(Vec<u8>, &'static str), ImagingError> {
    let img = image::load_from_memory(bytes)?;
    let mut out = Vec::new();
    let jpeg = format == "jpeg" && !channel.contains('a');
    if jpeg {
        let rgb = img.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .write_image(
                rgb.as_raw(),
                rgb.width(),
                rgb.height(),
                image::ExtendedColorType::Rgb8,
            )?;
        Ok((out, "image/jpeg"))
    } else {
        let img = if channel == "rgb" {
            image::DynamicImage::ImageRgb8(img.to_rgb8())
        } else {
            img
        };
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::WebP)?;
        Ok((out, "image/webp"))
    }
}

/// `/view?channel=rgb|a`: the RGB part or the alpha channel as PNG.
pub fn extract_channel(bytes: &[u8], channel: &str) -> Result<Vec<u8>, ImagingError> {
    let img = image::load_from_memory(bytes)?;
    let mut out = Vec::new();
    if channel == "a" {
        let rgba = img.to_rgba8();
        let alpha: Vec<u8> = rgba.pixels().flat_map(|p| [0, 0, 0, p[3]]).collect();
        let a = image::RgbaImage::from_raw(rgba.width(), rgba.height(), alpha)
            .unwrap_or_else(|| image::RgbaImage::new(1, 1));
        image::DynamicImage::ImageRgba8(a)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)?;
    } else {
        image::DynamicImage::ImageRgb8(img.to_rgb8())
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)?;
    }
    Ok(out)
}

/// Width and height of an image file, or `None` when it is not an image Pillow would open.
pub fn probe(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_roundtrips_and_seeds_differ() {
        let a = ImageSpec {
            width: 32,
            height: 24,
            batch: 1,
            seed: 1,
        };
        let b = ImageSpec {
            seed: 2,
            ..a.clone()
        };
        let (w, h, pa) = render_rgb(&a, 0);
        let (_, _, pb) = render_rgb(&b, 0);
        assert_ne!(pa, pb);
        let png = encode_png(w, h, &pa, &[("prompt", "{}".into())]).unwrap();
        assert_eq!(probe(&png), Some((32, 24)));
        let (webp, ct) = convert_preview(&png, "webp", 50, "").unwrap();
        assert_eq!(ct, "image/webp");
        assert!(!webp.is_empty());
        assert!(probe(b"not an image").is_none());
    }
}
