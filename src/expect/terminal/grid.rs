//! One screen's cells and cursor (the primary screen or the alternate one),
//! and the edits a VT terminal makes to them: characters put at the cursor,
//! cursor moves, erasing, inserting and deleting cells and lines, scrolling
//! within the scroll region.
//!
//! The screen is read as text and a cursor position, so a cell keeps only
//! what it shows: colours and other attributes are never stored. A wide
//! character (CJK, most emoji) takes two cells, the second a tail that
//! shows nothing; every edit that cuts a wide character in two erases the
//! half left behind, so a row never shows half a character.
//!
//! The cursor's column can be one past the last column: after a character
//! is put in the last column, the cursor waits there, and the next
//! character wraps to the next line first (the "pending wrap" every VT
//! terminal has). No sequence of edits can index outside the grid or
//! overflow a position, whatever the console sends (the terminal bounds
//! the grid's size, `MAX_SIDE`).

use std::ops::Range;

/// How long a cell's text (a character and the combining marks over it)
/// may grow, in UTF-8 bytes, before further marks are dropped (as
/// terminals drop them).
const MARKS_UNTIL: usize = 18;

/// One cell in 8 bytes, so the hot path (a character put) writes one word:
/// the character shown, flagged when it is wide, or a blank, or the tail of
/// a wide character; and which of the grid's mark strings is drawn over it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Cell {
    code: u32,
    /// 0: none; else 1 + an index into [`Grid`]'s `marks`.
    marks: u32,
}

/// The flag in `code` of a character two cells wide.
const WIDE: u32 = 1 << 31;

impl Cell {
    const EMPTY: Cell = Cell { code: 0, marks: 0 };
    /// Above every `char`, so no character is taken for a tail.
    const TAIL: Cell = Cell {
        code: 0x11_0000,
        marks: 0,
    };

    fn holding(c: char, wide: bool) -> Cell {
        let flag = if wide { WIDE } else { 0 };
        Cell {
            code: u32::from(c) | flag,
            marks: 0,
        }
    }

    fn is_wide(self) -> bool {
        self.code & WIDE != 0
    }

    fn is_tail(self) -> bool {
        self == Cell::TAIL
    }

    /// The character shown, if any (blanks and tails show none).
    fn shown(self) -> Option<char> {
        char::from_u32(self.code & !WIDE).filter(|&c| c != '\0')
    }
}

/// A cell position, both from 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) row: u16,
    pub(super) col: u16,
}

pub(super) struct Grid {
    columns: u16,
    rows: Vec<Vec<Cell>>,
    cursor: Pos,
    /// DECSC's cursor and origin mode, for DECRC.
    saved: (Pos, bool),
    /// The scroll region, first and last row (inclusive).
    top: u16,
    bottom: u16,
    /// Origin mode: row addresses count from the region's top.
    origin: bool,
    /// The combining marks of the cells that have any (few do). A cell
    /// overwritten leaves its string here until `compact_marks`.
    marks: Vec<String>,
}

impl Grid {
    pub(super) fn new(columns: u16, rows: u16) -> Grid {
        Grid {
            columns,
            rows: vec![vec![Cell::EMPTY; usize::from(columns)]; usize::from(rows)],
            cursor: Pos::default(),
            saved: (Pos::default(), false),
            top: 0,
            bottom: rows - 1,
            origin: false,
            marks: Vec::new(),
        }
    }

    pub(super) fn columns(&self) -> u16 {
        self.columns
    }

    pub(super) fn rows(&self) -> u16 {
        self.rows.len() as u16
    }

    pub(super) fn cursor(&self) -> Pos {
        self.cursor
    }

    /// Blank, cursor home, no region, origin mode off: a fresh alternate screen.
    pub(super) fn clear(&mut self) {
        *self = Grid::new(self.columns, self.rows());
    }

