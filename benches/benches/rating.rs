//! Rating benchmark: a catalogue with 100,000 destination prefixes and a schedule of 4 time
//! bands; voice CDRs decoded from CSV lines and rated (band split at boundaries).
//!
//! Run: `cargo bench -p tollgate-benches --bench rating`. Results: docs/benchmarks.md.

// Benchmark set-up fails loudly on purpose: a benchmark of errors would measure nothing.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::fmt::Write as _;

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use tollgate_domain::catalogue::Catalogue;
use tollgate_domain::cdr::{CdrMapping, CsvDecoder};
use tollgate_domain::rating::{Counters, rate};
use tollgate_domain::subscriber::SubscriberProfile;

const ZONES: usize = 500;
const PREFIXES: usize = 100_000;
const LINES: usize = 10_000;

/// Deterministic pseudo-random numbers (xorshift), so every run rates the same traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A catalogue of 500 zones priced by one rule each (a real price list), 100,000 prefixes of
/// 4 to 9 digits, and a 4-band schedule in Europe/Berlin.
fn catalogue() -> (Catalogue, Vec<String>) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut toml = String::from(
        "[catalogue]\nname = \"bench\"\ncurrency = \"EUR\"\ntimezone = \"Europe/Berlin\"\n\
         [[services]]\nid = \"voice\"\nunit = \"second\"\n\
         [[destinations]]\nid = \"world\"\nfile = \"prefixes.csv\"\n\
         [[schedules]]\nid = \"four-bands\"\nbands = [\n\
         { id = \"night\", days = [\"weekdays\"], from = \"00:00\", to = \"08:00\" },\n\
         { id = \"peak\", days = [\"weekdays\"], from = \"08:00\", to = \"18:00\" },\n\
         { id = \"evening\", days = [\"weekdays\"], from = \"18:00\", to = \"24:00\" },\n\
         { id = \"weekend\", days = [\"weekend\"], from = \"00:00\", to = \"24:00\" },\n]\n\
         [[plans]]\nid = \"p\"\ndestinations = \"world\"\nschedule = \"four-bands\"\nband_mode = \"split\"\n",
    );
    for z in 0..ZONES {
        let peak = 1 + z % 90;
        writeln!(
            toml,
            "[[plans.rules]]\nid = \"r{z}\"\nservice = \"voice\"\nzones = [\"z{z}\"]\nincrements = \"60/60\"\n\
             price = {{ rates = {{ night = \"0.0{n}\", peak = \"0.{peak:02}\", evening = \"0.0{e}\", weekend = \"0.0{w}\" }}, connection_fee = \"0.01\" }}",
            n = 1 + z % 9,
            e = 2 + z % 7,
            w = 1 + z % 5
        )
        .unwrap();
    }
    toml.push_str("[[products]]\nid = \"prod\"\nplans = [\"p\"]\n");
    for z in 0..ZONES {
        writeln!(toml, "[[zones]]\nid = \"z{z}\"").unwrap();
    }
    let mut prefixes = String::from("prefix,zone\n");
    let mut seen = std::collections::HashSet::new();
    let mut list = Vec::new();
    while list.len() < PREFIXES {
        let len = 4 + (rng.next() % 6) as usize;
        let mut p = String::with_capacity(len);
        p.push(char::from(b'1' + (rng.next() % 9) as u8));
        for _ in 1..len {
            p.push(char::from(b'0' + (rng.next() % 10) as u8));
        }
        if seen.insert(p.clone()) {
            writeln!(prefixes, "{p},z{}", rng.next() as usize % ZONES).unwrap();
            list.push(p);
        }
    }
    let cat = Catalogue::from_toml(&toml, "bench.toml", &mut |_| Ok(prefixes.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cat.prefix_count(), PREFIXES);
    (cat, list)
}

/// CSV of voice CDRs to numbers under random known prefixes, at random times over a month.
fn csv_lines(prefixes: &[String]) -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut csv = String::from("id,subscriber,service,direction,caller,callee,start,units\n");
    for i in 0..LINES {
        let prefix = &prefixes[rng.next() as usize % prefixes.len()];
        let mut callee = prefix.clone();
        while callee.len() < 11 {
            callee.push(char::from(b'0' + (rng.next() % 10) as u8));
        }
        let start = 1_772_323_200 + rng.next() % (30 * 86_400); // March 2026
        let ts = jiff::Timestamp::from_second(start as i64).unwrap();
        writeln!(
            csv,
            "cdr-{i},sub-1,voice,outbound,4930123456,{callee},{ts},{}",
            1 + rng.next() % 600
        )
        .unwrap();
    }
    csv
}

fn bench(c: &mut Criterion) {
    let (cat, prefixes) = catalogue();
    let csv = csv_lines(&prefixes);
    let profile = SubscriberProfile {
        id: "sub-1".into(),
        products: vec!["prod".into()],
        currency: None,
        attributes: Default::default(),
        mode: Default::default(),
    };
    let counters = Counters::new();
    let mapping = CdrMapping::default();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let names: Vec<&str> = header.iter().map(String::as_str).collect();
    let decoder = CsvDecoder::new(&mapping, &names).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cdrs: Vec<_> = records.iter().map(|r| decoder.decode(r).unwrap()).collect();
    // Every generated CDR must rate: a benchmark of errors would measure nothing.
    for cdr in &cdrs {
        rate(&cat, &profile, cdr, &counters).unwrap_or_else(|e| panic!("{e}"));
    }

    let mut group = c.benchmark_group("rating");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("csv_parse_decode_rate_voice_100k_prefixes_4_bands", |b| {
        b.iter(|| {
            let mut reader = csv::Reader::from_reader(csv.as_bytes());
            let mut record = csv::StringRecord::new();
            let mut total = rust_decimal::Decimal::ZERO;
            while reader.read_record(&mut record).unwrap() {
                let cdr = decoder.decode(&record).unwrap();
                total += rate(&cat, &profile, &cdr, &counters).unwrap().charge.amount;
            }
            black_box(total)
        })
    });
    group.bench_function("rate_voice_100k_prefixes_4_bands", |b| {
        b.iter(|| {
            let mut total = rust_decimal::Decimal::ZERO;
            for cdr in &cdrs {
                total += rate(&cat, &profile, cdr, &counters).unwrap().charge.amount;
            }
            black_box(total)
        })
    });
    group.bench_function("decode_csv_record", |b| {
        b.iter(|| {
            for r in &records {
                black_box(decoder.decode(r).unwrap());
            }
        })
    });
    let table = &cat.destinations[0].table;
    let numbers: Vec<_> = cdrs.iter().filter_map(|c| c.callee).collect();
    group.bench_function("longest_prefix_match_100k", |b| {
        b.iter(|| {
            for n in &numbers {
                black_box(table.longest_match(n.as_bytes()));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
