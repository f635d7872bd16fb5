//! The hub's pure rules: what a display name, a chat text, a room id and a heart colour
//! may be, and the blocked-words match. No state, no clock, no I/O: unit-tested here.

use super::confusable;
use lucarne_protocol::{ErrorCode, MAX_CHAT_CHARS, MAX_NAME_CHARS};

/// Colours handed to viewers (bright enough on video). Hearts may only use these, which
/// also bounds the per-colour counts of a `hearts` frame.
pub const PALETTE: [&str; 12] = [
    "#ff6b6b", "#ff9f43", "#feca57", "#a3e635", "#1dd1a1", "#2ee6d6", "#48dbfb", "#54a0ff",
    "#a78bfa", "#f472b6", "#fb7185", "#facc15",
];

/// Names nobody may take, besides the broadcaster's (compared as they look, see
/// `confusable`).
const RESERVED: [&str; 6] = [
    "broadcaster",
    "moderator",
    "admin",
    "lucarne",
    "system",
    "host",
];

/// Longest blocked word or phrase, and how many a room keeps.
pub const MAX_BLOCKED_WORD_CHARS: usize = 64;
/// See [`MAX_BLOCKED_WORD_CHARS`].
pub const MAX_BLOCKED_WORDS: usize = 500;

/// A refused input: the code the client sees and a short English message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// The viewer's colour: stable for an identity, so a name keeps its colour across visits.
pub fn colour_for(viewer_id: &str) -> &'static str {
    // FNV-1a: tiny, stable across versions and platforms (std's hasher is neither).
    let mut h: u32 = 0x811c_9dc5;
    for b in viewer_id.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    PALETTE[h as usize % PALETTE.len()]
}

/// The colour a heart is counted under: the requested palette colour, else the viewer's.
pub fn heart_colour(requested: Option<&str>, own: &'static str) -> &'static str {
    requested
        .and_then(|c| PALETTE.iter().find(|p| p.eq_ignore_ascii_case(c)))
        .copied()
        .unwrap_or(own)
}

/// Room ids come from URLs and become database keys; a room is a stream's, so the
/// rule is the stream ids' one (ingest asks it too).
pub fn valid_room_id(id: &str) -> bool {
    crate::media::valid_stream_id(id)
}

/// Characters that change how text around them is displayed without showing themselves:
/// bidi overrides and zero-width characters let a name impersonate another.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
        | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}' | '\u{fff9}'..='\u{fffb}')
}

/// Checks a display name; returns it trimmed.
pub fn display_name(name: &str, broadcaster_name: &str) -> Result<String, Refusal> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(refuse(ErrorCode::InvalidName, "The name is empty."));
    }
    if chars > MAX_NAME_CHARS {
        return Err(refuse(
            ErrorCode::InvalidName,
            format!("Names have at most {MAX_NAME_CHARS} characters."),
        ));
    }
    if name.chars().any(|c| c.is_control() || invisible(c)) {
        return Err(refuse(
            ErrorCode::InvalidName,
            "Names cannot contain control or invisible characters.",
        ));
    }
    let folded = confusable::key(name);
    if folded.is_empty() {
        return Err(refuse(
            ErrorCode::InvalidName,
            "Names need a letter or a digit.",
        ));
    }
    if folded.clashes(&confusable::key(broadcaster_name))
        || RESERVED.iter().any(|r| folded.clashes(&confusable::key(r)))
    {
        return Err(refuse(ErrorCode::NameReserved, "This name is reserved."));
    }
    Ok(name.to_owned())
}

/// Checks a chat text; returns it trimmed, with control characters other than line
/// breaks and invisible characters removed (they only serve to disturb the display).
pub fn chat_text(text: &str) -> Result<String, Refusal> {
    // Count before cleaning so the limit is what the user typed, give or take.
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err(refuse(
            ErrorCode::TextTooLong,
            format!("Messages have at most {MAX_CHAT_CHARS} characters."),
        ));
    }
    let cleaned: String = text
        .chars()
        .filter(|&c| c == '\n' || !(c.is_control() || invisible(c)))
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        return Err(refuse(ErrorCode::TextEmpty, "The message is empty."));
    }
    Ok(cleaned.to_owned())
}

/// Normalises a blocked-words list: trimmed, lowercased, deduplicated, bounded.
pub fn blocked_words(words: &[String]) -> Result<Vec<String>, Refusal> {
    if words.len() > MAX_BLOCKED_WORDS {
        return Err(refuse(
            ErrorCode::InvalidRequest,
            format!("At most {MAX_BLOCKED_WORDS} blocked words."),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        let w = w.trim().to_lowercase();
        if w.chars().count() > MAX_BLOCKED_WORD_CHARS {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                format!("Blocked words have at most {MAX_BLOCKED_WORD_CHARS} characters."),
            ));
        }
        if !w.is_empty() && !out.contains(&w) {
            out.push(w);
        }
    }
    Ok(out)
}

