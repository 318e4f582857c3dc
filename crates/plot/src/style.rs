//! Shared look: colours that stay distinguishable for colour-blind readers
//! (the Okabe–Ito palette), grey grid lines, and one type scale.

use plotters::style::text_anchor::Pos;
use plotters::style::{Color, FontDesc, RGBColor, TextStyle};

use crate::font::FAMILY;

/// Okabe–Ito colours, in the order series and bars use them.
pub(crate) const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(230, 159, 0),   // orange
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(90, 90, 90),    // grey
];

pub(crate) const TEXT: RGBColor = RGBColor(30, 30, 30);
pub(crate) const MUTED_TEXT: RGBColor = RGBColor(110, 110, 110);
pub(crate) const AXIS: RGBColor = RGBColor(60, 60, 60);
pub(crate) const GRID: RGBColor = RGBColor(220, 220, 220);
pub(crate) const MINOR_GRID: RGBColor = RGBColor(238, 238, 238);

/// Text of `size` pixels in the embedded font.
pub(crate) fn text(size: u32, color: RGBColor) -> TextStyle<'static> {
    TextStyle {
        font: FontDesc::from((FAMILY, f64::from(size))),
        color: color.to_backend_color(),
        pos: Pos::default(),
    }
}

pub(crate) fn title() -> TextStyle<'static> {
    text(34, TEXT)
}

pub(crate) fn subtitle() -> TextStyle<'static> {
    text(20, MUTED_TEXT)
}

pub(crate) fn panel_caption() -> TextStyle<'static> {
    text(27, TEXT)
}

pub(crate) fn axis_description() -> TextStyle<'static> {
    text(22, TEXT)
}

pub(crate) fn tick_label() -> TextStyle<'static> {
    text(19, TEXT)
}

pub(crate) fn legend() -> TextStyle<'static> {
    text(19, TEXT)
}
