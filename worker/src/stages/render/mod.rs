//! Render stage: [`Minutes`] to a PDF a person would forward to their team.
//!
//! Layout is done here, not by printpdf: text is measured with the embedded font's
//! advance widths ([`fonts`]), broken into lines, and grouped into blocks. A block is the
//! unit of pagination: a paragraph gives one block per line (it may break between lines),
//! an action-item row one block (a row is never split; the table header is repeated on the
//! next page), a heading is kept with what follows it. Only then are pages written, so the
//! footer can say `page n of m`. printpdf embeds the font as a subset of the glyphs used.

mod fonts;
mod write;

use self::fonts::{Fonts, Weight};
use self::write::write_pdf;
use minutes_shared::minutes::{ActionItem, Minutes, Participant, Point as MinutesPoint};
use minutes_shared::subtitles::clock;

/// Paper sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paper {
    /// 210 × 297 mm.
    #[default]
    A4,
    /// 8.5 × 11 in.
    Letter,
}

impl Paper {
    /// Width and height in points.
    fn size(self) -> (f32, f32) {
        match self {
            Self::A4 => (595.28, 841.89),
            Self::Letter => (612.0, 792.0),
        }
    }
}

impl std::str::FromStr for Paper {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "a4" => Ok(Self::A4),
            "letter" => Ok(Self::Letter),
            other => Err(format!("unknown paper size {other:?} (expected a4 or letter)")),
        }
    }
}

/// How the PDF is laid out and stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Paper size.
    pub paper: Paper,
    /// Creation time written into the PDF metadata, in seconds since 1970 (the stage reads
    /// no clock, so the same input renders to the same bytes).
    pub created_unix: i64,
}

/// Why the PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The bundled font could not be read (a broken build, not bad input).
    #[error("the bundled font is unusable: {0}")]
    Font(String),
}

const MARGIN: f32 = 56.0;
const BOTTOM_MARGIN: f32 = 64.0;
const BODY: f32 = 10.0;
const LEADING: f32 = 1.4;
const SMALL: f32 = 8.5;
const TIME_COLUMN: f32 = 58.0;
const GREY: f32 = 0.35;
/// Written after a transcript line the model was unsure of.
pub const UNSURE_MARK: &str = "(?)";
/// Says what [`UNSURE_MARK`] means, above the transcript.
const UNSURE_LEGEND: &str =
    "Lines in grey marked (?) are ones the speech recognition was unsure of: check their words.";

/// Renders `minutes` as PDF bytes.
pub fn render_pdf(minutes: &Minutes, options: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    let fonts = Fonts::load()?;
    let (page_width, page_height) = options.paper.size();
    let layout = Layout { fonts: &fonts, width: page_width - 2.0 * MARGIN };
    let blocks = layout.document(minutes);
    let pages = paginate(blocks, page_height - MARGIN - BOTTOM_MARGIN);
    write_pdf(minutes, options, &fonts, &pages, (page_width, page_height))
}

/// Something drawn inside a block; `y` is the baseline below the block's top.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text { x: f32, y: f32, weight: Weight, size: f32, grey: bool, text: String },
    Rule { x1: f32, x2: f32, y: f32 },
}

/// The unit of pagination.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    height: f32,
    items: Vec<Item>,
    /// Must stay on the same page as the next block (headings).
    keep_with_next: bool,
    /// Starts a new page (the transcript appendix).
    page_break_before: bool,
    /// Drawn again at the top of a page that this block starts (table headers).
    repeat_header: Option<Box<Block>>,
}

impl Block {
    fn new(height: f32, items: Vec<Item>) -> Self {
        Self { height, items, keep_with_next: false, page_break_before: false, repeat_header: None }
    }

    fn space(height: f32) -> Self {
        Self::new(height, Vec::new())
    }
}

struct Layout<'a> {
    fonts: &'a Fonts,
    width: f32,
}

