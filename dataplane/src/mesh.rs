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
//! [`SharedMesh`] keeps the builder behind a mutex, and every operation that
//! touches the count (each clone, each poll of a join, each drop of a join)
//! runs while holding it, so they happen one at a time across the shards.

use crate::shard::Job;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// This shard's ends of the channels to every other shard.
pub type MeshEnds = (Senders<Job>, Receivers<Job>);

type JoinFuture = Pin<Box<dyn Future<Output = glommio::Result<MeshEnds, ()>>>>;

/// A full mesh between `shard_count` shards, shared by their threads.
#[derive(Clone)]
pub struct SharedMesh {
    builder: Arc<Mutex<MeshBuilder<Job, Full>>>,
}

impl SharedMesh {
    pub fn full(shard_count: usize, channel_size: usize) -> Self {
        let builder = MeshBuilder::full(shard_count, channel_size);
        Self {
            builder: Arc::new(Mutex::new(builder)),
        }
    }

    /// Joins the mesh from the calling executor; resolves once every shard has.
    pub fn join(&self) -> Join {
        let guard = self.lock();
        let inner: JoinFuture = Box::pin(guard.clone().join());
        drop(guard);
        Join {
            inner: Some(inner),
            mesh: self.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MeshBuilder<Job, Full>> {
        // A panic while holding the lock leaves the builder as consistent as it
        // was (every operation under it is one step of glommio's own code).
        self.builder.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One shard's join of the mesh: its builder clone is polled and dropped under
/// the mesh's lock.
pub struct Join {
    /// `None` once dropped under the lock (in `Drop`).
    inner: Option<JoinFuture>,
    mesh: SharedMesh,
}

impl Future for Join {
    /// glommio's error, as text (its type cannot be made outside glommio).
    type Output = Result<MeshEnds, String>;

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

impl Drop for Join {
    fn drop(&mut self) {
        let _guard = self.mesh.lock();
        self.inner = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_that_join_at_once_each_get_their_ends() {
        let shard_count = 4;
        let mesh = SharedMesh::full(shard_count, 4);
        let handles =
            glommio::LocalExecutorPoolBuilder::new(glommio::PoolPlacement::Unbound(shard_count))
                .on_all_shards(move || {
                    let mesh = mesh.clone();
                    async move {
                        let (senders, receivers) = mesh.join().await.expect("join");
                        (senders.nr_consumers(), receivers.nr_producers())
                    }
                })
                .expect("executors");
        for outcome in handles.join_all() {
            assert_eq!(outcome.expect("shard"), (shard_count, shard_count));
        }
    }

    #[test]
    fn a_join_dropped_before_the_others_arrive_leaves_the_mesh_usable_to_drop() {
        let mesh = SharedMesh::full(2, 4);
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
