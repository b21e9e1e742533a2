//! Encryption keys and the keyring: the primary key seals, every installed
//! key opens.
//!
//! A key is 32 random bytes, written as standard base64 with padding (44
//! characters, like Serf's `keygen`). The keyring file is a JSON array of
//! such strings, primary first (Serf's format), rewritten atomically on
//! every change.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Generate, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key as CipherKey};
use sha2::{Digest, Sha256};

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;
/// Most keys a keyring holds: every failed packet is tried against each, so
/// the count bounds the work a forged packet costs.
pub const MAX_KEYS: usize = 8;

/// Largest keyring file read: far more than [`MAX_KEYS`] keys take.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// A 32-byte encryption key. Its `Debug` shows only the fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Key {
        Key(CipherKey::generate().into())
    }

    /// The key from its raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key as base64, the form operators handle.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// A name for the key that does not reveal it: the first 8 bytes of its
    /// SHA-256, in hex.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0);
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&CipherKey::from(self.0))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.fingerprint())
    }
}

impl FromStr for Key {
    type Err = KeyError;

    /// Parse base64 of exactly 32 bytes (surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Key, KeyError> {
        let bytes = BASE64
            .decode(s.trim())
            .map_err(|_| KeyError::Malformed(KeyProblem::NotBase64))?;
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeyError::Malformed(KeyProblem::Length(b.len())))?;
        Ok(Key(bytes))
    }
}

/// What is wrong with a key's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// Not standard base64.
    NotBase64,
    /// Base64 of this many bytes instead of 32.
    Length(usize),
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::NotBase64 => f.write_str("it is not base64"),
            KeyProblem::Length(n) => write!(f, "it decodes to {n} bytes, not {KEY_LEN}"),
        }
    }
}

/// A keyring operation or a key was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not a key.
    #[error(
        "malformed key: {0}; a key is 32 random bytes in base64 (44 characters), \
         for example from `openssl rand -base64 32`"
    )]
    Malformed(KeyProblem),
    /// `use` or `remove` of a key the keyring does not hold.
    #[error("key {0} is not installed on this node: install it first (`rumor keys install`)")]
    NotInstalled(String),
    /// `remove` of the primary key.
    #[error(
        "key {0} is the primary key and cannot be removed: make another key primary \
         first (`rumor keys use`)"
    )]
    RemovePrimary(String),
    /// The keyring is full.
    #[error("the keyring already holds {MAX_KEYS} keys: remove one that is no longer used")]
    Full,
    /// A keyring operation on a node that runs without encryption.
    #[error(
        "this node runs without encryption (plaintext mode) and has no keyring: restart it \
         with the cluster's key"
    )]
    NoEncryption,
    /// A keyring with no key.
    #[error("the keyring holds no key: give the node the cluster's key")]
    Empty,
    /// The keyring file could not be read or written.
    #[error("cannot read or write keyring file {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The keyring file does not hold a JSON array of keys.
    #[error(
        "keyring file {path} is not a JSON array of base64 keys ({reason}); fix or \
         remove it (it is rewritten from the configured key)"
    )]
    FileFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The node's keys: the primary first, then the others that still open