/// The first blocked word found in `text`, matched case-insensitively on word
/// boundaries, so blocking "ass" does not block "class".
pub fn find_blocked<'w>(text: &str, words: &'w [String]) -> Option<&'w str> {
    if words.is_empty() {
        return None;
    }
    let text = text.to_lowercase();
    words.iter().map(String::as_str).find(|w| {
        text.match_indices(w).any(|(at, m)| {
            let before = text[..at].chars().next_back();
            let after = text[at + m.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_visible() {
        assert_eq!(display_name("  Ana ", "Broadcaster").unwrap(), "Ana");
        assert_eq!(display_name("Zoé 🎈", "Broadcaster").unwrap(), "Zoé 🎈");
        for bad in [
            "",
            "   ",
            "a\u{0007}b",
            "line\nbreak",
            "x\u{202e}gnp.exe",
            "zero\u{200b}width",
            "---",
        ] {
            assert_eq!(
                display_name(bad, "Broadcaster").unwrap_err().code,
                ErrorCode::InvalidName,
                "{bad:?}"
            );
        }
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            display_name(&long, "B").unwrap_err().code,
            ErrorCode::InvalidName
        );
        assert!(display_name(&"é".repeat(MAX_NAME_CHARS), "B").is_ok());
    }

    #[test]
    fn nobody_takes_the_broadcasters_name() {
        for taken in ["Lucie", "lucie", " LUCIE ", "Lu-cie", "l u c i e"] {
            assert_eq!(
                display_name(taken, "Lucie").unwrap_err().code,
                ErrorCode::NameReserved,
                "{taken:?}"
            );
        }
        assert_eq!(
            display_name("Moderator", "Lucie").unwrap_err().code,
            ErrorCode::NameReserved
        );
        assert!(display_name("Lucie2", "Lucie").is_ok());
        // Lookalikes of reserved names are reserved too.
        for lookalike in [
            "\u{41c}oderator",
            "Ａｄｍｉｎ",
            "𝐁𝐫𝐨𝐚𝐝𝐜𝐚𝐬𝐭𝐞𝐫",
            "Lu\u{441}ie",
        ] {
            assert_eq!(
                display_name(lookalike, "Lucie").unwrap_err().code,
                ErrorCode::NameReserved,
                "{lookalike:?}"
            );
        }
    }

    #[test]
    fn chat_text_limits() {
        assert_eq!(chat_text("  hi\u{0000} there \n").unwrap(), "hi there");
        assert_eq!(chat_text("a\nb").unwrap(), "a\nb");
        assert_eq!(
            chat_text(" \u{200b} ").unwrap_err().code,
            ErrorCode::TextEmpty
        );
        assert!(chat_text(&"é".repeat(MAX_CHAT_CHARS)).is_ok());
        assert_eq!(
            chat_text(&"é".repeat(MAX_CHAT_CHARS + 1)).unwrap_err().code,
            ErrorCode::TextTooLong
        );
        // Markup is kept as text: rendering is the widget's job, and it never uses HTML.
        assert_eq!(
            chat_text("<img src=x onerror=alert(1)>").unwrap(),
            "<img src=x onerror=alert(1)>"
        );
    }

    #[test]
    fn blocked_words_match_whole_words_only() {
        let words = blocked_words(&[" Spam ".into(), "buy now".into(), "spam".into()]).unwrap();
        assert_eq!(words, ["spam", "buy now"]);
        assert_eq!(find_blocked("this is SPAM!", &words), Some("spam"));
        assert_eq!(find_blocked("Buy now, cheap", &words), Some("buy now"));
        assert_eq!(find_blocked("spammer here", &words), None);
        assert_eq!(find_blocked("buy nowhere", &words), None);
        assert_eq!(find_blocked("anything", &[]), None);
        assert!(blocked_words(&vec!["x".into(); MAX_BLOCKED_WORDS + 1]).is_err());
    }

    #[test]
    fn colours_are_stable_and_hearts_stay_in_the_palette() {
        assert_eq!(colour_for("v1"), colour_for("v1"));
        assert!(PALETTE.contains(&colour_for("anyone")));
        let own = colour_for("v1");
        assert_eq!(heart_colour(Some("#FF6B6B"), own), "#ff6b6b");
        assert_eq!(heart_colour(Some("#123456"), own), own);
        assert_eq!(heart_colour(None, own), own);
    }

    #[test]
    fn room_ids() {
        assert!(valid_room_id("demo"));
        assert!(valid_room_id("stream_2-main-1"));
        for bad in ["", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_room_id(bad), "{bad:?}");
        }
    }
}
