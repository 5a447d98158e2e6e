//! What a Q-network sees of a state. Every encoding is precomputed for all states
//! at once (`[states, input_size]`, row-major), so acting and replay only index
//! rows of one matrix.

use super::env::Env;
use super::{Cell, input_size};
use crate::spec::EncodingSpec;

/// Every state's input vector, concatenated: `states x input_size` values.
pub fn encode_all(env: &Env, encoding: EncodingSpec) -> Vec<f32> {
    let n = env.num_states();
    let width = input_size(encoding, n);
    let mut out = vec![0f32; n * width];
    let maze = env.maze();
    let scale = |x: usize, len: usize| x as f32 / (len.max(2) - 1) as f32;
    for (s, row) in out.chunks_mut(width.max(1)).enumerate().take(n) {
        let (r, c) = env.position(s as u32);
        match encoding {
            EncodingSpec::OneHot => row[s] = 1.0,
            EncodingSpec::Coordinates => {
                row[0] = scale(r, maze.rows());
                row[1] = scale(c, maze.cols());
            }
            EncodingSpec::LocalView { radius } => {
                let side = 2 * radius + 1;
                for dr in 0..side {
                    for dc in 0..side {
                        let k = 3 * (dr * side + dc);
                        let seen = (r + dr)
                            .checked_sub(radius)
                            .zip((c + dc).checked_sub(radius))
                            .map_or(Cell::Wall, |(rr, cc)| maze.get(rr, cc));
                        row[k] = f32::from(u8::from(seen == Cell::Wall));
                        row[k + 1] = f32::from(u8::from(seen == Cell::Goal));
                        row[k + 2] = f32::from(u8::from(seen == Cell::Pit));
                    }
                }
                row[width - 2] = scale(r, maze.rows());
                row[width - 1] = scale(c, maze.cols());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::maze::Maze;
    use crate::spec::RewardSpec;

    #[test]
    fn encodings_have_their_sizes_and_values() {
        let maze = Maze::parse(&["S.#", "..G"]).expect("valid");
        let env = Env::new(&maze, &RewardSpec::default(), 0.0, 10);
        let n = env.num_states();
        assert_eq!(n, 5);
        let one_hot = encode_all(&env, EncodingSpec::OneHot);
        assert_eq!(one_hot.len(), 25);
        assert_eq!(one_hot.iter().sum::<f32>(), 5.0);
        let xy = encode_all(&env, EncodingSpec::Coordinates);
        let goal = env.state_at(1, 2).expect("goal") as usize;
        assert_eq!(&xy[goal * 2..goal * 2 + 2], &[1.0, 1.0]);
        let view = EncodingSpec::LocalView { radius: 1 };
        assert_eq!(input_size(view, n), 29);
        let v = encode_all(&env, view);
        // Start (0,0): everything above and to the left is outside = wall; the
        // cell down-right, (1,1), is free; (0,2) is not in view.
        let start = &v[0..29];
        assert_eq!(start[0], 1.0, "up-left is outside");
        assert_eq!(start[3 * 8], 0.0, "down-right (1,1) is free");
        let right = env.state_at(0, 1).expect("state") as usize;
        let r = &v[right * 29..right * 29 + 29];
        assert_eq!(r[3 * 5], 1.0, "right of (0,1) is the wall at (0,2)");
        assert_eq!(r[3 * 8 + 1], 1.0, "down-right of (0,1) is the goal");
    }
}
