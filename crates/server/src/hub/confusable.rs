//! Names compared as they look: two names that a reader cannot tell apart get the same
//! [`key`]. Pure.
//!
//! A key is NFKC (full-width and mathematical letters become plain ones), then the
//! Unicode TR39 confusable skeleton (Cyrillic `В` and Latin `B` share one, as do `rn`
//! and `m`, `0` and `O`), keeping letters and digits only (so "Broad-Caster" and
//! "broadcaster" are one name). Skeletons depend on case (`I` is `l` but `i` is itself,
//! `M` is itself but `m` is `rn`), so a key holds the skeleton of the uppercased and of
//! the lowercased name, and two names clash when either matches. Before, names were
//! only lowercased and stripped, and "Вroadcaster" (Cyrillic), "Ｂｒｏａｄｃａｓｔｅｒ"
//! (full-width) and "𝐁𝐫𝐨𝐚𝐝𝐜𝐚𝐬𝐭𝐞𝐫" (mathematical bold) were all accepted next to the
//! reserved name.

use unicode_normalization::UnicodeNormalization;
use unicode_security::skeleton;

/// How a name looks (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    upper: String,
    lower: String,
}

/// The comparison key of `name`.
pub(crate) fn key(name: &str) -> Key {
    let plain: String = name.nfkc().collect();
    let look = |cased: String| -> String {
        skeleton(&cased)
            .flat_map(char::to_lowercase)
            .filter(|c| c.is_alphanumeric())
            .collect()
    };
    Key {
        upper: look(plain.chars().flat_map(char::to_uppercase).collect()),
        lower: look(plain.chars().flat_map(char::to_lowercase).collect()),
    }
}

impl Key {
    /// Whether the name has no letter or digit.
    pub(crate) fn is_empty(&self) -> bool {
        self.upper.is_empty() && self.lower.is_empty()
    }

    /// Whether a reader could take one name for the other.
    pub(crate) fn clashes(&self, other: &Key) -> bool {
        self.upper == other.upper || self.lower == other.lower
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalikes_of_a_name_share_its_key() {
        let plain = key("Broadcaster");
        for lookalike in [
            "broadcaster",
            "BROAD-CASTER",
            "b r o a d c a s t e r",
            "\u{412}roadcaster",      // Cyrillic capital VE
            "Br\u{43e}adcaster",      // Cyrillic small O
            "Ｂｒｏａｄｃａｓｔｅｒ", // full-width
            "𝐁𝐫𝐨𝐚𝐝𝐜𝐚𝐬𝐭𝐞𝐫",            // mathematical bold
            "Broadcaster\u{301}",     // a combining accent
            "Br0adcaster",            // digit zero for O
            "\u{432}roadcaster",      // Cyrillic small VE
            "BROADCASTER",
        ] {
            assert!(key(lookalike).clashes(&plain), "{lookalike:?}");
        }
    }

    #[test]
    fn different_names_keep_different_keys() {
        assert!(!key("Broadcaster").clashes(&key("Broadcaster2")));
        assert!(!key("Ana").clashes(&key("Anna")));
        assert!(key("rnoderator").clashes(&key("Moderator")));
        assert!(key("LUCIE").clashes(&key("lucie")));
        assert!(!key("Дмитрий").is_empty());
        assert!(key("---").is_empty());
    }
}
