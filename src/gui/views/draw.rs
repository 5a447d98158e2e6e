//! "Draw a digit": the canvas, what the model sees (28x28), and its class
//! probabilities as bars — from the live model while training, else from the
//! last trained run.
//!
//! Contract: the canvas is this view's state ([`DrawState`]); ink changes go to
//! the [`Inspector`] as model input, and it decides which model answers.

use egui::{Color32, RichText, Sense, Ui, Vec2};

use super::canvas::DigitCanvas;
use super::saliency::{Choice, SaliencyState, caption, heatmap};
use crate::gui::state::inspect::Inspector;
use crate::infer::argmax;

/// What the learner drew in the Draw tab.
#[derive(Default)]
pub struct DrawState {
    /// The draw-a-digit canvas.
    pub canvas: DigitCanvas,
}

impl DrawState {
    /// The drawing as model input, None when the canvas is empty.
    fn ink(&self) -> Option<Vec<u8>> {
        (!self.canvas.is_empty()).then(|| self.canvas.to_mnist())
    }
}

/// Draws the view. `live` is true while a run trains; `classes` names the bars.
pub fn draw_view(
    ui: &mut Ui,
    inspector: &mut Inspector,
    state: &mut DrawState,
    live: bool,
    classes: &[String],
    saliency: &mut SaliencyState,
) {
    let has_model = live || inspector.predictor.is_some();
    ui.label(if has_model {
        "Draw a digit with the mouse (hold the left button). The bars show what the model thinks it is."
    } else if inspector.is_loading() {
        "Loading the trained model…"
    } else {
        "No trained model yet: press ▶ Start to train one (you can draw while it learns), or inspect a past run under History."
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            if state.canvas.ui(ui, 280.0) {
                inspector.canvas_changed(state.ink(), live);
            }
            ui.horizontal(|ui| {
                if ui.button("Clear").on_hover_text("Wipe the canvas and draw again.").clicked() {
                    state.canvas.clear();
                    inspector.canvas_changed(None, live);
                }
                state
                    .canvas
                    .preview_ui(ui, 56.0)
                    .on_hover_text("What the model sees: your drawing fitted into 20x20 and centred in 28x28, as MNIST digits were prepared.");
                ui.weak("model input");
            });
        });
        ui.add_space(16.0);
        ui.vertical(|ui| probability_bars(ui, inspector, classes));
    });
    saliency_row(ui, inspector, (live, classes), saliency);
}

/// The saliency controls and the heatmap over what the model sees: the live
/// model's (asked through a probe) while a run trains, else the loaded trained
/// model's.
fn saliency_row(
    ui: &mut Ui,
    inspector: &Inspector,
    (live, classes): (bool, &[String]),
    saliency: &mut SaliencyState,
) {
    if !live && inspector.predictor.is_none() {
        return;
    }
    ui.separator();
    saliency.controls(ui, Some(classes));
    if saliency.choice == Choice::Off {
        return;
    }
    let Some(pixels) = inspector.ink.clone() else {
        return;
    };
    let name = |class: usize| {
        classes
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string())
    };
    if live {
        match saliency.live_attribution(&pixels, saliency.class) {
            Some((step, a)) => {
                let heat = a.heat();
                heatmap(ui, &pixels, [28, 28], Some(&heat), 168.0);
                caption(ui, a, &name(a.class));
                ui.weak(format!("from the live model at step {step}"));
            }
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.weak("asking the live model…");
                });
            }
        }
        return;
    }
    let Some(p) = &inspector.predictor else {
        return;
    };
    let predicted = p
        .probabilities(&pixels, 1)
        .ok()
        .and_then(|v| v.first().map(|probs| argmax(probs).0))
        .unwrap_or(0);
    let class = saliency.class.unwrap_or(predicted);
    match saliency.attribution(p, inspector.generation, &pixels, class) {
        Some(Ok(a)) => {
            let heat = a.heat();
            heatmap(ui, &pixels, [28, 28], Some(&heat), 168.0);
            caption(ui, a, &name(class));
            ui.weak(format!(
                "from the trained model of {}",
                p.run_dir
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            ));
        }
        Some(Err(e)) => {
            ui.label(format!("No saliency: {e}"));
        }
        None => {}
    }
}

fn probability_bars(ui: &mut Ui, inspector: &Inspector, classes: &[String]) {
    let Some(v) = &inspector.verdict else {
        ui.weak("(draw to see the probabilities)");
        return;
    };
    let best = v
        .probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
    ui.heading(format!(
        "{} ({:.0}%)",
        name(best),
        v.probabilities[best] * 100.0
    ));
    ui.weak(format!("answer of the {}", v.source));
    ui.add_space(6.0);
    for (i, &p) in v.probabilities.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.add_sized(
                [90.0, 18.0],
                egui::Label::new(RichText::new(name(i)).monospace()),
            );
            let (rect, _) = ui.allocate_exact_size(Vec2::new(220.0, 16.0), Sense::hover());
            let painter = ui.painter_at(rect);
            painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
            let mut bar = rect;
            bar.set_width(rect.width() * p.clamp(0.0, 1.0));
            let colour = if i == best {
                Color32::from_rgb(80, 160, 255)
            } else {
                Color32::from_gray(140)
            };
            painter.rect_filled(bar, 2.0, colour);
            ui.label(format!("{:5.1}%", p * 100.0));
        });
    }
}
