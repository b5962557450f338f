//! Reading a job sent as `multipart/form-data` (RFC 7578): a `request` part with the job's JSON
//! and one file part per image parameter. A plain function over the whole body, already bounded
//! by the caller, so it can be fuzzed: it never panics, counts the image parts against a limit
//! and bounds every part's headers.

/// What a form may hold.
#[derive(Debug, Clone, Copy)]
pub struct FormLimits {
    /// Image parts at most (the `request` part aside).
    pub max_images: usize,
}

/// Bytes of one part's header block at most (`Content-Disposition`, `Content-Type`…).
const MAX_PART_HEADERS: usize = 8 * 1024;

/// A boundary is 1 to 70 characters (RFC 2046).
const MAX_BOUNDARY: usize = 70;

/// One file part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormFile {
    /// The part's name: the image parameter it sets.
    pub name: String,
    /// The file name the client gave, if any.
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// A job form, read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobForm {
    /// The `request` part's bytes (the job's JSON).
    pub request: Option<Vec<u8>>,
    /// The file parts, in order.
    pub files: Vec<FormFile>,
}

/// Why a form could not be read, in words for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error(
        "the content type has no usable boundary: send `multipart/form-data; boundary=…` (1 to 70 characters)"
    )]
    NoBoundary,
    #[error("the body does not start with the boundary the content type names")]
    NoFirstBoundary,
    #[error("the body ends before the closing boundary (`--{boundary}--`): it was cut short")]
    Truncated { boundary: String },
    #[error("part {index} has headers longer than {MAX_PART_HEADERS} bytes")]
    HeadersTooLong { index: usize },
    #[error("part {index} has a header line that is not `Name: value`")]
    BadHeader { index: usize },
    #[error(
        "part {index} has no `Content-Disposition: form-data; name=\"…\"`; name each part (`request`, then the image parameters: `image`, `image2`…)"
    )]
    Unnamed { index: usize },
    #[error("the form has two `request` parts; send the job's JSON once")]
    TwoRequests,
    #[error("the form has two parts named `{name}`; send each image parameter once")]
    DuplicateImage { name: String },
    #[error("the form has more than {limit} images (http.max_images)")]
    TooManyImages { limit: usize },
}

/// The boundary of a `multipart/form-data` content type, if it names a usable one.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let essence = params.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = params.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim())
    })?;
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let usable = !value.is_empty()
        && value.len() <= MAX_BOUNDARY
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    usable.then(|| value.to_string())
}

/// The position of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A parameter of a header value (`name="x"`), unquoted (with `\"` and `\\` unescaped).
fn parameter(value: &str, wanted: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let semicolon = rest.find(';')?;
        rest = rest[semicolon + 1..].trim_start();
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (found, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &quoted[end.min(quoted.len())..])
        } else {
            let stop = after.find(';').unwrap_or(after.len());
            (after[..stop].trim().to_string(), &after[stop..])
        };
        if key.eq_ignore_ascii_case(wanted) {
            return Some(found);
        }
        rest = remainder;
    }
}

/// One part's headers: its name and file name.
fn part_names(headers: &[u8], index: usize) -> Result<(String, Option<String>), FormError> {
    let text = String::from_utf8_lossy(headers);
    let mut disposition = None;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(FormError::BadHeader { index })?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim().to_string());
        }
    }
    let disposition = disposition.ok_or(FormError::Unnamed { index })?;
    let kind = disposition.split(';').next().unwrap_or_default().trim();
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(FormError::Unnamed { index });
    }
    let name = parameter(&disposition, "name")
        .filter(|n| !n.is_empty())
        .ok_or(FormError::Unnamed { index })?;
    Ok((name, parameter(&disposition, "filename")))
}

