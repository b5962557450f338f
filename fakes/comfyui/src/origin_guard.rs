//! ComfyUI's origin-only middleware: a request whose `Host` is a loopback name and whose `Origin`
//! names another host gets 403; so does `Sec-Fetch-Site: cross-site`. Clients that send no
//! `Origin` (server-to-server) pass.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

use crate::console;

/// `host[:port]` → (lower-case hostname, port).
fn split_host(s: &str) -> (String, Option<u16>) {
    let s = s.trim().to_ascii_lowercase();
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return (host.to_string(), port);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
        _ => (s, None),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the real server would refuse this request.
pub fn forbidden(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if get("sec-fetch-site").is_some_and(|v| v.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let (Some(host), Some(origin)) = (get("host"), get("origin")) else {
        return false;
    };
    let netloc = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (origin_name, origin_port) = split_host(&netloc);
    let (host_name, host_port) = split_host(host);
    if !is_loopback(&host_name) {
        return false;
    }
    let host_domain = if origin_port.is_none() {
        host_name.clone()
    } else {
        host.trim().to_ascii_lowercase()
    };
    let origin_domain = if host_port.is_none() {
        origin_name
    } else {
        netloc
    };
    if host_domain.is_empty() || origin_domain.is_empty() || host_domain == origin_domain {
        return false;
    }
    console::warn(&format!(
        "WARNING: request with non matching host and origin {host_domain} != {origin_domain}, returning 403"
    ));
    true
}

/// The middleware.
pub async fn origin_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if forbidden(req.headers()) {
        return Ok(req
            .into_response(HttpResponse::Forbidden().finish())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn mismatched_origin_on_loopback_is_refused() {
        assert!(forbidden(&headers(&[
            ("host", "127.0.0.1:8188"),
            ("origin", "http://evil.example")
        ])));
        assert!(!forbidden(&headers(&[
            ("host", "127.0.0.1:8188"),
            ("origin", "http://127.0.0.1:8188")
        ])));
        assert!(!forbidden(&headers(&[("host", "127.0.0.1:8188")])));
        assert!(forbidden(&headers(&[("sec-fetch-site", "cross-site")])));
    }
}
