#!/usr/bin/env python3
"""Reference decrypter for Graph rich notifications, on OpenSSL via `cryptography`.

The yardstick for `orb notification decrypt` (see README, "Performance"): same input, same
output (one compact JSON line per encrypted item), the scheme exactly as Microsoft's
samples implement it: RSA-OAEP(SHA-1) unwrap, HMAC-SHA256 over the ciphertext compared in
constant time, AES-256-CBC with IV = key[:16], PKCS#7 unpad.

usage: decrypt_reference.py --key CERT_ID=PEM_FILE [--key ...] COLLECTION.json
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

OAEP_SHA1 = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def decrypt(keys, content):
    key = keys.get(content["encryptionCertificateId"]) or keys.get(None)
    if key is None:
        raise ValueError("unknown certificate id")
    sym = key.decrypt(base64.b64decode(content["dataKey"]), OAEP_SHA1)
    data = base64.b64decode(content["data"])
    mac = hmac.new(sym, data, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, base64.b64decode(content["dataSignature"])):
        raise ValueError("signature mismatch")
    decryptor = Cipher(algorithms.AES(sym), modes.CBC(sym[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", action="append", default=[])
    parser.add_argument("file")
    args = parser.parse_args()
    keys = {}
    for spec in args.key:
        cert_id, _, path = spec.rpartition("=")
        with open(path, "rb") as f:
            keys[cert_id or None] = serialization.load_pem_private_key(f.read(), password=None)
    with open(args.file, "rb") as f:
        collection = json.load(f)
    out = sys.stdout
    failed = False
    for index, item in enumerate(collection["value"]):
        content = item.get("encryptedContent")
        if content is None:
            continue
        try:
            resource = json.loads(decrypt(keys, content))
        except Exception as e:  # noqa: BLE001 - report and go on, like orb
            failed = True
            print(f"item {index}: {e}", file=sys.stderr)
            continue
        out.write(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