impl Layout<'_> {
    fn document(&self, minutes: &Minutes) -> Vec<Block> {
        let mut blocks = self.title_block(minutes);
        if !minutes.participants.is_empty() {
            blocks.extend(self.heading("Participants"));
            blocks.extend(self.participants(&minutes.participants));
        }
        blocks.extend(self.heading("Summary"));
        let summary = if minutes.summary.is_empty() { "No summary." } else { &minutes.summary };
        blocks.extend(self.paragraph(summary, 0.0, Weight::Regular, BODY));
        blocks.extend(self.points("Key points", &minutes.key_points));
        blocks.extend(self.points("Decisions", &minutes.decisions));
        blocks.extend(self.heading("Action items"));
        blocks.extend(self.action_items(&minutes.action_items));
        blocks.extend(self.points("Open questions", &minutes.open_questions));
        let mut appendix = self.heading("Transcript");
        if let Some(first) = appendix.first_mut() {
            first.page_break_before = true;
        }
        blocks.extend(appendix);
        if minutes.transcript.is_empty() {
            blocks.extend(self.paragraph("No speech was recognised.", 0.0, Weight::Regular, BODY));
        }
        if minutes.transcript.iter().any(|s| s.is_low_confidence()) {
            blocks.extend(self.paragraph(UNSURE_LEGEND, 0.0, Weight::Regular, SMALL));
        }
        for segment in &minutes.transcript {
            let unsure = segment.is_low_confidence();
            let mut text = match minutes.speaker_name(segment) {
                Some(name) => format!("{name}: {}", segment.text),
                None => segment.text.clone(),
            };
            if unsure {
                text = format!("{text} {UNSURE_MARK}");
            }
            blocks.extend(self.timed_lines(segment.start, &text, SMALL, unsure));
        }
        blocks
    }

    fn title_block(&self, minutes: &Minutes) -> Vec<Block> {
        let mut blocks = self.paragraph(&minutes.title, 0.0, Weight::Bold, 18.0);
        let facts = format!(
            "{}  ·  {}  ·  language: {}  ·  source: {}",
            minutes.date,
            human_duration(minutes.duration),
            minutes.language,
            minutes.source_filename
        );
        blocks.extend(self.paragraph(&facts, 0.0, Weight::Regular, SMALL));
        let mut summarizer = format!("Summarized by {}", minutes.summarizer.provider);
        if let Some(model) = &minutes.summarizer.model {
            summarizer.push_str(&format!(" ({model})"));
        }
        let info = &minutes.summarizer;
        if info.parts > 1 {
            summarizer.push_str(&format!(", in {} parts", info.parts));
        }
        if info.repaired_citations > 0 || info.dropped_items > 0 {
            summarizer.push_str(&format!(
                "; {} citation(s) repaired, {} item(s) dropped for citing no transcript line",
                info.repaired_citations, info.dropped_items
            ));
        }
        if let Some(reason) = &info.fallback_reason {
            summarizer.push_str(&format!(" instead: {reason}"));
        }
        blocks.extend(self.paragraph(&summarizer, 0.0, Weight::Regular, SMALL));
        if let Some(quality) = &minutes.quality {
            let note = format!("Transcript: {}", quality.describe());
            blocks.extend(self.paragraph(&note, 0.0, Weight::Regular, SMALL));
        }
        blocks.push(Block::new(14.0, vec![Item::Rule { x1: 0.0, x2: self.width, y: 6.0 }]));
        blocks
    }

    fn heading(&self, text: &str) -> Vec<Block> {
        let size = 13.0;
        let text = self.fonts.printable(text, Weight::Bold);
        let mut block = Block::new(
            size * 2.2,
            vec![Item::Text {
                x: 0.0,
                y: size * 1.7,
                weight: Weight::Bold,
                size,
                grey: false,
                text,
            }],
        );
        block.keep_with_next = true;
        vec![block]
    }

    /// One block per line, so a long paragraph may continue on the next page.
    fn paragraph(&self, text: &str, indent: f32, weight: Weight, size: f32) -> Vec<Block> {
        let text = self.fonts.printable(text, weight);
        self.fonts
            .wrap(&text, weight, size, self.width - indent)
            .into_iter()
            .map(|line| {
                Block::new(
                    size * LEADING,
                    vec![Item::Text { x: indent, y: size, weight, size, grey: false, text: line }],
                )
            })
            .collect()
    }

    /// `[hh:mm:ss]` in a grey column, then the text with a hanging indent (grey too when
    /// `grey`).
    fn timed_lines(&self, at: f64, text: &str, size: f32, grey: bool) -> Vec<Block> {
        let mut blocks = self.paragraph(text, TIME_COLUMN, Weight::Regular, size);
        if grey {
            for block in &mut blocks {
                for item in &mut block.items {
                    if let Item::Text { grey, .. } = item {
                        *grey = true;
                    }
                }
            }
        }
        if let Some(first) = blocks.first_mut() {
            first.items.push(Item::Text {
                x: 0.0,
                y: size,
                weight: Weight::Regular,
                size,
                grey: true,
                text: format!("[{}]", clock(at)),
            });
        }
        blocks
    }

    fn points(&self, title: &str, points: &[MinutesPoint]) -> Vec<Block> {
        let mut blocks = self.heading(title);
        if points.is_empty() {
            blocks.extend(self.paragraph("None.", 0.0, Weight::Regular, BODY));
        }
        for point in points {
            blocks.extend(self.timed_lines(point.at, &point.text, BODY, false));
            blocks.push(Block::space(3.0));
        }
        blocks
    }

    /// The action-item table: owner, due, item, time. A row is one block.
    fn action_items(&self, items: &[ActionItem]) -> Vec<Block> {
        if items.is_empty() {
            return self.paragraph("None.", 0.0, Weight::Regular, BODY);
        }
        let columns = [0.0, 80.0, 160.0, self.width - 52.0];
        let header =
            self.row(&columns, &["Owner", "Due", "Item", "Time"].map(String::from), Weight::Bold);
        let mut blocks = vec![header.clone()];
        for item in items {
            let cells = [
                item.owner.clone().unwrap_or_else(|| "—".into()),
                item.due.clone().unwrap_or_else(|| "—".into()),
                item.text.clone(),
                clock(item.at),
            ];
            let mut row = self.row(&columns, &cells, Weight::Regular);
            row.repeat_header = Some(Box::new(header.clone()));
            blocks.push(row);
        }
        blocks
    }

    /// The participants' table: name, talk time, share of the talk.
    fn participants(&self, participants: &[Participant]) -> Vec<Block> {
        let columns = [0.0, 200.0, 290.0];
        let names = ["Name", "Talk time", "Share"].map(String::from);
        let header = self.row(&columns, &names, Weight::Bold);
        let mut blocks = vec![header.clone()];
        for participant in participants {
            let cells = [
                participant.display_name().to_string(),
                human_duration(participant.talk_time),
                format!("{:.0} %", participant.share * 100.0),
            ];
            let mut row = self.row(&columns, &cells, Weight::Regular);
            row.repeat_header = Some(Box::new(header.clone()));
            blocks.push(row);
        }
        blocks
    }

    /// A table row: each cell wrapped in its column (`columns` are the left edges).
    fn row(&self, columns: &[f32], cells: &[String], weight: Weight) -> Block {
        let padding = 4.0;
        let line_height = BODY * LEADING;
        let mut items = Vec::new();
        let mut lines_in_row = 1;
        for (index, cell) in cells.iter().enumerate() {
            let left = columns[index];
            let right = columns.get(index + 1).copied().unwrap_or(self.width);
            let text = self.fonts.printable(cell, weight);
            let lines = self.fonts.wrap(&text, weight, BODY, right - left - 6.0);
            lines_in_row = lines_in_row.max(lines.len());
            for (n, line) in lines.into_iter().enumerate() {
                items.push(Item::Text {
                    x: left,
                    y: padding + BODY + n as f32 * line_height,
                    weight,
                    size: BODY,
                    grey: false,
                    text: line,
                });
            }
        }
        let height = lines_in_row as f32 * line_height + 2.0 * padding;
        items.push(Item::Rule { x1: 0.0, x2: self.width, y: height });
        Block::new(height, items)
    }
}

