//! The engine's event channel: unbounded, single-threaded, in order. Owns nothing but
//! the queue; it must not know what an event is.
//!
//! Why not `futures-channel`'s `mpsc`: it is built for threads (a lock-free queue,
//! atomics, a sender count), about 1 KB of wasm more than this, and the widget only
//! ever runs on the page's one thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

struct Shared<T> {
    queue: VecDeque<T>,
    /// The receiver, waiting for a value.
    waker: Option<Waker>,
    /// The receiver is gone: values are refused, not queued forever.
    closed: bool,
}

/// Sends into the channel; clone it freely.
pub struct Sender<T>(Rc<RefCell<Shared<T>>>);

/// Receives from the channel.
pub struct Receiver<T>(Rc<RefCell<Shared<T>>>);

/// A new channel.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Rc::new(RefCell::new(Shared {
        queue: VecDeque::new(),
        waker: None,
        closed: false,
    }));
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

impl<T> Sender<T> {
    /// Queues `value` and wakes the receiver; gives it back once the receiver is gone.
    pub fn unbounded_send(&self, value: T) -> Result<(), T> {
        let waker = {
            let mut s = self.0.borrow_mut();
            if s.closed {
                return Err(value);
            }
            s.queue.push_back(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // The last sender: a waiting receiver must see the end.
        if Rc::strong_count(&self.0) == 2 {
            let waker = self.0.borrow_mut().waker.take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> Receiver<T> {
    /// The next value, in sending order; `None` once every sender is gone and the
    /// queue is empty.
    pub async fn next(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let mut s = self.0.borrow_mut();
            if let Some(v) = s.queue.pop_front() {
                Poll::Ready(Some(v))
            } else if Rc::strong_count(&self.0) == 1 {
                Poll::Ready(None)
            } else {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = self.0.borrow_mut();
        s.closed = true;
        s.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Wake};

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll<T>(rx: &mut Receiver<T>, flag: &std::sync::Arc<Flag>) -> Poll<Option<T>> {
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let fut = std::pin::pin!(rx.next());
        fut.poll(&mut cx)
    }

    #[test]
    fn values_arrive_in_order_and_a_send_wakes_the_waiting_receiver() {
        let flag = std::sync::Arc::new(Flag(false.into()));
        let (tx, mut rx) = unbounded();
        assert!(poll(&mut rx, &flag).is_pending());
        tx.unbounded_send(1).unwrap();
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst), "woken");
        tx.clone().unbounded_send(2).unwrap();
        assert_eq!(poll(&mut rx, &flag), Poll::Ready(Some(1)));
        assert_eq!(poll(&mut rx, &flag), Poll::Ready(Some(2)));
        drop(tx);
        assert_eq!(poll(&mut rx, &flag), Poll::Ready(None), "every sender gone");
    }

    #[test]
    fn sends_after_the_receiver_is_gone_are_refused() {
        let (tx, rx) = unbounded();
        drop(rx);
        assert_eq!(tx.unbounded_send(7), Err(7));
    }
}
