//! Fuzz target: any request body (its first line taken as the `Content-Type`) through the
//! multipart job form reader, then its `request` part as a job: a form or an error naming what
//! is wrong, never a panic; and never more images than the limit.
#![no_main]

use comfy_fleet::http::api_types::NewJob;
use comfy_fleet::http::job_form::{FormLimits, parse_job_form};
use libfuzzer_sys::fuzz_target;

const LIMITS: FormLimits = FormLimits { max_images: 3 };

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let content_type = String::from_utf8_lossy(&data[..split]);
    let body = data.get(split + 1..).unwrap_or_default();
    if let Ok(form) = parse_job_form(&content_type, body, LIMITS) {
        assert!(form.files.len() <= LIMITS.max_images);
        if let Some(request) = form.request {
            let _ = serde_json::from_slice::<NewJob>(&request);
        }
    }
});
