//! Durable state in the data directory: one redb database file,
//! `rumor.redb`, holding
//!
//! - the node record ([`record::NodeRecord`]): name, tags, last incarnation,
//!   seeds, the store's replica id, its clock and collection horizon;
//! - every key-value entry, tombstones included, with its causal context,
//!   one row per key (postcard-encoded [`rumor_proto::state::Entry`]);
//! - the known members (name and address) a restart rejoins through.
//!
//! The driver writes incrementally: each loop iteration commits the keys
//! whose state changed in it (one row each), the record, and every few
//! seconds the member list.
//!
//! Durability: a transaction holding a local write, or a change of
//! identity (a new incarnation, seeds), commits with redb's
//! [`Durability::Immediate`] (the default: the data is on disk when
//! `commit` returns), and only then is the write acknowledged and any
//! packet that carries it sent. So a node never gossips a dot it could
//! forget in a crash, and never reuses one after a restart. A transaction
//! holding only entries merged from other nodes commits with
//! [`Durability::None`]: it waits for no disk flush, and a crash may roll
//! it back to the last durable commit; those entries are still held by the
//! nodes they came from, and anti-entropy brings them back. A durable
//! commit follows within [`pending::DURABLE_EVERY`], so the loss is
//! bounded.

mod error;
mod pending;
mod record;
mod tables;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use rumor_proto::state::{Entry, Key, StoreSnapshot};
use rumor_proto::{Identity, Snapshot};

pub(crate) use error::PersistError;
pub(crate) use pending::{Batch, Pending};
pub(crate) use record::NodeRecord;
use tables::{ENTRIES, FORMAT, FORMAT_KEY, MEMBERS, META, RECORD_KEY};

/// The database file's name in the data directory.
pub(crate) const FILE: &str = "rumor.redb";

/// redb's page cache: the node holds its whole store in memory anyway, so
/// the cache only needs to serve commits.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// An open database file.
#[derive(Debug)]
pub(crate) struct Store {
    db: Database,
    path: PathBuf,
}

/// What a data directory held.
#[derive(Debug)]
pub(crate) struct Saved {
    /// The node record.
    pub record: NodeRecord,
    /// Addresses of the known members.
    pub members: Vec<SocketAddr>,
    /// Every entry.
    pub entries: Vec<(Key, Entry)>,
}

impl Saved {
    /// The snapshot to restore the node from, at address `addr` (the
    /// configured one: a node may come back elsewhere).
    pub fn into_snapshot(self, addr: SocketAddr) -> Snapshot {
        let r = self.record;
        Snapshot {
            identity: Identity {
                name: r.name,
                addr,
                tags: r.tags,
                incarnation: r.incarnation,
            },
            members: self.members,
            seeds: r.seeds,
            store: StoreSnapshot {
                replica: Some(r.replica),
                entries: self.entries,
                gc_horizon: r.gc_horizon,
                clock: r.clock,
            },
        }
    }
}

