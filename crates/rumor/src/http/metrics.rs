//! `GET /v1/metrics`: the node's counters and gauges in the Prometheus text
//! exposition format.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::ApiState;
use super::error::ApiError;

/// Appends metrics in the text format, one `# HELP`/`# TYPE` pair each.
struct Exposition(String);

impl Exposition {
    fn metric(&mut self, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
        let _ = writeln!(self.0, "# HELP rumor_{name} {help}");
        let _ = writeln!(self.0, "# TYPE rumor_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(self.0, "rumor_{name}{labels} {v}");
        }
    }

    fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.metric(name, "counter", help, &[("", v as f64)]);
    }

    fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.metric(name, "gauge", help, &[("", v)]);
    }
}

pub(super) async fn render(State(s): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let info = s.node.info().await?;
    let conv = s.node.convergence().await?;
    let st = &info.stats;
    let m = &info.members;
    let mut out = Exposition(String::new());
    out.metric(
        "members",
        "gauge",
        "Members as this node sees them, by state.",
        &[
            ("{state=\"alive\"}", m.alive as f64),
            ("{state=\"suspect\"}", m.suspect as f64),
            ("{state=\"dead\"}", m.dead as f64),
            ("{state=\"left\"}", m.left as f64),
        ],
    );
    out.gauge(
        "health_score",
        "Lifeguard local health score (0 is healthy).",
        f64::from(info.health_score),
    );
    out.gauge(
        "incarnation",
        "This node's incarnation.",
        info.incarnation as f64,
    );
    out.counter(
        "packets_sent_total",
        "Datagrams and stream frames sent.",
        st.packets_sent,
    );
    out.counter("bytes_sent_total", "Bytes sent.", st.bytes_sent);
    out.counter(
        "messages_sent_total",
        "Protocol messages sent.",
        st.messages_sent,
    );
    out.counter(
        "packets_received_total",
        "Datagrams and stream frames received.",
        st.packets_received,
    );
    out.counter("bytes_received_total", "Bytes received.", st.bytes_received);
    out.counter("probes_total", "Probes started.", st.probes);
    out.counter(
        "indirect_probes_total",
        "Probes that needed indirect probing.",
        st.indirect_probes,
    );
    out.counter(
        "failed_probes_total",
        "Probes that led to a suspicion.",
        st.failed_probes,
    );
    out.counter(
        "refutations_total",
        "Suspicions of this node it refuted.",
        st.refutations,
    );
    out.counter(
        "eager_gossip_rounds_total",
        "Gossip rounds sent at once for a member found down or a refutation.",
        st.eager_gossip_rounds,
    );
    out.counter(
        "push_pulls_skipped_total",
        "Periodic push-pulls skipped because the views agreed.",
        st.push_pulls_skipped,
    );
    out.counter(
        "dissemination_rounds_total",
        "Dissemination rounds run (none while no rumor is held).",
        st.rumor_rounds,
    );
    out.counter("rumors_sent_total", "Rumor copies sent.", st.rumors_sent);
    out.counter(
        "rumors_new_total",
        "Rumors received that were new here.",
        st.rumors_new,
    );
    out.counter(
        "rumors_duplicate_total",
        "Rumors received that this node already had.",
        st.rumors_duplicate,
    );
    out.counter(
        "rumors_deferred_total",
        "Times a rumor waited for bandwidth budget.",
        st.rumors_deferred,
    );
    out.gauge(
        "queued_broadcasts",
        "Rumors waiting to be spread.",
        info.queued_broadcasts as f64,
    );
    out.counter(
        "kv_writes_total",
        "Key writes made on this node.",
        st.kv_writes,
    );
    out.counter(
        "kv_merged_total",
        "Received key states that changed the store.",
        st.kv_merged,
    );
    out.counter(
        "kv_refused_total",
        "Received key states refused.",
        st.kv_refused,
    );
    out.counter(
        "tombstones_collected_total",
        "Tombstones collected.",
        st.tombstones_collected,
    );
    out.counter(
        "anti_entropy_started_total",
        "Anti-entropy exchanges started.",
        st.anti_entropy_started,
    );
    out.counter(
        "anti_entropy_bytes_sent_total",
        "Bytes of anti-entropy frames sent.",
        st.anti_entropy_bytes_sent,
    );
    out.gauge(
        "kv_keys",
        "Keys held, tombstones included.",
        info.keys as f64,
    );
    out.gauge("kv_tombstones", "Tombstones held.", info.tombstones as f64);
    out.gauge(
        "kv_bytes",
        "Bytes of keys and values held.",
        info.kv_bytes as f64,
    );
    out.gauge(
        "convergence_fraction",
        "Fraction of live members whose digest equals this node's.",
        conv.fraction,
    );
    out.gauge(
        "convergence_differing",
        "Live members whose digest differs.",
        conv.differing.len() as f64,
    );
    out.counter(
        "propagation_latency_count",
        "Updates whose propagation latency was measured.",
        conv.latency.count,
    );
    out.counter(
        "propagation_latency_ms_sum",
        "Sum of update propagation latencies, ms.",
        conv.latency.sum_ms,
    );
    out.counter(
        "dropped_total",
        "Received packets and messages dropped.",
        st.dropped.total(),
    );
    out.counter(
        "stream_only_acks_total",
        "Probes answered over TCP but not UDP (UDP may be blocked).",
        st.stream_only_acks,
    );
    // Every transport counter (sealed, opened, auth_failures, replays_rejected,
    // ...; documented on `rumor::TransportStats`), under its own name.
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(s.node.transport_stats()) {
        for (name, v) in fields {
            let help = format!(
                "Transport: {} (see TransportStats).",
                name.replace('_', " ")
            );
            out.counter(
                &format!("transport_{name}_total"),
                &help,
                v.as_u64().unwrap_or(0),
            );
        }
    }
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out.0))
}
