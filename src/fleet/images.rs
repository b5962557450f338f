//! Input image checks: size, real image content (PNG, JPEG or WebP, sniffed from the bytes
//! whatever the file is called) and sane dimensions, before anything is uploaded to ComfyUI
//! (which accepts any bytes and fails only at run time). [`checked_image`] reads the header
//! only; [`decoded_image`] also decodes every pixel, within memory limits.

use std::io::Cursor;

use comfy_fleet_actors::rate_limit::RateLimitConfig;
use image::{ImageFormat, ImageReader};

/// How large an input image may be (`limits.max_image_mb`, `limits.max_image_side`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_bytes: u64,
    /// Largest width or height, in pixels.
    pub max_side: u32,
}

impl ImageLimits {
    /// The limits the config sets.
    pub fn of(limits: &RateLimitConfig) -> Self {
        Self {
            max_bytes: limits.max_image_bytes(),
            max_side: limits.max_image_side,
        }
    }
}

/// One image a user sent for an image parameter.
#[derive(Debug, Clone)]
pub struct InputImage {
    /// The template parameter it fills (`image`, `image2`…).
    pub param: String,
    /// The name it was sent under (only for messages).
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// A checked image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedImage {
    pub width: u32,
    pub height: u32,
    pub extension: &'static str,
}

/// Why an image was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("`{filename}` ({param}) is empty; attach a PNG, JPEG or WebP image")]
    Empty { param: String, filename: String },
    #[error(
        "`{filename}` ({param}) is {size} bytes, more than the {limit} allowed; send a smaller image"
    )]
    TooLarge {
        param: String,
        filename: String,
        size: usize,
        limit: u64,
    },
    #[error("`{filename}` ({param}) is not a PNG, JPEG or WebP image{}", found.as_ref().map(|f| format!(" (it looks like {f})")).unwrap_or_default())]
    NotAnImage {
        param: String,
        filename: String,
        found: Option<String>,
    },
    #[error("`{filename}` ({param}) is a damaged image: {reason}")]
    Damaged {
        param: String,
        filename: String,
        reason: String,
    },
    #[error(
        "`{filename}` ({param}) is {width}×{height}; images may be at most {max_side} pixels on a side"
    )]
    TooBig {
        param: String,
        filename: String,
        width: u32,
        height: u32,
        max_side: u32,
    },
}

