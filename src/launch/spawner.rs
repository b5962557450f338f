//! The one thread that forks every managed process.
//!
//! A child's parent-death signal (`PR_SET_PDEATHSIG`) fires when the *thread* that forked it
//! ends, not only the process. So children are forked by this dedicated thread, which lives as
//! long as comfy-fleet does, never by a runtime's worker or blocking pool. Each child also gets
//! its own session and process group, and checks that comfy-fleet is still alive before it
//! runs the program (closing the race where comfy-fleet dies between fork and `prctl`).

use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use tokio::sync::oneshot;

struct SpawnRequest {
    command: Command,
    /// The socket that held the port; closed right before the fork so the child can bind it.
    port_socket: Option<TcpListener>,
    reply: oneshot::Sender<io::Result<Child>>,
}

static SPAWNER: OnceLock<Result<Mutex<mpsc::Sender<SpawnRequest>>, String>> = OnceLock::new();

fn spawner() -> io::Result<&'static Mutex<mpsc::Sender<SpawnRequest>>> {
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            std::thread::Builder::new()
                .name("comfy-launcher".into())
                .spawn(move || {
                    // `tx` lives in the static, so this loop only ends with the process.
                    while let Ok(request) = rx.recv() {
                        drop(request.port_socket);
                        let mut command = request.command;
                        let _ = request.reply.send(command.spawn());
                    }
                })
                .map(|_| Mutex::new(tx))
                .map_err(|e| format!("cannot start the launcher thread: {e}"))
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// Sets up `command` to run in its own session and process group, and to be killed when
/// comfy-fleet dies.
pub fn isolate(command: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe system
    // calls (setsid, prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            // comfy-fleet died before prctl took effect: the signal would never come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Forks `command` on the launcher thread, closing `port_socket` right before.
pub async fn spawn(command: Command, port_socket: Option<TcpListener>) -> io::Result<Child> {
    let (reply, answer) = oneshot::channel();
    let request = SpawnRequest {
        command,
        port_socket,
        reply,
    };
    spawner()?
        .lock()
        .map_err(|_| io::Error::other("the launcher thread's queue is poisoned"))?
        .send(request)
        .map_err(|_| io::Error::other("the launcher thread has stopped"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the launcher thread dropped the request"))?
}
