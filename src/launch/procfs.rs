//! Reading processes from `/proc`: a process's group, session and start time, and the live
//! members of a process group.
//!
//! The start time (field 22 of `/proc/<pid>/stat`, in clock ticks since boot) tells a process
//! from a later one that got the same pid.

use std::fs;
use std::io;

/// The fields of `/proc/<pid>/stat` the launcher uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// `R`, `S`, `D`, `Z` (zombie: dead, waiting to be reaped), …
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks after boot when the process started.
    pub start_time: u64,
}

impl ProcStat {
    /// Dead but not yet reaped: uses no resources beyond its process-table entry.
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // fields[0] is field 3 (state); field n is fields[n - 3].
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The process `pid`, or `None` when there is no such process.
pub fn read_stat(pid: i32) -> io::Result<Option<ProcStat>> {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => Ok(parse_stat(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // ESRCH: the process vanished while being read.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every process still running (zombies left out) whose process group is `pgid`.
pub fn group_members(pgid: i32) -> io::Result<Vec<ProcStat>> {
    let mut members = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(Some(stat)) = read_stat(pid)
            && stat.pgrp == pgid
            && !stat.is_zombie()
        {
            members.push(stat);
        }
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_after_the_command_name() {
        let text = "4242 (python3 (main) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 \
                    3 0 987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let stat = parse_stat(text).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                pid: 4242,
                state: 'S',
                ppid: 1,
                pgrp: 4242,
                session: 4242,
                start_time: 987654,
            }
        );
    }

    #[test]
    fn this_process_is_found_and_a_free_pid_is_not() {
        let me = read_stat(std::process::id() as i32).unwrap().unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(!me.is_zombie());
        // Above the kernel's pid limit, so it cannot exist.
        assert_eq!(read_stat(i32::MAX).unwrap(), None);
        let group = group_members(me.pgrp).unwrap();
        assert!(group.iter().any(|p| p.pid == me.pid));
    }
}
