//! The channels between shards, joined safely.
//!
//! glommio 0.9's `MeshBuilder` is `Send` and is meant to be cloned once per
//! executor, yet it counts its clones with a non-atomic `Rc`. Two shards that
//! clone, or drop, their builders at the same moment lose an update of that
//! count, and the builder's peer list is freed while another shard still uses
//! it. AddressSanitizer shows that use after free on an ordinary start and
//! stop with two shards; with mimalloc the freed block's list is corrupted and
//! the process crashed at exit (about one exit in 30 of a debug build).
//!
//! [`SharedMesh`] keeps the builder behind a mutex, and every operation of a
//! shard that touches the count (each clone, each poll of a join, each drop of
//! a join) runs while holding it, so they happen one at a time across the
//! shards. The first builder's own drop, when the last `SharedMesh` goes, needs
//! no lock: the `Arc` orders it after every other clone is gone.

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// This shard's ends of the channels to every other shard.
pub type MeshEnds<T> = (Senders<T>, Receivers<T>);

type JoinFuture<T> = Pin<Box<dyn Future<Output = glommio::Result<MeshEnds<T>, ()>>>>;

/// A full mesh of channels carrying `T` between `shard_count` shards, shared by
/// their threads.
pub struct SharedMesh<T: Send + 'static> {
    builder: Arc<Mutex<MeshBuilder<T, Full>>>,
}

// Not derived: a derive would ask `T: Clone`, and only the `Arc` is cloned.
impl<T: Send + 'static> Clone for SharedMesh<T> {
    fn clone(&self) -> Self {
        Self {
            builder: Arc::clone(&self.builder),
        }
    }
}

impl<T: Send + 'static> SharedMesh<T> {
    pub fn full(shard_count: usize, channel_size: usize) -> Self {
        let builder = MeshBuilder::full(shard_count, channel_size);
        Self {
            builder: Arc::new(Mutex::new(builder)),
        }
    }

    /// Joins the mesh from the calling executor; resolves once every shard has.
    pub fn join(&self) -> Join<T> {
        let guard = self.lock();
        let inner: JoinFuture<T> = Box::pin(guard.clone().join());
        drop(guard);
        Join {
            inner: Some(inner),
            mesh: self.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MeshBuilder<T, Full>> {
        // A panic while holding the lock leaves the builder as consistent as it
        // was (every operation under it is one step of glommio's own code).
        self.builder.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One shard's join of the mesh: its builder clone is polled and dropped under
/// the mesh's lock.
pub struct Join<T: Send + 'static> {
    /// `None` once finished or dropped, either under the lock.
    inner: Option<JoinFuture<T>>,
    mesh: SharedMesh<T>,
}

impl<T: Send + 'static> Future for Join<T> {
    /// glommio's error as text, beside our own "joined already".
    type Output = Result<MeshEnds<T>, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _guard = this.mesh.lock();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err("the mesh was joined already".to_owned()));
        };
        let Poll::Ready(outcome) = inner.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        // The finished future still owns the builder clone: drop it now, under
        // the lock, not whenever `Join` itself is dropped.
        this.inner = None;
        Poll::Ready(outcome.map_err(|e| e.to_string()))
    }
}

impl<T: Send + 'static> Drop for Join<T> {
    fn drop(&mut self) {
        let _guard = self.mesh.lock();
        self.inner = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_that_join_at_once_each_reach_every_other() {
        let shard_count = 4;
        let mesh = SharedMesh::<usize>::full(shard_count, 4);
        let handles =
            glommio::LocalExecutorPoolBuilder::new(glommio::PoolPlacement::Unbound(shard_count))
                .on_all_shards(move || {
                    let mesh = mesh.clone();
                    async move {
                        let (senders, mut receivers) = mesh.join().await.expect("join");
                        let me = senders.peer_id();
                        for peer in (0..shard_count).filter(|peer| *peer != me) {
                            senders.send_to(peer, me).await.expect("send");
                        }
                        let mut heard = Vec::new();
                        for (peer, stream) in receivers.streams() {
                            heard.push((peer, stream.recv().await.expect("one message")));
                        }
                        heard.sort_unstable();
                        (me, heard)
                    }
                })
                .expect("executors");
        let mut ids = Vec::new();
        for outcome in handles.join_all() {
            let (me, heard) = outcome.expect("shard");
            let others: Vec<(usize, usize)> = (0..shard_count)
                .filter(|peer| *peer != me)
                .map(|peer| (peer, peer))
                .collect();
            assert_eq!(heard, others, "shard {me} hears each other shard once");
            ids.push(me);
        }
        ids.sort_unstable();
        assert_eq!(ids, (0..shard_count).collect::<Vec<_>>());
    }

    #[test]
    fn a_join_dropped_before_the_others_arrive_leaves_the_mesh_usable_to_drop() {
        let mesh = SharedMesh::<usize>::full(2, 4);
        let handle = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut join = mesh.join();
                let waker = futures::task::noop_waker();
                let pending = Pin::new(&mut join).poll(&mut Context::from_waker(&waker));
                assert!(pending.is_pending(), "one of two shards cannot finish");
                drop(join);
                drop(mesh);
            })
            .expect("executor");
        handle.join().expect("shard");
    }
}
