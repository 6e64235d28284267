//! The overview's chart, drawn on the server: stacked bars per bucket (an hour of today, or
//! a day), axes with round ticks, a delivery-rate line, hover values as SVG `<title>`, each
//! bar and column a link into `/status`.

use std::collections::BTreeMap;

use super::counts::{percent, Links};
use super::Span;
use crate::domain::Status;
use crate::web::lang::Lang;
use crate::web::layout::grouped;

/// One bar segment of the chart, in SVG user units.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub tone: &'static str,
    pub title: String,
    pub href: String,
}

/// A bucket's whole column: hover shows its summary.
pub struct Column {
    pub x: String,
    pub width: String,
    pub title: String,
    pub href: String,
}

pub struct Tick {
    pub y: String,
    pub text: String,
}

pub struct XLabel {
    pub x: String,
    pub text: String,
}

pub struct Chart {
    pub title: String,
    /// The SVG viewBox and the plot's edges, in its user units.
    pub view_box: String,
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
    pub plot_height: String,
    pub tick_x: String,
    pub rate_x: String,
    pub label_y: String,
    pub bars: Vec<Bar>,
    pub columns: Vec<Column>,
    pub ticks: Vec<Tick>,
    pub rate_ticks: Vec<Tick>,
    pub labels: Vec<XLabel>,
    /// The delivery-rate line, as SVG points.
    pub rate_points: String,
    pub rate_dots: Vec<(String, String, String)>,
}

// Chart geometry, in SVG user units: the wide chart is 760 units across, the phone's 360.
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;
const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;

