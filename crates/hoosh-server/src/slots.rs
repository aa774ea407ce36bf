//! A fixed number of slots for expensive work, with a bounded line: a
//! caller waits for a slot while fewer than `max_waiting` others do, and is
//! turned away (503) past that — so a flood queues neither unbounded tasks
//! nor the memory each holds while it waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Slots {
    free: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Slots {
    pub fn new(slots: usize, max_waiting: usize) -> Self {
        Slots { free: Arc::new(Semaphore::new(slots)), waiting: AtomicUsize::new(0), max_waiting }
    }

    /// A slot, held until the permit drops; `None` when the line is full.
    pub async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = Arc::clone(&self.free).try_acquire_owned() {
            return Some(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        // Counted out however the wait ends, a cancelled caller included.
        let _in_line = Leave(&self.waiting);
        Arc::clone(&self.free).acquire_owned().await.ok()
    }
}

struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_line_callers_are_turned_away_and_a_freed_slot_goes_on() {
        let slots = Arc::new(Slots::new(1, 2));
        let held = slots.enter().await.expect("a free slot");
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = Arc::clone(&slots);
                tokio::spawn(async move { s.enter().await.is_some() })
            })
            .collect();
        while slots.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(slots.enter().await.is_none(), "a third in line is one too many");
        drop(held);
        for w in waiters {
            assert!(w.await.unwrap(), "each waiter gets the slot in turn");
        }
        assert_eq!(slots.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_line() {
        let slots = Slots::new(1, 1);
        let _held = slots.enter().await.unwrap();
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(10), slots.enter()).await;
        assert!(gave_up.is_err());
        assert_eq!(slots.waiting.load(Ordering::Acquire), 0, "its place is free again");
    }
}
