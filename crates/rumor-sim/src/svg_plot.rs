//! Minimal hand-written SVG line charts, for the plots in `docs/`: axes,
//! ticks, one polyline per series and a legend. No dependency; the output
//! is small and deterministic (the same data give the same bytes).

use core::fmt::Write as _;

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points `(x, y)`, in data units, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Title, above the plot area.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Range of the y axis; `None`: from the data.
    pub y_range: Option<(f64, f64)>,
    /// The lines.
    pub series: Vec<Series>,
}

/// Colors of the series, in order (repeated if there are more series).
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];
/// Dash patterns of the series, so that the lines differ without color too.
const DASHES: [&str; 6] = ["", "6,3", "2,2", "8,3,2,3", "1,3", "10,4"];

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 46.0;

/// A "nice" tick step (1, 2 or 5 × 10^k) for about `target` ticks over `span`.
fn tick_step(span: f64, target: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A tick label: no trailing zeros.
fn tick_label(v: f64) -> String {
    let s = format!("{:.3}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Escape text for SVG.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl LineChart {
    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let all: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter(finite).copied())
            .collect();
        let (mut x0, mut x1) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.0), hi.max(p.0))
            });
        if !(x0.is_finite() && x1.is_finite()) {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let (y0, y1) = self.y_range.unwrap_or_else(|| {
            let (lo, hi) = all
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                    (lo.min(p.1), hi.max(p.1))
                });
            if lo.is_finite() && hi > lo {
                (lo, hi)
            } else {
                (0.0, 1.0)
            }
        });
        let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;

        let mut s = String::new();
        let _ = writeln!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">"
        );
        let _ = writeln!(
            s,
            "<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{}</text>",
            WIDTH / 2.0,
            escape(&self.title)
        );
        // Grid and ticks.
        let _ = writeln!(s, "<g stroke=\"#ddd\" stroke-width=\"1\">");
        let xs = tick_step(x1 - x0, 8.0);
        let ys = tick_step(y1 - y0, 5.0);
        let x_ticks: Vec<f64> = (0..)
            .map(|i| (x0 / xs).ceil() * xs + f64::from(i) * xs)
            .take_while(|x| *x <= x1 + xs * 1e-9)
            .take(100)
            .collect();
        let y_ticks: Vec<f64> = (0..)
            .map(|i| (y0 / ys).ceil() * ys + f64::from(i) * ys)
            .take_while(|y| *y <= y1 + ys * 1e-9)
            .take(100)
            .collect();
        for &x in &x_ticks {
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\"/>",
                sx(x),
                TOP,
                TOP + ph
            );
        }
        for &y in &y_ticks {
            let _ = writeln!(
                s,
                "<line x1=\"{1:.1}\" y1=\"{0:.1}\" x2=\"{2:.1}\" y2=\"{0:.1}\"/>",
                sy(y),
                LEFT,
                LEFT + pw
            );
        }
        let _ = writeln!(s, "</g>");
        // Axes.
        let _ = writeln!(
            s,
            "<path d=\"M{LEFT},{TOP}V{:.1}H{:.1}\" fill=\"none\" stroke=\"black\"/>",
            TOP + ph,
            LEFT + pw
        );
        let _ = writeln!(s, "<g text-anchor=\"middle\">");
        for &x in &x_ticks {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                sx(x),
                TOP + ph + 14.0,
                tick_label(x)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LEFT + pw / 2.0,
            HEIGHT - 10.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            "<text transform=\"translate(14,{:.1}) rotate(-90)\">{}</text>",
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        let _ = writeln!(s, "</g>");
        let _ = writeln!(s, "<g text-anchor=\"end\">");
        for &y in &y_ticks {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                LEFT - 4.0,
                sy(y) + 4.0,
                tick_label(y)
            );
        }
        let _ = writeln!(s, "</g>");
        // Series.
        for (i, series) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let dash = DASHES[i % DASHES.len()];
            let dash = if dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{dash}\"")
            };
            let points: Vec<String> = series
                .points
                .iter()
                .filter(finite)
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y.clamp(y0, y1))))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\"{dash} points=\"{}\"/>",
                points.join(" ")
            );
        }
        // Legend, bottom right of the plot area.
        let rows = self.series.len() as f64;
        let lw = 150.0;
        let lx = LEFT + pw - lw - 8.0;
        let ly = TOP + ph - 8.0 - rows * 16.0 - 6.0;
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"{lw}\" height=\"{:.1}\" fill=\"white\" \
             fill-opacity=\"0.9\" stroke=\"#999\"/>",
            rows * 16.0 + 6.0
        );
        for (i, series) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let dash = DASHES[i % DASHES.len()];
            let dash = if dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{dash}\"")
            };
            let y = ly + 14.0 + i as f64 * 16.0;
            let _ = writeln!(
                s,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" \
                 stroke-width=\"1.8\"{dash}/>",
                lx + 6.0,
                y - 4.0,
                lx + 30.0,
                y - 4.0
            );
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
                lx + 36.0,
                escape(&series.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(tick_step(1.0, 5.0), 0.2);
        assert_eq!(tick_step(30.0, 8.0), 5.0);
        assert_eq!(tick_step(0.0, 5.0), 1.0);
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(10.0), "10");
    }

    #[test]
    fn chart_has_a_polyline_per_series() {
        let chart = LineChart {
            title: "a < b".into(),
            x_label: "round".into(),
            y_label: "coverage".into(),
            y_range: Some((0.0, 1.0)),
            series: vec![
                Series {
                    label: "one".into(),
                    points: vec![(0.0, 0.0), (1.0, 0.5), (2.0, 1.0)],
                },
                Series {
                    label: "two".into(),
                    points: vec![(0.0, 0.0), (3.0, f64::NAN), (4.0, 1.0)],
                },
            ],
        };
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b"));
        assert!(!svg.contains("NaN"));
    }
}
