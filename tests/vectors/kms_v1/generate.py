#!/usr/bin/env python3
"""Writes data_key_blob.json and kek_aad.json, and (blob version 2, the
tenant layer) tenant_data_key_blob.json and tenant_key_aad.json: frozen
vectors for keywardd's stored formats, computed here from their written
specification alone (the comment at the top of src/kms/data_key_blob.h,
docs/format.md section 8.2, and section 4 for the canonical context), with
Python's `cryptography` for AES-256-GCM.

Run once when a format version is created; never to make a failing test
pass (each file is written only if it does not exist yet).  The KEKs,
tenant keys, data keys and nonces are fixed test values, not secrets.
"""
import hashlib
import json
import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AAD_LABEL = b"keyward kms data key v1"
TENANT_AAD_LABEL = b"keyward tenant data key v1"
TENANT_KEY = "keyward:tenant"


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


def tenant_blob_vector(name, env, key_name, version, ctx, seed):
    assert ctx.get(TENANT_KEY), "a tenant's data key has a non-empty keyward:tenant"
    kek = hashlib.sha256(b"kek " + seed).digest()
    tenant_key = hashlib.sha256(b"tenant key " + seed).digest()
    data_key = hashlib.sha256(b"data key " + seed).digest()
    inner_nonce = hashlib.sha256(b"inner nonce " + seed).digest()[:12]
    nonce = hashlib.sha256(b"nonce " + seed).digest()[:12]
    canon = canonical_context(ctx)
    digest = hashlib.sha256(canon).digest()[:8]
    header = (struct.pack(">B", 2) + str8(env.encode()) + str16(key_name.encode())
              + struct.pack(">I", version) + digest)
    inner_aad = TENANT_AAD_LABEL + header + canon
    inner = inner_nonce + AESGCM(tenant_key).encrypt(inner_nonce, data_key, inner_aad)
    assert len(inner) == 60
    aad = AAD_LABEL + header + canon
    sealed = nonce + AESGCM(kek).encrypt(nonce, inner, aad)
    assert len(sealed) == 88
    return {
        "name": name, "environment": env, "key_name": key_name, "key_version": version,
        "context": ctx, "kek": kek.hex(), "tenant_key": tenant_key.hex(),
        "data_key": data_key.hex(), "context_digest": digest.hex(),
        "inner_aad": inner_aad.hex(), "inner": inner.hex(), "aad": aad.hex(),
        "sealed": sealed.hex(), "blob": (header + sealed).hex(),
    }


def write_once(path, comment, vectors):
    if os.path.exists(path):
        print(f"{path} exists: left as it is (frozen)")
        return
    with open(path, "w") as f:
        json.dump({"comment": comment, "vectors": vectors}, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    blobs = [
        blob_vector("empty context", "dev", "k", 1, {}, b"1"),
        blob_vector("two pairs, unsorted input", "production", "payments/cards", 7,
                    {"tenant": "acme", "table": "cards"}, b"2"),
        blob_vector("utf-8 context, long name, top version", "staging",
                    "tenant-9/" + "x" * 200 + "/cards_v2.pii", 4294967295,
                    {"r\u00e9gion": "\u6771\u4eac", "a": ""}, b"3"),
    ]
    write_once("data_key_blob.json",
               "keywardd wrapped data-key blob v1 (src/kms/data_key_blob.h); made by generate.py",
               blobs)
    keks = []
    for env, name, version in [("dev", "k", 1), ("production", "payments/cards", 12),
                               ("staging", "tenant-9/a.b_c", 4294967295)]:
        aad = f"keyward kek v1|{env}|{name}|{version}".encode()
        keks.append({"environment": env, "key_name": name, "key_version": version,
                     "aad": aad.hex()})
    write_once("kek_aad.json",
               "associated data of a KEK sealed under the HSM root key; made by generate.py",
               keks)
    tenant_blobs = [
        tenant_blob_vector("tenant only", "dev", "k", 1, {TENANT_KEY: "acme"}, b"t1"),
        tenant_blob_vector("field context, unsorted input", "production", "app/fields", 3,
                           {TENANT_KEY: "tenant-0042", "keyward:dataset": "orders",
                            "keyward:class": "pii"}, b"t2"),
        tenant_blob_vector("utf-8 tenant, long name, top version", "staging",
                           "tenant-9/" + "y" * 200 + "/f", 4294967295,
                           {TENANT_KEY: "m\u00fcnchen-\u6771\u4eac", "a": ""}, b"t3"),
    ]
    write_once("tenant_data_key_blob.json",
               "keywardd wrapped data-key blob v2, with the tenant layer "
               "(src/kms/data_key_blob.h); made by generate.py", tenant_blobs)
    tenant_keys = []
    for env, name, tenant in [("dev", "k", "acme"), ("production", "app/fields", "tenant-0042"),
                              ("staging", "tenant-9/a.b_c", "x|y \u00e9")]:
        aad = f"keyward tenant key v1|{env}|{name}|{tenant}".encode()
        tenant_keys.append({"environment": env, "key_name": name, "tenant": tenant,
                            "aad": aad.hex()})
    write_once("tenant_key_aad.json",
               "associated data of a tenant key sealed under the HSM root key; "
               "made by generate.py", tenant_keys)


if __name__ == "__main__":
    main()
