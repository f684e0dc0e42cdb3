//! Shared helpers of orb's criterion benchmarks and bench tools (`[[bench]]` and `[[bin]]`
//! targets of this package).
//!
//! Nothing here is used by orb itself: the package exists because a virtual workspace root
//! cannot own benchmarks.

/// A plausible Graph event resource of about `size` bytes (attendees pad it out), numbered
/// `n` so that every item of a collection differs.
pub fn event_json(n: usize, size: usize) -> Vec<u8> {
    let mut s = format!(
        r#"{{"id":"AAMk{n:08}","iCalUId":"040000008200E00074C5B7101A82E008{n:08}","subject":"Quarterly review {n}","start":{{"dateTime":"2026-12-01T09:00:00.0000000","timeZone":"UTC"}},"end":{{"dateTime":"2026-12-01T10:00:00.0000000","timeZone":"UTC"}},"attendees":["#
    );
    let mut i = 0;
    while s.len() + 200 < size {
        s.push_str(&format!(
            r#"{{"type":"required","status":{{"response":"none"}},"emailAddress":{{"address":"person{i:05}@example.com","name":"Person {i:05}"}}}},"#
        ));
        i += 1;
    }
    s.push_str(r#"{"type":"resource","emailAddress":{"address":"room-2.14@example.com","name":"Room 2.14"}}],"location":{"displayName":"Room 2.14"}}"#);
    s.into_bytes()
}
