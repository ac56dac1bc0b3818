//! Charts for the HTML reports, drawn with plotters as inline SVG (nothing
//! is fetched when a page is opened).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Vertical bars, one per label, with the value over each.
pub fn bars(title: &str, y_label: &str, labels: &[String], values: &[f64]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 380)).into_drawing_area();
        let top = values.iter().copied().fold(0.0, f64::max).max(1.0) * 1.15;
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                // A segmented 0..n has n + 1 slots: the last label's is n - 1.
                .build_cartesian_2d((0..labels.len().saturating_sub(1)).into_segmented(), 0.0..top)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .y_desc(y_label)
                .y_label_formatter(&|v| format!("{v:.0}"))
                .x_labels(labels.len().max(1))
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .draw()?;
            chart.draw_series(
                Histogram::vertical(&chart)
                    .style(RGBColor(0x2b, 0x6c, 0xb0).filled())
                    .margin(18)
                    .data(values.iter().enumerate().map(|(i, v)| (i, *v))),
            )?;
            let above = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart.draw_series(values.iter().enumerate().map(|(i, v)| {
                Text::new(format!("{v:.0}"), (SegmentValue::CenterOf(i), *v + top * 0.01), above.clone())
            }))?;
            root.present()?;
            Ok(())
        })();
        if let Err(e) = drawn {
            return format!("<p>chart not drawn: {e}</p>");
        }
    }
    svg
}
