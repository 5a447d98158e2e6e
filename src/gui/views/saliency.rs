//! Saliency heatmaps over an image, for the Draw-a-digit and Mistakes views: which
//! pixels the trained model's score for a class depends on (`infer::saliency`),
//! as the gradient or as integrated gradients from a black image.
//!
//! Contract: attributions come from the loaded trained model (`Predictor`),
//! computed only when the image, class, method or model changes (a small cache
//! keyed by all four), or, while a run trains, from the live model: a
//! `Probe::Saliency` sent when the image, class or method changes and again at
//! most every [`LIVE_REFRESH`] while shown, one at a time (the previous answer
//! stays on screen meanwhile; a lost answer is asked again after
//! [`LIVE_PATIENCE`]). Either way they are drawn over the image: red where the pixel speaks
//! for the class, blue (integrated gradients only) where it speaks against,
//! stronger the larger the magnitude. Integrated gradients show their
//! completeness check (sum of attributions next to the score difference).

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use egui::{Color32, Rect, Sense, Ui, Vec2};

use crate::events::{Probe, ProbeAnswer};
use crate::infer::Predictor;
use crate::infer::saliency::{Attribution, SaliencyMethod};

/// How often the live model's heatmap is asked again while it is shown.
pub const LIVE_REFRESH: Duration = Duration::from_secs(1);
/// An unanswered live probe is given up (and asked again) after this long.
pub const LIVE_PATIENCE: Duration = Duration::from_secs(5);

/// Integrated gradients' points on the path.
pub const IG_STEPS: usize = 32;

/// What the saliency controls chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// No heatmap.
    #[default]
    Off,
    /// The gradient of the score.
    Gradient,
    /// Integrated gradients from black.
    Integrated,
}

impl Choice {
    fn method(self) -> Option<SaliencyMethod> {
        match self {
            Choice::Off => None,
            Choice::Gradient => Some(SaliencyMethod::Gradient),
            Choice::Integrated => Some(SaliencyMethod::IntegratedGradients { steps: IG_STEPS }),
        }
    }
}

type Key = (u64, u64, usize, SaliencyMethod);

/// The views' saliency settings and recent attributions.
#[derive(Default)]
pub struct SaliencyState {
    /// Heatmap method (or none).
    pub choice: Choice,
    /// The class explained on the canvas (None: the predicted one).
    pub class: Option<usize>,
    /// The Mistakes view's selected test image.
    pub selected: Option<usize>,
    /// Boundary: the attribution or the reason shown instead, as text.
    cache: Vec<(Key, Result<Attribution, String>)>,
    /// The live model's newest answer: (image hash, class asked, method), the
    /// step it was computed at, and the attribution.
    pub live: Option<(LiveKey, u64, Attribution)>,
    live_ask: LiveAsk,
}

/// What a live saliency answer is for: the image's hash, the class asked
/// (None: the predicted one) and the method.
pub type LiveKey = (u64, Option<usize>, SaliencyMethod);

#[derive(Default)]
struct LiveAsk {
    next_id: u64,
    /// The probe awaited, what it asked and when it went out.
    awaiting: Option<(u64, LiveKey, Instant)>,
    /// When the newest answer's request went out.
    last: Option<Instant>,
    outbox: Vec<Probe>,
}

