//! Event subscriptions: every subscriber has a bounded queue of its own,
//! whose memory is taken only by the events waiting in it.
//!
//! A node emits bursts (a node joining a 1,000-member cluster learns of
//! 999 members at once), so a subscriber may fall up to
//! [`SUBSCRIBER_BUFFER`] events behind before it misses any. A ring buffer
//! shared by all subscribers (`tokio::sync::broadcast`) would hold that
//! room allocated for the node's whole life, about half a megabyte, even
//! when nobody is behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rumor_proto::Event;
use tokio::sync::mpsc::{self, error::TrySendError};

pub use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Most events that wait for one subscriber; beyond that, it misses the
/// newest events and its next receive says how many.
pub const SUBSCRIBER_BUFFER: usize = 4096;

/// The node's side: publishes to every subscriber.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventHub(Arc<Mutex<Hub>>);

#[derive(Debug, Default)]
struct Hub {
    subscribers: Vec<Subscriber>,
    /// The node stopped: no more events, and new subscriptions are closed.
    closed: bool,
}

#[derive(Debug)]
struct Subscriber {
    tx: mpsc::Sender<Event>,
    missed: Arc<AtomicU64>,
}

impl EventHub {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscription to every event published from now on.
    pub(crate) fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let missed = Arc::new(AtomicU64::new(0));
        let mut hub = self.hub();
        if !hub.closed {
            hub.subscribers.push(Subscriber {
                tx,
                missed: Arc::clone(&missed),
            });
        }
        Subscription { rx, missed }
    }

    /// Hand `events`, in order, to every subscriber; one whose queue is
    /// full misses them (and is told), one that was dropped is forgotten.
    pub(crate) fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut hub = self.hub();
        hub.subscribers.retain(|s| !s.tx.is_closed());
        for e in events {
            for s in &hub.subscribers {
                match s.tx.try_send(e.clone()) {
                    Ok(()) | Err(TrySendError::Closed(_)) => {}
                    Err(TrySendError::Full(_)) => {
                        s.missed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// The node stopped: every subscription ends once it has received
    /// what was published before.
    pub(crate) fn close(&self) {
        let mut hub = self.hub();
        hub.closed = true;
        hub.subscribers.clear();
    }
}

/// The events of one node, from the moment of [`crate::Handle::subscribe`].
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Event>,
    missed: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event; [`RecvError::Lagged`] with the number of events
    /// missed when this subscriber fell [`SUBSCRIBER_BUFFER`] events behind
    /// (receiving again goes on with the events after them), and
    /// [`RecvError::Closed`] once the node stopped and every event before
    /// was received.
    pub async fn recv(&mut self) -> Result<Event, RecvError> {
        if let Some(missed) = self.take_missed() {
            return Err(RecvError::Lagged(missed));
        }
        self.rx.recv().await.ok_or(RecvError::Closed)
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        if let Some(missed) = self.take_missed() {
            return Err(TryRecvError::Lagged(missed));
        }
        self.rx.try_recv().map_err(|e| match e {
            mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
            mpsc::error::TryRecvError::Disconnected => TryRecvError::Closed,
        })
    }

    fn take_missed(&self) -> Option<u64> {
        match self.missed.swap(0, Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u64) -> Event {
        Event::Refuted {
            incarnation: u32::try_from(i).unwrap_or(u32::MAX),
        }
    }

    fn incarnation(e: Event) -> u64 {
        match e {
            Event::Refuted { incarnation } => u64::from(incarnation),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_event_in_order() {
        let hub = EventHub::default();
        let mut a = hub.subscribe();
        let mut b = hub.subscribe();
        hub.publish((0..3).map(event).collect());
        for s in [&mut a, &mut b] {
            for i in 0..3 {
                assert_eq!(incarnation(s.recv().await.unwrap()), i);
            }
            assert!(matches!(s.try_recv(), Err(TryRecvError::Empty)));
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
        let hub = EventHub::default();
        let mut slow = hub.subscribe();
        let n = SUBSCRIBER_BUFFER as u64 + 5;
        hub.publish((0..n).map(event).collect());
        assert!(matches!(slow.recv().await, Err(RecvError::Lagged(5))));
        // It goes on with the events it kept, then the later ones.
        assert_eq!(incarnation(slow.recv().await.unwrap()), 0);
        for _ in 1..SUBSCRIBER_BUFFER {
            slow.recv().await.unwrap();
        }
        hub.publish(vec![event(n)]);
        assert_eq!(incarnation(slow.recv().await.unwrap()), n);
    }

    #[tokio::test]
    async fn closing_ends_subscriptions_after_what_was_published() {
        let hub = EventHub::default();
        let mut s = hub.subscribe();
        let dropped = hub.subscribe();
        drop(dropped);
        hub.publish(vec![event(1)]);
        assert_eq!(hub.hub().subscribers.len(), 1, "a dropped one is forgotten");
        hub.close();
        assert_eq!(incarnation(s.recv().await.unwrap()), 1);
        assert!(matches!(s.recv().await, Err(RecvError::Closed)));
        let mut late = hub.subscribe();
        assert!(matches!(late.recv().await, Err(RecvError::Closed)));
    }
}