    /// The rows as text, each without its trailing white space (blanks,
    /// and spaces of any kind written there), joined with `\n`.
    pub(super) fn text(&self) -> String {
        let mut text = String::with_capacity(self.rows.len() * (usize::from(self.columns) + 1));
        for (at, cells) in self.rows.iter().enumerate() {
            if at > 0 {
                text.push('\n');
            }
            let start = text.len();
            // A tail shows nothing, and its head's width brings `shown_to`
            // past it.
            let mut shown_to = 0;
            for (col, &cell) in cells.iter().enumerate() {
                if let Some(c) = cell.shown() {
                    text.extend(std::iter::repeat_n(' ', col.saturating_sub(shown_to)));
                    text.push(c);
                    text.push_str(self.marks_of(cell));
                    shown_to = col + if cell.is_wide() { 2 } else { 1 };
                }
            }
            text.truncate(start + text[start..].trim_end().len());
        }
        text
    }

    // --- characters -------------------------------------------------------

    /// Puts a character of `width` 1 or 2 at the cursor and moves past it,
    /// wrapping to the next line first when it does not fit.
    #[inline(always)]
    pub(super) fn put(&mut self, c: char, width: u16) {
        // `width` is at most the columns (the terminal does not put wider).
        if self.cursor.col > self.columns - width {
            self.cursor.col = 0;
            self.line_feed();
        }
        let Pos { row, col } = self.cursor;
        self.cursor.col += width;
        let (col, wide) = (usize::from(col), width == 2);
        let cells = &mut self.rows[usize::from(row)];
        let old = std::mem::replace(&mut cells[col], Cell::holding(c, wide));
        if old.is_wide() || wide || (col > 0 && cells[col - 1].is_wide()) {
            mend_wide(cells, col, old.is_wide(), wide);
        }
    }

    /// Puts printable ASCII (one cell each) as `put` would one by one.
    pub(super) fn put_ascii(&mut self, text: &[u8]) {
        self.put_narrow(text.len(), |slots, done| {
            for (slot, &byte) in slots.iter_mut().zip(&text[done..]) {
                *slot = Cell::holding(char::from(byte), false);
            }
        });
    }

    /// Puts a one-cell character `count` times as `put` would.
    pub(super) fn put_repeated(&mut self, c: char, count: usize) {
        let cell = Cell::holding(c, false);
        self.put_narrow(count, |slots, _| slots.fill(cell));
    }

    /// Puts `count` one-cell characters a row's share at a time: `fill`
    /// writes the cells for a share, given how many came before it (a
    /// slice each, so the copy loops are plain ones the compiler widens).
    fn put_narrow(&mut self, count: usize, mut fill: impl FnMut(&mut [Cell], usize)) {
        let mut done = 0;
        while done < count {
            if self.cursor.col >= self.columns {
                self.cursor.col = 0;
                self.line_feed();
            }
            let col = usize::from(self.cursor.col);
            let end = col + (count - done).min(usize::from(self.columns) - col);
            let row = &mut self.rows[usize::from(self.cursor.row)];
            // Only the run's ends can cut a wide character in two.
            if col > 0 && row[col - 1].is_wide() {
                row[col - 1] = Cell::EMPTY;
            }
            if row[end - 1].is_wide() {
                set(row, end, Cell::EMPTY);
            }
            fill(&mut row[col..end], done);
            done += end - col;
            self.cursor.col = end as u16;
        }
    }

    /// Adds a zero-width character to the one before the cursor.
    pub(super) fn combine(&mut self, mark: char) {
        let Pos { row, col } = self.cursor;
        let Some(mut base) = usize::from(col).checked_sub(1) else {
            return;
        };
        let cells = &self.rows[usize::from(row)];
        if cells[base].is_tail() && base > 0 {
            base -= 1;
        }
        let mut cell = cells[base];
        let shown = cell.shown().unwrap_or(' ');
        if shown.len_utf8() + self.marks_of(cell).len() < MARKS_UNTIL {
            if cell.marks == 0 {
                cell = Cell::holding(shown, cell.is_wide());
                cell.marks = self.new_marks();
            }
            self.marks[cell.marks as usize - 1].push(mark);
        }
        let cells = &mut self.rows[usize::from(row)];
        cells[base] = cell;
        if base > 0 && cells[base - 1].is_wide() {
            cells[base - 1] = Cell::EMPTY;
        }
    }