/// Reads a job form from its whole `body`, with the boundary of its `content_type`.
pub fn parse_job_form(
    content_type: &str,
    body: &[u8],
    limits: FormLimits,
) -> Result<JobForm, FormError> {
    let boundary = boundary_of(content_type).ok_or(FormError::NoBoundary)?;
    let opening = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    // The first boundary starts the body or follows a preamble line.
    let first = if body.starts_with(opening.as_bytes()) {
        0
    } else {
        find(body, delimiter.as_bytes(), 0)
            .map(|p| p + 2)
            .ok_or(FormError::NoFirstBoundary)?
    };
    let truncated = || FormError::Truncated {
        boundary: boundary.clone(),
    };
    let mut form = JobForm::default();
    let mut at = first + opening.len();
    for index in 1.. {
        // After a boundary: `--` closes the form; otherwise padding, then CRLF, then a part.
        let rest = body.get(at..).ok_or_else(truncated)?;
        if rest.starts_with(b"--") {
            return Ok(form);
        }
        let line_end = find(body, b"\r\n", at).ok_or_else(truncated)?;
        if body[at..line_end]
            .iter()
            .any(|b| !matches!(b, b' ' | b'\t'))
        {
            return Err(truncated());
        }
        let headers_start = line_end + 2;
        let headers_end = match find(body, b"\r\n\r\n", headers_start) {
            // A part without headers starts with the blank line at once.
            _ if body[headers_start..].starts_with(b"\r\n") => headers_start,
            Some(end) => end,
            None if body.len() - headers_start > MAX_PART_HEADERS => {
                return Err(FormError::HeadersTooLong { index });
            }
            None => return Err(truncated()),
        };
        if headers_end - headers_start > MAX_PART_HEADERS {
            return Err(FormError::HeadersTooLong { index });
        }
        let (name, filename) = part_names(&body[headers_start..headers_end], index)?;
        let content_start = if headers_end == headers_start {
            headers_start + 2
        } else {
            headers_end + 4
        };
        let content_end = find(body, delimiter.as_bytes(), content_start).ok_or_else(truncated)?;
        let bytes = body[content_start..content_end].to_vec();
        if name == "request" {
            if form.request.is_some() {
                return Err(FormError::TwoRequests);
            }
            form.request = Some(bytes);
        } else {
            if form.files.iter().any(|f| f.name == name) {
                return Err(FormError::DuplicateImage { name });
            }
            if form.files.len() >= limits.max_images {
                return Err(FormError::TooManyImages {
                    limit: limits.max_images,
                });
            }
            form.files.push(FormFile {
                name,
                filename,
                bytes,
            });
        }
        at = content_end + delimiter.len();
    }
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "multipart/form-data; boundary=XyZ";
    const LIMITS: FormLimits = FormLimits { max_images: 2 };

    fn form(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (headers, body) in parts {
            out.extend_from_slice(format!("--XyZ\r\n{headers}\r\n\r\n{body}\r\n").as_bytes());
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    fn disposition(name: &str) -> String {
        format!("Content-Disposition: form-data; name=\"{name}\"")
    }

    #[test]
    fn a_request_and_images_are_read_in_order() {
        let body = form(&[
            (&disposition("request"), "{\"template\": \"demo\"}"),
            (
                "Content-Disposition: form-data; name=\"image\"; filename=\"a \\\"b\\\".png\"\r\nContent-Type: image/png",
                "\u{89}PNG...",
            ),
        ]);
        let read = parse_job_form(TYPE, &body, LIMITS).unwrap();
        assert_eq!(
            read.request.as_deref(),
            Some(&b"{\"template\": \"demo\"}"[..])
        );
        assert_eq!(read.files.len(), 1);
        assert_eq!(read.files[0].name, "image");
        assert_eq!(read.files[0].filename.as_deref(), Some("a \"b\".png"));
        assert_eq!(read.files[0].bytes, "\u{89}PNG...".as_bytes());
    }

    #[test]
    fn a_boundary_inside_a_part_must_follow_a_line_break() {
        let body = form(&[(&disposition("image"), "x--XyZ y\r\n--XyZz")]);
        let err = parse_job_form(TYPE, &body, LIMITS).unwrap_err();
        // `\r\n--XyZz` is a delimiter followed by junk: the form is broken, not a longer part.
        assert_eq!(
            err,
            FormError::Truncated {
                boundary: "XyZ".into()
            }
        );
    }

    #[test]
    fn broken_forms_are_refused_with_what_is_wrong() {
        let cut = b"--XyZ\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}";
        assert_eq!(
            parse_job_form(TYPE, cut, LIMITS).unwrap_err().to_string(),
            "the body ends before the closing boundary (`--XyZ--`): it was cut short"
        );
        assert_eq!(
            parse_job_form("multipart/form-data", b"", LIMITS),
            Err(FormError::NoBoundary)
        );
        assert_eq!(
            parse_job_form(TYPE, b"hello", LIMITS),
            Err(FormError::NoFirstBoundary)
        );
        let unnamed = form(&[("Content-Type: image/png", "x")]);
        assert_eq!(
            parse_job_form(TYPE, &unnamed, LIMITS),
            Err(FormError::Unnamed { index: 1 })
        );
        let twice = form(&[(&disposition("image"), "a"), (&disposition("image"), "b")]);
        assert_eq!(
            parse_job_form(TYPE, &twice, LIMITS),
            Err(FormError::DuplicateImage {
                name: "image".into()
            })
        );
        let long = format!("{}\r\nX-Pad: {}", disposition("image"), "a".repeat(9000));
        assert_eq!(
            parse_job_form(TYPE, &form(&[(&long, "x")]), LIMITS),
            Err(FormError::HeadersTooLong { index: 1 })
        );
    }

    #[test]
    fn images_are_counted_against_the_limit() {
        let three = form(&[
            (&disposition("request"), "{}"),
            (&disposition("image"), "a"),
            (&disposition("image2"), "b"),
            (&disposition("image3"), "c"),
        ]);
        assert_eq!(
            parse_job_form(TYPE, &three, LIMITS)
                .unwrap_err()
                .to_string(),
            "the form has more than 2 images (http.max_images)"
        );
    }

    #[test]
    fn boundaries_are_read_as_rfc_2046_allows() {
        assert_eq!(
            boundary_of("Multipart/Form-Data; charset=x; Boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary_of("multipart/mixed; boundary=x"), None);
        assert_eq!(
            boundary_of(&format!("multipart/form-data; boundary={}", "b".repeat(71))),
            None
        );
        // A preamble before the first boundary is skipped.
        let mut body = b"preamble\r\n".to_vec();
        body.extend(form(&[(&disposition("request"), "{}")]));
        assert!(
            parse_job_form(TYPE, &body, LIMITS)
                .unwrap()
                .request
                .is_some()
        );
    }
}
