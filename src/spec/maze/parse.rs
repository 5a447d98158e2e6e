//! Reading layout rows into a [`Maze`] and checking that it can be played: one
//! start, at least one goal, and a goal reachable from the start.

use std::collections::VecDeque;

use super::error::MazeError;
use super::grid::{Cell, Maze};

impl Maze {
    /// Parses layout rows (see [`Cell::symbol`]); then checks the maze with
    /// [`Maze::validate`]. Errors name the row and column (1-based).
    pub fn parse<S: AsRef<str>>(rows: &[S]) -> Result<Self, MazeError> {
        let expected = rows.first().map_or(0, |r| r.as_ref().chars().count());
        if expected == 0 {
            return Err(MazeError::Empty);
        }
        let mut maze = Maze::filled(rows.len(), expected, Cell::Wall);
        let mut start: Option<(usize, usize)> = None;
        for (r, text) in rows.iter().enumerate() {
            let len = text.as_ref().chars().count();
            if len != expected {
                return Err(MazeError::Ragged {
                    row: r + 1,
                    len,
                    expected,
                });
            }
            for (c, symbol) in text.as_ref().chars().enumerate() {
                let cell = Cell::from_symbol(symbol).ok_or(MazeError::UnknownCell {
                    row: r + 1,
                    col: c + 1,
                    symbol,
                })?;
                if cell == Cell::Start {
                    if let Some((fr, fc)) = start {
                        return Err(MazeError::SecondStart {
                            row: r + 1,
                            col: c + 1,
                            first_row: fr + 1,
                            first_col: fc + 1,
                        });
                    }
                    start = Some((r, c));
                }
                // Plain assignment: `set` would move the start, hiding a second S.
                maze.put(r, c, cell);
            }
        }
        maze.validate()?;
        Ok(maze)
    }

    /// Checks that the maze can be played: exactly one start, a goal, and a path
    /// from the start to a goal that does not cross walls or pits.
    pub fn validate(&self) -> Result<(), MazeError> {
        let mut starts = self
            .cells()
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == Cell::Start)
            .map(|(i, _)| (i / self.cols(), i % self.cols()));
        let (sr, sc) = starts.next().ok_or(MazeError::NoStart)?;
        if let Some((r, c)) = starts.next() {
            return Err(MazeError::SecondStart {
                row: r + 1,
                col: c + 1,
                first_row: sr + 1,
                first_col: sc + 1,
            });
        }
        if !self.cells().contains(&Cell::Goal) {
            return Err(MazeError::NoGoal);
        }
        if self.distances_from(sr, sc).goal.is_none() {
            return Err(MazeError::Unreachable {
                row: sr + 1,
                col: sc + 1,
            });
        }
        Ok(())
    }

    /// Breadth-first search from (row, col) through non-terminal cells.
    pub(crate) fn distances_from(&self, row: usize, col: usize) -> Bfs {
        let n = self.rows() * self.cols();
        let mut dist = vec![u32::MAX; n];
        let mut parent = vec![u32::MAX; n];
        let mut queue = VecDeque::new();
        let mut goal = None;
        let start = row * self.cols() + col;
        dist[start] = 0;
        queue.push_back((row, col));
        while let Some((r, c)) = queue.pop_front() {
            let here = r * self.cols() + c;
            if self.get(r, c) == Cell::Goal {
                goal = Some(here);
                break;
            }
            if self.get(r, c).is_terminal() {
                continue;
            }
            for a in 0..4 {
                if let Some((nr, nc)) = self.neighbour(r, c, a) {
                    let i = nr * self.cols() + nc;
                    if dist[i] == u32::MAX {
                        dist[i] = dist[here] + 1;
                        parent[i] = here as u32;
                        queue.push_back((nr, nc));
                    }
                }
            }
        }
        Bfs { parent, goal }
    }

    /// Sets a cell without the start-moving rule of `set`.
    fn put(&mut self, row: usize, col: usize, cell: Cell) {
        let cols = self.cols();
        self.cells_mut()[row * cols + col] = cell;
    }
}

/// The result of a breadth-first search: parents for walking back, and the
/// nearest goal's cell index if one was reached.
pub(crate) struct Bfs {
    pub(crate) parent: Vec<u32>,
    pub(crate) goal: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(rows: &[&str]) -> String {
        match Maze::parse(rows) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected {rows:?} to be rejected"),
        }
    }

    #[test]
    fn parses_every_symbol_and_writes_it_back() {
        let rows = ["#####", "#S~X#", "#..G#", "#####"];
        let maze = Maze::parse(&rows).expect("valid");
        assert_eq!((maze.rows(), maze.cols()), (4, 5));
        assert_eq!(maze.start(), Some((1, 1)));
        assert_eq!(maze.get(1, 2), Cell::Slippery);
        assert_eq!(maze.get(1, 3), Cell::Pit);
        assert_eq!(maze.get(2, 3), Cell::Goal);
        assert_eq!(maze.to_rows(), rows);
    }

    #[test]
    fn every_error_names_its_place() {
        assert!(err(&[]).contains("empty"));
        let e = err(&["S.G", "..", "..."]);
        assert!(e.contains("row 2 has 2 cells"), "{e}");
        let e = err(&["S.G", "..?"]);
        assert!(e.contains("row 2, column 3") && e.contains("'?'"), "{e}");
        assert!(err(&["..G"]).contains("no start"));
        let e = err(&["S.G", ".S."]);
        assert!(
            e.contains("row 2, column 2") && e.contains("row 1, column 1"),
            "{e}"
        );
        assert!(err(&["S.."]).contains("no goal"));
        let e = err(&["S#G"]);
        assert!(
            e.contains("row 1, column 1") && e.contains("reached"),
            "{e}"
        );
        // A pit blocks the only corridor.
        assert!(err(&["SXG"]).contains("reached"));
    }

    #[test]
    fn editing_moves_the_start() {
        let mut maze = Maze::parse(&["S.G"]).expect("valid");
        maze.set(0, 1, Cell::Start);
        assert_eq!(maze.to_rows(), [".SG"]);
        maze.set(0, 2, Cell::Wall);
        assert!(matches!(maze.validate(), Err(MazeError::NoGoal)));
    }
}