    fn marks_of(&self, cell: Cell) -> &str {
        match cell.marks.checked_sub(1) {
            Some(at) => self.marks.get(at as usize).map_or("", String::as_str),
            None => "",
        }
    }

    /// A fresh mark string's number; first drops the strings of cells
    /// since overwritten, once they could outnumber the cells twice.
    fn new_marks(&mut self) -> u32 {
        let cells = self.rows.len() * usize::from(self.columns);
        // Twice the cells: however many cells still have marks, a scan
        // then makes room for at least as many new strings as there are
        // cells, so its cost stays constant per string.
        if self.marks.len() >= 2 * cells.max(64) {
            self.compact_marks();
        }
        self.marks.push(String::new());
        self.marks.len() as u32
    }

    fn compact_marks(&mut self) {
        let mut kept = Vec::new();
        for cell in self.rows.iter_mut().flatten().filter(|c| c.marks > 0) {
            let text = std::mem::take(&mut self.marks[cell.marks as usize - 1]);
            kept.push(text);
            cell.marks = kept.len() as u32;
        }
        self.marks = kept;
    }

    // --- cursor moves -----------------------------------------------------

    /// LF: down a row, scrolling the region when at its bottom.
    pub(super) fn line_feed(&mut self) {
        let inside = self.in_region();
        let bottom = if inside { self.bottom } else { self.last_row() };
        if self.cursor.row >= bottom {
            self.cursor.row = bottom;
            if inside {
                self.scroll_up(1);
            }
        } else {
            self.cursor.row += 1;
        }
    }

    /// RI: up a row, scrolling the region down when at its top. At the
    /// screen's top row the region scrolls too, even when the cursor is
    /// above it (as vt100 does; no program relies on either).
    pub(super) fn reverse_line_feed(&mut self) {
        let row = self.cursor.row;
        if row == 0 || (self.in_region() && row == self.top) {
            self.scroll_down(1);
        } else {
            self.cursor.row = row - 1;
        }
    }

    /// Up `n` rows, stopping at the region's top when inside it.
    pub(super) fn up(&mut self, n: u16) {
        let inside = self.in_region();
        self.cursor.row = self.cursor.row.saturating_sub(n);
        if inside {
            self.cursor.row = self.cursor.row.max(self.top);
        }
    }

    /// Down `n` rows, stopping at the region's bottom when inside it.
    pub(super) fn down(&mut self, n: u16) {
        let bottom = if self.in_region() {
            self.bottom
        } else {
            self.last_row()
        };
        self.cursor.row = self.cursor.row.saturating_add(n).min(bottom);
    }

    pub(super) fn forward(&mut self, n: u16) {
        self.go_to_column(self.cursor.col.saturating_add(n));
    }

    /// Left `n` columns (from a pending wrap too).
    pub(super) fn back(&mut self, n: u16) {
        self.cursor.col = self.cursor.col.saturating_sub(n);
    }

    pub(super) fn go_to_column(&mut self, col: u16) {
        self.cursor.col = col.min(self.columns - 1);
    }

    /// To a row of the screen, whatever the origin mode.
    pub(super) fn go_to_row(&mut self, row: u16) {
        self.cursor.row = row.min(self.last_row());
    }

    pub(super) fn tab(&mut self) {
        self.go_to_column((self.cursor.col - self.cursor.col % 8).saturating_add(8));
    }

