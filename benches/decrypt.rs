//! Rich-notification decrypt + verify, against the RSA-2048 private operation it is built on.
//!
//! `rsa2048_oaep_unwrap` is the physical floor (one RSA private-key operation per item);
//! `decrypt_verify/*` is the whole per-item path (base64, unwrap, HMAC, AES-CBC, unpad).
//! The target: decrypt of a 2 KiB event within 15% of the floor. Compare the floor
//! with `openssl speed rsa2048` (sign/s) on the same machine.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark harness"
)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orb_notification_crypto::{EncryptionKeyPair, GenerateOptions, decrypt_with, seal};

fn bench(c: &mut Criterion) {
    let pair = EncryptionKeyPair::generate("bench", &GenerateOptions::default(), SystemTime::now())
        .unwrap();

    // The floor: one RSA-2048 OAEP-SHA1 private-key operation.
    let sealed = seal(b"{}", pair.certificate(), pair.id()).unwrap();
    let wrapped = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&sealed.data_key)
            .unwrap()
    };
    let pem = pair.key().to_pkcs8_pem();
    let der = pem::parse(pem.as_bytes()).unwrap().into_contents();
    let raw =
        OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(&der).unwrap()).unwrap();
    let mut out = vec![0u8; raw.min_output_size()];
    c.bench_function("rsa2048_oaep_unwrap", |b| {
        b.iter(|| {
            let key = raw
                .decrypt(&OAEP_SHA1_MGF1SHA1, black_box(&wrapped), &mut out, None)
                .unwrap();
            black_box(key.len())
        })
    });

    let mut group = c.benchmark_group("decrypt_verify");
    for (label, size) in [("2KiB", 2 * 1024), ("64KiB", 64 * 1024)] {
        let plain = orb_benches::event_json(0, size);
        let content = seal(&plain, pair.certificate(), pair.id()).unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_function(label, |b| {
            b.iter(|| {
                let p = decrypt_with(black_box(&content), pair.key(), Some(pair.certificate()))
                    .unwrap();
                black_box(p.len())
            })
        });
    }
    group.finish();

    // Where the time goes for a large item, besides the RSA unwrap.
    let mut group = c.benchmark_group("components_64KiB");
    let big = seal(
        &orb_benches::event_json(0, 64 * 1024),
        pair.certificate(),
        pair.id(),
    )
    .unwrap();
    let ct = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&big.data)
            .unwrap()
    };
    group.bench_function("base64_decode", |b| {
        use base64::Engine;
        b.iter(|| {
            black_box(
                base64::engine::general_purpose::STANDARD
                    .decode(black_box(&big.data))
                    .unwrap(),
            )
        })
    });
    group.bench_function("hmac_sha256_rustcrypto", |b| {
        use hmac::Mac;
        b.iter(|| {
            let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&[7u8; 32]).unwrap();
            mac.update(black_box(&ct));
            black_box(mac.finalize().into_bytes())
        })
    });
    group.bench_function("hmac_sha256_aws_lc", |b| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[7u8; 32]);
        b.iter(|| black_box(aws_lc_rs::hmac::sign(&key, black_box(&ct))))
    });
    group.bench_function("aes256_cbc_decrypt", |b| {
        use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
        let mut buf = ct.clone();
        b.iter(|| {
            buf.copy_from_slice(&ct);
            let dec =
                cbc::Decryptor::<aes::Aes256>::new_from_slices(&[7u8; 32], &[7u8; 16]).unwrap();
            black_box(dec.decrypt_padded_mut::<NoPadding>(&mut buf).unwrap().len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("seal");
    let plain = orb_benches::event_json(0, 2 * 1024);
    group.bench_function("2KiB", |b| {
        b.iter(|| black_box(seal(black_box(&plain), pair.certificate(), pair.id()).unwrap()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(50);
    targets = bench
}
criterion_main!(benches);
