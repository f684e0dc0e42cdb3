//! Record encoding (postcard) and key layout helpers.
//!
//! Timestamps are encoded as `i128` nanoseconds since the Unix epoch (lossless, compact
//! as a postcard varint) rather than jiff's RFC 3339 strings; keys that must sort by
//! time use [`time_key`], a big-endian biased `u64` of microseconds.

use jiff::Timestamp;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

pub(crate) fn encode<T: Serialize>(kind: &'static str, value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|source| Error::Encode { kind, source })
}

pub(crate) fn decode<T: DeserializeOwned>(kind: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|source| Error::Decode { kind, source })
}

/// Sortable 8-byte key for a timestamp (microsecond precision, sign bit flipped so that
/// pre-1970 times sort first).
pub(crate) fn time_key(t: Timestamp) -> [u8; 8] {
    ((t.as_microsecond() as u64) ^ (1 << 63)).to_be_bytes()
}

/// `time_key(t) ++ id` — orders entries by time, then by id.
pub(crate) fn time_id_key(t: Timestamp, id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&time_key(t));
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Appends `bytes` with a big-endian `u32` length prefix, so that composite keys are
/// unambiguous and prefix scans cannot match a longer value.
pub(crate) fn push_len_prefixed(key: &mut Vec<u8>, bytes: &[u8]) {
    // Ids are far below 4 GiB; saturating keeps this total without a panic path.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(bytes);
}

pub(crate) fn u64_from_key(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// serde adapter: `Timestamp` as `i128` nanoseconds.
pub(crate) mod ts {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i128(t.as_nanosecond())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let n = i128::deserialize(d)?;
        Timestamp::from_nanosecond(n).map_err(D::Error::custom)
    }
}

/// serde adapter: `Option<Timestamp>` as `Option<i128>` nanoseconds.
pub(crate) mod opt_ts {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.as_nanosecond()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<i128>::deserialize(d)?
            .map(|n| Timestamp::from_nanosecond(n).map_err(D::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_like_timestamps() {
        let ts = [
            Timestamp::from_second(-100).unwrap(),
            Timestamp::from_second(0).unwrap(),
            Timestamp::from_second(1).unwrap(),
            Timestamp::from_second(1_800_000_000).unwrap(),
        ];
        for w in ts.windows(2) {
            assert!(time_key(w[0]) < time_key(w[1]));
        }
    }

    #[test]
    fn len_prefix_is_big_endian_u32() {
        let mut k = vec![7];
        push_len_prefixed(&mut k, b"abc");
        assert_eq!(k, [7, 0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
