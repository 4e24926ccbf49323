#!/usr/bin/env python3
"""Writes data_key_blob.json and kek_aad.json: frozen vectors for keywardd's
stored formats, computed here from their written specification alone (the
comment at the top of src/kms/data_key_blob.h and docs/format.md section 4
for the canonical context), with Python's `cryptography` for AES-256-GCM.

Run once when a format version is created; never to make a failing test
pass.  The KEKs, data keys and nonces are fixed test values, not secrets.
"""
import hashlib
import json
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AAD_LABEL = b"keyward kms data key v1"


def str8(b):
    return struct.pack(">B", len(b)) + b


def str16(b):
    return struct.pack(">H", len(b)) + b


def canonical_context(ctx):
    out = struct.pack(">H", len(ctx))
    for k in sorted(ctx, key=lambda s: s.encode()):
        out += str16(k.encode()) + str16(ctx[k].encode())
    return out


def blob_vector(name, env, key_name, version, ctx, seed):
    kek = hashlib.sha256(b"kek " + seed).digest()
    data_key = hashlib.sha256(b"data key " + seed).digest()
    nonce = hashlib.sha256(b"nonce " + seed).digest()[:12]
    canon = canonical_context(ctx)
    digest = hashlib.sha256(canon).digest()[:8]
    header = (struct.pack(">B", 1) + str8(env.encode()) + str16(key_name.encode())
              + struct.pack(">I", version) + digest)
    aad = AAD_LABEL + header + canon
    sealed = nonce + AESGCM(kek).encrypt(nonce, data_key, aad)
    assert len(sealed) == 60
    return {
        "name": name, "environment": env, "key_name": key_name, "key_version": version,
        "context": ctx, "kek": kek.hex(), "data_key": data_key.hex(),
        "context_digest": digest.hex(), "aad": aad.hex(), "sealed": sealed.hex(),
        "blob": (header + sealed).hex(),
    }


def main():
    blobs = [
        blob_vector("empty context", "dev", "k", 1, {}, b"1"),
        blob_vector("two pairs, unsorted input", "production", "payments/cards", 7,
                    {"tenant": "acme", "table": "cards"}, b"2"),
        blob_vector("utf-8 context, long name, top version", "staging",
                    "tenant-9/" + "x" * 200 + "/cards_v2.pii", 4294967295,
                    {"r\u00e9gion": "\u6771\u4eac", "a": ""}, b"3"),
    ]
    with open("data_key_blob.json", "w") as f:
        json.dump({"comment": "keywardd wrapped data-key blob v1 (src/kms/data_key_blob.h); "
                              "made by generate.py", "vectors": blobs}, f, indent=1,
                  ensure_ascii=False)
        f.write("\n")
    keks = []
    for env, name, version in [("dev", "k", 1), ("production", "payments/cards", 12),
                               ("staging", "tenant-9/a.b_c", 4294967295)]:
        aad = f"keyward kek v1|{env}|{name}|{version}".encode()
        keks.append({"environment": env, "key_name": name, "key_version": version,
                     "aad": aad.hex()})
    with open("kek_aad.json", "w") as f:
        json.dump({"comment": "associated data of a KEK sealed under the HSM root key; "
                              "made by generate.py", "vectors": keks}, f, indent=1,
                  ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
