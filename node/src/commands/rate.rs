//! `tollgate rate`: offline rating of a CDR file.
//!
//! Every input record ends up in exactly one of the two outputs: rated records (with charge,
//! lines, partner shares and explanation) or suspense (with a reason code, a message and the raw
//! record). Records are rated in file order; period counters (tiers, free units) carry over from
//! one record to the next, so a file should be in time order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use rust_decimal::Decimal;
use serde::Serialize;
use tollgate_domain::catalogue::Catalogue;
use tollgate_domain::cdr::{Cdr, CdrMapping, CsvDecoder, JsonDecoder};
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::rating::{Counters, Rating, RatingError, rate};
use tollgate_domain::subscriber::SubscriberProfile;

use crate::catalogue_file::{self, LoadError};
use crate::subscribers_file::load_subscribers;
use crate::{Format, RateArgs};

#[derive(Serialize)]
struct RatedLine<'a> {
    record: u64,
    line: u64,
    #[serde(flatten)]
    rating: &'a Rating,
    explanation_text: String,
}

#[derive(Serialize)]
struct SuspenseLine<'a> {
    record: u64,
    line: u64,
    reason: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cdr_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriber: Option<&'a str>,
    raw: &'a str,
}

/// Counts and totals of a run.
#[derive(Debug, Default)]
pub struct Summary {
    records: u64,
    rated: u64,
    suspended: BTreeMap<&'static str, u64>,
    totals: BTreeMap<String, Decimal>,
}

impl Summary {
    fn suspended_total(&self) -> u64 {
        self.suspended.values().sum()
    }

    fn line(&self) -> String {
        let reasons: Vec<String> = self
            .suspended
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let totals: Vec<String> = self
            .totals
            .iter()
            .map(|(c, a)| format!("{c} {a}"))
            .collect();
        format!(
            "records={} rated={} suspended={}{} total: {}",
            self.records,
            self.rated,
            self.suspended_total(),
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            },
            if totals.is_empty() {
                "0".to_string()
            } else {
                totals.join(", ")
            }
        )
    }
}

struct Rater<'a> {
    catalogue: &'a Catalogue,
    subscribers: &'a HashMap<SubscriberId, SubscriberProfile>,
    counters: HashMap<SubscriberId, Counters>,
    seen: HashSet<tollgate_domain::ids::CdrId>,
    summary: Summary,
    out: BufWriter<File>,
    suspense: BufWriter<File>,
}

/// A record that could not be rated, with its code and message.
struct Rejection {
    reason: &'static str,
    message: String,
}

impl Rater<'_> {
    fn record(
        &mut self,
        line: u64,
        raw: &str,
        decoded: Result<Cdr, Rejection>,
    ) -> Result<(), String> {
        self.summary.records += 1;
        let record = self.summary.records;
        let cdr = match decoded {
            Ok(cdr) => cdr,
            Err(r) => return self.suspend(record, line, raw, None, r),
        };
        if !self.seen.insert(cdr.id.clone()) {
            let r = Rejection {
                reason: "cdr.duplicate",
                message: format!("record id {} was seen before in this input", cdr.id),
            };
            return self.suspend(record, line, raw, Some(&cdr), r);
        }
        let Some(profile) = self.subscribers.get(&cdr.subscriber) else {
            let e = RatingError::UnknownSubscriber(cdr.subscriber.clone());
            return self.suspend(
                record,
                line,
                raw,
                Some(&cdr),
                Rejection {
                    reason: e.code(),
                    message: e.to_string(),
                },
            );
        };
        let counters = self.counters.entry(cdr.subscriber.clone()).or_default();
        match rate(self.catalogue, profile, &cdr, counters) {
            Ok(rating) => {
                counters.apply(&rating.counter_updates);
                self.summary.rated += 1;
                *self
                    .summary
                    .totals
                    .entry(rating.charge.currency.code().to_string())
                    .or_default() += rating.charge.amount;
                let text = rating.explanation.to_string();
                let json = serde_json::to_string(&RatedLine {
                    record,
                    line,
                    rating: &rating,
                    explanation_text: text,
                })
                .map_err(|e| e.to_string())?;
                writeln!(self.out, "{json}").map_err(|e| format!("writing rated output: {e}"))
            }
            Err(e) => self.suspend(
                record,
                line,
                raw,
                Some(&cdr),
                Rejection {
                    reason: e.code(),
                    message: e.to_string(),
                },
            ),
        }
    }

    fn suspend(
        &mut self,
        record: u64,
        line: u64,
        raw: &str,
        cdr: Option<&Cdr>,
        r: Rejection,
    ) -> Result<(), String> {
        *self.summary.suspended.entry(r.reason).or_default() += 1;
        let entry = SuspenseLine {
            record,
            line,
            reason: r.reason,
            message: r.message,
            cdr_id: cdr.map(|c| c.id.as_str()),
            subscriber: cdr.map(|c| c.subscriber.as_str()),
            raw,
        };
        let json = serde_json::to_string(&entry).map_err(|e| e.to_string())?;
        writeln!(self.suspense, "{json}").map_err(|e| format!("writing suspense output: {e}"))
    }
}