impl Store {
    /// Open (creating it if needed) the database in `dir`, and read what it
    /// holds (`None`: nothing yet). Blocking.
    pub fn open(dir: &Path) -> Result<(Store, Option<Saved>), PersistError> {
        std::fs::create_dir_all(dir).map_err(PersistError::Io)?;
        let path = dir.join(FILE);
        // A plain open trusts the file and may panic on one damaged outside
        // redb; the check makes that an error instead.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(&path)?;
        let store = Store { db, path };
        let saved = store.load()?;
        Ok((store, saved))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Option<Saved>, PersistError> {
        let tx = self.db.begin_read()?;
        let meta = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(format) = meta.get(FORMAT_KEY)? else {
            return Ok(None);
        };
        let found: u32 = postcard::from_bytes(format.value())?;
        if found != FORMAT {
            return Err(PersistError::Format {
                found,
                supported: FORMAT,
            });
        }
        let record = meta
            .get(RECORD_KEY)?
            .ok_or_else(|| PersistError::Corrupt("the node record is missing".into()))?;
        let record: NodeRecord = postcard::from_bytes(record.value())?;
        let mut members = Vec::new();
        for row in tx.open_table(MEMBERS)?.iter()? {
            let (name, addr) = row?;
            let addr = addr.value().parse().map_err(|_| {
                PersistError::Corrupt(format!(
                    "member {:?} has no valid address ({:?})",
                    name.value(),
                    addr.value()
                ))
            })?;
            members.push(addr);
        }
        let mut entries = Vec::new();
        for row in tx.open_table(ENTRIES)?.iter()? {
            let (key, bytes) = row?;
            let entry: Entry = postcard::from_bytes(bytes.value()).map_err(|e| {
                PersistError::Corrupt(format!(
                    "the entry of key {:?} does not decode: {e}",
                    key.value()
                ))
            })?;
            entries.push((Key::from(key.value()), entry));
        }
        Ok(Some(Saved {
            record,
            members,
            entries,
        }))
    }

    /// Write `batch` in one transaction. Blocking: it returns once the
    /// transaction committed (and, if `batch.durable`, is on disk).
    pub fn commit(&self, batch: Batch) -> Result<(), PersistError> {
        let mut tx = self.db.begin_write()?;
        if !batch.durable {
            tx.set_durability(Durability::None)?;
        }
        {
            let mut meta = tx.open_table(META)?;
            if let Some(record) = &batch.record {
                meta.insert(FORMAT_KEY, postcard::to_allocvec(&FORMAT)?.as_slice())?;
                meta.insert(RECORD_KEY, postcard::to_allocvec(record)?.as_slice())?;
            }
            let mut entries = tx.open_table(ENTRIES)?;
            for (key, bytes) in &batch.entries {
                match bytes {
                    Some(bytes) => entries.insert(key.as_str(), bytes.as_slice())?,
                    None => entries.remove(key.as_str())?,
                };
            }
            let mut table = tx.open_table(MEMBERS)?;
            if let Some(members) = &batch.members {
                table.retain(|_, _| false)?;
                for (name, addr) in members {
                    table.insert(name.as_str(), addr.as_str())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rumor_proto::state::{KvStore, Op, ReplicaId, StateConfig};
    use rumor_proto::{Config, Node};

    use super::*;

    #[test]
    fn what_is_committed_is_what_a_reopened_store_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (store, saved) = Store::open(dir.path()).unwrap();
        assert!(saved.is_none(), "a new directory holds nothing");
        let identity = Identity::new("n".parse().unwrap(), "127.0.0.1:1".parse().unwrap());
        let node = Node::new(Config::local(), identity, 1, rumor_proto::Instant::ZERO).unwrap();
        let record = NodeRecord::of(&node);
        let mut kv = KvStore::new(ReplicaId(3), StateConfig::default());
        let a = kv.write("a", Op::Increment(2), 10).unwrap().entry;
        let b = kv.write("b", Op::Increment(3), 11).unwrap().entry;
        let encode = |e: &Entry| Some(postcard::to_allocvec(e).unwrap());
        store
            .commit(Batch {
                durable: true,
                record: Some(record.clone()),
                entries: vec![("a".into(), encode(&a)), ("b".into(), encode(&b))],
                members: Some(vec![("m".into(), "127.0.0.1:2".into())]),
            })
            .unwrap();
        store
            .commit(Batch {
                durable: false,
                entries: vec![("b".into(), None)],
                ..Batch::default()
            })
            .unwrap();
        drop(store);
        let (_, saved) = Store::open(dir.path()).unwrap();
        let saved = saved.unwrap();
        assert_eq!(saved.record, record);
        assert_eq!(saved.entries, vec![(Key::from("a"), a)]);
        assert_eq!(saved.members, vec!["127.0.0.1:2".parse().unwrap()]);
    }
}
