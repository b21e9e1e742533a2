//! The faults a simulation can schedule: crashes, restarts, graceful leaves,
//! application commands, and slow (periodically frozen) nodes. Partitions are
//! in [`crate::network`].

use core::ops::RangeInclusive;
use core::time::Duration;

use rumor_proto::{Command, Instant};

/// How a crashed node comes back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RestartMode {
    /// With the state it had at the crash: `Node::restore` from its snapshot,
    /// so it comes back at a higher incarnation and rejoins by itself.
    WithState,
    /// Without state: a fresh node with the same name and address, at
    /// incarnation 0, that joins through its seeds.
    Fresh,
}

/// Something that happens to one node at a scheduled instant.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The node stops dead: packets to it are dropped and its timers ignored.
    Crash,
    /// A crashed (or departed) node starts again.
    Restart(RestartMode),
    /// The node leaves gracefully: it announces `left`, keeps running for
    /// five gossip intervals so the news spreads, then stops.
    Leave,
    /// The application hands the node a command.
    Command(Command),
}

/// A slow node: from `start` to `end` it alternates running and frozen
/// periods, each drawn uniformly from its range.
///
/// While frozen, packets for the node and its timers wait. When it thaws its
/// timers run first, then the waiting packets are handled in arrival order,
/// all at the thaw instant: the way a CPU-starved process sees its timers
/// win the race against its socket. Scheduled faults and commands still
/// apply to a frozen node at their time.
#[derive(Clone, Debug, PartialEq)]
pub struct SlowSpec {
    /// When the first running period starts.
    pub start: Instant,
    /// When the node stops being slow (a frozen node thaws then).
    pub end: Instant,
    /// Length of each running period.
    pub run: RangeInclusive<Duration>,
    /// Length of each frozen period.
    pub freeze: RangeInclusive<Duration>,
}

impl SlowSpec {
    /// Slow for the whole run, with these running and frozen periods.
    pub fn throughout(run: RangeInclusive<Duration>, freeze: RangeInclusive<Duration>) -> Self {
        SlowSpec {
            start: Instant::ZERO,
            end: Instant::from_nanos(u64::MAX),
            run,
            freeze,
        }
    }
}
