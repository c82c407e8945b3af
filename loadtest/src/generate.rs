//! Generated traffic: deterministic pseudo-random numbers, CDR batches and session bodies.

use serde::Serialize;

/// Xorshift pseudo-random numbers: deterministic per seed, cheap enough not to steal CPU from
/// the node under test.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced, xorshift would stay at 0).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Destinations priced by the sample catalogue: German fixed and mobile, France, USA, Italy.
const DESTINATIONS: [&str; 6] = ["4930", "4915", "4917", "33", "1", "39"];

/// A called number of 11 digits to a priced destination.
pub fn callee(rng: &mut Rng) -> String {
    let index = usize::try_from(rng.below(DESTINATIONS.len() as u64)).unwrap_or(0);
    let mut digits = DESTINATIONS
        .get(index)
        .copied()
        .unwrap_or("4930")
        .to_string();
    while digits.len() < 11 {
        let digit = u8::try_from(rng.below(10)).unwrap_or(0);
        digits.push(char::from(b'0' + digit));
    }
    digits
}

/// One usage record as `POST /v1/cdrs` takes it.
#[derive(Debug, Clone, Serialize)]
pub struct CdrRecord<'a> {
    /// Unique id (idempotency key).
    pub id: String,
    /// Subscriber id.
    pub subscriber: &'a str,
    /// Service id.
    pub service: &'static str,
    /// `outbound`.
    pub direction: &'static str,
    /// Calling number.
    pub caller: &'a str,
    /// Called number.
    pub callee: String,
    /// Start, RFC 3339.
    pub start: String,
    /// Seconds.
    pub units: u64,
}

/// A JSON array of `len` voice CDRs for random subscribers of `subscribers`, started in the hour
/// before `now_s` (Unix seconds), with ids `{run}-{worker}-{batch}-{i}`.
pub fn cdr_batch(
    rng: &mut Rng,
    subscribers: &[String],
    len: usize,
    now_s: i64,
    id_prefix: &str,
) -> Result<String, serde_json::Error> {
    let mut records = Vec::with_capacity(len);
    for i in 0..len {
        let index = usize::try_from(rng.below(subscribers.len() as u64)).unwrap_or(0);
        let Some(subscriber) = subscribers.get(index) else {
            break;
        };
        let offset = i64::try_from(rng.below(3600)).unwrap_or(0);
        let start = jiff::Timestamp::from_second(now_s - 3600 + offset)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        records.push(CdrRecord {
            id: format!("{id_prefix}-{i}"),
            subscriber,
            service: "voice",
            direction: "outbound",
            caller: subscriber,
            callee: callee(rng),
            start: start.to_string(),
            units: 1 + rng.below(600),
        });
    }
    serde_json::to_string(&records)
}

/// Body of `POST /v1/sessions/{session}/reserve` for a voice call.
pub fn reserve_body(
    subscriber: &str,
    request_id: &str,
    callee: &str,
    requested_units: u64,
) -> String {
    serde_json::json!({
        "subscriber": subscriber,
        "request_id": request_id,
        "usage": { "service": "voice", "callee": callee },
        "requested_units": requested_units,
    })
    .to_string()
}

/// Body of `POST /v1/sessions/{session}/terminate`.
pub fn terminate_body(subscriber: &str, request_id: &str, used_units: u64) -> String {
    serde_json::json!({
        "subscriber": subscriber,
        "request_id": request_id,
        "used_units": used_units,
    })
    .to_string()
}

/// Body of `POST /v1/accounts/{id}/top-ups`.
pub fn top_up_body(id: &str, amount: &str, currency: &str) -> String {
    serde_json::json!({ "id": id, "amount": amount, "currency": currency }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_have_the_api_shape() {
        let subscribers = vec!["49300000000".to_string(), "49300000001".to_string()];
        let mut rng = Rng::new(7);
        let text = cdr_batch(&mut rng, &subscribers, 3, 1_800_000_000, "r-0-0").unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let list = value.as_array().unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[2]["id"], "r-0-0-2");
        assert_eq!(list[0]["service"], "voice");
        assert_eq!(list[0]["callee"].as_str().unwrap().len(), 11);
        let start: jiff::Timestamp = list[0]["start"].as_str().unwrap().parse().unwrap();
        assert!(start.as_second() < 1_800_000_000);
        let units = list[0]["units"].as_u64().unwrap();
        assert!((1..=600).contains(&units));
    }

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let mut a = Rng::new(0);
        let mut b = Rng::new(0);
        for _ in 0..100 {
            let x = a.below(6);
            assert_eq!(x, b.below(6));
            assert!(x < 6);
        }
        assert_eq!(a.below(0), 0);
    }
}
