//! GPU discovery: NVML when it works, else the declared GPUs, else CPU-only, with exactly one
//! warning saying why; and the chosen probe feeding the GPU monitor.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use comfy_fleet::gpu::{
    DeclaredGpu, DeclaredProbe, Discovery, DiscoveryError, DiscoveryMode, GpuSource, NvmlProbe,
    discover, discover_with,
};
use comfy_fleet_actors::GpuId;
use comfy_fleet_actors::gpu_monitor::GpuMonitor;
use comfy_fleet_actors::messages::GpuSample;
use comfy_fleet_actors::ports::{GpuInfo, GpuProbe, GpuProbeError};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serialises log captures: tracing caches each callsite's interest across threads, and
/// scoped subscribers coming and going in parallel tests can make a capture miss events.
static CAPTURE: Mutex<()> = Mutex::new(());

/// Runs `f` with this thread's log captured; returns its result and the (level, message) of
/// every event.
fn logged<T>(f: impl FnOnce() -> T) -> (T, Vec<(String, String)>) {
    let _one_at_a_time = CAPTURE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let events = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["level"].as_str().unwrap().to_string(),
                v["fields"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    (result, events)
}

fn warnings(events: &[(String, String)]) -> Vec<&str> {
    events
        .iter()
        .filter(|(level, _)| level == "WARN")
        .map(|(_, m)| m.as_str())
        .collect()
}

fn declared() -> Vec<DeclaredGpu> {
    vec![
        DeclaredGpu {
            id: "GPU-declared-0".into(),
            name: "RTX 4090".into(),
            memory_total_bytes: Some(24 << 30),
        },
        DeclaredGpu {
            id: "1".into(),
            name: "RTX 3090".into(),
            memory_total_bytes: None,
        },
    ]
}

fn nvml_gpu(index: u32) -> GpuInfo {
    GpuInfo {
        index,
        id: GpuId(format!("GPU-nvml-{index}")),
        name: "NVIDIA H100".into(),
        pci_bus_id: format!("00000000:{:02X}:00.0", index + 1),
        memory_total_bytes: 80 << 30,
        memory_used_bytes: 1 << 30,
        memory_free_bytes: 79 << 30,
        utilization_percent: Some(3),
        temperature_celsius: Some(35),
        processes: vec![],
    }
}

fn static_nvml(gpus: Vec<GpuInfo>) -> Result<Box<dyn GpuProbe>, GpuProbeError> {
    Ok(Box::new(DeclaredProbe::from_infos(gpus)))
}

fn ids(d: &Discovery) -> Vec<&str> {
    d.gpus.iter().map(|g| g.id.0.as_str()).collect()
}

#[test]
fn auto_uses_nvml_here_if_it_works_else_falls_back_with_one_warning() {
    let nvml_gpus = NvmlProbe::open(None)
        .ok()
        .and_then(|p| p.gpus().ok())
        .filter(|g| !g.is_empty());
    let (found, events) = logged(|| discover(DiscoveryMode::Auto, &declared(), None).unwrap());
    match nvml_gpus {
        // A machine with an NVIDIA driver and GPUs.
        Some(gpus) => {
            assert_eq!(found.source, GpuSource::Nvml);
            assert_eq!(found.gpus.len(), gpus.len());
            assert!(warnings(&events).is_empty(), "{events:?}");
        }
        // This build machine: no libnvidia-ml.so.1.
        None => {
            assert_eq!(found.source, GpuSource::Declared);
            assert_eq!(ids(&found), ["GPU-declared-0", "1"]);
            let warned = warnings(&events);
            assert_eq!(warned.len(), 1, "exactly one warning: {events:?}");
            assert!(warned[0].contains("NVML"), "{}", warned[0]);
            assert!(
                warned[0].contains("2 GPU(s) declared in the config"),
                "{}",
                warned[0]
            );
            assert_eq!(found.note.as_deref(), Some(warned[0]));
        }
    }
}

#[test]
fn a_missing_nvml_library_and_no_declared_gpu_means_cpu_only() {
    let missing = Path::new("/nonexistent/libnvidia-ml.so.1");
    let (found, events) = logged(|| discover(DiscoveryMode::Auto, &[], Some(missing)).unwrap());
    assert_eq!(found.source, GpuSource::CpuOnly);
    assert!(found.gpus.is_empty());
    assert!(found.probe.gpus().unwrap().is_empty());
    let warned = warnings(&events);
    assert_eq!(warned.len(), 1, "{events:?}");
    assert!(
        warned[0].contains("/nonexistent/libnvidia-ml.so.1"),
        "{}",
        warned[0]
    );
    assert!(warned[0].contains("--cpu"), "{}", warned[0]);
}

#[test]
fn nvml_mode_without_nvml_is_an_error_saying_what_to_do() {
    let missing = Path::new("/nonexistent/libnvidia-ml.so.1");
    let err = discover(DiscoveryMode::Nvml, &declared(), Some(missing)).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, DiscoveryError::Nvml(GpuProbeError::Unavailable(_))),
        "{message}"
    );
    assert!(message.contains("discovery = \"auto\""), "{message}");

    let err = discover_with(DiscoveryMode::Nvml, &declared(), || static_nvml(vec![])).unwrap_err();
    assert!(matches!(err, DiscoveryError::NoGpu));
}

