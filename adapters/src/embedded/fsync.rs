//! The fsync floor of a directory: the least a durable commit can cost on this disk.
//!
//! The load test prints it next to commit latencies, so a reader can tell a slow engine from a
//! slow disk.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::StoreError;

/// Size of each probe write: one page, like the smallest redb commit.
const PROBE_LEN_BYTES: usize = 4096;

/// Overwrites one 4 KiB block of a scratch file in `dir` and `fdatasync`s it, `samples` times,
/// returning each write+sync duration. The scratch file is removed afterwards.
pub fn measure_fsync_latency(dir: &Path, samples: usize) -> Result<Vec<Duration>, StoreError> {
    let path = dir.join(format!(".tollgate-fsync-probe-{}", std::process::id()));
    let result = probe(&path, samples);
    let removed = std::fs::remove_file(&path);
    let durations = result?;
    removed?;
    Ok(durations)
}

fn probe(path: &Path, samples: usize) -> Result<Vec<Duration>, StoreError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    let mut block = [0_u8; PROBE_LEN_BYTES];
    // Allocate the block once so the samples measure data syncs, not file growth.
    file.write_all(&block)?;
    file.sync_all()?;
    let mut durations = Vec::with_capacity(samples);
    for sample in 0..samples {
        block[0] = block[0].wrapping_add(1);
        block[PROBE_LEN_BYTES - 1] = u8::try_from(sample % 256).unwrap_or(0);
        let started = Instant::now();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&block)?;
        file.sync_data()?;
        durations.push(started.elapsed());
    }
    Ok(durations)
}
