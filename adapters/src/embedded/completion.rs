//! A runtime-agnostic one-shot slot between the writer thread and a committing caller.
//!
//! The caller either blocks on it ([`CommitHandle::wait`]) or awaits it ([`CommitHandle`] is a
//! `Future`), so the async actors need neither `spawn_blocking` nor a tokio dependency here.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::error::StoreError;

/// What a successful commit tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitReceipt {
    /// Sequence number (since the store was opened) of the redb write transaction that made the
    /// batch durable; batches of one group share it.
    pub transaction_id: u64,
    /// Number of batches committed together in that transaction (fenced ones included).
    pub group_len: usize,
}

/// Result of one commit.
pub type CommitResult = Result<CommitReceipt, StoreError>;

#[derive(Default)]
struct State {
    result: Option<CommitResult>,
    waker: Option<Waker>,
    /// Set once the result has been handed to the caller, so it is never handed out twice.
    taken: bool,
}

#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    ready: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The critical sections cannot panic half-way, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer's end: completes the caller's handle exactly once.
///
/// Dropped without [`Completer::complete`] (writer stopped, queue torn down) it answers
/// [`StoreError::Closed`], so no caller waits forever.
pub(crate) struct Completer {
    slot: Option<Arc<Slot>>,
}

impl Completer {
    /// Hands `result` to the waiting caller and wakes it.
    pub(crate) fn complete(mut self, result: CommitResult) {
        if let Some(slot) = self.slot.take() {
            fill(&slot, result);
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            fill(&slot, Err(StoreError::Closed));
        }
    }
}

fn fill(slot: &Slot, result: CommitResult) {
    let waker = {
        let mut state = slot.lock();
        state.result = Some(result);
        state.waker.take()
    };
    slot.ready.notify_all();
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The caller's end of a pending commit: block with [`CommitHandle::wait`] or `.await` it.
///
/// The batch is durable once the handle yields `Ok`; dropping the handle does not cancel the
/// commit.
#[must_use = "a commit is only known durable once its handle yields Ok"]
pub struct CommitHandle {
    slot: Arc<Slot>,
}

impl std::fmt::Debug for CommitHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CommitHandle")
            .finish_non_exhaustive()
    }
}

/// A connected completer/handle pair.
pub(crate) fn pair() -> (Completer, CommitHandle) {
    let slot = Arc::new(Slot::default());
    (
        Completer {
            slot: Some(Arc::clone(&slot)),
        },
        CommitHandle { slot },
    )
}

impl CommitHandle {
    /// A handle that is already complete (used for requests refused before queueing).
    pub(crate) fn ready(result: CommitResult) -> Self {
        let (completer, handle) = pair();
        completer.complete(result);
        handle
    }

    /// Blocks until the batch is durable (or refused) and returns the outcome.
    pub fn wait(self) -> CommitResult {
        let mut state = self.slot.lock();
        loop {
            if let Some(result) = take(&mut state) {
                return result;
            }
            state = self
                .slot
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks for at most `timeout`; `None` if the commit is still pending (the handle stays
    /// usable).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<CommitResult> {
        let deadline = Instant::now() + timeout;
        let mut state = self.slot.lock();
        loop {
            if let Some(result) = take(&mut state) {
                return Some(result);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self
                .slot
                .ready
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The outcome if the commit has finished, without blocking.
    pub fn try_wait(&mut self) -> Option<CommitResult> {
        take(&mut self.slot.lock())
    }
}

fn take(state: &mut State) -> Option<CommitResult> {
    if state.taken {
        // Asked again after the outcome was handed out: there is nothing left to wait for.
        return Some(Err(StoreError::Closed));
    }
    let result = state.result.take()?;
    state.taken = true;
    Some(result)
}

impl Future for CommitHandle {
    type Output = CommitResult;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<CommitResult> {
        let mut state = self.slot.lock();
        match take(&mut state) {
            Some(result) => Poll::Ready(result),
            None => {
                state.waker = Some(context.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn receipt() -> CommitReceipt {
        CommitReceipt {
            transaction_id: 1,
            group_len: 1,
        }
    }

    #[test]
    fn wait_returns_the_completed_result() {
        let (completer, handle) = pair();
        let thread = std::thread::spawn(move || completer.complete(Ok(receipt())));
        assert_eq!(handle.wait(), Ok(receipt()));
        thread.join().unwrap();
    }

    #[test]
    fn dropped_completer_answers_closed() {
        let (completer, mut handle) = pair();
        assert_eq!(handle.try_wait(), None);
        drop(completer);
        assert_eq!(handle.try_wait(), Some(Err(StoreError::Closed)));
    }

    #[test]
    fn wait_timeout_gives_up_then_succeeds() {
        let (completer, mut handle) = pair();
        assert_eq!(handle.wait_timeout(Duration::from_millis(5)), None);
        completer.complete(Ok(receipt()));
        assert_eq!(
            handle.wait_timeout(Duration::from_secs(1)),
            Some(Ok(receipt()))
        );
    }

    #[test]
    fn future_is_woken_on_completion() {
        let (completer, mut handle) = pair();
        let counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut context = Context::from_waker(&waker);
        assert!(Pin::new(&mut handle).poll(&mut context).is_pending());
        completer.complete(Ok(receipt()));
        assert_eq!(counter.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            Pin::new(&mut handle).poll(&mut context),
            Poll::Ready(Ok(receipt()))
        );
    }
}
