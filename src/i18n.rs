//! The widget's words, in English and French. Pure: the language is chosen by the
//! embed code (attribute, then the page's `lang`, then the browser) and passed down.
//! Every key must exist in every language: the `match` makes a missing one a compile
//! error.

/// A language the widget speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

impl Lang {
    /// From a BCP 47 tag (`fr`, `fr-CA`, `en-GB`...); `None` for other languages.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let tag = tag.trim();
        // A byte scan, not `split(['-', '_'])`, whose searcher only this would use.
        let end = tag.bytes().position(|b| b == b'-' || b == b'_');
        let primary = end.map_or(tag, |i| &tag[..i]).to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first supported language among candidates, else English.
    pub fn pick<'a>(candidates: impl IntoIterator<Item = &'a str>) -> Lang {
        candidates
            .into_iter()
            .find_map(Lang::from_tag)
            .unwrap_or_default()
    }
}

/// Everything the widget says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Text {
    VideoLabel,
    Connecting,
    Buffering,
    Reconnecting,
    Offline,
    Ended,
    CannotPlay,
    Retry,
    Live,
    BackToLive,
    Replay,
    WatchReplay,
    StateOffline,
    StateEnded,
    StateUnsupported,
    Seek,
    Play,
    Pause,
    Mute,
    Unmute,
    TapToUnmute,
    Volume,
    Fullscreen,
    ExitFullscreen,
    PictureInPicture,
    Watching,
    WatchingOne,
    ChatPlaceholder,
    NamePlaceholder,
    PickName,
    Send,
    SendHeart,
    Delete,
    /// The toggle that sends the next message as a question.
    AskQuestion,
    /// +1 on a question.
    VoteQuestion,
    /// The label over the pinned question.
    PinnedQuestion,
    /// Staff: pin a question.
    Pin,
    /// Staff: mark a question answered.
    Answered,
    Ban,
    ChatOffline,
    ErrTooLong,
    ErrTooFast,
    ErrSlowMode,
    ErrBlockedWord,
    ErrName,
    ErrBanned,
    ErrOther,
    ChatRefusedOrigin,
    ChatRefusedRoom,
    ChatRefusedBanned,
    HideChat,
    ShowChat,
    ViewersUnknown,
    Quality,
    Auto,
    UnsupportedCodec,
    UnsupportedEncryption,
    NotHls,
    CorsRefused,
    Private,
}

