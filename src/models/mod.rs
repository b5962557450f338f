//! The fleet's one model library: where model files live (once, for every instance), how they
//! are added, checked, removed and downloaded, and what `models install` has to fetch.

pub mod download;
pub mod install_plan;
pub mod kind;
pub mod library;
pub mod records;

pub use download::{Download, DownloadError, DownloadEvent, fetch};
pub use install_plan::{InstallPlan, plan};
pub use kind::{ModelKind, UnknownKind};
pub use library::{Fingerprint, LibraryError, ModelFile, ModelLibrary, ModelWriter};
