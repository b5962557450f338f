//! Checks on the images the programs under test write: a PNG's signature and size.

/// The width and height of a PNG; panics unless `bytes` is one.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    reader.into_dimensions().expect("a readable PNG header")
}

/// The size of the PNG file at `path`; panics unless it is one.
pub fn png_file_size(path: &std::path::Path) -> (u32, u32) {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    png_size(&bytes)
}
