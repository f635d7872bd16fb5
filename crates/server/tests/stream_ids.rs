//! Ingest and the chat hub agree on what names a stream: a stream key's stream id is a
//! room name and the reverse (`media::valid_stream_id`, asked by both).

use lucarne_server::hub::rules::valid_room_id;
use lucarne_server::ingest::parse_keys;

fn ingest_accepts(id: &str) -> bool {
    parse_keys(&[format!("key={id}")]).is_ok()
}

#[test]
fn ids_the_hub_and_ingest_used_to_disagree_on_are_refused_by_both() {
    // The hub took capitals and dots as room names, ingest refused them as stream ids:
    // rooms no stream could have, and `..` a room name.
    for id in ["Demo", "MAIN", "stream.main", ".", "..", "a.b.c"] {
        assert!(!valid_room_id(id), "hub took {id:?}");
        assert!(!ingest_accepts(id), "ingest took {id:?}");
    }
}

#[test]
fn both_take_and_refuse_the_same_ids() {
    let long = "x".repeat(64);
    for id in ["demo", "stream_2-main", "0", long.as_str()] {
        assert!(valid_room_id(id), "hub refused {id:?}");
        assert!(ingest_accepts(id), "ingest refused {id:?}");
    }
    let too_long = "x".repeat(65);
    for id in ["", "a/b", "a b", "é", too_long.as_str()] {
        assert!(!valid_room_id(id), "hub took {id:?}");
        assert!(!ingest_accepts(id), "ingest took {id:?}");
    }
}
