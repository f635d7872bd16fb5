//! Error type for server sessions.

/// Errors that can occur during a server session.
#[derive(Debug, thiserror::Error)]
pub enum ServerSessionError {
    /// Timeout.
    #[error("timeout: {0}")]
    Timeout(#[from] tokio::time::error::Elapsed),
    /// Received publish command before connect command.
    #[error("received publish command before connect command")]
    PublishBeforeConnect,
    /// Play not supported.
    #[error("play not supported")]
    PlayNotSupported,
    /// Invalid chunk size.
    #[error("invalid chunk size: {0}")]
    InvalidChunkSize(usize),
    /// lucarne patch: the handshake did not finish within the deadline set with
    /// `ServerSession::with_handshake_timeout`.
    #[error("handshake not finished within {0:?}")]
    HandshakeTimeout(std::time::Duration),
    /// lucarne patch: a [`SessionHandler`](super::SessionHandler) ended the session
    /// for a reason of its own (a refused publish, say), which it passes through.
    #[error(transparent)]
    Handler(Box<dyn std::error::Error + Send + Sync>),
}