fn format_of(args: &RateArgs) -> Result<Format, String> {
    if let Some(f) = args.format {
        return Ok(f);
    }
    match args
        .cdrs
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(Format::Csv),
        Some("json" | "jsonl" | "ndjson") => Ok(Format::Json),
        _ => Err(format!(
            "cannot tell the format of {}: pass --format csv|json",
            args.cdrs.display()
        )),
    }
}

/// Runs the command.
pub fn run(args: &RateArgs) -> Result<ExitCode, String> {
    let catalogue = match catalogue_file::load(&args.catalogue) {
        Ok(c) => c,
        Err(LoadError::Invalid(problems)) => {
            for p in &problems.0 {
                eprintln!("{p}");
            }
            return Err(format!(
                "the catalogue has {} problem(s); nothing was rated",
                problems.0.len()
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let subscribers = load_subscribers(&args.subscribers, &catalogue)?;
    let mapping = match &args.mapping {
        None => CdrMapping::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            CdrMapping::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    let format = format_of(args)?;
    let input = std::fs::read(&args.cdrs)
        .map_err(|e| format!("cannot read {}: {e}", args.cdrs.display()))?;
    let create = |p: &Path| {
        File::create(p)
            .map(BufWriter::new)
            .map_err(|e| format!("cannot create {}: {e}", p.display()))
    };
    let mut rater = Rater {
        catalogue: &catalogue,
        subscribers: &subscribers,
        counters: HashMap::new(),
        seen: HashSet::new(),
        summary: Summary::default(),
        out: create(&args.out)?,
        suspense: create(&args.suspense)?,
    };
    match format {
        Format::Csv => rate_csv(&mut rater, &mapping, &input)?,
        Format::Json => rate_json(&mut rater, &mapping, &input)?,
    }
    rater.out.flush().map_err(|e| e.to_string())?;
    rater.suspense.flush().map_err(|e| e.to_string())?;
    println!("{}", rater.summary.line());
    Ok(ExitCode::SUCCESS)
}

fn rate_csv(rater: &mut Rater<'_>, mapping: &CdrMapping, input: &[u8]) -> Result<(), String> {
    let delimiter = mapping.delimiter.map_or(b',', |c| c as u8);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(input);
    let mut record = csv::ByteRecord::new();
    let mut decoder: Option<CsvDecoder> = None;
    if !CsvDecoder::expects_header(mapping) {
        decoder = Some(CsvDecoder::new(mapping, &[]).map_err(|e| format!("mapping: {e}"))?);
    }
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // The reader could not split this record; report it and carry on with the next.
                let raw = format!("{e}");
                rater.record(
                    line,
                    &raw,
                    Err(Rejection {
                        reason: "cdr.malformed",
                        message: e.to_string(),
                    }),
                )?;
                continue;
            }
        }
        let raw_bytes = record.iter().collect::<Vec<_>>().join(&delimiter);
        let raw = String::from_utf8_lossy(&raw_bytes);
        let Some(d) = &decoder else {
            let header: Vec<String> = record
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            let names: Vec<&str> = header.iter().map(String::as_str).collect();
            decoder =
                Some(CsvDecoder::new(mapping, &names).map_err(|e| format!("header line: {e}"))?);
            continue;
        };
        let decoded = match csv::StringRecord::from_byte_record(record.clone()) {
            Ok(text) => d.decode(&text).map_err(|e| Rejection {
                reason: e.code(),
                message: e.to_string(),
            }),
            Err(e) => Err(Rejection {
                reason: "cdr.malformed",
                message: format!("not UTF-8: {e}"),
            }),
        };
        rater.record(line, &raw, decoded)?;
    }
    Ok(())
}

fn rate_json(rater: &mut Rater<'_>, mapping: &CdrMapping, input: &[u8]) -> Result<(), String> {
    let decoder = JsonDecoder::new(mapping).map_err(|e| format!("mapping: {e}"))?;
    for (n, line) in input.split(|b| *b == b'\n').enumerate() {
        let line_no = n as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let raw = String::from_utf8_lossy(line);
        let decoded = match std::str::from_utf8(line) {
            Ok(text) => decoder.decode_str(text).map_err(|e| Rejection {
                reason: e.code(),
                message: e.to_string(),
            }),
            Err(e) => Err(Rejection {
                reason: "cdr.malformed",
                message: format!("not UTF-8: {e}"),
            }),
        };
        rater.record(line_no, &raw, decoded)?;
    }
    Ok(())
}
