//! Delivery of the notification outbox. Dunning writes notifications durably with the step that
//! caused them; a delivery loop hands undelivered ones to a [`Sender`] and records the outcome.
//! A notification is delivered at least once (a crash between sending and recording sends it
//! again; its id lets the receiving gateway drop the repeat).
//!
//! Senders are pluggable: [`FileSender`] (the default) appends JSON lines to a file, where an
//! operator's gateway or a test picks them up; [`LogSender`] prints them. An SMS or e-mail
//! gateway is one more implementation of [`Sender`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tollgate_domain::finance::Notification;

use super::{Finance, off_thread};

/// Undelivered notifications looked at per pass.
const BATCH: usize = 200;
/// Attempts after which a notification is no longer retried by the loop (it stays visible).
pub const ATTEMPTS_MAX: u32 = 10;

/// Sends one notification.
pub trait Sender: Send + Sync {
    /// Sends it to `to` (the customer's phone or e-mail); an error is recorded on the
    /// notification and retried later.
    fn send(&self, notification: &Notification, to: &str) -> Result<(), String>;
}

/// Appends each notification as one JSON line to a file (flushed and synced before it counts
/// as delivered).
pub struct FileSender {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl FileSender {
    /// A sender appending to `path` (created with its directory on first use).
    pub fn new(path: PathBuf) -> FileSender {
        FileSender {
            path,
            file: Mutex::new(None),
        }
    }
}

impl Sender for FileSender {
    fn send(&self, notification: &Notification, to: &str) -> Result<(), String> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            *file = Some(f);
        }
        let line = serde_json::json!({
            "id": notification.id,
            "channel": notification.channel,
            "to": to,
            "account": notification.account,
            "customer": notification.customer,
            "body": notification.body,
            "created_at": notification.created_at,
        });
        let f = file
            .as_mut()
            .ok_or_else(|| "notification file not open".to_string())?;
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        f.write_all(&bytes)
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Prints each notification to the log.
pub struct LogSender;

impl Sender for LogSender {
    fn send(&self, n: &Notification, to: &str) -> Result<(), String> {
        eprintln!(
            "notification {} {} to {to} (account {}): {}",
            n.id,
            n.channel.as_str(),
            n.account,
            n.body
        );
        Ok(())
    }
}

impl Finance {
    /// One delivery pass: sends what is pending (up to a batch), records each outcome. Returns
    /// (delivered, failed).
    pub fn deliver_pending(&self, sender: &dyn Sender) -> Result<(usize, usize), String> {
        let pending = self
            .store
            .pending_notifications(BATCH)
            .map_err(|e| e.to_string())?;
        let (mut delivered, mut failed) = (0, 0);
        for n in pending.iter().filter(|n| n.attempts < ATTEMPTS_MAX) {
            let channel = n.channel.as_str();
            // Without an address no sender can deliver it: recorded as a failed attempt.
            let sent = match &n.to {
                Some(to) => sender.send(n, to),
                None => Err(format!(
                    "customer {} has no {} address",
                    n.customer,
                    n.channel.as_str()
                )),
            };
            match sent {
                Ok(()) => {
                    self.store
                        .mark_notification(&n.id, Some(self.now()), None)
                        .map_err(|e| e.to_string())?;
                    self.metrics
                        .notifications
                        .with_label_values(&[channel, "delivered"])
                        .inc();
                    delivered += 1;
                }
                Err(why) => {
                    self.store
                        .mark_notification(&n.id, None, Some(why))
                        .map_err(|e| e.to_string())?;
                    self.metrics
                        .notifications
                        .with_label_values(&[channel, "failed"])
                        .inc();
                    failed += 1;
                }
            }
        }
        Ok((delivered, failed))
    }
}

/// Delivers the outbox every `every`, forever.
pub async fn deliver_forever(finance: Arc<Finance>, sender: Arc<dyn Sender>, every: Duration) {
    loop {
        let f = finance.clone();
        let s = sender.clone();
        let result = off_thread(move || {
            f.deliver_pending(s.as_ref())
                .map_err(super::FinanceFailure::Busy)
        })
        .await;
        if let Err(e) = result {
            eprintln!("finance: notification delivery failed: {e}");
        }
        tokio::time::sleep(every).await;
    }
}
