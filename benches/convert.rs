//! Conversion speed over the vendored corpus (`tests/fixtures/corpus.tar.gz`): every UI workflow converted with its server's
//! `/object_info` (parsing included), plus the slowest single case.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use comfy_fleet::workflow::{ObjectInfo, Workflow};
use criterion::{Criterion, criterion_group, criterion_main};
use support::fixtures::corpus;

fn load() -> (ObjectInfo, Vec<(String, Vec<u8>)>) {
    let object_info = ObjectInfo::load(&corpus("object_info.json")).unwrap();
    let dir = corpus("cases");
    let mut cases: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".workflow.json")?
                .to_owned();
            Some((name, std::fs::read(&path).ok()?))
        })
        .collect();
    cases.sort();
    (object_info, cases)
}

fn convert(object_info: &ObjectInfo, bytes: &[u8]) {
    let prompt = Workflow::parse(bytes).unwrap().to_api(object_info).unwrap();
    black_box(prompt);
}

fn bench(c: &mut Criterion) {
    let (object_info, cases) = load();
    // Find the slowest case with a quick timing pass (best of 5 per case).
    let slowest = cases
        .iter()
        .map(|(name, bytes)| {
            let best = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    convert(&object_info, bytes);
                    t.elapsed()
                })
                .min()
                .unwrap_or(Duration::ZERO);
            (best, name.clone(), bytes.clone())
        })
        .max_by_key(|(t, _, _)| *t)
        .unwrap();
    eprintln!("slowest case (quick pass): {} ({:?})", slowest.1, slowest.0);
    let n = cases.len();
    c.bench_function(&format!("convert whole corpus ({n} workflows)"), |b| {
        b.iter(|| {
            for (_, bytes) in &cases {
                convert(&object_info, bytes);
            }
        })
    });
    c.bench_function(&format!("convert slowest case ({})", slowest.1), |b| {
        b.iter(|| convert(&object_info, &slowest.2))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