    /// CUP: to a position, counted from the region's top in origin mode.
    pub(super) fn go_to(&mut self, Pos { row, col }: Pos) {
        self.cursor.row = if self.origin {
            row.saturating_add(self.top).min(self.bottom)
        } else {
            row.min(self.last_row())
        };
        self.go_to_column(col);
    }

    pub(super) fn save_cursor(&mut self) {
        self.saved = (self.cursor, self.origin);
    }

    pub(super) fn restore_cursor(&mut self) {
        (self.cursor, self.origin) = self.saved;
    }

    pub(super) fn set_origin_mode(&mut self, on: bool) {
        self.origin = on;
        self.go_to(Pos::default());
    }

    /// DECSTBM (rows from 0): a region of less than two rows is the whole
    /// screen. The cursor goes to the region's top.
    pub(super) fn set_region(&mut self, top: u16, bottom: u16) {
        let bottom = bottom.min(self.last_row());
        (self.top, self.bottom) = if top < bottom {
            (top, bottom)
        } else {
            (0, self.last_row())
        };
        self.cursor = Pos {
            row: self.top,
            col: 0,
        };
    }

    // --- erasing ----------------------------------------------------------

    /// ED: 0 from the cursor to the end, 1 from the start to the cursor, 2 all.
    pub(super) fn erase_in_display(&mut self, mode: u16) {
        let row = usize::from(self.cursor.row);
        match mode {
            0 => self.rows[row + 1..]
                .iter_mut()
                .for_each(|cells| blank(cells)),
            1 => self.rows[..row].iter_mut().for_each(|cells| blank(cells)),
            2 => self.rows.iter_mut().for_each(|cells| blank(cells)),
            _ => return,
        }
        if mode < 2 {
            self.erase_in_line(mode);
        }
    }

    /// EL: 0 from the cursor to the end, 1 from the start to the cursor, 2 all.
    pub(super) fn erase_in_line(&mut self, mode: u16) {
        let col = self.cursor.col;
        match mode {
            0 => self.erase_cells(col..self.columns),
            1 => self.erase_cells(0..col.min(self.columns - 1) + 1),
            2 => blank(self.current_row()),
            _ => {}
        }
    }

    /// ECH: `n` cells from the cursor.
    pub(super) fn erase_characters(&mut self, n: u16) {
        let col = self.cursor.col;
        self.erase_cells(col..col.saturating_add(n).min(self.columns));
    }

    fn erase_cells(&mut self, cols: Range<u16>) {
        let cells = self.current_row();
        for col in cols.map(usize::from) {
            split_wide(cells, col);
            cells[col] = Cell::EMPTY;
        }
    }

    // --- inserting and deleting -------------------------------------------

    /// ICH: `n` blanks at the cursor, the rest of the row pushed right
    /// (what passes the margin is lost).
    pub(super) fn insert_blanks(&mut self, n: u16) {
        let col = usize::from(self.cursor.col);
        let cells = self.current_row();
        let n = usize::from(n).min(cells.len().saturating_sub(col));
        if n == 0 {
            return;
        }
        // Inserting at a wide character's tail leaves its head where it
        // was: the first blank becomes the head's tail, the moved one a blank.
        let on_tail = cells[col].is_tail();
        cells[col..].rotate_right(n);
        cells[col..col + n].fill(Cell::EMPTY);
        if on_tail {
            cells[col] = Cell::TAIL;
            set(cells, col + n, Cell::EMPTY);
        }
        if let Some(last) = cells.last_mut().filter(|c| c.is_wide()) {
            *last = Cell::EMPTY;
        }
    }

    /// DCH: `n` cells at the cursor deleted, the rest of the row pulled left.
    pub(super) fn delete_characters(&mut self, n: u16) {
        let start = usize::from(self.cursor.col);
        let end = usize::from(self.cursor.col.saturating_add(n).min(self.columns));
        if start >= end {
            return;
        }
        let cells = self.current_row();
        split_wide(cells, start);
        split_wide(cells, end - 1);
        cells[start..end].fill(Cell::EMPTY);
        cells[start..].rotate_left(end - start);
    }

