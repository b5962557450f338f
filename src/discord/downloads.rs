//! Attachment downloads for jobs: only from Discord's attachment hosts (or the configured proxy,
//! which serves them in tests), at most the image size limit (checked against `Content-Length`
//! and while reading), within the download timeout.

use std::time::Duration;

use reqwest::Url;

/// Hosts Discord serves attachments from.
pub const DISCORD_ATTACHMENT_HOSTS: &[&str] = &["cdn.discordapp.com", "media.discordapp.net"];

/// Why an attachment was not fetched, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    #[error("`{0}` is not a URL")]
    NotAUrl(String),
    #[error(
        "only files on Discord's own servers are fetched, not from {0}; attach the image to the command"
    )]
    Host(String),
    #[error("it is larger than {} MiB, the most accepted", .0 >> 20)]
    TooLarge(u64),
    #[error("it did not arrive within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("Discord's file server answered {0}")]
    Status(u16),
    #[error("the download broke off: {0}")]
    Broken(String),
}

/// Where a URL points, for the allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &Url) -> Option<Self> {
        Some(Self {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }
}

/// Fetches attachments.
pub struct AttachmentDownloads {
    http: reqwest::Client,
    allowed: Vec<Origin>,
    timeout: Duration,
}

impl AttachmentDownloads {
    /// Discord's CDN hosts over https, and the proxy's origin when there is one.
    pub fn new(http: reqwest::Client, proxy: Option<&str>, timeout: Duration) -> Self {
        let mut allowed: Vec<Origin> = DISCORD_ATTACHMENT_HOSTS
            .iter()
            .map(|host| Origin {
                scheme: "https".into(),
                host: (*host).into(),
                port: Some(443),
            })
            .collect();
        if let Some(origin) = proxy
            .and_then(|p| Url::parse(p).ok())
            .and_then(|u| Origin::of(&u))
        {
            allowed.push(origin);
        }
        Self {
            http,
            allowed,
            timeout,
        }
    }

    /// The URL, if it may be fetched.
    pub fn check(&self, url: &str) -> Result<Url, DownloadError> {
        let parsed =
            Url::parse(url).map_err(|_| DownloadError::NotAUrl(url.chars().take(100).collect()))?;
        match Origin::of(&parsed) {
            Some(origin) if self.allowed.contains(&origin) => Ok(parsed),
            Some(origin) => Err(DownloadError::Host(origin.host)),
            None => Err(DownloadError::NotAUrl(url.chars().take(100).collect())),
        }
    }

    /// The file's bytes: at most `limit`, within the timeout.
    pub async fn fetch(&self, url: &str, limit: u64) -> Result<Vec<u8>, DownloadError> {
        let url = self.check(url)?;
        tokio::time::timeout(self.timeout, self.read(url, limit))
            .await
            .map_err(|_| DownloadError::Timeout(self.timeout))?
    }

    async fn read(&self, url: Url, limit: u64) -> Result<Vec<u8>, DownloadError> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| DownloadError::Broken(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(DownloadError::Status(response.status().as_u16()));
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(DownloadError::TooLarge(limit));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| DownloadError::Broken(e.without_url().to_string()))?
        {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(DownloadError::TooLarge(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn downloads(proxy: Option<&str>) -> AttachmentDownloads {
        AttachmentDownloads::new(reqwest::Client::new(), proxy, Duration::from_secs(1))
    }

    #[test]
    fn only_discords_cdn_and_the_proxy_are_fetched() {
        let d = downloads(Some("http://127.0.0.1:4000"));
        assert!(
            d.check("https://cdn.discordapp.com/attachments/1/2/a.png?ex=1")
                .is_ok()
        );
        assert!(
            d.check("https://media.discordapp.net/attachments/1/2/a.png")
                .is_ok()
        );
        assert!(
            d.check("http://127.0.0.1:4000/attachments/1/2/a.png")
                .is_ok()
        );
        for refused in [
            "http://cdn.discordapp.com/attachments/1/2/a.png",
            "https://cdn.discordapp.com.evil.example/a.png",
            "http://127.0.0.1:4001/attachments/a.png",
            "https://example.com/a.png",
            "file:///etc/passwd",
        ] {
            assert!(d.check(refused).is_err(), "{refused}");
        }
        let err = downloads(None)
            .check("http://127.0.0.1:4000/a.png")
            .unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        assert!(matches!(
            d.check("not a url"),
            Err(DownloadError::NotAUrl(_))
        ));
    }
}
