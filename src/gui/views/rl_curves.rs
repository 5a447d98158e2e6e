//! "Watch it learn" for a maze: episode return (raw and smoothed), episode length
//! against the optimal path length, the greedy path's length, exploration rate,
//! success rate and the DQN loss, per episode.
//!
//! Contract: like the supervised curves, every series is decimated to the plot's
//! width through the shared [`CurvesCache`] and the smoothing is the same EMA;
//! each plot is a [`Figure`] drawn by `show_plot`, with the same save row.

use egui::{Color32, Id, Ui};
use egui_plot::{Corner, Legend, Plot};

use super::curves::{CurveSettings, CurvesCache, show_plot};
use crate::gui::figure::smoothing::Ema;
use crate::gui::figure::{Figure, Series, Style};
use crate::gui::state::run_state::RunSeries;

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
    cache.assign_colours(&runs);
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing").on_hover_text(
            "Exponential moving average of the return: higher = smoother but lags behind.",
        );
        ui.add(egui::Slider::new(&mut settings.smoothing, 0.0..=0.99))
            .labelled_by(label.id);
    });
    // Room for the two captions, the x-axis labels and the two rows of save buttons.
    let height = ((ui.available_height() - 110.0) / 2.0).max(120.0);
    // Never wider than the panel: a plot cut at its edges hid its legend.
    let width = ((ui.available_width() - 24.0) / 2.0).max(120.0).floor();
    let size = [width, height];
    let buckets = width.max(1.0) as usize;
    let link = Id::unique("trainlab_episode_axis");
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            let fig = return_figure(cache, &runs, buckets, settings.smoothing);
            show_plot(ui, cache, "rl_return", plot("rl_return", size, link), fig);
        });
        ui.vertical(|ui| {
            let fig = length_figure(cache, &runs, buckets);
            let p = plot("rl_length", size, link).include_y(0.0);
            show_plot(ui, cache, "rl_length", p, fig);
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            let fig = exploration_figure(cache, &runs, buckets);
            let p = plot("rl_eps", size, link).include_y(0.0).include_y(1.0);
            show_plot(ui, cache, "rl_eps", p, fig);
        });
        ui.vertical(|ui| {
            let mut fig = Figure::new("DQN loss (Q-tables have none)", "episode", "loss");
            for r in &runs {
                let loss = column(cache, buckets, "rl_loss", r, &r.episodes.loss);
                let colour = cache.colour(&r.label);
                fig.series
                    .push(Series::line(format!("{} loss", r.label), colour, 1.0, loss));
            }
            let p = plot("rl_loss", size, link).include_y(0.0);
            show_plot(ui, cache, "rl_loss", p, fig);
        });
    });
}

/// One series of a run against its episodes, decimated to `buckets` points.
fn column(
    cache: &mut CurvesCache,
    buckets: usize,
    id: &'static str,
    r: &RunSeries,
    ys: &[f64],
) -> Vec<[f64; 2]> {
    let xs = &r.episodes.episode;
    let range = cache.x_range(id, xs);
    cache
        .points((r.label.clone(), id), xs, ys, range, buckets, false)
        .0
}

/// The return per episode, raw and smoothed, with the optimal return.
fn return_figure(
    cache: &mut CurvesCache,
    runs: &[&RunSeries],
    buckets: usize,
    smoothing: f64,
) -> Figure {
    let mut fig = Figure::new(
        "Return per episode (higher is better); dashed: optimal",
        "episode",
        "return",
    );
    for r in runs {
        let colour = cache.colour(&r.label);
        let label = &r.label;
        let mut ema = Ema::new(smoothing);
        ema.extend_to(&r.episodes.mean_return);
        let raw = column(cache, buckets, "rl_return_raw", r, &r.episodes.mean_return);
        let smooth = column(cache, buckets, "rl_return", r, &ema.values);
        fig.series.push(Series::line(
            format!("{label} raw"),
            colour.gamma_multiply(0.3),
            1.0,
            raw,
        ));
        fig.series
            .push(Series::line(format!("{label} return"), colour, 2.0, smooth));
        if let Some(e) = &r.env {
            fig.series.push(Series::hlines(
                "optimal (discounted)",
                Color32::GRAY,
                1.0,
                true,
                &[e.optimal_return],
            ));
        }
    }
    fig
}

/// Moves per episode and of the greedy path, with the optimal path's.
fn length_figure(cache: &mut CurvesCache, runs: &[&RunSeries], buckets: usize) -> Figure {
    let mut fig = Figure::new(
        "Moves per episode; greedy path; dashed: optimal path",
        "episode",
        "moves",
    );
    for r in runs {
        let colour = cache.colour(&r.label);
        let label = &r.label;
        let len = column(cache, buckets, "rl_length", r, &r.episodes.mean_length);
        let greedy = column(cache, buckets, "rl_greedy", r, &r.episodes.greedy_len);
        fig.series.push(Series::line(
            format!("{label} episode length"),
            colour.gamma_multiply(0.6),
            1.0,
            len,
        ));
        fig.series.push(Series::line(
            format!("{label} greedy path"),
            colour,
            2.0,
            greedy,
        ));
        if let Some(e) = &r.env {
            let best = e.optimal_path.len().saturating_sub(1) as f64;
            fig.series.push(Series::hlines(
                "optimal path",
                Color32::GRAY,
                1.5,
                true,
                &[best],
            ));
        }
    }
    fig
}

/// The exploration rate (dashed) and the success rate.
fn exploration_figure(cache: &mut CurvesCache, runs: &[&RunSeries], buckets: usize) -> Figure {
    let mut fig = Figure::new("Exploration ε and success rate", "episode", "rate");
    for r in runs {
        let colour = cache.colour(&r.label);
        let label = &r.label;
        let eps = column(cache, buckets, "rl_eps", r, &r.episodes.epsilon);
        let success = column(cache, buckets, "rl_success", r, &r.episodes.success_rate);
        let mut eps = Series::line(format!("{label} ε"), colour.gamma_multiply(0.6), 1.0, eps);
        eps.style = Style::Line {
            width: 1.0,
            dashed: true,
        };
        fig.series.push(eps);
        fig.series.push(Series::line(
            format!("{label} success rate"),
            colour,
            2.0,
            success,
        ));
    }
    fig
}
