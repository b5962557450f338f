//! Every REST request the fake answered: method, path, route, status, the body it read (JSON or
//! `payload_json`, plus a summary of files), why it was refused, and whether the fake's own
//! answer matched the response schema Discord publishes for the route.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One uploaded file, summarised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileSummary {
    pub field: String,
    pub filename: String,
    pub size: usize,
    pub content_type: Option<String>,
}

/// One answered request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    pub seq: u64,
    /// Milliseconds since the fake started.
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    /// The route template as in Discord's OpenAPI description (or the fake's own route).
    pub route: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Option<Value>,
    pub files: Vec<FileSummary>,
    /// Discord's JSON error code when refused.
    pub error_code: Option<u32>,
    /// The `errors` tree of a 50035 refusal.
    pub form_errors: Option<Value>,
    /// Where the fake's answer broke the published response schema (`path: code`); always
    /// empty unless the fake has a bug.
    pub response_schema_errors: Vec<String>,
}

/// The log.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Vec<RequestRecord>,
}

impl RequestLog {
    pub fn push(&mut self, mut record: RequestRecord) {
        record.seq = self.records.len() as u64 + 1;
        self.records.push(record);
    }

    pub fn all(&self) -> &[RequestRecord] {
        &self.records
    }
}
