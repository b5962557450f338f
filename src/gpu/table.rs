//! Printing GPUs as a plain-text table (`comfy-fleet gpus`).

use comfy_fleet_actors::ports::{GpuInfo, GpuProcess};

const HEADERS: [&str; 8] = [
    "#",
    "UUID",
    "NAME",
    "PCI BUS",
    "MEMORY USED/TOTAL",
    "UTIL",
    "TEMP",
    "PROCESSES",
];

/// The GPUs as an aligned table, one line per GPU under a header line.
pub fn render_table(gpus: &[GpuInfo]) -> String {
    let rows: Vec<[String; 8]> = gpus.iter().map(row).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_line(&mut out, &HEADERS.map(String::from), &widths);
    for row in &rows {
        push_line(&mut out, row, &widths);
    }
    out
}

fn push_line(out: &mut String, cells: &[String; 8], widths: &[usize; 8]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn row(gpu: &GpuInfo) -> [String; 8] {
    [
        gpu.index.to_string(),
        gpu.id.0.clone(),
        gpu.name.clone(),
        or_dash(&gpu.pci_bus_id),
        memory(gpu),
        gpu.utilization_percent
            .map_or_else(|| "-".into(), |u| format!("{u}%")),
        gpu.temperature_celsius
            .map_or_else(|| "-".into(), |t| format!("{t}°C")),
        processes(&gpu.processes),
    ]
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

fn memory(gpu: &GpuInfo) -> String {
    if gpu.memory_total_bytes == 0 {
        return "-".into();
    }
    format!(
        "{} / {}",
        mib(gpu.memory_used_bytes),
        mib(gpu.memory_total_bytes)
    )
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

fn processes(list: &[GpuProcess]) -> String {
    if list.is_empty() {
        return "-".into();
    }
    list.iter()
        .map(|p| match p.used_memory_bytes {
            Some(bytes) => format!("{} ({})", p.pid, mib(bytes)),
            None => p.pid.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use comfy_fleet_actors::GpuId;

    fn gpu(index: u32) -> GpuInfo {
        GpuInfo {
            index,
            id: GpuId(format!("GPU-{index}")),
            name: "NVIDIA H100 80GB HBM3".into(),
            pci_bus_id: "00000000:1B:00.0".into(),
            memory_total_bytes: 80 << 30,
            memory_used_bytes: 2 << 30,
            memory_free_bytes: 78 << 30,
            utilization_percent: Some(37),
            temperature_celsius: Some(41),
            processes: vec![
                GpuProcess {
                    pid: 4242,
                    used_memory_bytes: Some(1 << 30),
                },
                GpuProcess {
                    pid: 77,
                    used_memory_bytes: None,
                },
            ],
        }
    }

    #[test]
    fn table_shows_every_figure_under_aligned_headers() {
        let text = render_table(&[gpu(0), gpu(1)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("#  UUID"), "{text}");
        for needle in [
            "GPU-1",
            "00000000:1B:00.0",
            "2048 MiB / 81920 MiB",
            "37%",
            "41°C",
            "4242 (1024 MiB), 77",
        ] {
            assert!(lines[2].contains(needle), "missing {needle:?} in {text}");
        }
        // Columns line up: every row puts the UUID at the same place as the header does.
        let col = lines[0].find("UUID").unwrap();
        assert_eq!(lines[1].find("GPU-0"), Some(col));
        assert_eq!(lines[2].find("GPU-1"), Some(col));
    }

    #[test]
    fn unknown_figures_print_as_dashes() {
        let mut g = gpu(0);
        g.pci_bus_id.clear();
        g.memory_total_bytes = 0;
        g.utilization_percent = None;
        g.temperature_celsius = None;
        g.processes.clear();
        let text = render_table(&[g]);
        let row = text.lines().nth(1).unwrap();
        let dashes = row.split_whitespace().filter(|cell| *cell == "-").count();
        assert_eq!(dashes, 5, "{text}");
    }
}
