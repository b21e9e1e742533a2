//! What can go wrong with the database file, sorted by what an operator
//! does about it.

/// The database file could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PersistError {
    /// Another process (or another node in this one) has the file open.
    #[error("the database file is locked by another process")]
    InUse,
    /// The file is damaged or holds something this build cannot decode.
    #[error("{0}")]
    Corrupt(String),
    /// The file was written in a layout this build does not know.
    #[error("format {found}, this build reads format {supported}")]
    Format {
        /// The format found.
        found: u32,
        /// The format this build reads and writes.
        supported: u32,
    },
    /// The file or directory could not be opened, read or written.
    #[error(transparent)]
    Io(std::io::Error),
}

impl From<redb::Error> for PersistError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
                PersistError::InUse
            }
            // redb reports a file that is not a database this way.
            redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                PersistError::Corrupt(io.to_string())
            }
            redb::Error::Io(io) => PersistError::Io(io),
            other => PersistError::Corrupt(other.to_string()),
        }
    }
}

/// Every redb error type converts to [`redb::Error`]; route them all here.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for PersistError {
            fn from(e: $t) -> Self {
                redb::Error::from(e).into()
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<postcard::Error> for PersistError {
    fn from(e: postcard::Error) -> Self {
        PersistError::Corrupt(format!("a record does not decode: {e}"))
    }
}
