//! Workflows: format detection, native UI→API conversion, templates and parameter injection.
