//! The agent's configuration: a TOML file, `RUMOR_*` environment variables
//! and flags, merged in that order (flags win).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use rumor_proto::Profile;
use serde::Deserialize;

/// Default gossip address.
pub const DEFAULT_BIND: &str = "127.0.0.1:7946";
/// Default HTTP API address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:7947";

/// Flags of `rumor agent`. Every one can also be set by a `RUMOR_*`
/// environment variable or in the `--config` file.
#[derive(Debug, Default, Args)]
pub struct AgentArgs {
    /// TOML configuration file; its settings are overridden by environment
    /// variables and flags.
    #[arg(long, env = "RUMOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's name, unique in the cluster [default: the host name].
    #[arg(long, env = "RUMOR_NODE")]
    pub node: Option<String>,
    /// Address to bind UDP and TCP gossip to [default: 127.0.0.1:7946].
    #[arg(long, env = "RUMOR_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Address other nodes reach this one at [default: the bind address].
    #[arg(long, env = "RUMOR_ADVERTISE", value_name = "ADDR")]
    pub advertise: Option<SocketAddr>,
    /// Address of the HTTP API [default: 127.0.0.1:7947].
    #[arg(long, env = "RUMOR_HTTP_ADDR", value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Bearer token the HTTP API requires (required when --http is not a
    /// loopback address).
    #[arg(
        long,
        env = "RUMOR_HTTP_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub http_token: Option<String>,
    /// Join the cluster through these addresses, host:port (repeat the flag
    /// or separate with commas).
    #[arg(long, env = "RUMOR_JOIN", value_delimiter = ',', value_name = "ADDR")]
    pub join: Vec<String>,
    /// Directory of the node's durable state: keys, identity, known members
    /// [default: ./rumor-data/NODE].
    #[arg(long, env = "RUMOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The cluster's encryption key (base64 of 32 bytes, as `rumor keys
    /// generate` prints); seeds the keyring file on first start.
    #[arg(
        long,
        env = "RUMOR_ENCRYPT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub encrypt_key: Option<String>,
    /// Keyring file: a JSON array of base64 keys, primary first
    /// [default: DATA_DIR/keyring.json].
    #[arg(long, env = "RUMOR_KEYRING", value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// Send packets unencrypted and unauthenticated (closed networks and
    /// tests only).
    #[arg(long, env = "RUMOR_PLAINTEXT")]
    pub plaintext: bool,
    /// Name of the cluster, checked on every packet: nodes of different
    /// clusters never merge [default: default].
    #[arg(long, env = "RUMOR_CLUSTER", value_name = "NAME")]
    pub cluster: Option<String>,
    /// Protocol defaults: lan, fast, wan or local [default: lan].
    #[arg(long, env = "RUMOR_PROFILE")]
    pub profile: Option<Profile>,
    /// A tag this node publishes, key=value (repeat the flag or separate
    /// with commas).
    #[arg(
        long = "tag",
        env = "RUMOR_TAGS",
        value_delimiter = ',',
        value_name = "KEY=VALUE"
    )]
    pub tags: Vec<String>,
    /// Run a script on events: [TYPE[,TYPE...]=]SCRIPT, TYPE one of
    /// member-join, member-leave, member-failed, member-update,
    /// member-reap, member-suspect, member-recover, member (all of those),
    /// user, user:NAME, kv, kv:PREFIX. Repeatable; each value is one whole
    /// script, `;` and newlines included. [env: RUMOR_EVENT_HANDLERS, one
    /// spec per line]
    #[arg(long = "event-handler", value_name = "SPEC")]
    pub event_handlers: Vec<String>,
    /// Log level or filter (error, warn, info, debug, trace, or a RUST_LOG
    /// directive) [default: info, or RUST_LOG].
    #[arg(long, env = "RUMOR_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// The settings a configuration file may hold (the same names as the flags,
/// with underscores).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node: Option<String>,
    bind: Option<SocketAddr>,
    advertise: Option<SocketAddr>,
    http: Option<SocketAddr>,
    http_token: Option<String>,
    #[serde(default)]
    join: Vec<String>,
    data_dir: Option<PathBuf>,
    encrypt_key: Option<String>,
    keyring: Option<PathBuf>,
    #[serde(default)]
    plaintext: bool,
    cluster: Option<String>,
    profile: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    event_handlers: Vec<String>,
    log_level: Option<String>,
}

/// The merged configuration the agent runs with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Node name (not yet validated).
    pub node: String,
    /// Gossip bind address.
    pub bind: SocketAddr,
    /// Advertised address.
    pub advertise: Option<SocketAddr>,
    /// HTTP API address.
    pub http: SocketAddr,
    /// HTTP bearer token.
    pub http_token: Option<String>,
    /// Addresses to join through.
    pub join: Vec<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Encryption key to seed the keyring with.
    pub encrypt_key: Option<String>,
    /// Keyring file.
    pub keyring: Option<PathBuf>,
    /// No encryption.
    pub plaintext: bool,
    /// Cluster name (`None`: the protocol's default).
    pub cluster: Option<String>,
    /// Protocol profile.
    pub profile: Profile,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Event handler specs.
    pub event_handlers: Vec<String>,
    /// Log filter.
    pub log_level: String,
}

