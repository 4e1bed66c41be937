//! Writes laid-out pages as PDF bytes with printpdf: the text and rules of each placed
//! block, the `page n of m` footer, and the metadata (a fixed creation time, so the same
//! minutes render to the same bytes).

use minutes_shared::minutes::Minutes;
use printpdf::{
    Color, Line, LinePoint, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions,
    Point, Pt, Rgb, TextItem,
};

use super::fonts::{self, Fonts, Weight};
use super::{Item, Page, RenderError, RenderOptions, BOTTOM_MARGIN, GREY, MARGIN, SMALL};

pub(super) fn write_pdf(
    minutes: &Minutes,
    options: &RenderOptions,
    fonts: &Fonts,
    pages: &[Page],
    (page_width, page_height): (f32, f32),
) -> Result<Vec<u8>, RenderError> {
    let mut document = PdfDocument::new(&minutes.title);
    let mut warnings = Vec::new();
    let parse = |bytes: &[u8], warnings: &mut Vec<_>| {
        ParsedFont::from_bytes(bytes, 0, warnings)
            .ok_or_else(|| RenderError::Font("printpdf could not parse it".into()))
    };
    let regular = document.add_font(&parse(fonts::REGULAR_TTF, &mut warnings)?);
    let bold = document.add_font(&parse(fonts::BOLD_TTF, &mut warnings)?);
    if let Ok(created) = printpdf::OffsetDateTime::from_unix_timestamp(options.created_unix) {
        let info = &mut document.metadata.info;
        info.creation_date = created;
        info.modification_date = created;
        info.metadata_date = created;
    }
    document.metadata.info.creator = "minutes".into();
    document.metadata.info.producer = "minutes (printpdf)".into();
    document.metadata.info.subject = "Meeting minutes".into();

    let total = pages.len();
    let to_mm = |pt: f32| printpdf::Mm(pt * 25.4 / 72.0);
    let mut pdf_pages = Vec::with_capacity(total);
    for (number, page) in pages.iter().enumerate() {
        let mut ops = Vec::new();
        let text = |ops: &mut Vec<Op>,
                    x: f32,
                    baseline: f32,
                    weight: Weight,
                    size: f32,
                    grey: bool,
                    s: &str| {
            let font = match weight {
                Weight::Regular => regular.clone(),
                Weight::Bold => bold.clone(),
            };
            let shade = if grey { GREY } else { 0.0 };
            ops.push(Op::StartTextSection);
            ops.push(Op::SetFillColor { col: Color::Rgb(Rgb::new(shade, shade, shade, None)) });
            ops.push(Op::SetFont { font: PdfFontHandle::External(font), size: Pt(size) });
            ops.push(Op::SetTextCursor {
                pos: Point { x: Pt(MARGIN + x), y: Pt(page_height - baseline) },
            });
            ops.push(Op::ShowText { items: vec![TextItem::Text(s.to_string())] });
            ops.push(Op::EndTextSection);
        };
        for (top, block) in page {
            for item in &block.items {
                match item {
                    Item::Text { x, y, weight, size, grey, text: s } => {
                        text(&mut ops, *x, MARGIN + top + y, *weight, *size, *grey, s);
                    }
                    Item::Rule { x1, x2, y } => {
                        let y = page_height - (MARGIN + top + y);
                        ops.push(Op::SetOutlineColor {
                            col: Color::Rgb(Rgb::new(0.75, 0.75, 0.75, None)),
                        });
                        ops.push(Op::SetOutlineThickness { pt: Pt(0.5) });
                        ops.push(Op::DrawLine {
                            line: Line {
                                points: vec![
                                    LinePoint {
                                        p: Point { x: Pt(MARGIN + x1), y: Pt(y) },
                                        bezier: false,
                                    },
                                    LinePoint {
                                        p: Point { x: Pt(MARGIN + x2), y: Pt(y) },
                                        bezier: false,
                                    },
                                ],
                                is_closed: false,
                            },
                        });
                    }
                }
            }
        }
        let footer = fonts.printable(
            &format!("{}  —  page {} of {}", minutes.title, number + 1, total),
            Weight::Regular,
        );
        let footer_x =
            (page_width - 2.0 * MARGIN - fonts.width(&footer, Weight::Regular, SMALL)).max(0.0);
        text(
            &mut ops,
            footer_x,
            page_height - BOTTOM_MARGIN / 2.0,
            Weight::Regular,
            SMALL,
            true,
            &footer,
        );
        pdf_pages.push(PdfPage::new(to_mm(page_width), to_mm(page_height), ops));
    }
    let save = PdfSaveOptions { subset_fonts: true, ..PdfSaveOptions::default() };
    let mut save_warnings = Vec::new();
    Ok(document.with_pages(pdf_pages).save(&save, &mut save_warnings))
}