/// packets during a rotation. Never empty once a node runs with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring whose only key is `primary`.
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            keys: vec![primary],
        }
    }

    /// A keyring of these keys, the first primary. Refused when empty,
    /// longer than [`MAX_KEYS`]; duplicates are dropped.
    pub fn from_keys(keys: Vec<Key>) -> Result<Keyring, KeyError> {
        let mut ring = Keyring { keys: Vec::new() };
        for k in keys {
            if !ring.keys.contains(&k) {
                ring.keys.push(k);
            }
        }
        if ring.keys.is_empty() {
            return Err(KeyError::Empty);
        }
        if ring.keys.len() > MAX_KEYS {
            return Err(KeyError::Full);
        }
        Ok(ring)
    }

    /// The key that seals what this node sends.
    pub fn primary(&self) -> &Key {
        &self.keys[0]
    }

    /// Every key, the primary first.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Whether `key` is installed.
    pub fn contains(&self, key: &Key) -> bool {
        self.keys.contains(key)
    }

    /// Add `key` (a no-op when installed). Returns whether it changed.
    pub fn install(&mut self, key: Key) -> Result<bool, KeyError> {
        if self.contains(&key) {
            return Ok(false);
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyError::Full);
        }
        self.keys.push(key);
        Ok(true)
    }

    /// Make the installed `key` primary. Returns whether it changed.
    pub fn use_key(&mut self, key: &Key) -> Result<bool, KeyError> {
        let at = self
            .keys
            .iter()
            .position(|k| k == key)
            .ok_or_else(|| KeyError::NotInstalled(key.fingerprint()))?;
        self.keys.swap(0, at);
        Ok(at != 0)
    }

    /// Remove `key`, which must not be primary. Returns whether it changed
    /// (removing a key not installed is a no-op).
    pub fn remove(&mut self, key: &Key) -> Result<bool, KeyError> {
        if self.primary() == key {
            return Err(KeyError::RemovePrimary(key.fingerprint()));
        }
        let before = self.keys.len();
        self.keys.retain(|k| k != key);
        Ok(self.keys.len() != before)
    }

    /// Read a keyring file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Keyring>, KeyError> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KeyError::File {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let format = |reason: String| KeyError::FileFormat {
            path: path.to_path_buf(),
            reason,
        };
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|source| KeyError::File {
                path: path.to_path_buf(),
                source,
            })?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(format(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        let texts: Vec<String> = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        let keys = texts
            .iter()
            .map(|t| t.parse())
            .collect::<Result<Vec<Key>, _>>()
            .map_err(|e| format(e.to_string()))?;
        Keyring::from_keys(keys)
            .map(Some)
            .map_err(|e| format(e.to_string()))
    }

    /// Write the keyring file atomically (a temporary file in the same
    /// directory, synced, then renamed over the old one), readable by its
    /// owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let file_error = |source: std::io::Error| KeyError::File {
            path: path.to_path_buf(),
            source,
        };
        let texts: Vec<String> = self.keys.iter().map(Key::to_base64).collect();
        let mut json = serde_json::to_vec_pretty(&texts)
            .map_err(std::io::Error::other)
            .map_err(file_error)?;
        json.push(b'\n');
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(file_error)?;
        tmp.write_all(&json).map_err(file_error)?;
        tmp.as_file().sync_all().map_err(file_error)?;
        tmp.persist(path).map_err(|e| file_error(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; KEY_LEN])
    }

    #[test]
    fn keys_round_trip_through_base64_and_bad_text_is_refused() {
        let k = Key::generate();
        let text = k.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(text.parse::<Key>().unwrap(), k);
        assert!(matches!(
            "not base64!".parse::<Key>(),
            Err(KeyError::Malformed(KeyProblem::NotBase64))
        ));
        assert!(matches!(
            BASE64.encode([1u8; 16]).parse::<Key>(),
            Err(KeyError::Malformed(KeyProblem::Length(16)))
        ));
        assert_ne!(Key::generate(), k);
    }

    #[test]
    fn fingerprint_is_short_hex_and_debug_hides_the_key() {
        let k = key(7);
        let fp = k.fingerprint();
        assert_eq!(fp.len(), 16);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(fp, key(8).fingerprint());
        let shown = format!("{k:?}");
        assert!(shown.contains(&fp));
        assert!(!shown.contains(&k.to_base64()));
    }

    #[test]
    fn install_use_remove_keep_the_primary_first_and_refuse_what_would_break() {
        let mut ring = Keyring::new(key(1));
        assert!(ring.install(key(2)).unwrap());
        assert!(!ring.install(key(2)).unwrap());
        assert!(matches!(
            ring.use_key(&key(3)),
            Err(KeyError::NotInstalled(_))
        ));
        assert!(ring.use_key(&key(2)).unwrap());
        assert_eq!(ring.primary(), &key(2));
        assert!(matches!(
            ring.remove(&key(2)),
            Err(KeyError::RemovePrimary(_))
        ));
        assert!(ring.remove(&key(1)).unwrap());
        assert_eq!(ring.keys(), &[key(2)]);
        for b in 10..10 + MAX_KEYS as u8 - 1 {
            ring.install(key(b)).unwrap();
        }
        assert!(matches!(ring.install(key(99)), Err(KeyError::Full)));
        assert!(matches!(Keyring::from_keys(vec![]), Err(KeyError::Empty)));
    }

    #[test]
    fn the_file_is_a_json_array_primary_first_and_survives_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        assert_eq!(Keyring::load(&path).unwrap(), None);
        let mut ring = Keyring::new(key(1));
        ring.install(key(2)).unwrap();
        ring.use_key(&key(2)).unwrap();
        ring.save(&path).unwrap();
        let texts: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(texts, vec![key(2).to_base64(), key(1).to_base64()]);
        ring.remove(&key(1)).unwrap();
        ring.save(&path).unwrap();
        assert_eq!(Keyring::load(&path).unwrap(), Some(ring));
        // Nothing but the file is left in the directory, and only its
        // owner may read it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        }
        std::fs::write(&path, "[\"short\"]").unwrap();
        assert!(matches!(
            Keyring::load(&path),
            Err(KeyError::FileFormat { .. })
        ));
    }
}
