//! The maze as a grid of cells that can be drawn, edited and written back as the
//! rows of an experiment file. Coordinates are (row, column), 0-based, row 0 at
//! the top. Nothing here knows about learning.

use serde::{Deserialize, Serialize};

/// The four moves, in the order used by every Q-table: up, right, down, left.
pub const ACTIONS: [(isize, isize); 4] = [(-1, 0), (0, 1), (1, 0), (0, -1)];

/// Names of [`ACTIONS`], for tables and plots.
pub const ACTION_NAMES: [&str; 4] = ["up", "right", "down", "left"];

/// What one cell of the maze is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cell {
    /// Open floor.
    Free,
    /// Blocks movement; bumping into it leaves the agent where it is.
    Wall,
    /// Where every episode begins (exactly one per maze); otherwise free.
    Start,
    /// Arriving here ends the episode with the goal reward.
    Goal,
    /// Arriving here ends the episode with the pit reward.
    Pit,
    /// Free, but a move from here may slip in a random direction.
    Slippery,
}

impl Cell {
    /// Every cell kind with its symbol, in the order a palette would show them.
    pub const ALL: [Cell; 6] = [
        Cell::Free,
        Cell::Wall,
        Cell::Start,
        Cell::Goal,
        Cell::Pit,
        Cell::Slippery,
    ];

    /// The character used in layout rows.
    pub fn symbol(self) -> char {
        match self {
            Self::Free => '.',
            Self::Wall => '#',
            Self::Start => 'S',
            Self::Goal => 'G',
            Self::Pit => 'X',
            Self::Slippery => '~',
        }
    }

    /// The cell for a layout character, if it is one.
    pub fn from_symbol(symbol: char) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.symbol() == symbol)
    }

    /// Whether the episode ends on arriving here.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Goal | Self::Pit)
    }
}

/// A rectangular grid of cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maze {
    rows: usize,
    cols: usize,
    cells: Vec<Cell>,
}

impl Maze {
    /// A `rows` x `cols` grid filled with `fill`.
    pub fn filled(rows: usize, cols: usize, fill: Cell) -> Self {
        Self {
            rows,
            cols,
            cells: vec![fill; rows * cols],
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All cells, row-major (`cells()[row * cols + col]`).
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// The cell at (row, col); outside the grid counts as wall.
    pub fn get(&self, row: usize, col: usize) -> Cell {
        if row < self.rows && col < self.cols {
            self.cells[row * self.cols + col]
        } else {
            Cell::Wall
        }
    }

    /// Sets one cell (ignored outside the grid). Setting a start moves it: the old
    /// start becomes free, so an editor never makes a maze with two.
    pub fn set(&mut self, row: usize, col: usize, cell: Cell) {
        if row >= self.rows || col >= self.cols {
            return;
        }
        if cell == Cell::Start {
            for c in &mut self.cells {
                if *c == Cell::Start {
                    *c = Cell::Free;
                }
            }
        }
        self.cells[row * self.cols + col] = cell;
    }

    /// All cells, mutable (for parsing and generating in this module).
    pub(crate) fn cells_mut(&mut self) -> &mut [Cell] {
        &mut self.cells
    }

    /// Position of the (first) start cell.
    pub fn start(&self) -> Option<(usize, usize)> {
        self.cells
            .iter()
            .position(|&c| c == Cell::Start)
            .map(|i| (i / self.cols, i % self.cols))
    }

    /// The cell reached by moving from (row, col) with action `a` (index into
    /// [`ACTIONS`]), or None when it is outside the grid or a wall.
    pub fn neighbour(&self, row: usize, col: usize, a: usize) -> Option<(usize, usize)> {
        let (dr, dc) = ACTIONS[a];
        let r = row.checked_add_signed(dr)?;
        let c = col.checked_add_signed(dc)?;
        (r < self.rows && c < self.cols && self.get(r, c) != Cell::Wall).then_some((r, c))
    }

    /// The layout rows as written in an experiment file.
    pub fn to_rows(&self) -> Vec<String> {
        self.cells
            .chunks(self.cols.max(1))
            .map(|row| row.iter().map(|c| c.symbol()).collect())
            .collect()
    }
}
