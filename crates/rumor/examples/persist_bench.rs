//! What persistence costs: the latency of an acknowledged write with a data
//! directory (sequential writes, one at a time) against one without, the
//! rate of concurrent writes (which share commits), and the time a node
//! takes to restart from a data directory holding many keys.
//!
//! ```sh
//! cargo run --release -p rumor --example persist_bench -- [KEYS] [DIR]
//! ```
//!
//! KEYS (default 100000) is the store size for the restart; DIR (default:
//! a temporary directory) should sit on the disk to be measured.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rumor::{Cluster, Handle, RuntimeConfig};
use rumor_proto::state::Op;

const SEQUENTIAL: usize = 1_000;
const WRITERS: usize = 64;

fn put(i: usize) -> Op {
    Op::Put {
        value: format!("value-{i:08}").into_bytes(),
        context: None,
        kind: None,
    }
}

async fn start(dir: Option<&Path>) -> Handle {
    let mut config = RuntimeConfig::new("bench".parse().unwrap(), "127.0.0.1:0".parse().unwrap());
    config.data_dir = dir.map(Path::to_path_buf);
    Cluster::start(config).await.unwrap()
}

/// Median and 99th percentile of `SEQUENTIAL` writes, one after another.
async fn sequential(node: &Handle) -> (Duration, Duration) {
    let mut took = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let t = Instant::now();
        node.write(&format!("seq-{i}"), put(i)).await.unwrap();
        took.push(t.elapsed());
    }
    took.sort();
    (took[SEQUENTIAL / 2], took[SEQUENTIAL * 99 / 100])
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let keys: usize = args.next().map_or(100_000, |s| s.parse().unwrap());
    let temp = tempfile::tempdir().unwrap();
    let dir: PathBuf = args
        .next()
        .map_or_else(|| temp.path().join("data"), PathBuf::from);

    let memory = start(None).await;
    let (median, p99) = sequential(&memory).await;
    println!("write, memory only:       median {median:?}, p99 {p99:?}");
    memory.shutdown().await.unwrap();

    let node = start(Some(&dir)).await;
    let (median, p99) = sequential(&node).await;
    println!("write, data directory:    median {median:?}, p99 {p99:?} (one commit each)");

    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..keys).step_by(WRITERS) {
                node.write(&format!("key-{i:08}"), put(i)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let took = t.elapsed();
    println!(
        "{keys} writes by {WRITERS} concurrent writers: {took:.2?} ({:.0} acknowledged writes/s)",
        keys as f64 / took.as_secs_f64()
    );
    node.shutdown().await.unwrap();
    let size = std::fs::metadata(dir.join("rumor.redb")).unwrap().len();
    println!("database file: {:.1} MiB", size as f64 / (1024.0 * 1024.0));

    let t = Instant::now();
    let node = start(Some(&dir)).await;
    let took = t.elapsed();
    let held = node.convergence().await.unwrap().keys;
    println!("restart with {held} keys: {took:.2?}");
    node.shutdown().await.unwrap();
}
