//! lucarne patch: tests of the changes listed in PATCHES.md (end of stream during the
//! handshake, the handshake deadline, the message size limit, the handler's error).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{ServerSession, ServerSessionError, SessionData, SessionHandler};
use crate::chunk::error::ChunkReadError;
use crate::chunk::reader::ChunkReader;
use crate::error::RtmpError;

struct Refusing;

#[derive(Debug, thiserror::Error)]
#[error("refused by the test")]
struct Refused;

impl SessionHandler for Refusing {
    async fn on_publish(&mut self, _: u32, _: &str, _: &str) -> Result<(), ServerSessionError> {
        Err(ServerSessionError::Handler(Box::new(Refused)))
    }
    async fn on_unpublish(&mut self, _: u32) -> Result<(), ServerSessionError> {
        Ok(())
    }
    async fn on_data(&mut self, _: u32, _: SessionData) -> Result<(), ServerSessionError> {
        Ok(())
    }
}

/// Runs a session on one end of a pipe; the test gets the other.
fn session(handshake_timeout: Duration) -> (tokio::task::JoinHandle<Result<bool, RtmpError>>, DuplexStream) {
    let (server, client) = tokio::io::duplex(64 * 1024);
    let run = ServerSession::new(server, Refusing)
        .with_handshake_timeout(handshake_timeout)
        .run();
    (tokio::spawn(run), client)
}

async fn ended(run: tokio::task::JoinHandle<Result<bool, RtmpError>>) -> Result<bool, RtmpError> {
    tokio::time::timeout(Duration::from_secs(2), run)
        .await
        .expect("the session ends instead of spinning")
        .unwrap()
}

#[tokio::test]
async fn lucarne_a_peer_that_closes_before_any_byte_ends_the_session() {
    let (run, client) = session(Duration::from_secs(5));
    drop(client);
    let err = ended(run).await.unwrap_err();
    assert!(err.is_client_closed(), "{err}");
}

#[tokio::test]
async fn lucarne_a_peer_that_closes_in_the_middle_of_the_handshake_ends_the_session() {
    let (run, mut client) = session(Duration::from_secs(5));
    client.write_all(&[3, 0, 0, 0, 0]).await.unwrap();
    drop(client);
    let err = ended(run).await.unwrap_err();
    assert!(err.is_client_closed(), "{err}");
}

#[tokio::test]
async fn lucarne_a_handshake_trickling_past_its_deadline_ends_the_session() {
    let (run, mut client) = session(Duration::from_millis(300));
    let drip = tokio::spawn(async move {
        // One byte every 100 ms: each read is quick, the handshake never finishes.
        while client.write_all(&[3]).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let err = ended(run).await.unwrap_err();
    assert!(
        matches!(err, RtmpError::Session(ServerSessionError::HandshakeTimeout(_))),
        "{err}"
    );
    drip.await.unwrap();
}

#[tokio::test]
async fn lucarne_a_handshake_within_its_deadline_goes_on() {
    let (run, mut client) = session(Duration::from_millis(300));
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536).map(|i| if i < 8 { 0 } else { (i * 7) as u8 }));
    client.write_all(&c0c1).await.unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    client.read_exact(&mut s0s1s2).await.unwrap();
    client.write_all(&s0s1s2[1..1537]).await.unwrap();
    // The session reads C2 with one byte more: it finishes with the first message (a
    // window acknowledgement size, as clients send early).
    let ack = [0x02, 0, 0, 0, 0, 0, 4, 0x05, 0, 0, 0, 0, 0, 0x26, 0x25, 0xa0];
    client.write_all(&ack).await.unwrap();
    // Past the handshake deadline, the session still runs (silent peers end at the
    // 2.5 s read timeout), and ends when the peer closes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!run.is_finished(), "ended early: {:?}", ended(run).await);
    drop(client);
    assert!(ended(run).await.is_ok());
}

/// A type 0 chunk on chunk stream `csid` starting an AMF0 command of `len` bytes, with
/// its first 128 bytes (the initial chunk size).
fn first_chunk(csid: u8, len: u32) -> Vec<u8> {
    let len = len.to_be_bytes();
    let mut chunk = vec![csid, 0, 0, 0, len[1], len[2], len[3], 0x14, 0, 0, 0, 0];
    chunk.extend([0u8; 128]);
    chunk
}

fn read_all(reader: &mut ChunkReader, bytes: &[u8]) -> Result<(), RtmpError> {
    let mut buf = BytesMut::from(bytes);
    while reader.read_chunk(&mut buf)?.is_some() {}
    Ok(())
}

#[test]
fn lucarne_a_message_declared_over_the_limit_is_refused_at_its_header() {
    let mut reader = ChunkReader::default();
    reader.set_message_size_limit(1000);
    let err = read_all(&mut reader, &first_chunk(3, 1001)[..12]).unwrap_err();
    assert!(matches!(err, RtmpError::ChunkRead(ChunkReadError::PartialChunkTooLarge(1001))), "{err}");
    assert!(read_all(&mut ChunkReader::default(), &first_chunk(3, 1001)).is_ok());
}

#[test]
fn lucarne_the_limit_holds_across_unfinished_messages() {
    let mut two = first_chunk(3, 150);
    two.extend(first_chunk(4, 150));
    let mut reader = ChunkReader::default();
    reader.set_message_size_limit(200);
    let err = read_all(&mut reader, &two).unwrap_err();
    assert!(matches!(err, RtmpError::ChunkRead(ChunkReadError::PartialChunkTooLarge(256))), "{err}");
    assert!(read_all(&mut ChunkReader::default(), &two).is_ok());
}

#[test]
fn lucarne_a_handler_error_keeps_its_own_message() {
    let err = RtmpError::from(ServerSessionError::Handler(Box::new(Refused)));
    assert!(err.to_string().ends_with("refused by the test"), "{err}");
    assert!(!err.is_client_closed());
}
