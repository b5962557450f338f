//! Per-user and global rate limits on job submissions.
