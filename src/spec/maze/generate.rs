//! Generating mazes from a seed. Rooms sit on even (row, column) positions with
//! walls between them; carving opens the wall between two rooms. The carving
//! visits every room exactly once (a spanning tree), so the result is a perfect
//! maze: exactly one path between any two free cells, until `extra_loops` knocks
//! further walls down. The start is the top-left room, the goal the bottom-right.

use super::error::MazeError;
use super::grid::{Cell, Maze};
use crate::spec::MazeAlgorithm;
use crate::util::rng::Rng;

/// Smallest side of a generated maze.
pub const MIN_SIDE: usize = 5;
/// Largest side of a generated maze.
pub const MAX_SIDE: usize = 512;

impl Maze {
    /// A `rows` x `cols` maze carved by `algorithm` from `seed`, with a fraction
    /// `extra_loops` (0 to 1) of the remaining inner walls removed.
    pub fn generate(
        rows: usize,
        cols: usize,
        algorithm: MazeAlgorithm,
        extra_loops: f64,
        seed: u64,
    ) -> Result<Self, MazeError> {
        let ok = |n: usize| (MIN_SIDE..=MAX_SIDE).contains(&n);
        if !ok(rows) || !ok(cols) {
            return Err(MazeError::BadSize {
                rows,
                cols,
                min: MIN_SIDE,
                max: MAX_SIDE,
            });
        }
        // Rooms on even positions; an even side leaves its last row/column as wall.
        let rooms = Rooms {
            rows: rows.div_ceil(2),
            cols: cols.div_ceil(2),
        };
        let mut maze = Maze::filled(rows, cols, Cell::Wall);
        let mut rng = Rng::derive(seed, "maze");
        for r in 0..rooms.rows {
            for c in 0..rooms.cols {
                maze.set(2 * r, 2 * c, Cell::Free);
            }
        }
        match algorithm {
            MazeAlgorithm::Dfs => carve_dfs(&mut maze, rooms, &mut rng),
            MazeAlgorithm::Prim => carve_prim(&mut maze, rooms, &mut rng),
        }
        if extra_loops > 0.0 {
            knock_down(&mut maze, rooms, extra_loops.min(1.0), &mut rng);
        }
        maze.set(0, 0, Cell::Start);
        maze.set(2 * (rooms.rows - 1), 2 * (rooms.cols - 1), Cell::Goal);
        Ok(maze)
    }
}

/// The grid of rooms: room (r, c) is maze cell (2r, 2c).
#[derive(Clone, Copy)]
struct Rooms {
    rows: usize,
    cols: usize,
}

impl Rooms {
    /// Rooms next to room `i` (index r * cols + c).
    fn neighbours(self, i: usize) -> impl Iterator<Item = usize> {
        let (r, c) = (i / self.cols, i % self.cols);
        [
            (r > 0).then(|| i - self.cols),
            (c + 1 < self.cols).then(|| i + 1),
            (r + 1 < self.rows).then(|| i + self.cols),
            (c > 0).then(|| i - 1),
        ]
        .into_iter()
        .flatten()
    }

    /// Opens the wall cell between adjacent rooms `a` and `b`.
    fn open(self, maze: &mut Maze, a: usize, b: usize) {
        let (ar, ac) = (a / self.cols, a % self.cols);
        let (br, bc) = (b / self.cols, b % self.cols);
        maze.set(ar + br, ac + bc, Cell::Free);
    }
}

/// Randomised depth-first search with an explicit stack (no recursion limit).
fn carve_dfs(maze: &mut Maze, rooms: Rooms, rng: &mut Rng) {
    let mut seen = vec![false; rooms.rows * rooms.cols];
    let mut stack = vec![0usize];
    seen[0] = true;
    let mut options = Vec::with_capacity(4);
    while let Some(&here) = stack.last() {
        options.clear();
        options.extend(rooms.neighbours(here).filter(|&n| !seen[n]));
        if options.is_empty() {
            stack.pop();
            continue;
        }
        let next = options[rng.below(options.len())];
        rooms.open(maze, here, next);
        seen[next] = true;
        stack.push(next);
    }
}