impl SaliencyState {
    /// The method radio buttons (and, with `classes`, the class to explain).
    pub fn controls(&mut self, ui: &mut Ui, classes: Option<&[String]>) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Saliency:")
                .on_hover_text("Which pixels the model's score for a class depends on.");
            ui.radio_value(&mut self.choice, Choice::Off, "off");
            ui.radio_value(&mut self.choice, Choice::Gradient, "gradient")
                .on_hover_text(
                    "How much the class score changes when each pixel brightens a little.",
                );
            ui.radio_value(&mut self.choice, Choice::Integrated, "integrated gradients")
                .on_hover_text(
                    "Each pixel's share of the score difference between this image and a \
                     black one (32 steps along the way); the shares add up to it.",
                );
            if let Some(classes) = classes.filter(|_| self.choice != Choice::Off) {
                let name = |c: Option<usize>| match c {
                    None => "predicted class".to_string(),
                    Some(i) => classes.get(i).cloned().unwrap_or_else(|| i.to_string()),
                };
                let label = ui.label("class:");
                egui::ComboBox::from_id_salt("saliency_class")
                    .selected_text(name(self.class))
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.class, None, name(None));
                        for i in 0..classes.len() {
                            ui.selectable_value(&mut self.class, Some(i), name(Some(i)));
                        }
                    })
                    .response
                    .labelled_by(label.id);
            }
        });
    }

    /// The live model's attribution of `class` (None: its predicted class) for
    /// `pixels` by the chosen method, with the step it was computed at: the
    /// newest answer for exactly these, or None while the first is awaited (or
    /// saliency is off). Asks the live run when due.
    pub fn live_attribution(
        &mut self,
        pixels: &[u8],
        class: Option<usize>,
    ) -> Option<(u64, &Attribution)> {
        let method = self.choice.method()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        pixels.hash(&mut h);
        let key = (h.finish(), class, method);
        let ask = &mut self.live_ask;
        let have = self.live.as_ref().is_some_and(|(k, _, _)| *k == key);
        let pending = ask
            .awaiting
            .as_ref()
            .filter(|(_, _, at)| at.elapsed() < LIVE_PATIENCE);
        // One at a time: a new image waits for the answer in flight.
        let due =
            pending.is_none() && (!have || ask.last.is_none_or(|t| t.elapsed() >= LIVE_REFRESH));
        if due {
            ask.next_id += 1;
            ask.awaiting = Some((ask.next_id, key, Instant::now()));
            ask.outbox.push(Probe::Saliency {
                id: ask.next_id,
                pixels: pixels.to_vec(),
                class,
                method,
            });
        }
        self.live
            .as_ref()
            .filter(|(k, _, _)| *k == key)
            .map(|(_, step, a)| (*step, a))
    }

    /// Probes for the live run waiting to be sent.
    pub fn take_probes(&mut self) -> Vec<Probe> {
        std::mem::take(&mut self.live_ask.outbox)
    }

    /// An answer from the live run (others' answers are ignored).
    pub fn on_answer(&mut self, answer: &ProbeAnswer) {
        let ProbeAnswer::Attributed {
            id,
            step,
            attribution,
        } = answer
        else {
            return;
        };
        let ask = &mut self.live_ask;
        let Some((_, key, at)) = ask.awaiting.filter(|(a, _, _)| a == id) else {
            return;
        };
        ask.awaiting = None;
        ask.last = Some(at);
        self.live = Some((key, *step, (**attribution).clone()));
    }

    /// The attribution of `class` for `pixels` by the chosen method (None: off).
    pub fn attribution(
        &mut self,
        predictor: &Predictor,
        generation: u64,
        pixels: &[u8],
        class: usize,
    ) -> Option<&Result<Attribution, String>> {
        let method = self.choice.method()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        pixels.hash(&mut h);
        let key = (generation, h.finish(), class, method);
        let at = match self.cache.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                // The cache keeps what the view shows: the reason as text.
                let value = predictor
                    .saliency(pixels, class, method)
                    .map_err(|e| e.to_string());
                if self.cache.len() >= 4 {
                    drop(self.cache.remove(0));
                }
                self.cache.push((key, value));
                self.cache.len() - 1
            }
        };
        self.cache.get(at).map(|(_, v)| v)
    }
}

/// Draws `pixels` (`[w, h]` grey, or RGB planes) `side` points wide with `heat`
/// (one value in [-1, 1] per pixel) over it.
pub fn heatmap(ui: &mut Ui, pixels: &[u8], [w, h]: [usize; 2], heat: Option<&[f32]>, side: f32) {
    let height = side * h as f32 / w.max(1) as f32;
    let (rect, _) = ui.allocate_exact_size(Vec2::new(side, height), Sense::hover());
    let painter = ui.painter_at(rect);
    let plane = w * h;
    let cell = Vec2::new(side / w.max(1) as f32, height / h.max(1) as f32);
    for i in 0..plane {
        let grey = if pixels.len() == 3 * plane {
            ((u16::from(pixels[i])
                + u16::from(pixels[plane + i])
                + u16::from(pixels[2 * plane + i]))
                / 3) as u8
        } else {
            pixels.get(i).copied().unwrap_or(0)
        };
        let base = Color32::from_gray(grey / 2);
        let colour = match heat.and_then(|hm| hm.get(i)) {
            Some(&v) if v > 0.0 => blend(base, Color32::from_rgb(255, 60, 40), v),
            Some(&v) if v < 0.0 => blend(base, Color32::from_rgb(60, 120, 255), -v),
            _ => Color32::from_gray(grey),
        };
        let min = rect.min + Vec2::new((i % w) as f32 * cell.x, (i / w) as f32 * cell.y);
        painter.rect_filled(Rect::from_min_size(min, cell), 0.0, colour);
    }
}

fn blend(a: Color32, b: Color32, t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    let mix = |x: u8, y: u8| (f32::from(x) * (1.0 - t) + f32::from(y) * t).round() as u8;
    Color32::from_rgb(mix(a.r(), b.r()), mix(a.g(), b.g()), mix(a.b(), b.b()))
}

/// The line under a heatmap: what it shows and, for integrated gradients, the
/// completeness check.
pub fn caption(ui: &mut Ui, a: &Attribution, class_name: &str) {
    match a.baseline_score {
        Some(b) => {
            let sum: f32 = a.values.iter().sum();
            ui.weak(format!(
                "integrated gradients for {class_name}: attributions sum to {sum:.3}; score {:.3} \
                 minus black image's {b:.3} = {:.3}",
                a.score,
                a.score - b
            ));
        }
        None => {
            ui.weak(format!(
                "gradient of the score for {class_name} ({:.3}) per pixel",
                a.score
            ));
        }
    }
}
