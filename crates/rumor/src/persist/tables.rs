//! The tables of the database file, and the keys of its metadata table.

use redb::TableDefinition;

/// Node metadata: the format version and the node record, each under its
/// own key, postcard-encoded.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Key-value entries: key → postcard-encoded [`rumor_proto::state::Entry`],
/// tombstones included.
pub(crate) const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
/// Known members: node name → the address it was last known at.
pub(crate) const MEMBERS: TableDefinition<&str, &str> = TableDefinition::new("members");

/// Key of the format version in [`META`].
pub(crate) const FORMAT_KEY: &str = "format";
/// Key of the node record in [`META`].
pub(crate) const RECORD_KEY: &str = "node";

/// The layout this build writes and reads; a file of another format is
/// refused at start rather than misread.
pub(crate) const FORMAT: u32 = 1;
