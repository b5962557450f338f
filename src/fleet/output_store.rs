//! The fleet's own store of finished jobs' output files: `<state_dir>/outputs/<job id>/<n>`.
//!
//! When a job is done its files are fetched from the instance into the store and served from
//! there, so instance folders do not grow and a file outlives the instance that made it. Each
//! job has its own folder and files are named by their index only (never by a name a server or
//! user chose); a file is read only through its job, so one user's job never reaches another's
//! files. Files are written to a temporary name and renamed, so a reader sees whole files or
//! none.
//!
//! The store is bounded: a job's files go when its record leaves the job table, when they are
//! older than `outputs.retention`, and, the oldest jobs first, when the store would grow beyond
//! `outputs.max_size_mb`. Files of a previous run (whose records are gone with it) are swept
//! when the store opens.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use comfy_fleet_actors::JobId;
use comfy_fleet_actors::scheduling::JobTable;

/// The store's folder inside the state folder.
pub const OUTPUTS_DIR: &str = "outputs";

/// Why a file could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One job with files in the store.
#[derive(Debug)]
struct StoredJob {
    job: JobId,
    stored_at: Instant,
}

/// What the store holds.
#[derive(Debug, Default)]
struct Holdings {
    /// Jobs in the order their files were first stored, oldest first.
    jobs: VecDeque<StoredJob>,
    /// The bytes each job's files take.
    sizes: HashMap<JobId, u64>,
    total: u64,
}

/// The output store. Shared by the instances that fill it and the front ends that read it.
#[derive(Debug)]
pub struct OutputStore {
    root: PathBuf,
    retention: Duration,
    max_bytes: u64,
    holdings: Mutex<Holdings>,
    /// The job records; a job's files go with its record.
    records: Option<JobTable>,
}

/// What [`OutputStore::open`] swept.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub jobs: usize,
    pub bytes: u64,
}

fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

