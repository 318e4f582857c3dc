//! The embedded font. Text is drawn by [`crate::backend`] straight from the
//! parsed font; it is also registered with plotters as the `sans-serif`
//! family (the name every style here asks for) so that anything plotters
//! measures through its own font table uses the same metrics.

use std::sync::OnceLock;

use ab_glyph::FontRef;
use plotters::style::{FontStyle, register_font};

use crate::PlotError;

/// Family name every text style in this crate asks for.
pub(crate) const FAMILY: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The parsed font, registered with plotters on first use.
pub(crate) fn dejavu_sans() -> Result<&'static FontRef<'static>, PlotError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| {
        let font = FontRef::try_from_slice(DEJAVU_SANS).ok()?;
        register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).ok()?;
        Some(font)
    })
    .as_ref()
    .ok_or(PlotError::Font)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_parses_and_has_the_glyphs_figures_use() {
        use ab_glyph::Font;
        let font = dejavu_sans().expect("embedded font");
        for c in "Accuracy (%) ± … µs τ_m 0123456789"
            .chars()
            .filter(|c| *c != ' ')
        {
            assert_ne!(font.glyph_id(c).0, 0, "no glyph for {c:?}");
        }
    }
}