impl AgentArgs {
    /// Merge the file (if any), environment and flags.
    pub fn resolve(self) -> anyhow::Result<AgentConfig> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let profile = match (self.profile, file.profile) {
            (Some(p), _) => p,
            (None, Some(p)) => p
                .parse()
                .with_context(|| "in the configuration file's `profile`".to_string())?,
            (None, None) => Profile::Lan,
        };
        let mut tags = file.tags;
        for t in &self.tags {
            let (k, v) = t
                .split_once('=')
                .with_context(|| format!("tag {t:?} is not KEY=VALUE; write --tag role=web"))?;
            if k.is_empty() {
                bail!("tag {t:?} has an empty key; write --tag role=web");
            }
            tags.insert(k.to_string(), v.to_string());
        }
        let node = self.node.or(file.node).unwrap_or_else(default_name);
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("rumor-data").join(&node));
        Ok(AgentConfig {
            bind: self
                .bind
                .or(file.bind)
                .unwrap_or_else(|| parse_default(DEFAULT_BIND)),
            advertise: self.advertise.or(file.advertise),
            http: self
                .http
                .or(file.http)
                .unwrap_or_else(|| parse_default(DEFAULT_HTTP)),
            http_token: self
                .http_token
                .or(file.http_token)
                .filter(|t| !t.is_empty()),
            join: if self.join.is_empty() {
                file.join
            } else {
                self.join
            },
            data_dir,
            encrypt_key: self.encrypt_key.or(file.encrypt_key),
            keyring: self.keyring.or(file.keyring),
            plaintext: self.plaintext || file.plaintext,
            cluster: self.cluster.or(file.cluster),
            profile,
            tags,
            event_handlers: if !self.event_handlers.is_empty() {
                self.event_handlers
            } else if let Some(specs) = std::env::var_os(EVENT_HANDLERS_ENV) {
                handlers_from_env(&specs.to_string_lossy())
            } else {
                file.event_handlers
            },
            log_level: self
                .log_level
                .or(file.log_level)
                .or_else(|| std::env::var("RUST_LOG").ok())
                .unwrap_or_else(|| "info".to_string()),
            node,
        })
    }
}

fn parse_default(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "configuration file {} is not valid; the settings are the agent's flag names with underscores (see `rumor agent --help`)",
            path.display()
        )
    })
}

/// The environment variable holding event handler specs, one per line.
const EVENT_HANDLERS_ENV: &str = "RUMOR_EVENT_HANDLERS";

/// The specs of [`EVENT_HANDLERS_ENV`]: one per non-blank line. Lines, not
/// `;`, separate them, because a script's own `;` (`while read n; do ...;
/// done`) must stay in the script.
fn handlers_from_env(value: &str) -> Vec<String> {
    value
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn default_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rumor".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let f = file(
            "node = \"from-file\"\nbind = \"127.0.0.1:8000\"\nprofile = \"wan\"\njoin = [\"a:1\"]\n[tags]\nrole = \"db\"\nzone = \"z1\"\n",
        );
        let args = AgentArgs {
            config: Some(f.path().to_path_buf()),
            node: Some("from-flag".into()),
            tags: vec!["role=web".into()],
            ..AgentArgs::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.node, "from-flag");
        assert_eq!(c.bind, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(c.profile, Profile::Wan);
        assert_eq!(c.join, vec!["a:1".to_string()]);
        assert_eq!(c.tags.get("role").map(String::as_str), Some("web"));
        assert_eq!(c.tags.get("zone").map(String::as_str), Some("z1"));
        assert_eq!(c.http, DEFAULT_HTTP.parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("rumor-data/from-flag"));
    }

    #[test]
    fn an_unknown_setting_is_an_error_that_names_the_file() {
        let f = file("nodes = \"typo\"\n");
        let args = AgentArgs {
            config: Some(f.path().to_path_buf()),
            ..AgentArgs::default()
        };
        let e = format!("{:#}", args.resolve().unwrap_err());
        assert!(e.contains("not valid") && e.contains("nodes"), "{e}");
    }

    #[test]
    fn an_event_handler_flag_keeps_its_script_whole() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            agent: AgentArgs,
        }
        let script = r#"member-failed=while read n rest; do echo "$n"; done >> failed"#;
        let cli = <Cli as clap::Parser>::try_parse_from([
            "rumor",
            "--event-handler",
            script,
            "--event-handler",
            "user:deploy=a; b",
        ])
        .unwrap();
        assert_eq!(
            cli.agent.event_handlers,
            vec![script.to_string(), "user:deploy=a; b".to_string()]
        );
    }

    #[test]
    fn the_event_handler_variable_holds_one_spec_per_line() {
        assert_eq!(
            handlers_from_env(
                "member-failed=while read n; do echo $n; done\n\n  user=./on-user.sh  \n"
            ),
            vec![
                "member-failed=while read n; do echo $n; done".to_string(),
                "user=./on-user.sh".to_string()
            ]
        );
    }

    #[test]
    fn a_tag_without_equals_is_refused() {
        let args = AgentArgs {
            tags: vec!["role".into()],
            ..AgentArgs::default()
        };
        let e = format!("{:#}", args.resolve().unwrap_err());
        assert!(e.contains("KEY=VALUE"), "{e}");
    }
}