impl OutputStore {
    /// Opens the store in `<state_dir>/outputs` (created if missing) and deletes what a
    /// previous run left there.
    pub fn open(
        state_dir: &Path,
        retention: Duration,
        max_bytes: u64,
    ) -> Result<(Self, Swept), StoreError> {
        let root = state_dir.join(OUTPUTS_DIR);
        std::fs::create_dir_all(&root).map_err(|source| StoreError::Write {
            path: root.clone(),
            source,
        })?;
        let mut swept = Swept::default();
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let path = entry.path();
                let size = if path.is_dir() { folder_size(&path) } else { 0 };
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match removed {
                    Ok(()) => {
                        swept.jobs += 1;
                        swept.bytes += size;
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "cannot sweep an old output: {e}")
                    }
                }
            }
        }
        let store = Self {
            root,
            retention,
            max_bytes,
            holdings: Mutex::new(Holdings::default()),
            records: None,
        };
        Ok((store, swept))
    }

    /// A job's files go when its record leaves `records` (checked as files are stored, and by
    /// [`OutputStore::expire`]).
    pub fn with_records(mut self, records: JobTable) -> Self {
        self.records = Some(records);
        self
    }

    fn has_record(&self, job: JobId) -> bool {
        self.records.as_ref().is_none_or(|r| r.contains(job))
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn job_dir(&self, job: JobId) -> PathBuf {
        self.root.join(job.0.to_string())
    }

    fn file(&self, job: JobId, index: usize) -> PathBuf {
        self.job_dir(job).join(index.to_string())
    }

    fn holdings(&self) -> std::sync::MutexGuard<'_, Holdings> {
        self.holdings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores output `index` of `job` (replacing an earlier copy), then makes room: the oldest
    /// jobs go while their record is gone, and while the store is above its size cap.
    pub fn put(&self, job: JobId, index: usize, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.job_dir(job);
        let path = self.file(job, index);
        let partial = dir.join(format!(".{index}.partial"));
        // No fsync: the store does not outlive a crash of the fleet (it is swept at start-up),
        // and the rename alone keeps readers from seeing half a file.
        let written = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(bytes)?;
            std::fs::rename(&partial, &path)
        })();
        if let Err(source) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Write { path, source });
        }
        self.hold(job, bytes.len() as u64);
        Ok(())
    }

    /// Stores the file at `source` (a finished file on this machine, which the store takes
    /// over) as output `index` of `job`: moved when it is on the store's file system, else
    /// copied and deleted. Then makes room as [`OutputStore::put`] does.
    pub fn adopt(&self, job: JobId, index: usize, source: &Path) -> Result<(), StoreError> {
        let dir = self.job_dir(job);
        let path = self.file(job, index);
        let partial = dir.join(format!(".{index}.partial"));
        let moved = (|| -> std::io::Result<u64> {
            std::fs::create_dir_all(&dir)?;
            let size = std::fs::metadata(source)?.len();
            if std::fs::rename(source, &path).is_err() {
                // Another file system: copy under a temporary name, then rename.
                std::fs::copy(source, &partial)?;
                std::fs::rename(&partial, &path)?;
                std::fs::remove_file(source)?;
            }
            Ok(size)
        })();
        match moved {
            Ok(size) => {
                self.hold(job, size);
                Ok(())
            }
            Err(source) => {
                let _ = std::fs::remove_file(&partial);
                Err(StoreError::Write { path, source })
            }
        }
    }

    /// Counts `size` more bytes for `job`, then makes room.
    fn hold(&self, job: JobId, size: u64) {
        let mut holdings = self.holdings();
        match holdings.sizes.get_mut(&job) {
            Some(held) => *held += size,
            None => {
                holdings.sizes.insert(job, size);
                holdings.jobs.push_back(StoredJob {
                    job,
                    stored_at: Instant::now(),
                });
            }
        }
        holdings.total += size;
        let mut evicted = Vec::new();
        // Records go oldest finished first, as files come: looking at the front is enough.
        while let Some(front) = holdings.jobs.front()
            && front.job != job
            && !self.has_record(front.job)
        {
            if let Some(old) = holdings.jobs.pop_front() {
                Self::forget(&mut holdings, &old);
                evicted.push(old.job);
            }
        }
        evicted.extend(self.evict_over_cap(&mut holdings, job));
        drop(holdings);
        for old in evicted {
            self.delete_folder(old);
        }
    }

    /// The oldest jobs (never `keep`) while the store is above its cap.
    fn evict_over_cap(&self, holdings: &mut Holdings, keep: JobId) -> Vec<JobId> {
        let mut evicted = Vec::new();
        while holdings.total > self.max_bytes {
            let Some(position) = holdings.jobs.iter().position(|j| j.job != keep) else {
                break;
            };
            if let Some(old) = holdings.jobs.remove(position) {
                Self::forget(holdings, &old);
                evicted.push(old.job);
            }
        }
        evicted
    }

    fn forget(holdings: &mut Holdings, stored: &StoredJob) {
        let size = holdings.sizes.remove(&stored.job).unwrap_or(0);
        holdings.total = holdings.total.saturating_sub(size);
    }

    fn delete_folder(&self, job: JobId) {
        let dir = self.job_dir(job);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%job, path = %dir.display(), "cannot delete expired outputs: {e}");
        }
    }

    /// Whether the store holds output `index` of `job`.
    pub fn contains(&self, job: JobId, index: usize) -> bool {
        self.holdings().sizes.contains_key(&job) && self.file(job, index).is_file()
    }

    /// The bytes of output `index` of `job`, if the store holds it.
    pub async fn read(&self, job: JobId, index: usize) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.holdings().sizes.contains_key(&job) {
            return Ok(None);
        }
        let path = self.file(job, index);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path, source }),
        }
    }

    /// Deletes the files of jobs whose record is gone or that are older than the retention;
    /// returns how many jobs' files went.
    pub fn expire(&self, now: Instant) -> usize {
        let mut holdings = self.holdings();
        let mut expired = Vec::new();
        let mut kept = VecDeque::with_capacity(holdings.jobs.len());
        while let Some(stored) = holdings.jobs.pop_front() {
            let too_old = now.saturating_duration_since(stored.stored_at) >= self.retention;
            if too_old || !self.has_record(stored.job) {
                expired.push(stored);
            } else {
                kept.push_back(stored);
            }
        }
        holdings.jobs = kept;
        for stored in &expired {
            Self::forget(&mut holdings, stored);
        }
        drop(holdings);
        for stored in &expired {
            self.delete_folder(stored.job);
        }
        expired.len()
    }

    /// Bytes held and jobs with files.
    pub fn usage(&self) -> (u64, usize) {
        let holdings = self.holdings();
        (holdings.total, holdings.jobs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, max_bytes: u64) -> OutputStore {
        OutputStore::open(dir, Duration::from_secs(3600), max_bytes)
            .unwrap()
            .0
    }

    #[actix_rt::test]
    async fn files_are_kept_per_job_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1 << 20);
        let (a, b) = (JobId::new(), JobId::new());
        store.put(a, 0, b"first").unwrap();
        store.put(a, 1, b"second").unwrap();
        store.put(b, 0, b"other").unwrap();
        assert_eq!(store.read(a, 1).await.unwrap().unwrap(), b"second");
        assert_eq!(store.read(b, 0).await.unwrap().unwrap(), b"other");
        assert_eq!(store.read(b, 1).await.unwrap(), None);
        assert_eq!(store.usage(), (16, 2));
        let names: Vec<String> =
            std::fs::read_dir(dir.path().join("outputs").join(a.0.to_string()))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        assert_eq!(names.len(), 2, "no partial file is left: {names:?}");
    }

    #[actix_rt::test]
    async fn an_adopted_file_moves_into_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1 << 20);
        let made = dir.path().join("ComfyUI_00001_.png");
        std::fs::write(&made, b"png bytes").unwrap();
        let job = JobId::new();
        store.adopt(job, 0, &made).unwrap();
        assert!(!made.exists(), "the instance's copy is gone");
        assert_eq!(store.read(job, 0).await.unwrap().unwrap(), b"png bytes");
        assert_eq!(store.usage(), (9, 1));
        assert!(
            store.adopt(job, 1, &made).is_err(),
            "a missing file is an error"
        );
    }

    #[actix_rt::test]
    async fn the_oldest_jobs_go_beyond_the_size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 10);
        let jobs: Vec<JobId> = (0..3).map(|_| JobId::new()).collect();
        for job in &jobs {
            store.put(*job, 0, b"12345").unwrap();
        }
        assert_eq!(store.read(jobs[0], 0).await.unwrap(), None);
        assert!(
            !dir.path()
                .join("outputs")
                .join(jobs[0].0.to_string())
                .exists()
        );
        assert!(store.contains(jobs[1], 0) && store.contains(jobs[2], 0));
        // A job larger than the cap keeps its own files.
        let big = JobId::new();
        store.put(big, 0, b"0123456789abcdef").unwrap();
        assert!(store.contains(big, 0));
        assert_eq!(store.usage(), (16, 1));
    }

    #[actix_rt::test]
    async fn files_go_with_their_record_or_after_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1 << 20);
        let (kept, forgotten) = (JobId::new(), JobId::new());
        store.put(kept, 0, b"a").unwrap();
        store.put(forgotten, 0, b"b").unwrap();
        // The store has no records yet: only time counts.
        let now = Instant::now();
        assert_eq!(store.expire(now), 0);
        let records = JobTable::new(10);
        let store = store.with_records(records.clone());
        assert_eq!(store.expire(now), 2, "jobs without a record");
        store.put(kept, 0, b"a").unwrap();
        assert!(store.contains(kept, 0) && !store.contains(forgotten, 0));
        assert_eq!(store.expire(now + Duration::from_secs(3600)), 1);
        assert_eq!(store.usage(), (0, 0));
    }

    #[test]
    fn opening_sweeps_what_a_previous_run_left() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("outputs").join(JobId::new().0.to_string());
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("0"), b"stale").unwrap();
        let (_, swept) = OutputStore::open(dir.path(), Duration::from_secs(1), 1).unwrap();
        assert_eq!(swept, Swept { jobs: 1, bytes: 5 });
        assert!(!old.exists());
    }
}
