//! Numeric knobs that show the value the file holds, whatever it is.
//!
//! Contract: drawing never changes a value. egui's slider and drag value clamp
//! the number they are given to their range on every frame by default, so an
//! experiment with `lr: 4.0` showed 1.00 and snapped back when 4.0 was typed;
//! here a log slider's range follows the value (wide enough to hold it with room
//! either side, frozen while it is dragged so it cannot run away), and the exact
//! field beside it shows and accepts any value within the hard `limits`.

use std::ops::RangeInclusive;

use egui::{DragValue, Response, Slider, SliderClamping, Ui};

/// The slider range for `value`: `typical` widened by a decade around the value
/// when it lies outside, then cut to `limits`.
pub fn log_range(
    value: f64,
    typical: &RangeInclusive<f64>,
    limits: &RangeInclusive<f64>,
) -> RangeInclusive<f64> {
    let (mut lo, mut hi) = (*typical.start(), *typical.end());
    if value.is_finite() && value > 0.0 {
        lo = lo.min(value / 10.0);
        hi = hi.max(value * 10.0);
    }
    lo = lo.max(*limits.start()).max(f64::MIN_POSITIVE);
    hi = hi.min(*limits.end()).max(lo * 10.0);
    lo..=hi
}

/// A log slider (no text) and the exact value beside it, both labelled by
/// `label` for screen readers and tests. Returns true when the user changed it.
pub fn log_knob(
    ui: &mut Ui,
    value: &mut f64,
    typical: RangeInclusive<f64>,
    limits: RangeInclusive<f64>,
    label: egui::Id,
    help: &str,
) -> bool {
    let memory = label.with("log_range");
    let range = ui
        .data(|d| d.get_temp::<(f64, f64)>(memory))
        .map_or_else(|| log_range(*value, &typical, &limits), |(a, b)| a..=b);
    let mut v = *value;
    let slider = ui
        .add(
            Slider::new(&mut v, range)
                .logarithmic(true)
                .clamping(SliderClamping::Edits)
                .show_value(false),
        )
        .labelled_by(label)
        .on_hover_text(help);
    let speed = (v.abs() * 0.01).max(1e-9);
    let exact = exact_f64(ui, &mut v, limits.clone(), speed).labelled_by(label);
    // A drag keeps its range; otherwise the range follows the value.
    if slider.dragged() {
        let held = log_range(*value, &typical, &limits);
        let (a, b) = (*held.start(), *held.end());
        ui.data_mut(|d| {
            d.get_temp_mut_or_insert_with(memory, || (a, b));
        });
    } else {
        ui.data_mut(|d| d.remove::<(f64, f64)>(memory));
    }
    let changed = (slider.changed() || exact.changed()) && v != *value;
    if changed {
        *value = v;
    }
    changed
}

/// A drag value that shows `value` as it is (never clamped for display) and
/// clamps only what the user types or drags to `limits`.
pub fn exact_f64(
    ui: &mut Ui,
    value: &mut f64,
    limits: RangeInclusive<f64>,
    speed: f64,
) -> Response {
    ui.add(
        DragValue::new(value)
            .range(limits)
            .clamp_existing_to_range(false)
            .speed(speed)
            .max_decimals(7),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_holds_the_value_with_room_either_side() {
        let typical = 1e-5..=1.0;
        let limits = 1e-7..=100.0;
        assert_eq!(log_range(1e-3, &typical, &limits), 1e-5..=1.0);
        let r = log_range(4.0, &typical, &limits);
        assert!(r.contains(&4.0) && *r.end() >= 40.0, "{r:?}");
        let r = log_range(1e-6, &typical, &limits);
        assert!(r.contains(&1e-6) && *r.start() <= 1e-7, "{r:?}");
        // Cut to the limits, never empty.
        let r = log_range(1e9, &typical, &limits);
        assert_eq!(*r.end(), 100.0);
        let r = log_range(f64::NAN, &typical, &limits);
        assert_eq!(r, 1e-5..=1.0);
    }

    #[test]
    fn drawing_keeps_a_value_beyond_the_typical_range() {
        let ctx = egui::Context::default();
        let mut lr = 4.0;
        for _ in 0..3 {
            let _ = ctx.run_ui(egui::RawInput::default(), |ui| {
                let id = ui.label("lr").id;
                log_knob(ui, &mut lr, 1e-5..=1.0, 1e-7..=100.0, id, "");
            });
        }
        assert_eq!(lr, 4.0);
    }
}
