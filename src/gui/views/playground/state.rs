//! What the Playground tab keeps between frames: the newest field answer, the
//! textures made from it, the points of the dataset, and the one probe in flight.
//!
//! Contract: while a run is live and the tab is shown, [`PlaygroundState::refresh`]
//! queues a `Probe::Field` whenever none is awaiting, or the one awaiting was
//! asked [`REASK_AFTER`] ago: the worker answers at most 25 a second and keeps
//! only the newest question until one is due (`train/steering.rs`), so asking
//! again costs it nothing and the maps follow the model at that rate, whatever
//! the frame rate. An answer to an earlier question is shown too (it is still
//! the newest model on hand) but only the awaited one ends the wait. Images are
//! built when an answer arrives and uploaded once; drawing a frame only paints.

use std::time::{Duration, Instant};

use egui::{ColorImage, TextureHandle, TextureOptions};

use super::colour::{Scale, grid_image, unit_scale};
use crate::data::points::{Points, generate};
use crate::events::{FieldMaps, Probe, ProbeAnswer};
use crate::spec::{DatasetSpec, Experiment, Feature, PointsSpec};

/// Grid points per side asked of the model by default.
pub const DEFAULT_RESOLUTION: usize = 100;
/// How long an unanswered probe blocks the next one (the worker's spacing of
/// field answers: a question that waits there is replaced by the newer one).
pub const REASK_AFTER: Duration = Duration::from_millis(40);

/// One hidden unit's map.
pub struct UnitMap {
    /// Index of its layer in the layer list.
    pub layer: usize,
    /// Layer kind, e.g. "Tanh".
    pub kind: String,
    /// Unit number within the layer.
    pub unit: usize,
    /// Its image (uploaded).
    pub texture: TextureHandle,
}

/// The Playground tab's state.
pub struct PlaygroundState {
    /// Grid points per side asked of the model (2 to 200).
    pub resolution: usize,
    /// Draw the test points (outlined).
    pub show_test: bool,
    /// The newest answer from the live model.
    pub maps: Option<Box<FieldMaps>>,
    /// Field answers received (all runs).
    pub answers: u64,
    /// The output map's image, made from `maps`.
    pub output_texture: Option<TextureHandle>,
    /// The hidden units' images, made from `maps`, in layer order.
    pub unit_textures: Vec<UnitMap>,
    pending: Option<PendingImages>,
    features: Option<(Vec<Feature>, Vec<TextureHandle>)>,
    points: Option<((PointsSpec, u64), Points)>,
    outbox: Vec<Probe>,
    next_id: u64,
    awaiting: Option<(u64, Instant)>,
}

impl Default for PlaygroundState {
    fn default() -> Self {
        Self {
            resolution: DEFAULT_RESOLUTION,
            show_test: true,
            maps: None,
            answers: 0,
            output_texture: None,
            unit_textures: Vec::new(),
            pending: None,
            features: None,
            points: None,
            outbox: Vec::new(),
            next_id: 0,
            awaiting: None,
        }
    }
}

/// Images built from an answer, waiting to be uploaded at the next draw.
struct PendingImages {
    output: ColorImage,
    units: Vec<(usize, String, usize, ColorImage)>,
}

impl PlaygroundState {
    /// Called every frame: asks the live model for a new field when none is awaited.
    pub fn refresh(&mut self, live: bool, shown: bool) {
        if !live || !shown {
            return;
        }
        if self
            .awaiting
            .is_some_and(|(_, t)| t.elapsed() < REASK_AFTER)
        {
            return;
        }
        self.next_id += 1;
        self.awaiting = Some((self.next_id, Instant::now()));
        self.outbox.push(Probe::Field {
            id: self.next_id,
            resolution: self.resolution.clamp(2, 200),
        });
    }

    /// Probes waiting to be sent to the live run.
    pub fn take_probes(&mut self) -> Vec<Probe> {
        std::mem::take(&mut self.outbox)
    }

    /// A run ended or was dropped: nothing more will answer.
    pub fn run_ended(&mut self) {
        self.awaiting = None;
        self.outbox.clear();
    }

    /// Forgets the maps of an earlier run (a new run starts, or another
    /// experiment is opened): what is shown must belong to the run on screen.
    pub fn forget_run(&mut self) {
        self.run_ended();
        self.maps = None;
        self.pending = None;
        self.output_texture = None;
        self.unit_textures.clear();
    }

