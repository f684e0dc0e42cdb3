//! Writes a sealed notification collection for benchmarks and the Python comparison.
//!
//! usage: make-notification-collection OUT_DIR ITEMS EVENT_BYTES
//! Writes `OUT_DIR/key.pem` (PKCS#8, a fresh RSA-2048 key) and `OUT_DIR/collection.json`
//! (ITEMS rich notifications, each a ~EVENT_BYTES event sealed for certificate id `bench`).

#![allow(clippy::print_stderr, reason = "a command-line tool")]

use std::process::ExitCode;
use std::time::SystemTime;

use orb_notification_crypto::{EncryptionKeyPair, GenerateOptions, seal};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-notification-collection: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, items, size] = args.as_slice() else {
        return Err("usage: make-notification-collection OUT_DIR ITEMS EVENT_BYTES".into());
    };
    let (items, size): (usize, usize) = (items.parse()?, size.parse()?);
    let dir = std::path::Path::new(dir);
    let pair =
        EncryptionKeyPair::generate("bench", &GenerateOptions::default(), SystemTime::now())?;
    std::fs::write(dir.join("key.pem"), pair.key().to_pkcs8_pem().as_bytes())?;
    let mut value = Vec::with_capacity(items);
    for i in 0..items {
        let event = orb_benches::event_json(i, size);
        let content = seal(&event, pair.certificate(), pair.id())?;
        value.push(serde_json::json!({
            "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
            "subscriptionExpirationDateTime": "2026-12-01T18:23:45.9356913+00:00",
            "changeType": "updated",
            "resource": format!("Users/room-2.14@example.com/Events/AAMk{i:08}"),
            "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": format!("AAMk{i:08}")},
            "clientState": "secretClientValue",
            "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
            "encryptedContent": content,
        }));
    }
    let body = serde_json::json!({"value": value, "validationTokens": []});
    std::fs::write(dir.join("collection.json"), body.to_string())?;
    Ok(())
}