#[test]
fn gpus_nvml_lists_win_over_declared_ones_without_a_warning() {
    let (found, events) = logged(|| {
        discover_with(DiscoveryMode::Auto, &declared(), || {
            static_nvml(vec![nvml_gpu(0), nvml_gpu(1)])
        })
        .unwrap()
    });
    assert_eq!(found.source, GpuSource::Nvml);
    assert_eq!(ids(&found), ["GPU-nvml-0", "GPU-nvml-1"]);
    assert_eq!(found.note, None);
    assert!(warnings(&events).is_empty(), "{events:?}");
}

#[test]
fn nvml_with_no_gpu_or_failing_falls_back_and_says_so() {
    let (found, events) =
        logged(|| discover_with(DiscoveryMode::Auto, &declared(), || static_nvml(vec![])).unwrap());
    assert_eq!(found.source, GpuSource::Declared);
    assert_eq!(warnings(&events), [found.note.as_deref().unwrap()]);
    assert!(found.note.unwrap().starts_with("NVML lists no GPU"));

    let (found, events) = logged(|| {
        discover_with(DiscoveryMode::Auto, &[], || {
            Err(GpuProbeError::Failed("GPU is lost".into()))
        })
        .unwrap()
    });
    assert_eq!(found.source, GpuSource::CpuOnly);
    assert_eq!(warnings(&events).len(), 1);
    assert!(found.note.unwrap().contains("NVML failed (GPU is lost)"));
}

#[test]
fn declared_mode_never_opens_nvml() {
    let found = discover_with(DiscoveryMode::Declared, &declared(), || {
        panic!("NVML opened in declared mode")
    })
    .unwrap();
    assert_eq!(found.source, GpuSource::Declared);
    assert_eq!(found.gpus[0].memory_total_bytes, 24 << 30);
    let found = discover_with(DiscoveryMode::Declared, &[], || panic!("NVML opened")).unwrap();
    assert_eq!(found.source, GpuSource::CpuOnly);
}

struct FirstSample(Option<tokio::sync::oneshot::Sender<GpuSample>>);

impl Actor for FirstSample {
    type Context = Context<Self>;
}

impl Handler<GpuSample> for FirstSample {
    type Result = ();
    fn handle(&mut self, msg: GpuSample, _: &mut Context<Self>) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(msg);
        }
    }
}

#[actix_rt::test]
async fn the_discovered_probe_feeds_the_gpu_monitor() {
    let found = discover(DiscoveryMode::Declared, &declared(), None).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let subscriber = FirstSample(Some(tx)).start().recipient();
    let _monitor = GpuMonitor::start(found.probe, Duration::from_millis(10), vec![subscriber]);
    let sample = actix_rt::time::timeout(Duration::from_secs(60), rx)
        .await
        .expect("no sample")
        .unwrap();
    let sampled: Vec<_> = sample.gpus.iter().map(|g| g.id.0.as_str()).collect();
    assert_eq!(sampled, ["GPU-declared-0", "1"]);
}
