//! Output sizes of the nodes that resize by a rule of their own rather than by a width/height or
//! `scale_by` input: FluxKontextImageScale (the Kontext resolution nearest the input's aspect
//! ratio, as ComfyUI 0.33.0 picks it) and ImageUpscaleWithModel (the input times the upscale
//! model's factor; a real ComfyUI reads the factor from the weights, the fake, which has no
//! weights, from the model's file name).

/// The resolutions FLUX.1 Kontext was trained at (width, height), ComfyUI's preferred list.
const KONTEXT_RESOLUTIONS: [(u32, u32); 17] = [
    (672, 1568),
    (688, 1504),
    (720, 1456),
    (752, 1392),
    (800, 1328),
    (832, 1248),
    (880, 1184),
    (944, 1104),
    (1024, 1024),
    (1104, 944),
    (1184, 880),
    (1248, 832),
    (1328, 800),
    (1392, 752),
    (1456, 720),
    (1504, 688),
    (1568, 672),
];

/// The factor assumed for an upscale model whose name says none (ESRGAN-family models are
/// mostly 4×).
pub const DEFAULT_UPSCALE_FACTOR: u32 = 4;

/// FluxKontextImageScale's output size for a `width`×`height` input: the preferred resolution
/// whose aspect ratio is closest to the input's (on a tie, the narrower one).
pub fn kontext_size(width: u32, height: u32) -> (u32, u32) {
    let aspect = f64::from(width.max(1)) / f64::from(height.max(1));
    let distance = |(w, h): (u32, u32)| (aspect - f64::from(w) / f64::from(h)).abs();
    KONTEXT_RESOLUTIONS
        .iter()
        .copied()
        .min_by(|a, b| distance(*a).total_cmp(&distance(*b)).then(a.cmp(b)))
        .unwrap_or((1024, 1024))
}

/// The scale factor of an upscale model, read from its file name the way such models are
/// named: `4x-UltraSharp`, `4x_NMKD-Siax`, `RealESRGAN_x2plus`, `SwinIR_8x` (a number next to an
/// `x` at the start of a word); [`DEFAULT_UPSCALE_FACTOR`] when the name says none.
pub fn upscale_factor(model_name: &str) -> u32 {
    let stem = model_name
        .rsplit('/')
        .next()
        .unwrap_or(model_name)
        .to_ascii_lowercase();
    let stated = stem
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|word| {
            let digits_then_x = word
                .split_once('x')
                .filter(|(digits, _)| !digits.is_empty())
                .map(|(digits, _)| digits);
            let x_then_digits = word.strip_prefix('x').map(|rest| {
                let end = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                &rest[..end]
            });
            [digits_then_x, x_then_digits]
                .into_iter()
                .flatten()
                .find_map(|digits| digits.parse::<u32>().ok())
        });
    stated
        .filter(|f| (1..=16).contains(f))
        .unwrap_or(DEFAULT_UPSCALE_FACTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kontext_picks_the_resolution_nearest_the_aspect_ratio() {
        assert_eq!(kontext_size(512, 512), (1024, 1024));
        assert_eq!(kontext_size(64, 48), (1184, 880));
        assert_eq!(kontext_size(48, 64), (880, 1184));
        assert_eq!(kontext_size(1920, 1080), (1392, 752));
        assert_eq!(kontext_size(100, 1000), (672, 1568));
    }

    #[test]
    fn upscale_factor_comes_from_the_model_name() {
        for (name, factor) in [
            ("RealESRGAN_x4plus.safetensors", 4),
            ("RealESRGAN_x2plus.pth", 2),
            ("4x-UltraSharp.pth", 4),
            ("2x_NMKD-Something.pth", 2),
            ("sub/SwinIR_8x.pth", 8),
            ("1x-ITF-SkinDiffDetail.pth", 1),
            ("mystery.safetensors", DEFAULT_UPSCALE_FACTOR),
            ("x99999.pth", DEFAULT_UPSCALE_FACTOR),
        ] {
            assert_eq!(upscale_factor(name), factor, "{name}");
        }
    }
}
