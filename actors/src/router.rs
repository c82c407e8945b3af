//! Routing a subscriber to its actor: subscriber -> shard -> owner (this node, in a single-node
//! deployment) -> the actor, started on demand on the arbiter of its shard, supervised.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use tollgate_cluster::ShardMap;
use tollgate_domain::ids::SubscriberId;
use tollgate_domain::ledger::Fence;

use crate::messages::ActorError;
use crate::subscriber::{Registry, Shared, SubscriberActor, forget};

/// Finds or starts subscriber actors.
pub struct Router {
    shared: Arc<Shared>,
    shards: ShardMap,
    node: u32,
    arbiters: Vec<ArbiterHandle>,
    actors: Registry,
    /// Registry size at which stopped actors' entries are swept out next (doubles with the
    /// number of live actors, so a sweep costs O(1) per started actor).
    sweep_at: std::sync::atomic::AtomicUsize,
}

/// Registry size below which stopped actors' entries are not swept.
const SWEEP_AT_MIN: usize = 4 * 1024;

impl Router {
    /// A router over `arbiters` (one per core) for the shards `node` owns in `shards`.
    pub fn new(
        shared: Arc<Shared>,
        shards: ShardMap,
        node: u32,
        arbiters: Vec<ArbiterHandle>,
    ) -> Router {
        Router {
            shared,
            shards,
            node,
            arbiters,
            actors: Arc::new(Mutex::new(HashMap::new())),
            sweep_at: std::sync::atomic::AtomicUsize::new(SWEEP_AT_MIN),
        }
    }

    /// What the actors share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The actor of a subscriber, started if needed.
    pub fn actor(&self, id: &SubscriberId) -> Result<Addr<SubscriberActor>, ActorError> {
        let mut actors = self
            .actors
            .lock()
            .map_err(|_| ActorError::Unavailable("router lock poisoned".into()))?;
        if let Some(addr) = actors.get(id).filter(|a| a.connected()) {
            return Ok(addr.clone());
        }
        if self.shared.profiles.get(id).is_none() {
            return Err(ActorError::UnknownSubscriber(id.clone()));
        }
        let shard = self.shards.shard_of(id.as_str());
        let owner = self
            .shards
            .owner(shard)
            .ok_or_else(|| ActorError::Unavailable(format!("no owner for shard {shard}")))?;
        if owner.node != self.node {
            // The cluster step forwards to the owner; a single node owns everything.
            return Err(ActorError::Unavailable(format!(
                "shard {shard} is owned by node {}",
                owner.node
            )));
        }
        let fence = Fence {
            shard,
            epoch: owner.epoch,
        };
        let arbiter = self
            .arbiters
            .get(shard as usize % self.arbiters.len().max(1))
            .ok_or_else(|| ActorError::Unavailable("no arbiter".into()))?;
        let shared = self.shared.clone();
        let capacity = shared.settings.mailbox_capacity;
        let subscriber = id.clone();
        let registry = self.actors.clone();
        let addr = Supervisor::start_in_arbiter(arbiter, move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            SubscriberActor::new(subscriber, fence, shared, registry)
        });
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        if actors.len() >= self.sweep_at.load(relaxed) {
            actors.retain(|_, a| a.connected());
            self.sweep_at
                .store((actors.len() * 2).max(SWEEP_AT_MIN), relaxed);
        }
        actors.insert(id.clone(), addr.clone());
        Ok(addr)
    }

    /// Sends a message to a subscriber's actor, waiting for mailbox room (backpressure). A
    /// message that reaches an actor in the middle of passivating is sent again to its successor.
    pub async fn send<M, T>(
        &self,
        id: &SubscriberId,
        msg: M,
    ) -> Result<Result<T, ActorError>, ActorError>
    where
        M: Message<Result = Result<T, ActorError>> + Clone + Send + 'static,
        T: Send + 'static,
        SubscriberActor: Handler<M>,
    {
        let mailbox = &self.shared.metrics.mailbox;
        for _ in 0..3 {
            let addr = self.actor(id)?;
            mailbox.inc();
            let sent = addr.send(msg.clone()).await;
            mailbox.dec();
            match sent {
                Ok(Err(ActorError::Retired)) | Err(MailboxError::Closed) => {
                    forget(&self.actors, id, &addr);
                }
                Ok(answer) => return Ok(answer),
                Err(e) => return Err(ActorError::Unavailable(e.to_string())),
            }
        }
        Err(ActorError::Unavailable(
            "subscriber actor kept passivating".into(),
        ))
    }
}