/// A page: blocks placed at their top offsets below the top margin.
type Page = Vec<(f32, Block)>;

fn paginate(blocks: Vec<Block>, usable_height: f32) -> Vec<Page> {
    let mut pages: Vec<Page> = vec![Vec::new()];
    let mut y = 0.0;
    let mut index = 0;
    while index < blocks.len() {
        let block = &blocks[index];
        // A heading needs room for itself and the first block after it.
        let needed = if block.keep_with_next {
            block.height + blocks.get(index + 1).map_or(0.0, |next| next.height)
        } else {
            block.height
        };
        let page_has_content = pages.last().is_some_and(|page| !page.is_empty());
        if page_has_content && (block.page_break_before || y + needed > usable_height) {
            pages.push(Vec::new());
            y = 0.0;
            if let Some(header) = &block.repeat_header {
                if let Some(page) = pages.last_mut() {
                    page.push((0.0, (**header).clone()));
                }
                y += header.height;
            }
        }
        if let Some(page) = pages.last_mut() {
            page.push((y, block.clone()));
        }
        y += block.height;
        index += 1;
    }
    pages
}

/// "1 h 02 min", "12 min 5 s", "45 s".
fn human_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    match (total / 3600, total % 3600 / 60, total % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m:02} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(height: f32) -> Block {
        Block::new(height, Vec::new())
    }

    #[test]
    fn a_row_that_does_not_fit_moves_whole_with_the_table_header() {
        let header = block(20.0);
        let mut row = block(50.0);
        row.repeat_header = Some(Box::new(header.clone()));
        let pages = paginate(vec![block(80.0), row.clone()], 100.0);
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[1], vec![(0.0, header), (20.0, row)]);
    }

    #[test]
    fn a_heading_is_never_the_last_thing_on_a_page() {
        let mut heading = block(20.0);
        heading.keep_with_next = true;
        let pages = paginate(vec![block(70.0), heading.clone(), block(20.0)], 100.0);
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[1][0], (0.0, heading));
    }

    #[test]
    fn clock_and_duration_read_well() {
        assert_eq!(human_duration(62.3), "1 min 2 s");
        assert_eq!(human_duration(3.0 * 3600.0 + 125.0), "3 h 02 min");
    }
}
