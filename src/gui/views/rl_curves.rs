//! "Watch it learn" for a maze: episode return (raw and smoothed), episode length
//! against the optimal path length, the greedy path's length, exploration rate,
//! success rate and the DQN loss, per episode.
//!
//! Contract: like the supervised curves, every series is decimated to the plot's
//! width through the shared [`CurvesCache`] and the smoothing is the same EMA.

use egui::{Color32, Id, Stroke, Ui};
use egui_plot::{Corner, HLine, Legend, Line, LineStyle, Plot, PlotPoints};

use super::curves::{CurveSettings, CurvesCache, PALETTE, show_plot};
use crate::gui::state::run_state::RunSeries;
use crate::gui::state::smoothing::Ema;

fn plot(id: &str, [w, h]: [f32; 2], link: Id) -> Plot<'static> {
    Plot::new(id.to_string())
        .width(w)
        .height(h)
        .legend(Legend::default().position(Corner::RightTop))
        .link_axis(link, [true, false])
        .x_axis_label("episode")
}

/// Draws the four plots for the RL runs among `runs`.
pub fn rl_curves_view(
    ui: &mut Ui,
    settings: &mut CurveSettings,
    cache: &mut CurvesCache,
    runs: &[&RunSeries],
) {
    let runs: Vec<&RunSeries> = runs.iter().copied().filter(|r| r.is_rl()).collect();
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing").on_hover_text(
            "Exponential moving average of the return: higher = smoother but lags behind.",
        );
        ui.add(egui::Slider::new(&mut settings.smoothing, 0.0..=0.99))
            .labelled_by(label.id);
    });
    // Room for the two captions and the x-axis labels.
    let height = ((ui.available_height() - 60.0) / 2.0).max(120.0);
    let width = ((ui.available_width() - 16.0) / 2.0).max(200.0);
    let size = [width, height];
    let buckets = width.max(1.0) as usize;
    let link = Id::unique("trainlab_episode_axis");
    let column = |cache: &mut CurvesCache, id: &'static str, r: &RunSeries, ys: &[f64]| {
        let xs = &r.episodes.episode;
        let range = cache.x_range(id, xs);
        cache
            .points((r.label.clone(), id), xs, ys, range, buckets, false)
            .0
    };
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Return per episode (higher is better); dashed: optimal");
            let mut items = Vec::new();
            for (i, r) in runs.iter().enumerate() {
                let mut ema = Ema::new(settings.smoothing);
                ema.extend_to(&r.episodes.mean_return);
                let raw = column(cache, "rl_return_raw", r, &r.episodes.mean_return);
                let smooth = column(cache, "rl_return", r, &ema.values);
                let best = r.env.as_ref().map(|e| e.optimal_return);
                items.push((
                    r.label.clone(),
                    PALETTE[i % PALETTE.len()],
                    raw,
                    smooth,
                    best,
                ));
            }
            show_plot(
                ui,
                cache,
                "rl_return",
                plot("rl_return", size, link),
                move |p| {
                    for (label, colour, raw, smooth, best) in items {
                        p.line(
                            Line::new(format!("{label} raw"), PlotPoints::new(raw))
                                .color(colour.gamma_multiply(0.3)),
                        );
                        p.line(
                            Line::new(format!("{label} return"), PlotPoints::new(smooth))
                                .color(colour)
                                .width(2.0),
                        );
                        if let Some(b) = best {
                            p.hline(
                                HLine::new("optimal (discounted)", b)
                                    .stroke(Stroke::new(1.0, Color32::GRAY))
                                    .style(LineStyle::dashed_loose()),
                            );
                        }
                    }
                },
            );
        });
        ui.vertical(|ui| {
            ui.label("Moves per episode; greedy path; dashed: optimal path");
            let mut items = Vec::new();
            for (i, r) in runs.iter().enumerate() {
                let len = column(cache, "rl_length", r, &r.episodes.mean_length);
                let greedy = column(cache, "rl_greedy", r, &r.episodes.greedy_len);
                let best = r
                    .env
                    .as_ref()
                    .map(|e| e.optimal_path.len().saturating_sub(1) as f64);
                items.push((
                    r.label.clone(),
                    PALETTE[i % PALETTE.len()],
                    len,
                    greedy,
                    best,
                ));
            }
            show_plot(
                ui,
                cache,
                "rl_length",
                plot("rl_length", size, link).include_y(0.0),
                move |p| {
                    for (label, colour, len, greedy, best) in items {
                        p.line(
                            Line::new(format!("{label} episode length"), PlotPoints::new(len))
                                .color(colour.gamma_multiply(0.6)),
                        );
                        p.line(
                            Line::new(format!("{label} greedy path"), PlotPoints::new(greedy))
                                .color(colour)
                                .width(2.0),
                        );
                        if let Some(b) = best {
                            p.hline(
                                HLine::new("optimal path", b)
                                    .stroke(Stroke::new(1.5, Color32::GRAY))
                                    .style(LineStyle::dashed_loose()),
                            );
                        }
                    }
                },
            );
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Exploration ε and success rate");
            let mut items = Vec::new();
            for (i, r) in runs.iter().enumerate() {
                let eps = column(cache, "rl_eps", r, &r.episodes.epsilon);
                let success = column(cache, "rl_success", r, &r.episodes.success_rate);
                items.push((r.label.clone(), PALETTE[i % PALETTE.len()], eps, success));
            }
            show_plot(
                ui,
                cache,
                "rl_eps",
                plot("rl_eps", size, link).include_y(0.0).include_y(1.0),
                move |p| {
                    for (label, colour, eps, success) in items {
                        p.line(
                            Line::new(format!("{label} ε"), PlotPoints::new(eps))
                                .color(colour.gamma_multiply(0.6))
                                .style(LineStyle::dashed_dense()),
                        );
                        p.line(
                            Line::new(format!("{label} success rate"), PlotPoints::new(success))
                                .color(colour)
                                .width(2.0),
                        );
                    }
                },
            );
        });
        ui.vertical(|ui| {
            ui.label("DQN loss (Q-tables have none)");
            let mut items = Vec::new();
            for (i, r) in runs.iter().enumerate() {
                let loss = column(cache, "rl_loss", r, &r.episodes.loss);
                items.push((r.label.clone(), PALETTE[i % PALETTE.len()], loss));
            }
            show_plot(
                ui,
                cache,
                "rl_loss",
                plot("rl_loss", size, link).include_y(0.0),
                move |p| {
                    for (label, colour, loss) in items {
                        p.line(
                            Line::new(format!("{label} loss"), PlotPoints::new(loss)).color(colour),
                        );
                    }
                },
            );
        });
    });
}
