//! The workbench under egui_kittest, as the GUI tests drive it: a harness around
//! `TrainlabApp::show`, stepping frames while a real worker trains, and clicks at a
//! point on the screen.

use std::time::{Duration, Instant};

use egui::{Modifiers, PointerButton, Pos2, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use trainlab::gui::TrainlabApp;

/// The app in a 1400-wide window of `height` points.
pub fn harness(app: TrainlabApp, height: f32) -> Harness<'static, TrainlabApp> {
    Harness::builder()
        .with_size(Vec2::new(1400.0, height))
        // Layout can take a few passes to settle (wrapped text, tab changes).
        .with_max_steps(12)
        .build_ui_state(|ui, app: &mut TrainlabApp| app.show(ui), app)
}

/// Steps frames until `done` holds (a real worker thread is running meanwhile),
/// then one more so the last state is drawn; fails after two minutes.
pub fn step_until(
    h: &mut Harness<'_, TrainlabApp>,
    what: &str,
    done: impl Fn(&TrainlabApp) -> bool,
) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

/// A left click (press and release) at `pos`.
pub fn click_at<S>(h: &mut Harness<'_, S>, pos: Pos2) {
    for pressed in [true, false] {
        h.event(egui::Event::PointerMoved(pos));
        h.event(egui::Event::PointerButton {
            pos,
            button: PointerButton::Primary,
            pressed,
            modifiers: Modifiers::NONE,
        });
        h.step();
    }
}

/// Picks `item` from the menu or drop-down labelled `menu` as a learner does
/// (Examples > a file, Learn from > a dataset): the menu, then the item.
pub fn open_from_menu(h: &mut Harness<'_, TrainlabApp>, menu: &str, item: &str) {
    h.get_by_label(menu).click();
    h.run();
    h.get_by_label(item).click();
    h.run();
}

/// Presses ▶ Start and steps frames until the run has started and ended.
pub fn train_through(h: &mut Harness<'_, TrainlabApp>) {
    h.get_by_label("▶ Start").click();
    step_until(h, "the run to start", |a| a.is_running());
    step_until(h, "the run to end", |a| !a.is_running());
}

/// [`train_through`], then checks the workbench reported no error.
#[allow(dead_code)]
pub fn train_cleanly(h: &mut Harness<'_, TrainlabApp>) {
    train_through(h);
    assert!(h.state().errors.is_empty(), "{:?}", h.state().errors);
}
