//! `fsync`: the disk's raw write+fdatasync latency, the floor under any durable answer.

use std::path::Path;

use crate::LoadError;
use crate::limits::FSYNC_SAMPLES_MAX;
use crate::machine::Machine;
use crate::report::{self, LatencySummary, Report, record_us};

/// Measures `samples` 4 KiB write+fdatasync rounds in `dir` and reports their percentiles.
pub fn run(dir: &Path, samples: usize) -> Result<Report, LoadError> {
    if !(1..=FSYNC_SAMPLES_MAX).contains(&samples) {
        return Err(LoadError::Usage(format!(
            "samples {samples} is out of range: 1 to {FSYNC_SAMPLES_MAX}"
        )));
    }
    let machine = Machine::now();
    let durations = tollgate_adapters::embedded::measure_fsync_latency(dir, samples)
        .map_err(|e| LoadError::Probe(e.to_string()))?;
    let mut histogram = report::latency_histogram()?;
    for d in &durations {
        record_us(
            &mut histogram,
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        );
    }
    let mut report = Report::new("fsync", machine);
    report.parameter("dir", dir.display());
    report.parameter("samples", samples);
    let summary = LatencySummary::of(&histogram);
    if summary.mean_us > 0.0 {
        report
            .rates
            .insert("serial_fsyncs_per_s".into(), 1_000_000.0 / summary.mean_us);
    }
    report
        .latencies
        .insert("write 4 KiB + fdatasync".into(), summary);
    report.notes.push(
        "one fsync per durable batch: a reservation cannot be granted faster than this, and \
         sequential group commits cannot exceed serial_fsyncs_per_s batches per second"
            .into(),
    );
    Ok(report)
}