/// A round step for about four ticks up to `max`: 1, 2 or 5 times a power of ten.
pub fn tick_step(max: i64) -> i64 {
    let rough = (max.max(1) as f64 / 4.0).max(1.0);
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    (step as i64).max(1)
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// Where things go: the slots of the buckets across, the counts' scale up.
struct Geometry {
    slot: f64,
    bar_w: f64,
    /// The count at the top of the plot: a whole number of ticks.
    top: i64,
    step: i64,
    label_every: usize,
}

impl Geometry {
    fn new(width: f64, n: usize, max: i64) -> Self {
        let plot_w = width - LEFT - RIGHT;
        let slot = plot_w / n as f64;
        let step = tick_step(max);
        // About 60 units per label.
        let room = (plot_w / 60.0).max(1.0) as usize;
        Geometry {
            slot,
            bar_w: (slot * 0.68).max(2.0),
            top: (max + step - 1) / step * step,
            step,
            label_every: [1, 2, 3, 4, 6, 7, 10, 15]
                .into_iter()
                .find(|every| n.div_ceil(*every) <= room)
                .unwrap_or(n),
        }
    }

    fn y_of(&self, v: i64) -> f64 {
        TOP + PLOT_HEIGHT - v as f64 * PLOT_HEIGHT / self.top as f64
    }

    fn ticks(&self) -> Vec<Tick> {
        (0..=self.top / self.step)
            .map(|i| Tick {
                y: f(self.y_of(i * self.step)),
                text: grouped(i * self.step),
            })
            .collect()
    }
}

fn rate_ticks() -> Vec<Tick> {
    [0, 50, 100]
        .into_iter()
        .map(|p| Tick {
            y: f(TOP + PLOT_HEIGHT - p as f64 * PLOT_HEIGHT / 100.0),
            text: format!("{p}%"),
        })
        .collect()
}

/// The chart of the buckets' counts (per status and reason), `width` units across.
pub fn chart(
    per_bucket: &[BTreeMap<(i16, i16), i64>],
    span: &Span,
    lang: Lang,
    links: &Links,
    width: f64,
) -> Chart {
    let n = per_bucket.len().max(1);
    let totals: Vec<i64> = per_bucket.iter().map(|b| b.values().sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let geometry = Geometry::new(width, n, max);
    let mut chart = Chart {
        view_box: format!("0 0 {width} {HEIGHT}"),
        left: f(LEFT),
        right: f(width - RIGHT),
        top: f(TOP),
        bottom: f(TOP + PLOT_HEIGHT),
        plot_height: f(PLOT_HEIGHT),
        tick_x: f(LEFT - 6.0),
        rate_x: f(width - RIGHT + 6.0),
        label_y: f(HEIGHT - 12.0),
        title: lang.t(match span.days {
            1 => "overview.chart_1",
            7 => "overview.chart_7",
            _ => "overview.chart_30",
        }),
        bars: Vec::new(),
        columns: Vec::new(),
        ticks: geometry.ticks(),
        rate_ticks: rate_ticks(),
        labels: Vec::new(),
        rate_points: String::new(),
        rate_dots: Vec::new(),
    };
    let mut points = Vec::new();
    for (i, bucket) in per_bucket.iter().enumerate() {
        let drawn = Bucket {
            i,
            counts: bucket,
            total: totals[i],
        };
        if let Some(point) = drawn.draw(&mut chart, &geometry, span, lang, links) {
            points.push(point);
        }
    }
    chart.rate_points = points.join(" ");
    chart
}

/// One bucket: its bars, its label, its column and its point on the rate line.
struct Bucket<'a> {
    i: usize,
    counts: &'a BTreeMap<(i16, i16), i64>,
    total: i64,
}

impl Bucket<'_> {
    fn of(&self, s: Status) -> i64 {
        self.counts
            .iter()
            .filter(|((st, _), _)| *st == s.as_i16())
            .map(|(_, c)| c)
            .sum()
    }

    /// Adds the bucket to the chart; answers its point of the rate line, if it has one.
    fn draw(
        &self,
        chart: &mut Chart,
        g: &Geometry,
        span: &Span,
        lang: Lang,
        links: &Links,
    ) -> Option<String> {
        let i = self.i;
        let slot_x = LEFT + i as f64 * g.slot;
        let x = slot_x + (g.slot - g.bar_w) / 2.0;
        let (date, when) = if span.days == 1 {
            let today = span.today;
            (today, format!("{today} {i:02}:00–{:02}:00", i + 1))
        } else {
            let d = span.day(i);
            (d, d.format("%Y-%m-%d").to_string())
        };
        if i.is_multiple_of(g.label_every) {
            chart.labels.push(XLabel {
                x: f(slot_x + g.slot / 2.0),
                text: if span.days == 1 {
                    format!("{i:02}:00")
                } else {
                    date.format("%m-%d").to_string()
                },
            });
        }
        let total = self.total;
        let mut summary = vec![format!(
            "{when} · {} {}",
            lang.t("overview.total"),
            grouped(total)
        )];
        let mut y = TOP + PLOT_HEIGHT;
        for &status in Status::ALL {
            let count = self.of(status);
            let shown = format!(
                "{} {} ({})",
                status.label(lang.code()),
                grouped(count),
                percent(count, total)
            );
            summary.push(shown.clone());
            if count == 0 {
                continue;
            }
            let height = (count as f64 * PLOT_HEIGHT / g.top as f64).max(1.0);
            y -= height;
            chart.bars.push(Bar {
                x: f(x),
                y: f(y),
                width: f(g.bar_w),
                height: f(height),
                tone: status.tone(),
                title: format!("{when} · {shown}"),
                href: links.status(date, date, Some(status), None),
            });
        }
        let point = self.rate(chart, slot_x + g.slot / 2.0, &when, lang, &mut summary);
        chart.columns.push(Column {
            x: f(slot_x),
            width: f(g.slot),
            title: summary.join("\n"),
            href: links.status(date, date, None, None),
        });
        point
    }

    /// The delivery rate of what finished in the bucket: a dot, a point and a summary line.
    fn rate(
        &self,
        chart: &mut Chart,
        px: f64,
        when: &str,
        lang: Lang,
        summary: &mut Vec<String>,
    ) -> Option<String> {
        let delivered = self.of(Status::Delivered);
        let finished = self.total - self.of(Status::Requesting);
        if finished <= 0 {
            return None;
        }
        let rate = delivered as f64 / finished as f64;
        let py = TOP + PLOT_HEIGHT - rate * PLOT_HEIGHT;
        let said = format!(
            "{} {}",
            lang.t("overview.delivery_rate"),
            percent(delivered, finished)
        );
        chart
            .rate_dots
            .push((f(px), f(py), format!("{when} · {said}")));
        summary.push(said);
        Some(format!("{},{}", f(px), f(py)))
    }
}

#[cfg(test)]
mod tests {
    use super::tick_step;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(0), 1);
        assert_eq!(tick_step(7), 2);
        assert_eq!(tick_step(40), 10);
        assert_eq!(tick_step(1234), 500);
        assert_eq!(tick_step(90_000), 50_000);
    }
}
