//! Downloading one model file into the library: over HTTP(S), resumed where a previous attempt
//! stopped (the partial file is kept as `.<name>.download` beside its final place, which ComfyUI
//! does not list), checked against its SHA-256 when one is known, then moved into place by the
//! library's atomic commit.

use std::path::PathBuf;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::kind::ModelKind;
use super::library::{LibraryError, ModelFile, ModelLibrary, hex, sibling};

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub kind: ModelKind,
    pub name: String,
    pub url: String,
    /// Lower-case hex, when the template knows it.
    pub sha256: Option<String>,
}

/// What a download reports as it goes, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadEvent {
    /// The transfer starts: `resumed_from` bytes were already there; `total` is the whole
    /// file's size when the server said.
    Started {
        resumed_from: u64,
        total: Option<u64>,
    },
    /// More bytes arrived.
    Received(u64),
    /// The file is complete and its checksum is being checked.
    Verifying,
}

/// Why a download failed. The partial file is kept for the next attempt unless its content is
/// known to be wrong.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error("cannot download {url}: {reason}; run the command again to resume")]
    Transfer { url: String, reason: String },
    #[error("{url} answered HTTP {status}; check the URL (and any token it needs)")]
    Status { url: String, status: u16 },
    #[error("{url} ended after {got} of {expected} bytes; run the command again to resume")]
    Short {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error(
        "{kind}/{name} from {url}: the SHA-256 is {actual}, not the expected {expected}; the download was deleted"
    )]
    Checksum {
        kind: ModelKind,
        name: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("cannot {action} {}: {reason}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        reason: String,
    },
}

fn io_error(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> DownloadError {
    let path = path.to_path_buf();
    move |e| DownloadError::Io {
        action,
        path,
        reason: e.to_string(),
    }
}

/// The first byte and the total size of a `Content-Range: bytes START-END/TOTAL` answer.
fn content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok();
    if range.trim() == "*" {
        return Some((0, total));
    }
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total))
}

/// Fetches `download` into `library` (which must not have it yet), reporting to `progress`.
pub async fn fetch(
    client: &reqwest::Client,
    library: &ModelLibrary,
    download: &Download,
    mut progress: impl FnMut(DownloadEvent),
) -> Result<ModelFile, DownloadError> {
    let Download {
        kind,
        name,
        url,
        sha256,
    } = download;
    let target = library.target(*kind, name)?;
    let partial = sibling(&target, "download");
    let transfer = |reason: String| DownloadError::Transfer {
        url: url.clone(),
        reason,
    };

    let mut have = tokio::fs::metadata(&partial).await.map_or(0, |m| m.len());
    let mut request = client.get(url);
    if have > 0 {
        request = request.header(RANGE, format!("bytes={have}-"));
    }
    let response = request.send().await.map_err(|e| transfer(e.to_string()))?;
    let status = response.status();
    let range = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(content_range);
    let (append, total) = match status {
        StatusCode::PARTIAL_CONTENT if range.is_some_and(|(start, _)| start == have) => {
            (true, range.and_then(|(_, total)| total))
        }
        // The server cannot resume (or resumed elsewhere): start over.
        StatusCode::PARTIAL_CONTENT => {
            return Err(transfer(format!(
                "the server resumed at another byte than {have}"
            )));
        }
        StatusCode::OK => (false, response.content_length()),
        // Nothing after the bytes we have: the partial file is already complete.
        StatusCode::RANGE_NOT_SATISFIABLE if range.is_some_and(|(_, t)| t == Some(have)) => {
            (true, Some(have))
        }
        other => {
            return Err(DownloadError::Status {
                url: url.clone(),
                status: other.as_u16(),
            });
        }
    };

    let mut hasher = Sha256::new();
    let mut file = if append {
        // Hash what is already there, then append.
        let mut existing = tokio::fs::File::open(&partial)
            .await
            .map_err(io_error("read", &partial))?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = existing
                .read(&mut buffer)
                .await
                .map_err(io_error("read", &partial))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        tokio::fs::OpenOptions::new()
            .append(true)
            .open(&partial)
            .await
            .map_err(io_error("open", &partial))?
    } else {
        have = 0;
        tokio::fs::File::create(&partial)
            .await
            .map_err(io_error("create", &partial))?
    };
    let total = if append && status == StatusCode::PARTIAL_CONTENT {
        total.or(response.content_length().map(|n| n + have))
    } else {
        total
    };
    progress(DownloadEvent::Started {
        resumed_from: have,
        total,
    });
    if status != StatusCode::RANGE_NOT_SATISFIABLE {
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // Keep what arrived for the next attempt.
                    let _ = file.flush().await;
                    return Err(transfer(e.to_string()));
                }
            };
            file.write_all(&chunk)
                .await
                .map_err(io_error("write", &partial))?;
            hasher.update(&chunk);
            have += chunk.len() as u64;
            progress(DownloadEvent::Received(chunk.len() as u64));
        }
    }
    file.flush().await.map_err(io_error("write", &partial))?;
    file.sync_all().await.map_err(io_error("sync", &partial))?;
    drop(file);
    if let Some(expected) = total
        && have < expected
    {
        return Err(DownloadError::Short {
            url: url.clone(),
            got: have,
            expected,
        });
    }
    progress(DownloadEvent::Verifying);
    let actual = hex(&hasher.finalize());
    if let Some(expected) = sha256
        && !expected.eq_ignore_ascii_case(&actual)
    {
        // The bytes are wrong, not merely incomplete: resuming them would not help.
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(DownloadError::Checksum {
            kind: *kind,
            name: name.clone(),
            url: url.clone(),
            expected: expected.to_ascii_lowercase(),
            actual,
        });
    }
    Ok(library
        .commit(*kind, name, &partial, actual, have, false)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_read() {
        assert_eq!(content_range("bytes 100-199/1000"), Some((100, Some(1000))));
        assert_eq!(content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(content_range("bytes */1000"), Some((0, Some(1000))));
        assert_eq!(content_range("items 1-2/3"), None);
    }
}