/// Checks an image from its header: at most `limits.max_bytes`, a real PNG/JPEG/WebP, at most
/// `limits.max_side` pixels a side.
pub fn checked_image(image: &InputImage, limits: &ImageLimits) -> Result<CheckedImage, ImageError> {
    let limit = limits.max_bytes;
    let (param, filename) = (image.param.clone(), image.filename.clone());
    if image.bytes.is_empty() {
        return Err(ImageError::Empty { param, filename });
    }
    if image.bytes.len() as u64 > limit {
        return Err(ImageError::TooLarge {
            param,
            filename,
            size: image.bytes.len(),
            limit,
        });
    }
    let reader = ImageReader::new(Cursor::new(&image.bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Damaged {
            param: param.clone(),
            filename: filename.clone(),
            reason: e.to_string(),
        })?;
    let extension = match reader.format() {
        Some(ImageFormat::Png) => "png",
        Some(ImageFormat::Jpeg) => "jpg",
        Some(ImageFormat::WebP) => "webp",
        other => {
            let found = other
                .map(|f| format!("{f:?}"))
                .or_else(|| sniff(&image.bytes));
            return Err(ImageError::NotAnImage {
                param,
                filename,
                found,
            });
        }
    };
    let (width, height) = reader.into_dimensions().map_err(|e| ImageError::Damaged {
        param: param.clone(),
        filename: filename.clone(),
        reason: e.to_string(),
    })?;
    if width == 0 || height == 0 {
        return Err(ImageError::Damaged {
            param,
            filename,
            reason: "it has no pixels".into(),
        });
    }
    if width > limits.max_side || height > limits.max_side {
        return Err(ImageError::TooBig {
            param,
            filename,
            width,
            height,
            max_side: limits.max_side,
        });
    }
    Ok(CheckedImage {
        width,
        height,
        extension,
    })
}

/// [`checked_image`], then decodes every pixel (with the decoder's memory bounded by the
/// dimensions allowed), so a file with a valid header and broken data is refused too. CPU-bound:
/// call it off any actor's thread (`spawn_blocking`).
pub fn decoded_image(image: &InputImage, limits: &ImageLimits) -> Result<CheckedImage, ImageError> {
    let checked = checked_image(image, limits)?;
    let mut reader = ImageReader::new(Cursor::new(&image.bytes))
        .with_guessed_format()
        .map_err(|e| damaged(image, e.to_string()))?;
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(limits.max_side);
    bounds.max_image_height = Some(limits.max_side);
    // RGBA at 16 bits per channel, plus room for the decoder's own buffers.
    bounds.max_alloc = Some(u64::from(checked.width) * u64::from(checked.height) * 8 + (64 << 20));
    reader.limits(bounds);
    reader.decode().map_err(|e| damaged(image, e.to_string()))?;
    Ok(checked)
}

fn damaged(image: &InputImage, reason: String) -> ImageError {
    ImageError::Damaged {
        param: image.param.clone(),
        filename: image.filename.clone(),
        reason,
    }
}

/// A word on what non-image bytes look like, for the error message.
fn sniff(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(512)];
    if head.starts_with(b"%PDF") {
        Some("a PDF".into())
    } else if head.starts_with(b"PK\x03\x04") {
        Some("a ZIP archive".into())
    } else if head.starts_with(b"GIF8") {
        Some("a GIF".into())
    } else if std::str::from_utf8(head).is_ok() {
        Some("text".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let img = image::RgbImage::new(width, height);
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    fn limits(max_bytes: u64) -> ImageLimits {
        ImageLimits {
            max_bytes,
            max_side: 8192,
        }
    }

    fn input(bytes: Vec<u8>) -> InputImage {
        InputImage {
            param: "image".into(),
            filename: "cat.png".into(),
            bytes,
        }
    }

    #[test]
    fn a_real_png_passes_with_its_size() {
        let c = checked_image(&input(png(32, 24)), &limits(1 << 20)).unwrap();
        assert_eq!((c.width, c.height, c.extension), (32, 24, "png"));
    }

    #[test]
    fn text_named_png_is_refused_and_says_what_it_is() {
        let err = checked_image(
            &input(b"hello, I am not an image".to_vec()),
            &limits(1 << 20),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cat.png") && text.contains("not a PNG") && text.contains("text"),
            "{text}"
        );
    }

    #[test]
    fn oversized_bytes_and_sides_are_refused() {
        let err = checked_image(&input(png(8, 8)), &limits(10)).unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { .. }), "{err}");
        let err = checked_image(&input(png(8193, 1)), &limits(1 << 30)).unwrap_err();
        assert!(err.to_string().contains("at most 8192"), "{err}");
    }

    #[test]
    fn truncated_png_is_damaged() {
        let mut bytes = png(16, 16);
        bytes.truncate(20);
        let err = checked_image(&input(bytes), &limits(1 << 20)).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::Damaged { .. } | ImageError::NotAnImage { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_is_refused() {
        assert!(matches!(
            checked_image(&input(vec![]), &limits(10)),
            Err(ImageError::Empty { .. })
        ));
    }

    #[test]
    fn the_type_comes_from_the_bytes_not_the_name() {
        let mut jpeg = Vec::new();
        image::RgbImage::new(4, 4)
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        // Named .png, but a JPEG.
        let c = decoded_image(&input(jpeg), &limits(1 << 20)).unwrap();
        assert_eq!(c.extension, "jpg");
    }

    #[test]
    fn a_valid_header_with_broken_pixels_passes_the_header_check_but_not_the_decode() {
        let mut bytes = png(64, 64);
        // Keep the signature and IHDR (33 bytes), break the compressed pixel data.
        for b in bytes.iter_mut().skip(45).take(20) {
            *b ^= 0x5a;
        }
        checked_image(&input(bytes.clone()), &limits(1 << 20)).unwrap();
        let err = decoded_image(&input(bytes), &limits(1 << 20)).unwrap_err();
        assert!(matches!(err, ImageError::Damaged { .. }), "{err}");
    }
}