    /// An answer from the live run; field maps for our probe are kept.
    pub fn on_answer(&mut self, answer: &ProbeAnswer) {
        let ProbeAnswer::Field(maps) = answer else {
            return;
        };
        if self.awaiting.is_some_and(|(id, _)| id == maps.id) {
            self.awaiting = None;
        }
        if maps.output.len() != maps.resolution * maps.resolution {
            return;
        }
        self.pending = Some(images(maps, self.is_regression_answer()));
        self.maps = Some(maps.clone());
        self.answers += 1;
    }

    fn is_regression_answer(&self) -> bool {
        self.points
            .as_ref()
            .is_some_and(|((spec, _), _)| spec.kind.is_regression())
    }

    /// Uploads images made from the newest answer (once per answer).
    pub fn upload(&mut self, ctx: &egui::Context) {
        let Some(p) = self.pending.take() else { return };
        let opts = TextureOptions::LINEAR;
        match &mut self.output_texture {
            Some(t) => t.set(p.output, opts),
            None => {
                self.output_texture = Some(ctx.load_texture("playground-output", p.output, opts));
            }
        }
        let mut old = std::mem::take(&mut self.unit_textures).into_iter();
        for (layer, kind, unit, image) in p.units {
            let texture = match old.next() {
                Some(mut u) => {
                    u.texture.set(image, opts);
                    u.texture
                }
                None => ctx.load_texture(format!("playground-unit-{layer}-{unit}"), image, opts),
            };
            self.unit_textures.push(UnitMap {
                layer,
                kind,
                unit,
                texture,
            });
        }
    }

    /// Each input feature's map over the plane (made once per feature list).
    pub fn feature_textures(
        &mut self,
        ctx: &egui::Context,
        features: &[Feature],
    ) -> Vec<egui::TextureId> {
        if self.features.as_ref().is_none_or(|(f, _)| f != features) {
            let r = 48;
            let at = crate::data::points::grid(r);
            let textures = features
                .iter()
                .map(|f| {
                    let values: Vec<f32> = at.iter().map(|&(x1, x2)| f.of(x1, x2)).collect();
                    ctx.load_texture(
                        format!("playground-feature-{}", f.label()),
                        grid_image(&values, r, Scale::Unit),
                        TextureOptions::LINEAR,
                    )
                })
                .collect();
            self.features = Some((features.to_vec(), textures));
        }
        self.features
            .as_ref()
            .map(|(_, t)| t.iter().map(TextureHandle::id).collect())
            .unwrap_or_default()
    }

    /// The points of the experiment's dataset (regenerated when it changes);
    /// `None` for other kinds of data. A changed dataset drops stale maps.
    pub fn points(&mut self, exp: &Experiment, live: bool) -> Option<&Points> {
        let DatasetSpec::Points(spec) = &exp.dataset else {
            return None;
        };
        let key = (spec.clone(), exp.seed);
        if self.points.as_ref().is_none_or(|(k, _)| *k != key) {
            let changed = self.points.is_some();
            let points = generate(spec, exp.seed);
            self.points = Some((key, points));
            if changed && !live {
                self.maps = None;
                self.output_texture = None;
                self.unit_textures.clear();
                self.pending = None;
            }
        }
        self.points.as_ref().map(|(_, p)| p)
    }
}

fn images(maps: &FieldMaps, regression: bool) -> PendingImages {
    let scale = if regression {
        Scale::Unit
    } else {
        Scale::Probability
    };
    let output = grid_image(&maps.output, maps.resolution, scale);
    let mut units = Vec::new();
    for l in shown_layers(maps) {
        for (i, grid) in l.units.iter().enumerate() {
            units.push((
                l.layer,
                l.kind.clone(),
                i,
                grid_image(grid, maps.resolution, unit_scale(&l.kind)),
            ));
        }
    }
    PendingImages { output, units }
}

/// The hidden layers drawn as columns: of each run of same-width layers (e.g.
/// Linear then Tanh) only the last, what the next Linear layer reads.
pub fn shown_layers(maps: &FieldMaps) -> Vec<&crate::events::FieldLayer> {
    let l = &maps.layers;
    l.iter()
        .enumerate()
        .filter(|(i, layer)| {
            l.get(i + 1)
                .is_none_or(|next| next.kind == "Linear" || next.units.len() != layer.units.len())
        })
        .map(|(_, layer)| layer)
        .collect()
}