    /// IL: `n` blank lines at the cursor's row, within the region.
    pub(super) fn insert_lines(&mut self, n: u16) {
        if let Some(region) = self.region_below_cursor() {
            let n = usize::from(n).min(region.len());
            region.rotate_right(n);
            region[..n].iter_mut().for_each(|cells| blank(cells));
        }
    }

    /// DL: `n` lines at the cursor's row deleted, within the region.
    pub(super) fn delete_lines(&mut self, n: u16) {
        if let Some(region) = self.region_below_cursor() {
            let n = usize::from(n).min(region.len());
            region[..n].iter_mut().for_each(|cells| blank(cells));
            region.rotate_left(n);
        }
    }

    /// SU: the region's rows move up `n`, blanks come in at its bottom.
    pub(super) fn scroll_up(&mut self, n: u16) {
        let region = &mut self.rows[usize::from(self.top)..=usize::from(self.bottom)];
        let n = usize::from(n).min(region.len());
        region[..n].iter_mut().for_each(|cells| blank(cells));
        region.rotate_left(n);
    }

    /// SD: the region's rows move down `n`, blanks come in at its top.
    pub(super) fn scroll_down(&mut self, n: u16) {
        let region = &mut self.rows[usize::from(self.top)..=usize::from(self.bottom)];
        let n = usize::from(n).min(region.len());
        region.rotate_right(n);
        region[..n].iter_mut().for_each(|cells| blank(cells));
    }

    // --- the rest ---------------------------------------------------------

    fn last_row(&self) -> u16 {
        self.rows() - 1
    }

    fn in_region(&self) -> bool {
        (self.top..=self.bottom).contains(&self.cursor.row)
    }

    fn current_row(&mut self) -> &mut Vec<Cell> {
        &mut self.rows[usize::from(self.cursor.row)]
    }

    /// The region's rows from the cursor's down, if the cursor is in it.
    fn region_below_cursor(&mut self) -> Option<&mut [Vec<Cell>]> {
        let inside = self.in_region();
        let rows = usize::from(self.cursor.row)..=usize::from(self.bottom);
        inside.then(|| &mut self.rows[rows])
    }
}

fn blank(cells: &mut [Cell]) {
    cells.fill(Cell::EMPTY);
}

fn set(cells: &mut [Cell], col: usize, cell: Cell) {
    if let Some(at) = cells.get_mut(col) {
        *at = cell;
    }
}

/// After a character is put at `col`: no half of a wide character is left
/// where it was cut, and a wide one put takes the next cell as its tail.
fn mend_wide(cells: &mut [Cell], col: usize, was_wide: bool, wide: bool) {
    // Over a wide character's tail: its head is cut off.
    if col > 0 && cells[col - 1].is_wide() {
        cells[col - 1] = Cell::EMPTY;
    }
    match (was_wide, wide) {
        // The old character's tail shows as a blank it left.
        (true, false) => set(cells, col + 1, Cell::EMPTY),
        (false, true) => {
            let next_was_wide = cells.get(col + 1).is_some_and(|c| c.is_wide());
            set(cells, col + 1, Cell::TAIL);
            if next_was_wide {
                set(cells, col + 2, Cell::EMPTY);
            }
        }
        _ => {}
    }
}

/// Before `col` is overwritten: erases the other half of a wide character
/// it is part of (a wide head with no room for its tail erases itself).
fn split_wide(cells: &mut [Cell], col: usize) {
    let cell = cells[col];
    if cell.is_wide() {
        let other = if col + 1 < cells.len() { col + 1 } else { col };
        cells[other] = Cell::EMPTY;
    } else if cell.is_tail() && col > 0 {
        cells[col - 1] = Cell::EMPTY;
    }
}
