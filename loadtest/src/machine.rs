//! Facts about the machine and the run, stamped on every report.

use serde::Serialize;

/// Where and when a report was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// Cores available to this process (`available_parallelism`).
    pub cores: usize,
    /// CPU model from `/proc/cpuinfo`, when readable.
    pub cpu_model: Option<String>,
    /// Kernel release from `/proc/sys/kernel/osrelease`, when readable.
    pub kernel: Option<String>,
    /// Operating system.
    pub os: String,
    /// The command line of this run.
    pub command_line: String,
    /// Start of the run, RFC 3339 UTC.
    pub date: String,
}

impl Machine {
    /// Facts about this machine and process, now.
    pub fn now() -> Machine {
        Machine {
            cores: std::thread::available_parallelism()
                .map(std::num::NonZeroUsize::get)
                .unwrap_or(1),
            cpu_model: std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|text| cpu_model(&text)),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
            os: std::env::consts::OS.to_string(),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            date: jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
        }
    }
}

/// The first `model name` line of a `/proc/cpuinfo` text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_model() {
        let text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nflags\t: x\n";
        assert_eq!(
            cpu_model(text).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(cpu_model("nothing"), None);
    }
}
