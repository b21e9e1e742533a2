//! How the agent protects its packets: a keyring file (by default in the
//! data directory), seeded from `--encrypt-key` or from a key generated on
//! first start; plaintext only with `--plaintext`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rumor::{Encryption, Key, Keyring, Security};

/// Name of the keyring file in the data directory.
pub const KEYRING_FILE: &str = "keyring.json";

/// What the agent chose, for its start-up message.
pub enum Chosen {
    /// `--plaintext`.
    Plaintext,
    /// The keyring file existed.
    Loaded(PathBuf),
    /// The keyring file was made from `--encrypt-key`.
    FromFlag(PathBuf),
    /// No key was configured: one was generated and kept in the file.
    Generated(PathBuf, Key),
}

/// The security settings for `data_dir`, `--keyring`, `--encrypt-key` and
/// `--plaintext`.
pub fn choose(
    data_dir: &Path,
    keyring: Option<&Path>,
    encrypt_key: Option<&str>,
    plaintext: bool,
) -> anyhow::Result<(Security, Chosen)> {
    if plaintext {
        if encrypt_key.is_some() || keyring.is_some() {
            bail!("--plaintext contradicts --encrypt-key and --keyring: choose one");
        }
        return Ok((Security::Plaintext, Chosen::Plaintext));
    }
    let path = keyring.map_or_else(|| data_dir.join(KEYRING_FILE), Path::to_path_buf);
    let flag_key = encrypt_key
        .map(|k| k.parse::<Key>())
        .transpose()
        .context("--encrypt-key (RUMOR_ENCRYPT_KEY)")?;
    let (ring, chosen) = match Keyring::load(&path)? {
        Some(ring) => {
            if let Some(k) = &flag_key
                && !ring.contains(k)
            {
                tracing::warn!(
                    keyring = %path.display(), key = %k.fingerprint(),
                    "--encrypt-key is not in the keyring file, which holds the rotations made since; the file wins (use `rumor keys install` to add a key)"
                );
            }
            (ring, Chosen::Loaded(path.clone()))
        }
        None => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the directory of {}", path.display()))?;
            }
            let (ring, chosen) = match flag_key {
                Some(k) => (Keyring::new(k), Chosen::FromFlag(path.clone())),
                None => {
                    let k = Key::generate();
                    (Keyring::new(k.clone()), Chosen::Generated(path.clone(), k))
                }
            };
            ring.save(&path)?;
            (ring, chosen)
        }
    };
    Ok((
        Security::Encrypted(Encryption::new(ring).with_file(path)),
        chosen,
    ))
}

/// Tell the operator how this node protects its packets and, for a fresh
/// key, how other nodes join.
pub fn announce(chosen: &Chosen) {
    match chosen {
        Chosen::Plaintext => println!(
            "packets are NOT encrypted (--plaintext): anyone who reaches the gossip port can read and forge them"
        ),
        Chosen::Loaded(p) | Chosen::FromFlag(p) => {
            println!("packets are encrypted; keyring in {}", p.display());
        }
        Chosen::Generated(p, _) => {
            println!(
                "packets are encrypted with a new key, kept in {}; other nodes need it to join (below)",
                p.display()
            );
        }
    }
}

/// The flag another node needs to talk to this one.
pub fn join_flag(chosen: &Chosen) -> String {
    match chosen {
        Chosen::Plaintext => " --plaintext".to_string(),
        Chosen::Generated(_, k) => format!(" --encrypt-key {}", k.to_base64()),
        Chosen::Loaded(_) | Chosen::FromFlag(_) => " --encrypt-key CLUSTER_KEY".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_start_generates_a_key_and_a_restart_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_, first) = choose(dir.path(), None, None, false).unwrap();
        let Chosen::Generated(path, key) = first else {
            panic!("expected a generated key");
        };
        assert_eq!(path, dir.path().join(KEYRING_FILE));
        let (security, again) = choose(dir.path(), None, None, false).unwrap();
        assert!(matches!(again, Chosen::Loaded(_)));
        let Security::Encrypted(e) = security else {
            panic!("expected encryption");
        };
        assert_eq!(e.keyring.primary(), &key);
    }

    #[test]
    fn a_configured_key_seeds_the_keyring_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::generate();
        let (_, chosen) = choose(dir.path(), None, Some(&key.to_base64()), false).unwrap();
        assert!(matches!(chosen, Chosen::FromFlag(_)));
        let bad = choose(dir.path(), None, Some("short"), false)
            .err()
            .unwrap();
        assert!(format!("{bad:#}").contains("--encrypt-key"));
        assert!(choose(dir.path(), None, Some(&key.to_base64()), true).is_err());
        let (security, _) = choose(dir.path(), None, None, true).unwrap();
        assert!(matches!(security, Security::Plaintext));
    }
}
