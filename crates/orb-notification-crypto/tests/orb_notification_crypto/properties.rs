//! Property tests: seal/decrypt is the identity; hostile input never panics.

use orb_notification_crypto::{EncryptedContent, NotificationCollection, decrypt_with, seal};
use proptest::prelude::*;

use super::common::pair_2048;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_then_decrypt_is_identity(plain in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let pair = pair_2048(0);
        let sealed = seal(&plain, pair.certificate(), pair.id()).unwrap();
        prop_assert_eq!(decrypt_with(&sealed, pair.key(), Some(pair.certificate())).unwrap(), plain);
    }

    #[test]
    fn arbitrary_fields_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        key in proptest::collection::vec(any::<u8>(), 0..300),
        sig in proptest::collection::vec(any::<u8>(), 0..40),
        raw_text in ".{0,64}",
        use_b64 in any::<bool>(),
    ) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let enc = |v: &[u8]| if use_b64 { b64.encode(v) } else { raw_text.clone() };
        let pair = pair_2048(0);
        let content = EncryptedContent {
            data: enc(&data),
            data_key: enc(&key),
            data_signature: enc(&sig),
            encryption_certificate_id: pair.id().to_owned(),
            encryption_certificate_thumbprint: raw_text.clone(),
        };
        prop_assert!(decrypt_with(&content, pair.key(), Some(pair.certificate())).is_err());
        prop_assert!(decrypt_with(&content, pair.key(), None).is_err());
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(c) = NotificationCollection::from_json(&body) {
            for item in &c.value {
                if let Some(Ok(content)) = item.encrypted_content() {
                    let _ = decrypt_with(&content, pair_2048(0).key(), None);
                }
            }
        }
    }
}
