//! One comfy-fleet per state folder: an exclusive `flock` on `<state_dir>/comfy-fleet.lock`,
//! held while the fleet runs. Without it, a second comfy-fleet started on the same folder would
//! take the first one's running instances for a crashed run's leftovers and kill them in its
//! start-up sweep. The kernel drops the lock when the process dies, however it dies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// The lock file's name inside the state folder.
pub const LOCK_FILE: &str = "comfy-fleet.lock";

/// Why the state folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    #[error(
        "another comfy-fleet{} is using the state folder {}; stop it first, or give this one its \
         own folder (comfyui.state_dir or COMFY_FLEET_STATE_DIR)",
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        dir.display()
    )]
    Taken { dir: PathBuf, holder: Option<u32> },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases the folder.
#[derive(Debug)]
pub struct StateLock {
    _file: Flock<File>,
}

impl StateLock {
    /// Locks `state_dir` (which must exist) for this process, and writes its pid in the lock
    /// file so that a refused second process can name the holder.
    pub fn acquire(state_dir: &Path) -> Result<Self, StateLockError> {
        let path = state_dir.join(LOCK_FILE);
        let io = |source| StateLockError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(StateLockError::Taken {
                    dir: state_dir.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            Err((_, errno)) => return Err(io(errno.into())),
        };
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("(pid {})", std::process::id())),
            "{err}"
        );
        assert!(err.contains("COMFY_FLEET_STATE_DIR"), "{err}");
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }
}