/// Randomised Prim: grow the tree by a random wall between it and a new room.
fn carve_prim(maze: &mut Maze, rooms: Rooms, rng: &mut Rng) {
    let mut inside = vec![false; rooms.rows * rooms.cols];
    let mut frontier: Vec<(usize, usize)> = Vec::new();
    inside[0] = true;
    frontier.extend(rooms.neighbours(0).map(|n| (0, n)));
    while !frontier.is_empty() {
        let (from, to) = frontier.swap_remove(rng.below(frontier.len()));
        if inside[to] {
            continue;
        }
        rooms.open(maze, from, to);
        inside[to] = true;
        frontier.extend(
            rooms
                .neighbours(to)
                .filter(|&n| !inside[n])
                .map(|n| (to, n)),
        );
    }
}

/// Removes a fraction of the walls that still separate two adjacent rooms.
fn knock_down(maze: &mut Maze, rooms: Rooms, fraction: f64, rng: &mut Rng) {
    let mut walls = Vec::new();
    for a in 0..rooms.rows * rooms.cols {
        for b in rooms.neighbours(a).filter(|&b| b > a) {
            let (r, c) = (
                a / rooms.cols + b / rooms.cols,
                a % rooms.cols + b % rooms.cols,
            );
            if maze.get(r, c) == Cell::Wall {
                walls.push((r, c));
            }
        }
    }
    rng.shuffle(&mut walls);
    let count = (walls.len() as f64 * fraction).round() as usize;
    for &(r, c) in walls.iter().take(count) {
        maze.set(r, c, Cell::Free);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (free cells, edges between adjacent free cells, free cells reachable from the start).
    fn graph_stats(maze: &Maze) -> (usize, usize, usize) {
        let mut free = 0;
        let mut edges = 0;
        for r in 0..maze.rows() {
            for c in 0..maze.cols() {
                if maze.get(r, c) == Cell::Wall {
                    continue;
                }
                free += 1;
                // Count each edge once: right and down neighbours only.
                edges += usize::from(maze.neighbour(r, c, 1).is_some());
                edges += usize::from(maze.neighbour(r, c, 2).is_some());
            }
        }
        let mut seen = vec![false; maze.rows() * maze.cols()];
        let mut stack = vec![(0usize, 0usize)];
        seen[0] = true;
        let mut reached = 0;
        while let Some((r, c)) = stack.pop() {
            reached += 1;
            for a in 0..4 {
                if let Some((nr, nc)) = maze.neighbour(r, c, a)
                    && !seen[nr * maze.cols() + nc]
                {
                    seen[nr * maze.cols() + nc] = true;
                    stack.push((nr, nc));
                }
            }
        }
        (free, edges, reached)
    }

    #[test]
    fn generated_mazes_are_perfect_at_every_size() {
        for algorithm in [MazeAlgorithm::Dfs, MazeAlgorithm::Prim] {
            for (rows, cols) in [(5, 5), (8, 8), (9, 15), (20, 20), (64, 64), (65, 33)] {
                let maze = Maze::generate(rows, cols, algorithm, 0.0, 7).expect("size ok");
                let (free, edges, reached) = graph_stats(&maze);
                let case = format!("{algorithm:?} {rows}x{cols}");
                assert_eq!(reached, free, "{case}: every free cell reachable");
                assert_eq!(edges, free - 1, "{case}: a tree has cells - 1 edges");
                assert!(maze.validate().is_ok(), "{case}");
                assert_eq!(maze.start(), Some((0, 0)), "{case}");
            }
        }
    }

    #[test]
    fn extra_loops_add_edges_and_seeds_differ() {
        let perfect = Maze::generate(21, 21, MazeAlgorithm::Dfs, 0.0, 1).expect("ok");
        let loopy = Maze::generate(21, 21, MazeAlgorithm::Dfs, 0.3, 1).expect("ok");
        let (free, edges, _) = graph_stats(&loopy);
        assert!(edges > free, "loops: {edges} edges for {free} cells");
        assert_ne!(perfect, loopy);
        assert_ne!(
            perfect,
            Maze::generate(21, 21, MazeAlgorithm::Dfs, 0.0, 2).expect("ok")
        );
        assert_eq!(
            perfect,
            Maze::generate(21, 21, MazeAlgorithm::Dfs, 0.0, 1).expect("ok")
        );
    }

    #[test]
    fn sizes_out_of_range_are_rejected() {
        let e = Maze::generate(4, 9, MazeAlgorithm::Dfs, 0.0, 1).expect_err("too small");
        assert!(e.to_string().contains("4x9"), "{e}");
    }
}