/// The text for `key` in `lang`.
pub fn t(lang: Lang, key: Text) -> &'static str {
    use Text::*;
    match (lang, key) {
        (Lang::En, VideoLabel) => "Live video",
        (Lang::Fr, VideoLabel) => "Vidéo en direct",
        (Lang::En, Connecting) => "Connecting…",
        (Lang::Fr, Connecting) => "Connexion…",
        (Lang::En, Buffering) => "Loading…",
        (Lang::Fr, Buffering) => "Chargement…",
        (Lang::En, Reconnecting) => "Connection lost — reconnecting…",
        (Lang::Fr, Reconnecting) => "Connexion perdue — reconnexion…",
        (Lang::En, Offline) => "Offline. The video starts by itself when the broadcast is live.",
        (Lang::Fr, Offline) => {
            "Hors ligne. La vidéo démarrera d’elle-même dès que le direct reprendra."
        }
        (Lang::En, Ended) => "The broadcast has ended.",
        (Lang::Fr, Ended) => "Le direct est terminé.",
        (Lang::En, CannotPlay) => "Cannot play",
        (Lang::Fr, CannotPlay) => "Lecture impossible",
        (Lang::En, Retry) => "Retry",
        (Lang::Fr, Retry) => "Réessayer",
        (Lang::En, Live) => "LIVE",
        (Lang::Fr, Live) => "DIRECT",
        (Lang::En, BackToLive) => "Back to live",
        (Lang::Fr, BackToLive) => "Revenir au direct",
        (Lang::En, Replay) => "REPLAY",
        (Lang::Fr, Replay) => "REDIFFUSION",
        (Lang::En, StateOffline) => "Offline",
        (Lang::Fr, StateOffline) => "Hors ligne",
        (Lang::En, StateEnded) => "Broadcast ended",
        (Lang::Fr, StateEnded) => "Direct terminé",
        (Lang::En, StateUnsupported) => "Broadcast refused: unsupported video format",
        (Lang::Fr, StateUnsupported) => "Direct refusé : format vidéo non pris en charge",
        (Lang::En, WatchReplay) => "Watch the replay",
        (Lang::Fr, WatchReplay) => "Voir la rediffusion",
        (Lang::En, Seek) => "Position in the replay",
        (Lang::Fr, Seek) => "Position dans la rediffusion",
        (Lang::En, Play) => "Play",
        (Lang::Fr, Play) => "Lecture",
        (Lang::En, Pause) => "Pause",
        (Lang::Fr, Pause) => "Pause",
        (Lang::En, Mute) => "Mute",
        (Lang::Fr, Mute) => "Couper le son",
        (Lang::En, Unmute) => "Unmute",
        (Lang::Fr, Unmute) => "Activer le son",
        (Lang::En, TapToUnmute) => "Tap to unmute",
        (Lang::Fr, TapToUnmute) => "Touchez pour le son",
        (Lang::En, Volume) => "Volume",
        (Lang::Fr, Volume) => "Volume",
        (Lang::En, Fullscreen) => "Full screen",
        (Lang::Fr, Fullscreen) => "Plein écran",
        (Lang::En, ExitFullscreen) => "Exit full screen",
        (Lang::Fr, ExitFullscreen) => "Quitter le plein écran",
        (Lang::En, PictureInPicture) => "Picture in picture",
        (Lang::Fr, PictureInPicture) => "Image dans l’image",
        (Lang::En, Watching) => "watching",
        (Lang::Fr, Watching) => "spectateurs",
        (Lang::En, WatchingOne) => "watching",
        (Lang::Fr, WatchingOne) => "spectateur",
        (Lang::En, ChatPlaceholder) => "Say something…",
        (Lang::Fr, ChatPlaceholder) => "Dites quelque chose…",
        (Lang::En, NamePlaceholder) => "Your name",
        (Lang::Fr, NamePlaceholder) => "Votre nom",
        (Lang::En, PickName) => "Pick a name to chat",
        (Lang::Fr, PickName) => "Choisissez un nom pour discuter",
        (Lang::En, Send) => "Send",
        (Lang::Fr, Send) => "Envoyer",
        (Lang::En, SendHeart) => "Send a heart",
        (Lang::Fr, SendHeart) => "Envoyer un cœur",
        (Lang::En, Delete) => "Delete",
        (Lang::Fr, Delete) => "Supprimer",
        (Lang::En, AskQuestion) => "Ask as a question",
        (Lang::Fr, AskQuestion) => "Poser comme question",
        (Lang::En, VoteQuestion) => "Me too",
        (Lang::Fr, VoteQuestion) => "Moi aussi",
        (Lang::En, PinnedQuestion) => "Question",
        (Lang::Fr, PinnedQuestion) => "Question",
        (Lang::En, Pin) => "Pin",
        (Lang::Fr, Pin) => "Épingler",
        (Lang::En, Answered) => "Answered",
        (Lang::Fr, Answered) => "Répondu",
        (Lang::En, Ban) => "Ban",
        (Lang::Fr, Ban) => "Bannir",
        (Lang::En, ChatOffline) => "Chat reconnecting…",
        (Lang::Fr, ChatOffline) => "Reconnexion du chat…",
        (Lang::En, ErrTooLong) => "Too long: 500 characters at most.",
        (Lang::Fr, ErrTooLong) => "Trop long : 500 caractères au plus.",
        (Lang::En, ErrTooFast) => "Slow down: you can post again in a few seconds.",
        (Lang::Fr, ErrTooFast) => "Doucement : vous pourrez écrire dans quelques secondes.",
        (Lang::En, ErrSlowMode) => "Slow mode is on: wait a little between messages.",
        (Lang::Fr, ErrSlowMode) => "Mode lent : patientez un peu entre deux messages.",
        (Lang::En, ErrBlockedWord) => "This message contains a word that is not allowed here.",
        (Lang::Fr, ErrBlockedWord) => "Ce message contient un mot interdit ici.",
        (Lang::En, ErrName) => "This name cannot be used: try another one.",
        (Lang::Fr, ErrName) => "Ce nom n’est pas disponible : essayez-en un autre.",
        (Lang::En, ErrBanned) => "You can no longer post in this chat.",
        (Lang::Fr, ErrBanned) => "Vous ne pouvez plus écrire dans ce chat.",
        (Lang::En, ErrOther) => "The message could not be sent.",
        (Lang::Fr, ErrOther) => "Le message n’a pas pu être envoyé.",
        (Lang::En, ChatRefusedOrigin) => "Chat is not available on this site",
        (Lang::Fr, ChatRefusedOrigin) => "Le chat n'est pas disponible sur ce site",
        (Lang::En, ChatRefusedRoom) => "This broadcast has no chat",
        (Lang::Fr, ChatRefusedRoom) => "Ce direct n'a pas de chat",
        (Lang::En, ChatRefusedBanned) => "You can no longer take part in this chat",
        (Lang::Fr, ChatRefusedBanned) => "Vous ne pouvez plus participer à ce chat",
        (Lang::En, HideChat) => "Hide the chat",
        (Lang::Fr, HideChat) => "Masquer le chat",
        (Lang::En, ShowChat) => "Show the chat",
        (Lang::Fr, ShowChat) => "Afficher le chat",
        (Lang::En, ViewersUnknown) => "viewer count unknown",
        (Lang::Fr, ViewersUnknown) => "nombre de spectateurs inconnu",
        (Lang::En, Quality) => "Quality",
        (Lang::Fr, Quality) => "Qualité",
        (Lang::En, Auto) => "Auto",
        (Lang::Fr, Auto) => "Auto",
        // `%`: the codecs or the encryption, named by the player.
        (Lang::En, UnsupportedCodec) => "This stream uses %, which this browser cannot decode.",
        (Lang::Fr, UnsupportedCodec) => "Ce direct utilise %, que ce navigateur ne sait pas décoder.",
        (Lang::En, UnsupportedEncryption) => {
            "This stream is encrypted with %, which this player does not support."
        }
        (Lang::Fr, UnsupportedEncryption) => {
            "Ce direct est chiffré en %, ce que ce lecteur ne prend pas en charge."
        }
        (Lang::En, NotHls) => "This address is not an HLS stream.",
        (Lang::Fr, NotHls) => "Cette adresse n’est pas un flux HLS.",
        (Lang::En, CorsRefused) => {
            "The stream’s server does not let this site play it: it must send the Access-Control-Allow-Origin header."
        }
        (Lang::Fr, CorsRefused) => {
            "Le serveur du direct n’autorise pas ce site à le lire : il doit envoyer l’en-tête Access-Control-Allow-Origin."
        }
        (Lang::En, Private) => "This broadcast is private.",
        (Lang::Fr, Private) => "Cette diffusion est privée.",
    }
}

/// "N watching" / "N spectateur(s)": the word after a viewer count.
pub fn watching(lang: Lang, count: u32) -> &'static str {
    t(
        lang,
        if count <= 1 {
            Text::WatchingOne
        } else {
            Text::Watching
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_from_tags_in_order() {
        assert_eq!(Lang::pick(["fr-CA"]), Lang::Fr);
        assert_eq!(Lang::pick(["de", "fr"]), Lang::Fr);
        assert_eq!(Lang::pick(["de", "es"]), Lang::En);
        assert_eq!(Lang::pick(["", "EN_gb"]), Lang::En);
        assert_eq!(Lang::pick([]), Lang::En);
    }

    #[test]
    fn viewer_counts_agree_in_number() {
        assert_eq!(watching(Lang::Fr, 1), "spectateur");
        assert_eq!(watching(Lang::Fr, 2), "spectateurs");
        assert_eq!(watching(Lang::En, 1), "watching");
    }

    #[test]
    fn french_differs_where_it_should() {
        assert_eq!(t(Lang::Fr, Text::BackToLive), "Revenir au direct");
        assert_ne!(
            t(Lang::Fr, Text::Reconnecting),
            t(Lang::En, Text::Reconnecting)
        );
    }
}
