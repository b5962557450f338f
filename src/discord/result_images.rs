//! Result files within Discord's upload limit: a file that fits goes as it is; a larger image is
//! re-encoded as JPEG (lower qualities, then smaller sizes) until it fits, and the message says
//! so; anything else that does not fit is left out, also said. CPU-bound: run it off the
//! actors' threads.

use std::io::Cursor;

use comfy_fleet_actors::discord::message::ChatFile;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageReader};

/// JPEG qualities tried, best first.
const QUALITIES: &[u8] = &[90, 80, 70, 60, 50];
/// Each smaller try keeps this share of the sides.
const SHRINK: f64 = 0.75;
/// Smaller tries at most.
const SHRINKS: usize = 8;

/// One result file, fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Fitted {
    Fits(ChatFile),
    /// Re-encoded to fit; the note says how.
    Recompressed(ChatFile, String),
    /// Could not be made to fit; the note says why.
    Left(String),
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `bytes` as a file named `name`, at most `limit` bytes.
pub fn fit(name: &str, bytes: &[u8], limit: u64) -> Fitted {
    if bytes.len() as u64 <= limit {
        return Fitted::Fits(ChatFile::new(name, bytes));
    }
    let over = format!(
        "`{name}` is {}, over this channel's {} upload limit",
        mib(bytes.len() as u64),
        mib(limit)
    );
    let decoded = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.decode().ok());
    let Some(image) = decoded else {
        return Fitted::Left(format!(
            "{over}, and is not an image that can be made smaller: left out"
        ));
    };
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let jpeg_name = format!("{stem}.jpg");
    let mut current = DynamicImage::ImageRgb8(image.to_rgb8());
    for shrink in 0..=SHRINKS {
        for &quality in QUALITIES {
            let mut out = Vec::new();
            if JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(&current)
                .is_err()
            {
                break;
            }
            if out.len() as u64 <= limit {
                let size = if shrink == 0 {
                    String::new()
                } else {
                    format!(" at {}×{}", current.width(), current.height())
                };
                return Fitted::Recompressed(
                    ChatFile::new(jpeg_name, out),
                    format!("{over}: sent as JPEG (quality {quality}){size}"),
                );
            }
        }
        let (w, h) = (
            ((f64::from(current.width()) * SHRINK) as u32).max(1),
            ((f64::from(current.height()) * SHRINK) as u32).max(1),
        );
        current = current.resize_exact(w, h, FilterType::Triangle);
    }
    Fitted::Left(format!("{over}, even as a small JPEG: left out"))
}

#[cfg(test)]
mod tests {
    use image::{ImageFormat, RgbImage};

    use super::*;

    /// A noisy PNG: large, and compressible as JPEG.
    fn noisy_png(side: u32) -> Vec<u8> {
        let mut state = 12345u32;
        let image = RgbImage::from_fn(side, side, |_, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let v = (state >> 16) as u8;
            image::Rgb([v, v / 2, 255 - v])
        });
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_file_within_the_limit_goes_as_it_is() {
        let png = noisy_png(8);
        assert_eq!(
            fit("a.png", &png, 1 << 20),
            Fitted::Fits(ChatFile::new("a.png", png.as_slice()))
        );
    }

    #[test]
    fn a_large_image_becomes_a_jpeg_that_fits_and_says_so() {
        let png = noisy_png(256);
        let limit = png.len() as u64 / 3;
        let Fitted::Recompressed(file, note) = fit("result.png", &png, limit) else {
            panic!("recompressed");
        };
        assert_eq!(file.name, "result.jpg");
        assert!(file.bytes.len() as u64 <= limit);
        assert_eq!(image::guess_format(&file.bytes).unwrap(), ImageFormat::Jpeg);
        assert!(
            note.contains("result.png") && note.contains("JPEG"),
            "{note}"
        );
        let Fitted::Recompressed(small, note) = fit("result.png", &png, 3000) else {
            panic!("shrunk");
        };
        assert!(small.bytes.len() <= 3000 && note.contains(" at "), "{note}");
    }

    #[test]
    fn what_is_not_an_image_is_left_out_with_a_reason() {
        let Fitted::Left(note) = fit("clip.mp4", &[0u8; 100], 10) else {
            panic!("left out");
        };
        assert!(
            note.contains("clip.mp4") && note.contains("left out"),
            "{note}"
        );
    }
}
