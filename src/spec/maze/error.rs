//! Everything that can be wrong with a maze. Positions in messages are 1-based
//! ("row 3, column 5"), as a person counts lines in the experiment file.

/// A maze that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MazeError {
    /// The layout has no rows or an empty first row.
    #[error("the layout is empty; write one string per row, e.g. [\"S.G\"]")]
    Empty,
    /// A row is longer or shorter than the first.
    #[error(
        "row {row} has {len} cells but row 1 has {expected}; every row must be as long as the first"
    )]
    Ragged {
        /// 1-based row.
        row: usize,
        /// Its length.
        len: usize,
        /// Length of the first row.
        expected: usize,
    },
    /// A character that is not a cell symbol.
    #[error(
        "row {row}, column {col}: unknown cell '{symbol}'; use # wall, . free, S start, G goal, X pit, ~ slippery"
    )]
    UnknownCell {
        /// 1-based row.
        row: usize,
        /// 1-based column.
        col: usize,
        /// The character found.
        symbol: char,
    },
    /// No `S`.
    #[error("the maze has no start; mark one cell with S")]
    NoStart,
    /// More than one `S`.
    #[error(
        "row {row}, column {col}: a second start (the first is at row {first_row}, column {first_col}); keep one S"
    )]
    SecondStart {
        /// 1-based row of the second start.
        row: usize,
        /// 1-based column of the second start.
        col: usize,
        /// 1-based row of the first start.
        first_row: usize,
        /// 1-based column of the first start.
        first_col: usize,
    },
    /// No `G`.
    #[error("the maze has no goal; mark at least one cell with G")]
    NoGoal,
    /// Walls (or pits) cut every goal off from the start.
    #[error(
        "no goal can be reached from the start at row {row}, column {col}; open a path through the walls (pits block it too)"
    )]
    Unreachable {
        /// 1-based row of the start.
        row: usize,
        /// 1-based column of the start.
        col: usize,
    },
    /// A generated maze size outside the supported range.
    #[error("a generated maze must be {min} to {max} cells on each side, not {rows}x{cols}")]
    BadSize {
        /// Requested rows.
        rows: usize,
        /// Requested columns.
        cols: usize,
        /// Smallest side.
        min: usize,
        /// Largest side.
        max: usize,
    },
}
