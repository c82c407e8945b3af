//! Reports: counters, rates, latency percentiles and errors, printed as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::LoadError;
use crate::machine::Machine;

/// Highest latency a histogram holds, in microseconds (a minute); larger values are clamped.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// A latency histogram in microseconds, 3 significant digits.
pub fn latency_histogram() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
        .map_err(|e| LoadError::Histogram(e.to_string()))
}

/// Records `micros` into `histogram`, clamped into its range.
pub fn record_us(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
}

/// Percentiles of one latency histogram, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

impl LatencySummary {
    /// Summarises a histogram.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// The result of one command: what ran where, and what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which measurement (`sessions`, `cdrs`, `fsync`).
    pub kind: String,
    /// Machine, command line and date.
    pub machine: Machine,
    /// Settings of the run (flags after defaults).
    pub parameters: BTreeMap<String, String>,
    /// Counts (requests sent, granted, CDRs rated, ...).
    pub counters: BTreeMap<String, u64>,
    /// Rates per second and other derived figures.
    pub rates: BTreeMap<String, f64>,
    /// Latency percentiles by name.
    pub latencies: BTreeMap<String, LatencySummary>,
    /// Failed requests by `status code` (or `transport kind`).
    pub errors: BTreeMap<String, u64>,
    /// Remarks worth reading next to the numbers.
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report of `kind` on this machine.
    pub fn new(kind: &str, machine: Machine) -> Report {
        Report {
            kind: kind.to_string(),
            machine,
            parameters: BTreeMap::new(),
            counters: BTreeMap::new(),
            rates: BTreeMap::new(),
            latencies: BTreeMap::new(),
            errors: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Sets a parameter.
    pub fn parameter(&mut self, name: &str, value: impl ToString) {
        self.parameters.insert(name.to_string(), value.to_string());
    }

    /// The report as aligned text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "== tollgate-loadtest {} ==", self.kind);
        let _ = writeln!(
            out,
            "date {}  cores {}  cpu {}  kernel {}",
            m.date,
            m.cores,
            m.cpu_model.as_deref().unwrap_or("?"),
            m.kernel.as_deref().unwrap_or("?")
        );
        let _ = writeln!(out, "command: {}", m.command_line);
        if !self.parameters.is_empty() {
            let list: Vec<String> = self
                .parameters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(out, "parameters: {}", list.join(" "));
        }
        for (name, value) in &self.counters {
            let _ = writeln!(out, "  {name:<28} {value:>12}");
        }
        for (name, value) in &self.rates {
            let _ = writeln!(out, "  {name:<28} {value:>12.1}");
        }
        if !self.latencies.is_empty() {
            let _ = writeln!(
                out,
                "  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
            );
            for (name, l) in &self.latencies {
                let _ = writeln!(
                    out,
                    "  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    name,
                    l.count,
                    millis(l.p50_us),
                    millis(l.p90_us),
                    millis(l.p99_us),
                    millis(l.p999_us),
                    millis(l.max_us),
                    format!("{:.3}", l.mean_us / 1000.0),
                );
            }
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "  errors: none");
        } else {
            let _ = writeln!(out, "  errors:");
            for (key, count) in &self.errors {
                let _ = writeln!(out, "    {count:>10}  {key}");
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), LoadError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| LoadError::io(path, std::io::Error::other(e)))?;
        std::fs::write(path, text + "\n").map_err(|e| LoadError::io(path, e))
    }
}

/// Microseconds as milliseconds with three decimals.
pub fn millis(micros: u64) -> String {
    format!("{}.{:03}", micros / 1000, micros % 1000)
}

/// Adds `count` to the error tally under `key`.
pub fn count_error(errors: &mut BTreeMap<String, u64>, key: String, count: u64) {
    *errors.entry(key).or_default() += count;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            cores: 2,
            cpu_model: Some("Test CPU".into()),
            kernel: Some("6.1".into()),
            os: "linux".into(),
            command_line: "tollgate-loadtest fsync --dir /tmp".into(),
            date: "2026-11-22T08:00:00Z".into(),
        }
    }

    #[test]
    fn millis_has_three_decimals() {
        assert_eq!(millis(0), "0.000");
        assert_eq!(millis(1234), "1.234");
        assert_eq!(millis(5), "0.005");
        assert_eq!(millis(60_000_000), "60000.000");
    }

    #[test]
    fn summary_reads_percentiles() {
        let mut h = latency_histogram().unwrap();
        for v in 1..=1000 {
            record_us(&mut h, v);
        }
        record_us(&mut h, 0);
        record_us(&mut h, u64::MAX);
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1002);
        assert_eq!(s.p50_us, 500);
        assert!((989..=991).contains(&s.p99_us), "{}", s.p99_us);
        assert!(s.max_us >= LATENCY_US_MAX && s.max_us <= LATENCY_US_MAX + LATENCY_US_MAX / 500);
    }

    #[test]
    fn text_and_json_show_every_part() {
        let mut r = Report::new("sessions", machine());
        r.parameter("rate_per_s", 5000);
        r.counters.insert("granted".into(), 99);
        r.rates.insert("throughput_per_s".into(), 4999.5);
        let mut h = latency_histogram().unwrap();
        record_us(&mut h, 1500);
        r.latencies.insert("reserve".into(), LatencySummary::of(&h));
        count_error(&mut r.errors, "402 ledger.insufficient".into(), 1);
        count_error(&mut r.errors, "402 ledger.insufficient".into(), 2);
        r.notes.push("a note".into());
        let text = r.to_text();
        assert!(text.contains("== tollgate-loadtest sessions =="), "{text}");
        assert!(text.contains("cores 2"), "{text}");
        assert!(text.contains("rate_per_s=5000"), "{text}");
        assert!(text.contains("4999.5"), "{text}");
        assert!(text.contains("1.500"), "{text}");
        assert!(text.contains("3  402 ledger.insufficient"), "{text}");
        assert!(text.contains("note: a note"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["machine"]["cores"], 2);
        assert_eq!(json["latencies"]["reserve"]["p50_us"], 1500);
        assert_eq!(json["errors"]["402 ledger.insufficient"], 3);
    }
}
