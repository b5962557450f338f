//! The vendored reference data (`tests/fixtures/`, see its README): the captured ComfyUI 0.33.0
//! exchanges, read in place, and the UI-workflow conversion corpus, unpacked from
//! `corpus.tar.gz` once into cargo's scratch folder for tests and benches (`target/tmp/`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The folder of the captured ComfyUI exchanges.
pub fn captured_dir() -> PathBuf {
    fixtures_dir().join("comfyui")
}

/// One captured file, by name (e.g. `object_info.json`).
pub fn captured(name: &str) -> PathBuf {
    captured_dir().join(name)
}

/// A captured file's bytes.
pub fn captured_bytes(name: &str) -> Vec<u8> {
    let path = captured(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A captured JSON file, parsed.
pub fn captured_json(name: &str) -> serde_json::Value {
    let path = captured(name);
    serde_json::from_slice(&captured_bytes(name))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The unpacked corpus folder (`cases/`, `cases_index.json`, `object_info.json`, `README.md`).
/// Unpacked at the first call of a test binary, into a folder named after the archive's
/// content, so a changed archive is unpacked afresh and concurrent binaries never see a
/// half-written folder (each unpacks beside it, then renames).
pub fn corpus_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(unpack_corpus)
}

/// A file of the unpacked corpus (e.g. `object_info.json`).
pub fn corpus(name: &str) -> PathBuf {
    corpus_dir().join(name)
}

fn unpack_corpus() -> PathBuf {
    let archive = fixtures_dir().join("corpus.tar.gz");
    let packed = std::fs::read(&archive)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", archive.display()));
    let mut hasher = DefaultHasher::new();
    packed.hash(&mut hasher);
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let home = scratch.join(format!("corpus-{:016x}", hasher.finish()));
    let unpacked = home.join("corpus");
    if unpacked.is_dir() {
        return unpacked;
    }
    let partial = scratch.join(format!(
        "corpus-{:016x}.partial-{}",
        hasher.finish(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).expect("create the corpus scratch folder");
    let gz = flate2::read::GzDecoder::new(packed.as_slice());
    tar::Archive::new(gz)
        .unpack(&partial)
        .unwrap_or_else(|e| panic!("cannot unpack {}: {e}", archive.display()));
    assert!(
        partial.join("corpus/cases").is_dir(),
        "{} holds no corpus/cases folder",
        archive.display()
    );
    // Another binary may have won the race: then its folder is complete and ours goes.
    if std::fs::rename(&partial, &home).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
        assert!(
            unpacked.is_dir(),
            "cannot move the corpus into {}",
            home.display()
        );
    }
    unpacked
}
