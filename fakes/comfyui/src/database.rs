//! The `--database-url sqlite:///PATH` file: created empty and held with an exclusive `flock` for
//! the process's life, like ComfyUI's lock on its SQLite file. A second live server on the same
//! file logs ComfyUI's warning and runs without it (fatal only with `--enable-assets`).

use std::fs::{File, OpenOptions};

use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use crate::config::DatabaseLocation;
use crate::console;

/// Errors that stop the start.
#[derive(Debug, Error)]
pub enum DatabaseError {
    #[error("could not create the database file {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("Could not acquire lock on database '{0}' and --enable-assets needs it")]
    Locked(String),
}

/// The held lock (dropping it releases the file).
pub struct DatabaseLock {
    _lock: Option<Flock<File>>,
}

/// Creates and locks the database file.
pub fn open(
    location: &DatabaseLocation,
    enable_assets: bool,
) -> Result<DatabaseLock, DatabaseError> {
    let path = match location {
        DatabaseLocation::Memory => return Ok(DatabaseLock { _lock: None }),
        DatabaseLocation::Other(url) => {
            console::warn(&format!(
                "Unsupported database url {url}; running without database"
            ));
            return Ok(DatabaseLock { _lock: None });
        }
        DatabaseLocation::File(p) => p,
    };
    let shown = path.display().to_string();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| DatabaseError::Create {
            path: shown.clone(),
            source,
        })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| DatabaseError::Create {
            path: shown.clone(),
            source,
        })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(DatabaseLock { _lock: Some(lock) }),
        Err(_) => {
            console::warn(&format!(
                "Could not acquire lock on database '{shown}': another ComfyUI instance may be using it. \
                 Use --database-url to give each instance its own database. Running without database."
            ));
            if enable_assets {
                Err(DatabaseError::Locked(shown))
            } else {
                Ok(DatabaseLock { _lock: None })
            }
        }
    }
}
