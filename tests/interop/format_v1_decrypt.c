/*
 * Independent decryptor for the Keyward message format, version 1, and
 * the field value format, version 1 (§15).
 *
 * Written from docs/format.md and the frozen vectors in
 * tests/vectors/format_v1/ and tests/vectors/fields_v1/ only, to check that
 * the specification is enough to implement a compatible reader.  It uses
 * nothing but OpenSSL 3 libcrypto and a small JSON reader of its own.
 *
 *   format_v1_decrypt <vector file> [<file holding raw_keys>]
 *
 * A file whose top-level "format" is "keyward field value v1"
 * (fields_v1/fields.json, §15.5) holds field values: each "stored" text
 * value is base64url-decoded (§15.3), parsed (§15.1) and opened at the
 * vector's location: a randomized value (0x11) with AES-256-GCM under
 * "data_key" and the associated data of §15.2; a deterministic one (0x12,
 * §15.6) with OpenSSL's AES-256-SIV cipher under the key OpenSSL's HKDF
 * (Expand only) derives from "data_key", and the associated data with an
 * empty row id.  A vector with "type" must decrypt to exactly that type
 * and "payload" and name "key_ref"; for a deterministic one the derived
 * key must equal "siv_key", and encrypting the plaintext again must give
 * exactly the stored bytes.  One with "expected_error" must fail with
 * exactly that error.  Every other file holds messages:
 *
 * Positive vectors (no "expected_error"): the message is decrypted once per
 * entry of "wrapped_keys", each time with only that raw key, and the
 * plaintext and every recorded intermediate value are compared.
 * A vector marked "canonical": false (hand-built, e.g. a regular frame then
 * an empty final frame) must decrypt all the same (§7, §13).
 * Negative vectors ("expected_error"): the message is decrypted with the
 * listed raw keys (tried in that order), the "expected_context" pairs as
 * required pairs and "expected_environment" as expected environment when it
 * is not empty (§4.2, §13); the error must be exactly the expected one.
 * Raw keys come from the vector file's own "raw_keys" or, when it has none
 * (negative.json), from the file given as argv[2].
 *
 * Build: cc -std=c11 -o format_v1_decrypt format_v1_decrypt.c -lcrypto
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

/* ===================================================================== */
/* Minimal JSON reader                                                    */
/* ===================================================================== */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct JVal {
    int type;
    double num;           /* J_NUM, J_BOOL */
    char *str;            /* J_STR: NUL-terminated, may contain NULs */
    size_t slen;
    struct JVal **items;  /* J_ARR, J_OBJ values */
    char **keys;          /* J_OBJ keys (NUL-terminated) */
    size_t *klens;
    size_t n;
} JVal;

typedef struct {
    const char *p, *end;
    int err;
    int depth;
} JP;

static void jfree(JVal *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        jfree(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->klens);
    free(v->str);
    free(v);
}

static void jws(JP *jp) {
    while (jp->p < jp->end &&
           (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int jhex4(JP *jp, unsigned *out) {
    if (jp->end - jp->p < 4) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)jp->p[i]);
        if (h < 0) return 0;
        v = v * 16 + (unsigned)h;
    }
    jp->p += 4;
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string literal at jp->p (which points at the opening quote). */
static char *jstring(JP *jp, size_t *len) {
    if (jp->p >= jp->end || *jp->p != '"') { jp->err = 1; return NULL; }
    jp->p++;
    char *out = malloc((size_t)(jp->end - jp->p) + 1);
    if (!out) { jp->err = 1; return NULL; }
    size_t o = 0;
    while (jp->p < jp->end && *jp->p != '"') {
        unsigned char c = (unsigned char)*jp->p++;
        if (c < 0x20) goto bad;
        if (c != '\\') { out[o++] = (char)c; continue; }
        if (jp->p >= jp->end) goto bad;
        c = (unsigned char)*jp->p++;
        switch (c) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!jhex4(jp, &cp)) goto bad;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u') goto bad;
                jp->p += 2;
                if (!jhex4(jp, &lo) || lo < 0xDC00 || lo > 0xDFFF) goto bad;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                goto bad;
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default: goto bad;
        }
    }
    if (jp->p >= jp->end) goto bad;
    jp->p++; /* closing quote */
    out[o] = '\0';
    *len = o;
    return out;
bad:
    free(out);
    jp->err = 1;
    return NULL;
}

static JVal *jvalue(JP *jp);

static int jpush(JVal *v, JVal *item, char *key, size_t klen) {
    JVal **ni = realloc(v->items, (v->n + 1) * sizeof *ni);
    if (!ni) return 0;
    v->items = ni;
    if (v->type == J_OBJ) {
        char **nk = realloc(v->keys, (v->n + 1) * sizeof *nk);
        if (!nk) return 0;
        v->keys = nk;
        size_t *nl = realloc(v->klens, (v->n + 1) * sizeof *nl);
        if (!nl) return 0;
        v->klens = nl;
        v->keys[v->n] = key;
        v->klens[v->n] = klen;
    }
    v->items[v->n++] = item;
    return 1;
}

static JVal *jvalue(JP *jp) {
    jws(jp);
    if (jp->p >= jp->end || jp->depth > 64) { jp->err = 1; return NULL; }
    JVal *v = calloc(1, sizeof *v);
    if (!v) { jp->err = 1; return NULL; }
    char c = *jp->p;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        v->type = c == '{' ? J_OBJ : J_ARR;
        jp->p++;
        jp->depth++;
        jws(jp);
        if (jp->p < jp->end && *jp->p == close) {
            jp->p++;
        } else {
            for (;;) {
                char *key = NULL;
                size_t klen = 0;
                if (v->type == J_OBJ) {
                    jws(jp);
                    key = jstring(jp, &klen);
                    if (!key) goto bad;
                    jws(jp);
                    if (jp->p >= jp->end || *jp->p != ':') { free(key); goto bad; }
                    jp->p++;
                }
                JVal *item = jvalue(jp);
                if (!item || !jpush(v, item, key, klen)) { jfree(item); free(key); goto bad; }
                jws(jp);
                if (jp->p < jp->end && *jp->p == ',') { jp->p++; continue; }
                if (jp->p < jp->end && *jp->p == close) { jp->p++; break; }
                goto bad;
            }
        }
        jp->depth--;
        return v;
    }
    if (c == '"') {
        v->type = J_STR;
        v->str = jstring(jp, &v->slen);
        if (!v->str) goto bad;
        return v;
    }
    static const struct { const char *lit; int type; double num; } lits[] = {
        {"true", J_BOOL, 1}, {"false", J_BOOL, 0}, {"null", J_NULL, 0}};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        size_t l = strlen(lits[i].lit);
        if ((size_t)(jp->end - jp->p) >= l && memcmp(jp->p, lits[i].lit, l) == 0) {
            jp->p += l;
            v->type = lits[i].type;
            v->num = lits[i].num;
            return v;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char tmp[64];
        size_t l = 0;
        while (jp->p + l < jp->end && l < sizeof tmp - 1 &&
               strchr("+-.eE0123456789", jp->p[l]) != NULL)
            l++;
        memcpy(tmp, jp->p, l);
        tmp[l] = '\0';
        char *e;
        v->type = J_NUM;
        v->num = strtod(tmp, &e);
        if (e != tmp + l || l == 0) goto bad;
        jp->p += l;
        return v;
    }
bad:
    jp->err = 1;
    jfree(v);
    return NULL;
}

static JVal *jparse(const char *text, size_t len) {
    JP jp = {text, text + len, 0, 0};
    JVal *v = jvalue(&jp);
    jws(&jp);
    if (jp.err || !v || jp.p != jp.end) { jfree(v); return NULL; }
    return v;
}

static JVal *jget(const JVal *obj, const char *key) {
    if (!obj || obj->type != J_OBJ) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->n; i++)
        if (obj->klens[i] == kl && memcmp(obj->keys[i], key, kl) == 0) return obj->items[i];
    return NULL;
}

static const char *jstr(const JVal *obj, const char *key) {
    JVal *v = jget(obj, key);
    return v && v->type == J_STR ? v->str : NULL;
}

static int jnum(const JVal *obj, const char *key, double *out) {
    JVal *v = jget(obj, key);
    if (!v || v->type != J_NUM) return 0;
    *out = v->num;
    return 1;
}

static JVal *load_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return NULL; }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    JVal *v = jparse(buf, len);
    free(buf);
    if (!v) fprintf(stderr, "%s: invalid JSON\n", path);
    return v;
}

/* Lowercase/uppercase hex -> freshly allocated bytes; returns 0 on error. */
static int unhex(const char *hex, uint8_t **out, size_t *outlen) {
    size_t l = strlen(hex);
    if (l % 2) return 0;
    uint8_t *b = malloc(l / 2 + 1);
    if (!b) return 0;
    for (size_t i = 0; i < l / 2; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) { free(b); return 0; }
        b[i] = (uint8_t)(hi * 16 + lo);
    }
    *out = b;
    *outlen = l / 2;
    return 1;
}

/* ===================================================================== */
/* The format (docs/format.md)                                            */
/* ===================================================================== */

/* §11 Errors, in table order. */
enum Err {
    E_OK,
    E_NOT_KEYWARD,
    E_UNSUPPORTED_VERSION,
    E_UNSUPPORTED_SUITE,
    E_MALFORMED_HEADER,
    E_LIMIT_EXCEEDED,
    E_TRUNCATED,
    E_ENVIRONMENT_MISMATCH,
    E_CONTEXT_MISMATCH,
    E_NO_KEYRING,
    E_COMMITMENT_MISMATCH,
    E_AUTHENTICATION_FAILED,
    E_MALFORMED_FRAME,
    E_TRAILING_DATA,
};

static const char *const ERR_NAME[] = {
    "ok",
    "not-a-keyward-message",
    "unsupported-version",
    "unsupported-suite",
    "malformed-header",
    "limit-exceeded",
    "truncated",
    "environment-mismatch",
    "context-mismatch",
    "no-keyring-could-unwrap",
    "commitment-mismatch",
    "authentication-failed",
    "malformed-frame",
    "trailing-data",
};

/* §10 Limits */
#define MAX_HEADER 65536u
#define MIN_FRAME 64u
#define MAX_FRAME 16777216u
#define MAX_ENV 32u
#define MAX_KEY_NAME 256u
#define MAX_CTX 64u
#define MAX_CTX_KEY 256u
#define MAX_CTX_VALUE 4096u
#define MAX_DK 16u
#define MAX_PROVIDER_ID 32u
#define MAX_PROVIDER_INFO 1024u
#define MAX_WRAPPED_KEY 1024u
#define MAX_FRAMES 0xFFFFFFFFull

#define SUITE_AES_GCM 0x0001
#define SUITE_CHACHA 0x0002
#define SUITE_SIGNED 0x0101 /* §3: AES-256-GCM, signed with ECDSA P-384 (§7.1) */
#define TAG_LEN 16
#define MAX_SIG 104u
#define POINT_LEN 49u

static const char SIGNING_KEY_NAME[] = "keyward-signing-key"; /* §4 */
static const char SIGNED_LABEL[] = "keyward signed message v1";   /* §7.1, 25 bytes */

static const char MSG_INFO_LABEL[] = "keyward message v1";         /* 18 bytes */
static const char RAW_ID_LABEL[] = "keyward raw-aes key id v1";
static const char RAW_WRAP_LABEL[] = "keyward raw-aes wrap v1";

typedef struct {
    const uint8_t *p;
    size_t n;
} Bytes;

typedef struct {
    uint16_t suite;
    const uint8_t *message_id;
    uint32_t frame_size;
    Bytes environment, key_name;
    uint32_t key_version;
    size_t ctx_count;
    Bytes ctx_key[MAX_CTX], ctx_value[MAX_CTX];
    Bytes ctx_encoding; /* count and entries, as in the header */
    size_t dk_count;
    Bytes provider_id[MAX_DK], provider_info[MAX_DK], wrapped_key[MAX_DK];
    const uint8_t *commitment, *tag;
    uint8_t signing_key[POINT_LEN]; /* signed suites: the compressed point */
    size_t authenticated_len; /* magic .. key commitment */
    size_t header_len;        /* including the tag */
    const char *bad_field;    /* field named by a header error */
} Header;

typedef struct {
    const uint8_t *buf;
    size_t len, off;
} Reader;

/* §4.1: check the announced size against the header limit before looking at
 * the input, then report truncation. */
static int need(const Reader *r, size_t n) {
    if (n > MAX_HEADER || r->off + n > MAX_HEADER) return E_LIMIT_EXCEEDED;
    if (n > r->len - r->off) return E_TRUNCATED;
    return E_OK;
}

static int read_bytes(Reader *r, size_t n, Bytes *out) {
    int e = need(r, n);
    if (e) return e;
    out->p = r->buf + r->off;
    out->n = n;
    r->off += n;
    return E_OK;
}

static uint64_t be(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static int read_uint(Reader *r, size_t n, uint64_t *out) {
    Bytes b;
    int e = read_bytes(r, n, &b);
    if (e) return e;
    *out = be(b.p, n);
    return E_OK;
}

/* str8 / str16 with min..max length (§4 table, §4.1): the announced length
 * is checked before anything it announces is read; above max is
 * limit-exceeded, below min ("empty") is malformed-header.  Then the header
 * limit (o + n <= 65 536), then end of input, in read_bytes(). */
static int read_str(Reader *r, size_t prefix, size_t min, size_t max, Bytes *out) {
    uint64_t l;
    int e = read_uint(r, prefix, &l);
    if (e) return e;
    if (l > max) return E_LIMIT_EXCEEDED;
    if (l < min) return E_MALFORMED_HEADER;
    return read_bytes(r, (size_t)l, out);
}

static int lower_id_chars(Bytes b) { /* a-z 0-9 - */
    for (size_t i = 0; i < b.n; i++) {
        uint8_t c = b.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return 0;
    }
    return 1;
}

static int key_name_ok(Bytes b) { /* A-Z a-z 0-9 - _ . /, no leading/trailing /, no // */
    for (size_t i = 0; i < b.n; i++) {
        uint8_t c = b.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '/'))
            return 0;
        if (c == '/' && (i == 0 || i == b.n - 1 || b.p[i - 1] == '/')) return 0;
    }
    return 1;
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, <= U+10FFFF. */
static int utf8_ok(Bytes b) {
    size_t i = 0;
    while (i < b.n) {
        uint8_t c = b.p[i];
        size_t extra;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (b.n - i <= extra) return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((b.p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (b.p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += extra + 1;
    }
    return 1;
}

static int bytes_less(Bytes a, Bytes b) {
    size_t m = a.n < b.n ? a.n : b.n;
    int c = memcmp(a.p, b.p, m);
    return c < 0 || (c == 0 && a.n < b.n);
}

static int bytes_eq(Bytes a, const void *p, size_t n) {
    return a.n == n && memcmp(a.p, p, n) == 0;
}

/* §4: the signing key's value is canonical standard base64 (RFC 4648 §4,
 * '=' padding) of exactly POINT_LEN bytes. */
static int b64_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int b64_point(Bytes in, uint8_t out[POINT_LEN]) {
    /* 49 bytes: 16 full groups and one byte ("xx==") = 68 characters. */
    if (in.n != 68 || in.p[66] != '=' || in.p[67] != '=') return 0;
    size_t o = 0;
    for (size_t i = 0; i < 64; i += 4) {
        int a = b64_value(in.p[i]), b = b64_value(in.p[i + 1]), c = b64_value(in.p[i + 2]),
            d = b64_value(in.p[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0) return 0;
        uint32_t v = ((uint32_t)a << 18) | ((uint32_t)b << 12) | ((uint32_t)c << 6) | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    int a = b64_value(in.p[64]), b = b64_value(in.p[65]);
    if (a < 0 || b < 0 || (b & 0x0f) != 0) return 0; /* canonical: unused bits zero */
    out[o++] = (uint8_t)((a << 2) | (b >> 4));
    return o == POINT_LEN;
}

/* An EVP_PKEY for a P-384 public point, or NULL when it is not one. */
static EVP_PKEY *p384_public(const uint8_t *point, size_t n) {
    OSSL_PARAM params[3];
    char group[] = "P-384";
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, n);
    params[2] = OSSL_PARAM_construct_end();
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    if (!c || EVP_PKEY_fromdata_init(c) != 1 || EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
        k = NULL;
    EVP_PKEY_CTX_free(c);
    return k;
}

#define FAIL(field, err) do { h->bad_field = (field); return (err); } while (0)
#define TRY(field, expr) do { int e_ = (expr); if (e_) FAIL(field, e_); } while (0)

/* §4 Header, §4.1 Parsing */
static int parse_header(const uint8_t *buf, size_t len, Header *h) {
    Reader r = {buf, len, 0};
    uint64_t v;
    Bytes b;
    memset(h, 0, sizeof *h);

    if (len < 4 || memcmp(buf, "KWRD", 4) != 0) FAIL("magic", E_NOT_KEYWARD);
    r.off = 4;
    TRY("version", read_uint(&r, 1, &v));
    if (v != 1) FAIL("version", E_UNSUPPORTED_VERSION);
    TRY("suite id", read_uint(&r, 2, &v));
    if (v != SUITE_AES_GCM && v != SUITE_CHACHA && v != SUITE_SIGNED)
        FAIL("suite id", E_UNSUPPORTED_SUITE);
    h->suite = (uint16_t)v;
    TRY("message id", read_bytes(&r, 32, &b));
    h->message_id = b.p;
    TRY("frame size", read_uint(&r, 4, &v));
    /* §4: "64 <= frame size <= 16 777 216 | limit-exceeded (below or above)" */
    if (v < MIN_FRAME || v > MAX_FRAME) FAIL("frame size", E_LIMIT_EXCEEDED);
    h->frame_size = (uint32_t)v;

    TRY("environment", read_str(&r, 1, 1, MAX_ENV, &h->environment));
    if (!lower_id_chars(h->environment)) FAIL("environment", E_MALFORMED_HEADER);
    TRY("key name", read_str(&r, 2, 1, MAX_KEY_NAME, &h->key_name));
    if (!key_name_ok(h->key_name)) FAIL("key name", E_MALFORMED_HEADER);
    TRY("key version", read_uint(&r, 4, &v));
    if (v < 1) FAIL("key version", E_MALFORMED_HEADER);
    h->key_version = (uint32_t)v;

    size_t ctx_start = r.off;
    TRY("context entry count", read_uint(&r, 2, &v));
    if (v > MAX_CTX) FAIL("context entry count", E_LIMIT_EXCEEDED);
    h->ctx_count = (size_t)v;
    for (size_t i = 0; i < h->ctx_count; i++) {
        TRY("context key", read_str(&r, 2, 1, MAX_CTX_KEY, &h->ctx_key[i]));
        if (!utf8_ok(h->ctx_key[i])) FAIL("context key", E_MALFORMED_HEADER);
        if (i > 0 && !bytes_less(h->ctx_key[i - 1], h->ctx_key[i]))
            FAIL("context key order", E_MALFORMED_HEADER);
        TRY("context value", read_str(&r, 2, 0, MAX_CTX_VALUE, &h->ctx_value[i]));
        if (!utf8_ok(h->ctx_value[i])) FAIL("context value", E_MALFORMED_HEADER);
    }
    h->ctx_encoding.p = buf + ctx_start;
    h->ctx_encoding.n = r.off - ctx_start;
    /* §4 The signing key: required (and valid) for signed suites, forbidden
     * for the others; checked once the context has been read. */
    {
        size_t j;
        for (j = 0; j < h->ctx_count; j++)
            if (bytes_eq(h->ctx_key[j], SIGNING_KEY_NAME, sizeof SIGNING_KEY_NAME - 1)) break;
        if (h->suite == SUITE_SIGNED) {
            if (j == h->ctx_count || !b64_point(h->ctx_value[j], h->signing_key))
                FAIL("signing key", E_MALFORMED_HEADER);
            EVP_PKEY *k = p384_public(h->signing_key, POINT_LEN);
            if (!k) FAIL("signing key", E_MALFORMED_HEADER);
            EVP_PKEY_free(k);
        } else if (j != h->ctx_count) {
            FAIL("signing key", E_MALFORMED_HEADER);
        }
    }

    TRY("data key count", read_uint(&r, 1, &v));
    if (v > MAX_DK) FAIL("data key count", E_LIMIT_EXCEEDED);
    if (v < 1) FAIL("data key count", E_MALFORMED_HEADER);
    h->dk_count = (size_t)v;
    for (size_t i = 0; i < h->dk_count; i++) {
        TRY("provider id", read_str(&r, 1, 1, MAX_PROVIDER_ID, &h->provider_id[i]));
        if (!lower_id_chars(h->provider_id[i])) FAIL("provider id", E_MALFORMED_HEADER);
        TRY("provider info", read_str(&r, 2, 0, MAX_PROVIDER_INFO, &h->provider_info[i]));
        TRY("wrapped key", read_str(&r, 2, 1, MAX_WRAPPED_KEY, &h->wrapped_key[i]));
    }
    TRY("key commitment", read_bytes(&r, 32, &b));
    h->commitment = b.p;
    h->authenticated_len = r.off;
    TRY("header tag", read_bytes(&r, TAG_LEN, &b));
    h->tag = b.p;
    h->header_len = r.off;
    return E_OK;
}

/* ---- crypto ---- */

static const EVP_CIPHER *suite_cipher(uint16_t suite) {
    return suite == SUITE_CHACHA ? EVP_chacha20_poly1305() : EVP_aes_256_gcm();
}

/* AEAD-Decrypt; returns 1 if the tag verifies.  out may be NULL if ctlen == 0. */
static int aead_open(const EVP_CIPHER *cipher, const uint8_t key[32], const uint8_t nonce[12],
                     const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
                     const uint8_t tag[TAG_LEN], uint8_t *out) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t scratch[32];
    int ok = 0, l;
    if (!c || aadlen > INT32_MAX || ctlen > INT32_MAX) goto done;
    if (EVP_DecryptInit_ex(c, cipher, NULL, NULL, NULL) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1) goto done;
    if (EVP_DecryptInit_ex(c, NULL, NULL, key, nonce) != 1) goto done;
    if (aadlen && EVP_DecryptUpdate(c, NULL, &l, aad, (int)aadlen) != 1) goto done;
    if (ctlen && EVP_DecryptUpdate(c, out, &l, ct, (int)ctlen) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)tag) != 1) goto done;
    ok = EVP_DecryptFinal_ex(c, out ? out + ctlen : scratch, &l) == 1;
done:
    EVP_CIPHER_CTX_free(c);
    return ok;
}

/* AEAD-Encrypt of an empty plaintext: just the tag (used to recompute the
 * header tag independently of verification). */
static int aead_tag_only(const EVP_CIPHER *cipher, const uint8_t key[32], const uint8_t nonce[12],
                         const uint8_t *aad, size_t aadlen, uint8_t tag[TAG_LEN]) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t scratch[32];
    int ok = 0, l;
    if (!c || aadlen > INT32_MAX) goto done;
    if (EVP_EncryptInit_ex(c, cipher, NULL, NULL, NULL) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1) goto done;
    if (EVP_EncryptInit_ex(c, NULL, NULL, key, nonce) != 1) goto done;
    if (aadlen && EVP_EncryptUpdate(c, NULL, &l, aad, (int)aadlen) != 1) goto done;
    if (EVP_EncryptFinal_ex(c, scratch, &l) != 1) goto done;
    ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) == 1;
done:
    EVP_CIPHER_CTX_free(c);
    return ok;
}

/* RFC 5869 HKDF-Expand(SHA-256) only, PRK = prk. */
static int hkdf_expand(const uint8_t *prk, size_t prklen, const uint8_t *info, size_t infolen,
                       uint8_t *out, size_t outlen) {
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, ok = 0;
    OSSL_PARAM params[5];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)prk, prklen);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
    params[4] = OSSL_PARAM_construct_end();
    if (kc) ok = EVP_KDF_derive(kc, out, outlen, params) == 1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return ok;
}

/* nonce(n) = 00 00 00 00 || u64(n) */
static void make_nonce(uint64_t n, uint8_t nonce[12]) {
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(n >> (56 - 8 * i));
}

/* §5: info = "keyward message v1" || u16(S) || ID */
static size_t message_info(uint16_t suite, const uint8_t id[32], uint8_t info[52]) {
    memcpy(info, MSG_INFO_LABEL, 18);
    info[18] = (uint8_t)(suite >> 8);
    info[19] = (uint8_t)suite;
    memcpy(info + 20, id, 32);
    return 52;
}

/* ---- raw-aes keyring (§8.1) ---- */

typedef struct {
    char name[32];
    uint8_t key[32];
    char id[17]; /* 16 lowercase hex digits */
} RawKey;

static void raw_key_id(const uint8_t key[32], char id[17]) {
    uint8_t buf[sizeof RAW_ID_LABEL - 1 + 32], md[32];
    memcpy(buf, RAW_ID_LABEL, sizeof RAW_ID_LABEL - 1);
    memcpy(buf + sizeof RAW_ID_LABEL - 1, key, 32);
    EVP_Digest(buf, sizeof buf, md, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 8; i++) sprintf(id + 2 * i, "%02x", md[i]);
    id[16] = '\0';
}

/* Returns 1 and the data key if this keyring owns the entry and unwraps it. */
static int raw_aes_unwrap(const RawKey *k, const Header *h, size_t i, uint8_t dek[32]) {
    if (!bytes_eq(h->provider_id[i], "raw-aes", 7)) return 0;
    if (!bytes_eq(h->provider_info[i], k->id, 16)) return 0; /* not this key's entry */
    if (h->wrapped_key[i].n != 12 + 32 + 16) return 0;
    const uint8_t *w = h->wrapped_key[i].p;
    size_t ll = sizeof RAW_WRAP_LABEL - 1;
    size_t aadlen = ll + 16 + h->ctx_encoding.n;
    uint8_t *aad = malloc(aadlen);
    if (!aad) return 0;
    memcpy(aad, RAW_WRAP_LABEL, ll);
    memcpy(aad + ll, k->id, 16);
    memcpy(aad + ll + 16, h->ctx_encoding.p, h->ctx_encoding.n);
    int ok = aead_open(EVP_aes_256_gcm(), k->key, w, aad, aadlen, w + 12, 32, w + 44, dek);
    free(aad);
    return ok;
}

/* ---- whole-message decryption ---- */

typedef struct {
    Bytes key, value;
} Pair;

typedef struct {
    uint8_t dek[32], message_key[32], commitment[32], header_tag[TAG_LEN];
    uint8_t info[52];
    int opened;
    uint8_t *plaintext;
    size_t plaintext_len;
    uint64_t frames;
    uint64_t failed_frame;
} Result;

static int read_body(const uint8_t *msg, size_t len, const Header *h, Result *res,
                     const EVP_CIPHER *cipher, EVP_MD_CTX *sig_ctx);

static int decrypt_message(const uint8_t *msg, size_t len, const RawKey *keys, size_t nkeys,
                           const Bytes *expected_env, const Pair *expect, size_t nexpect,
                           Header *h, Result *res) {
    memset(res, 0, sizeof *res);
    int e = parse_header(msg, len, h);
    if (e) return e;

    /* §4.2 Reader expectations, after the header parsed and before any data
     * key is unwrapped: 1. environment, 2. each required pair in turn. */
    if (expected_env && !bytes_eq(h->environment, expected_env->p, expected_env->n))
        return E_ENVIRONMENT_MISMATCH;
    for (size_t i = 0; i < nexpect; i++) {
        size_t j;
        for (j = 0; j < h->ctx_count; j++)
            if (bytes_eq(h->ctx_key[j], expect[i].key.p, expect[i].key.n)) break;
        if (j == h->ctx_count || !bytes_eq(h->ctx_value[j], expect[i].value.p, expect[i].value.n))
            return E_CONTEXT_MISMATCH;
    }

    /* §8: entries in header order, and for each entry the keyrings in the
     * reader's order.  Not owned: skipped (inside raw_aes_unwrap).  Owned but
     * cannot unwrap: noted, go on.  Unwraps but fails the commitment (§5):
     * noted, go on.  The first data key that matches the commitment decides:
     * the header tag (§6) is verified with it and, if that fails, the error
     * is authentication-failed and no other entry is tried. */
    const EVP_CIPHER *cipher = suite_cipher(h->suite);
    int unwrapped = 0;
    uint8_t nonce[12];
    for (size_t i = 0; i < h->dk_count && !res->opened; i++) {
        for (size_t k = 0; k < nkeys && !res->opened; k++) {
            uint8_t dek[32], okm[64];
            if (!raw_aes_unwrap(&keys[k], h, i, dek)) continue;
            unwrapped = 1;
            size_t il = message_info(h->suite, h->message_id, res->info);
            if (!hkdf_expand(dek, 32, res->info, il, okm, 64)) {
                fprintf(stderr, "internal error: HKDF-Expand failed\n");
                exit(2);
            }
            if (CRYPTO_memcmp(okm + 32, h->commitment, 32) != 0) continue;
            make_nonce(0, nonce);
            if (!aead_open(cipher, okm, nonce, msg, h->authenticated_len, NULL, 0, h->tag, NULL))
                return E_AUTHENTICATION_FAILED; /* decided: no other entry is tried */
            memcpy(res->dek, dek, 32);
            memcpy(res->message_key, okm, 32);
            memcpy(res->commitment, okm + 32, 32);
            aead_tag_only(cipher, okm, nonce, msg, h->authenticated_len, res->header_tag);
            res->opened = 1;
        }
    }
    if (!res->opened) return unwrapped ? E_COMMITMENT_MISMATCH : E_NO_KEYRING;

    /* §7.1 A signed message's signature covers a prefix, then the body. */
    EVP_MD_CTX *sig_ctx = NULL;
    EVP_PKEY *sig_key = NULL;
    if (h->suite == SUITE_SIGNED) {
        uint8_t fixed[2 + 32 + 4];
        fixed[0] = (uint8_t)(h->suite >> 8);
        fixed[1] = (uint8_t)h->suite;
        memcpy(fixed + 2, h->message_id, 32);
        for (int i = 0; i < 4; i++) fixed[34 + i] = (uint8_t)(h->frame_size >> (24 - 8 * i));
        sig_key = p384_public(h->signing_key, POINT_LEN);
        sig_ctx = EVP_MD_CTX_new();
        if (!sig_key || !sig_ctx ||
            EVP_DigestVerifyInit(sig_ctx, NULL, EVP_sha384(), NULL, sig_key) != 1 ||
            EVP_DigestVerifyUpdate(sig_ctx, SIGNED_LABEL, sizeof SIGNED_LABEL - 1) != 1 ||
            EVP_DigestVerifyUpdate(sig_ctx, fixed, sizeof fixed) != 1 ||
            EVP_DigestVerifyUpdate(sig_ctx, h->ctx_encoding.p, h->ctx_encoding.n) != 1 ||
            EVP_DigestVerifyUpdate(sig_ctx, h->commitment, 32) != 1) {
            fprintf(stderr, "internal error: cannot start verifying\n");
            exit(2);
        }
    }
    int e_body = read_body(msg, len, h, res, cipher, sig_ctx);
    EVP_MD_CTX_free(sig_ctx);
    EVP_PKEY_free(sig_key);
    return e_body;
}

/* §7 Body, steps 1-5 for each frame in order; §7.1 the signature. */
static int read_body(const uint8_t *msg, size_t len, const Header *h, Result *res,
                     const EVP_CIPHER *cipher, EVP_MD_CTX *sig_ctx) {
    uint8_t nonce[12];
    size_t off = h->header_len, cap = 0;
    for (uint64_t n = 1;; n++) {
        const size_t frame_start = off;
        if (off >= len) return E_TRUNCATED;           /* 1. no type byte: final frame missing */
        if (n > MAX_FRAMES) return E_LIMIT_EXCEEDED;  /* 1. a type byte is present and n > 2^32-1 */
        uint8_t type = msg[off++];
        if (type > 1) return E_MALFORMED_FRAME;
        size_t flen = h->frame_size;
        if (type == 1) {
            if (len - off < 4) return E_TRUNCATED;
            uint64_t l = be(msg + off, 4);
            off += 4;
            if (l > h->frame_size) return E_MALFORMED_FRAME;
            flen = (size_t)l;
        }
        if (len - off < flen + TAG_LEN) return E_TRUNCATED;
        if (res->plaintext_len + flen > cap || !res->plaintext) {
            size_t ncap = (res->plaintext_len + flen) * 2 + 1;
            uint8_t *np = realloc(res->plaintext, ncap);
            if (!np) return E_LIMIT_EXCEEDED;
            res->plaintext = np;
            cap = ncap;
        }
        uint8_t aad[9];
        for (int i = 0; i < 8; i++) aad[i] = (uint8_t)(n >> (56 - 8 * i));
        aad[8] = type;
        make_nonce(n, nonce);
        if (!aead_open(cipher, res->message_key, nonce, aad, 9, msg + off, flen, msg + off + flen,
                       res->plaintext + res->plaintext_len)) {
            res->failed_frame = n;
            return E_AUTHENTICATION_FAILED;
        }
        if (sig_ctx && EVP_DigestVerifyUpdate(sig_ctx, msg + frame_start, off + flen + TAG_LEN - frame_start) != 1) {
            fprintf(stderr, "internal error: hashing failed\n");
            exit(2);
        }
        off += flen + TAG_LEN;
        res->plaintext_len += flen;
        res->frames = n;
        if (type == 1) break;
    }
    if (sig_ctx) {
        if (len - off < 2) return E_TRUNCATED;
        size_t slen = (size_t)be(msg + off, 2);
        off += 2;
        if (slen == 0 || slen > MAX_SIG) return E_MALFORMED_FRAME;
        if (len - off < slen) return E_TRUNCATED;
        if (EVP_DigestVerifyFinal(sig_ctx, msg + off, slen) != 1) return E_AUTHENTICATION_FAILED;
        off += slen;
    }
    if (off != len) return E_TRAILING_DATA;
    return E_OK;
}

/* ===================================================================== */
/* Vector driver                                                          */
/* ===================================================================== */

#define MAX_KEYS 32

static size_t load_raw_keys(const JVal *root, RawKey *keys, size_t have, int *bad) {
    JVal *rk = jget(root, "raw_keys");
    if (!rk || rk->type != J_OBJ) return have;
    for (size_t i = 0; i < rk->n && have < MAX_KEYS; i++) {
        const char *id = jstr(rk->items[i], "id"), *hex = jstr(rk->items[i], "key");
        uint8_t *kb = NULL;
        size_t kl = 0;
        int dup = 0;
        for (size_t j = 0; j < have; j++) dup |= strcmp(keys[j].name, rk->keys[i]) == 0;
        if (dup) continue;
        if (!id || !hex || !unhex(hex, &kb, &kl) || kl != 32 || rk->klens[i] >= sizeof keys[0].name) {
            fprintf(stderr, "raw key %s: malformed\n", rk->keys[i]);
            *bad = 1;
            free(kb);
            continue;
        }
        RawKey *k = &keys[have];
        snprintf(k->name, sizeof k->name, "%s", rk->keys[i]);
        memcpy(k->key, kb, 32);
        free(kb);
        raw_key_id(k->key, k->id);
        if (strcmp(k->id, id) != 0) { /* §8.1: readers MUST check the id */
            fprintf(stderr, "raw key %s: id %s does not match key (computed %s)\n", k->name, id, k->id);
            *bad = 1;
            continue;
        }
        have++;
    }
    return have;
}

static const RawKey *find_key(const RawKey *keys, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

/* Compares bytes with a hex string from the vector. */
static int eq_hex(const uint8_t *p, size_t n, const char *hex) {
    uint8_t *b;
    size_t bl;
    if (!hex || !unhex(hex, &b, &bl)) return 0;
    int ok = bl == n && memcmp(p, b, n) == 0;
    free(b);
    return ok;
}

static int eq_num(const JVal *v, const char *key, double want) {
    double d = 0;
    return jnum(v, key, &d) && d == want;
}

/* Converts a JSON object of strings into pairs (borrowing the strings). */
static int json_pairs(const JVal *obj, Pair *out, size_t max, size_t *n) {
    *n = 0;
    if (!obj) return 1;
    if (obj->type != J_OBJ || obj->n > max) return 0;
    for (size_t i = 0; i < obj->n; i++) {
        if (obj->items[i]->type != J_STR) return 0;
        out[i].key.p = (const uint8_t *)obj->keys[i];
        out[i].key.n = obj->klens[i];
        out[i].value.p = (const uint8_t *)obj->items[i]->str;
        out[i].value.n = obj->items[i]->slen;
    }
    *n = obj->n;
    return 1;
}

#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            snprintf(why, whylen, "%s (key %s)", (what), key->name);        \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* One decryption of a positive vector with one raw key; 1 if all matches. */
static int check_positive_with(const JVal *v, const uint8_t *msg, size_t msglen,
                               const RawKey *key, char *why, size_t whylen) {
    Header h;
    Result r;
    Pair ctx[MAX_CTX];
    size_t nctx;
    int ok = 0;
    uint8_t *pt = NULL;
    size_t ptlen;
    const char *env = jstr(v, "environment");
    if (!json_pairs(jget(v, "context"), ctx, MAX_CTX, &nctx)) {
        snprintf(why, whylen, "vector context is not an object of strings");
        return 0;
    }
    /* §13 requires the vector's context; also requiring its environment is
     * this runner's own (stricter) choice, not asked for by the spec. */
    Bytes envb = {(const uint8_t *)env, env ? strlen(env) : 0};
    int e = decrypt_message(msg, msglen, key, 1, env ? &envb : NULL, ctx, nctx, &h, &r);
    if (e) {
        snprintf(why, whylen, "decrypt with %s failed: %s%s%s", key->name, ERR_NAME[e],
                 h.bad_field ? " at " : "", h.bad_field ? h.bad_field : "");
        goto out;
    }
    CHECK(unhex(jstr(v, "plaintext") ? jstr(v, "plaintext") : "x", &pt, &ptlen), "plaintext field");
    CHECK(ptlen == r.plaintext_len && (ptlen == 0 || memcmp(pt, r.plaintext, ptlen) == 0), "plaintext");
    CHECK(eq_hex(r.dek, 32, jstr(v, "data_key")), "data_key");
    CHECK(eq_hex(r.info, 52, jstr(v, "hkdf_info")), "hkdf_info");
    CHECK(eq_hex(r.message_key, 32, jstr(v, "message_key")), "message_key");
    CHECK(eq_hex(r.commitment, 32, jstr(v, "commitment")), "commitment (derived)");
    CHECK(eq_hex(h.commitment, 32, jstr(v, "commitment")), "commitment (header)");
    CHECK(eq_hex(r.header_tag, TAG_LEN, jstr(v, "header_tag")), "header_tag (recomputed)");
    CHECK(eq_hex(h.tag, TAG_LEN, jstr(v, "header_tag")), "header_tag (header)");
    CHECK(eq_hex(h.message_id, 32, jstr(v, "message_id")), "message_id");
    CHECK(eq_num(v, "header_length", (double)h.header_len), "header_length");
    CHECK(eq_num(v, "frames", (double)r.frames), "frames");
    CHECK(eq_num(v, "suite_id", h.suite), "suite_id");
    CHECK(eq_num(v, "frame_size", h.frame_size), "frame_size");
    CHECK(eq_num(v, "key_version", h.key_version), "key_version");
    CHECK(env && bytes_eq(h.environment, env, strlen(env)), "environment");
    CHECK(jstr(v, "key_name") && bytes_eq(h.key_name, jstr(v, "key_name"), strlen(jstr(v, "key_name"))),
          "key_name");
    CHECK(nctx == h.ctx_count, "context entry count"); /* every pair was required above */
    const char *suite = jstr(v, "suite");
    CHECK(suite && strcmp(suite, h.suite == SUITE_AES_GCM   ? "AES-256-GCM-HKDF-SHA256-COMMIT"
                                 : h.suite == SUITE_CHACHA ? "CHACHA20-POLY1305-HKDF-SHA256-COMMIT"
                                                           : "AES-256-GCM-HKDF-SHA256-COMMIT-ECDSA-P384") == 0,
          "suite name");
    JVal *wk = jget(v, "wrapped_keys");
    CHECK(wk && wk->type == J_ARR && wk->n == h.dk_count, "wrapped key count");
    for (size_t i = 0; i < wk->n; i++) {
        const char *pid = jstr(wk->items[i], "provider_id"), *info = jstr(wk->items[i], "provider_info");
        CHECK(pid && bytes_eq(h.provider_id[i], pid, strlen(pid)), "provider_id");
        CHECK(info && bytes_eq(h.provider_info[i], info, strlen(info)), "provider_info");
        CHECK(eq_hex(h.wrapped_key[i].p, h.wrapped_key[i].n, jstr(wk->items[i], "ciphertext")),
              "wrapped key ciphertext");
    }
    ok = 1;
out:
    free(pt);
    free(r.plaintext);
    return ok;
}

static int run_vector(const JVal *v, const RawKey *keys, size_t nkeys, char *why, size_t whylen) {
    const char *mhex = jstr(v, "message");
    uint8_t *msg = NULL;
    size_t msglen = 0;
    int ok = 0;
    why[0] = '\0';
    if (!mhex || !unhex(mhex, &msg, &msglen)) {
        snprintf(why, whylen, "no valid \"message\"");
        return 0;
    }
    const char *expected = jstr(v, "expected_error");
    if (!expected) {
        JVal *wk = jget(v, "wrapped_keys");
        if (!wk || wk->type != J_ARR || wk->n == 0) {
            snprintf(why, whylen, "no wrapped_keys");
            goto done;
        }
        for (size_t i = 0; i < wk->n; i++) {
            const char *name = jstr(wk->items[i], "raw_key");
            const RawKey *k = name ? find_key(keys, nkeys, name) : NULL;
            if (!k) {
                snprintf(why, whylen, "raw key %s not available", name ? name : "?");
                goto done;
            }
            if (!check_positive_with(v, msg, msglen, k, why, whylen)) goto done;
        }
        ok = 1;
        JVal *canon = jget(v, "canonical");
        if (canon && canon->type == J_BOOL && canon->num == 0)
            snprintf(why, whylen, "non-canonical (hand-built), decrypts as required");
    } else {
        RawKey use[MAX_KEYS];
        size_t nuse = 0, nctx;
        Pair ctx[MAX_CTX];
        JVal *names = jget(v, "raw_keys");
        for (size_t i = 0; names && names->type == J_ARR && i < names->n && nuse < MAX_KEYS; i++) {
            const RawKey *k = names->items[i]->type == J_STR ? find_key(keys, nkeys, names->items[i]->str) : NULL;
            if (!k) {
                snprintf(why, whylen, "raw key not available");
                goto done;
            }
            use[nuse++] = *k;
        }
        if (!json_pairs(jget(v, "expected_context"), ctx, MAX_CTX, &nctx)) {
            snprintf(why, whylen, "bad expected_context");
            goto done;
        }
        /* §13: "expected_environment (empty: none)" */
        JVal *ev = jget(v, "expected_environment");
        Bytes envb = {NULL, 0}, *env = NULL;
        if (ev && ev->type != J_STR) {
            snprintf(why, whylen, "bad expected_environment");
            goto done;
        }
        if (ev && ev->slen > 0) {
            envb.p = (const uint8_t *)ev->str;
            envb.n = ev->slen;
            env = &envb;
        }
        Header h;
        Result r;
        int e = decrypt_message(msg, msglen, use, nuse, env, ctx, nctx, &h, &r);
        free(r.plaintext);
        ok = strcmp(ERR_NAME[e], expected) == 0;
        if (ok)
            snprintf(why, whylen, "got %s", ERR_NAME[e]);
        else
            snprintf(why, whylen, "expected %s, got %s", expected, ERR_NAME[e]);
        if (h.bad_field && e != E_OK) {
            size_t l = strlen(why);
            snprintf(why + l, whylen - l, " (field: %s)", h.bad_field);
        } else if (e == E_AUTHENTICATION_FAILED && r.failed_frame) {
            size_t l = strlen(why);
            snprintf(why + l, whylen - l, " (frame %llu)", (unsigned long long)r.failed_frame);
        }
    }
done:
    free(msg);
    return ok;
}

/* ===================================================================== */
/* Field values (§15)                                                     */
/* ===================================================================== */

static const char FIELD_PREFIX[] = "kw1.";                 /* §15.3 */
static const char FIELD_AAD_LABEL[] = "keyward field v1";  /* §15.2, 16 bytes */
static const char FIELD_SIV_INFO_LABEL[] = "keyward field deterministic v1"; /* §15.6, 30 bytes */
#define FIELD_RANDOMIZED_V1 0x11
#define FIELD_DETERMINISTIC_V1 0x12
#define FIELD_HEADER 5u                         /* version and treatment, key reference */
#define FIELD_OVERHEAD (FIELD_HEADER + 12u + 1u + TAG_LEN) /* 34 */
#define FIELD_SIV_LEN 16u                       /* the synthetic IV */
#define FIELD_DET_OVERHEAD (FIELD_HEADER + FIELD_SIV_LEN + 1u) /* 22 */
#define FIELD_SIV_KEY_LEN 64u                   /* K1 (CMAC) || K2 (CTR) */
#define FIELD_PARTS 5                           /* data set, table, column, tenant, row id */

static const char *const FIELD_TYPE_NAME[] = {NULL, "integer", "real", "text", "bytes", "json"};

/* §15.3: base64url (RFC 4648 §5) only; '=', '+', '/' and anything else
 * are not in it. */
static int b64url_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Unpadded base64url -> freshly allocated bytes; 0 when it is not the
 * canonical encoding of some bytes: a character outside the alphabet, a
 * length of 4k+1, or unused low bits that are not zero. */
static int b64url_decode(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen) {
    if (n % 4 == 1) return 0;
    uint8_t *b = malloc(n / 4 * 3 + 3);
    if (!b) return 0;
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) { free(b); return 0; }
        acc = (acc << 6) | (uint32_t)v;
        if (i % 4 == 3) {
            b[o++] = (uint8_t)(acc >> 16);
            b[o++] = (uint8_t)(acc >> 8);
            b[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (n % 4 == 2) { /* 12 bits: 1 byte and 4 unused bits */
        if (acc & 0x0f) { free(b); return 0; }
        b[o++] = (uint8_t)(acc >> 4);
    } else if (n % 4 == 3) { /* 18 bits: 2 bytes and 2 unused bits */
        if (acc & 0x03) { free(b); return 0; }
        b[o++] = (uint8_t)(acc >> 10);
        b[o++] = (uint8_t)(acc >> 2);
    }
    *out = b;
    *outlen = o;
    return 1;
}

/* §15.3: text form -> binary form. */
static int field_from_text(const char *text, size_t n, uint8_t **bin, size_t *binlen) {
    size_t pl = sizeof FIELD_PREFIX - 1;
    if (n < pl || memcmp(text, FIELD_PREFIX, pl) != 0) return E_NOT_KEYWARD;
    if (!b64url_decode((const uint8_t *)text + pl, n - pl, bin, binlen)) return E_NOT_KEYWARD;
    return E_OK;
}

/* §15.2's associated data for the header v[0..5) at `where`; with
 * empty_row_id the row id part is empty whatever where[4] holds (§15.6).
 * Freshly allocated. */
static uint8_t *field_aad(const uint8_t *v, const Bytes where[FIELD_PARTS], int empty_row_id,
                          size_t *aadlen) {
    size_t ll = sizeof FIELD_AAD_LABEL - 1, n = ll + FIELD_HEADER;
    for (int i = 0; i < FIELD_PARTS; i++) n += 4 + (empty_row_id && i == 4 ? 0 : where[i].n);
    uint8_t *aad = malloc(n);
    if (!aad) {
        fprintf(stderr, "internal error: out of memory\n");
        exit(2);
    }
    memcpy(aad, FIELD_AAD_LABEL, ll);
    memcpy(aad + ll, v, FIELD_HEADER);
    size_t off = ll + FIELD_HEADER;
    for (int i = 0; i < FIELD_PARTS; i++) {
        size_t len = empty_row_id && i == 4 ? 0 : where[i].n;
        for (int k = 0; k < 4; k++) aad[off + k] = (uint8_t)(len >> (24 - 8 * k));
        if (len) memcpy(aad + off + 4, where[i].p, len);
        off += 4 + len;
    }
    *aadlen = n;
    return aad;
}

/* §15.6: K_siv = HKDF-Expand(SHA-256, data key, "keyward field deterministic
 * v1" || u32-length-prefixed data set, table, column, tenant, 64). */
static int field_siv_key(const uint8_t key[32], const Bytes where[FIELD_PARTS],
                         uint8_t out[FIELD_SIV_KEY_LEN]) {
    size_t ll = sizeof FIELD_SIV_INFO_LABEL - 1, n = ll;
    for (int i = 0; i < 4; i++) n += 4 + where[i].n;
    uint8_t *info = malloc(n);
    if (!info) return 0;
    memcpy(info, FIELD_SIV_INFO_LABEL, ll);
    size_t off = ll;
    for (int i = 0; i < 4; i++) { /* not the row id */
        for (int k = 0; k < 4; k++) info[off + k] = (uint8_t)(where[i].n >> (24 - 8 * k));
        if (where[i].n) memcpy(info + off + 4, where[i].p, where[i].n);
        off += 4 + where[i].n;
    }
    int ok = hkdf_expand(key, 32, info, n, out, FIELD_SIV_KEY_LEN);
    free(info);
    return ok;
}

/* OpenSSL's AES-256-SIV (RFC 5297) with one associated data component.
 * Decrypts V || C (ctlen bytes of C, at least 1) into out and returns 1
 * when V verifies. */
static int siv_open(const uint8_t k[FIELD_SIV_KEY_LEN], const uint8_t *aad, size_t aadlen,
                    const uint8_t siv[FIELD_SIV_LEN], const uint8_t *ct, size_t ctlen,
                    uint8_t *out) {
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = 0, l;
    if (!cipher || !c || aadlen > INT32_MAX || ctlen == 0 || ctlen > INT32_MAX) goto done;
    if (EVP_DecryptInit_ex2(c, cipher, k, NULL, NULL) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, FIELD_SIV_LEN, (void *)siv) != 1) goto done;
    if (EVP_DecryptUpdate(c, NULL, &l, aad, (int)aadlen) != 1) goto done;
    if (EVP_DecryptUpdate(c, out, &l, ct, (int)ctlen) != 1) goto done;
    ok = EVP_DecryptFinal_ex(c, out + ctlen, &l) == 1;
done:
    if (!ok) OPENSSL_cleanse(out, ctlen);
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(cipher);
    return ok;
}

/* OpenSSL's AES-256-SIV encryption of pt (ptlen >= 1): V into siv, C into ct. */
static int siv_seal(const uint8_t k[FIELD_SIV_KEY_LEN], const uint8_t *aad, size_t aadlen,
                    const uint8_t *pt, size_t ptlen, uint8_t siv[FIELD_SIV_LEN], uint8_t *ct) {
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = 0, l;
    if (!cipher || !c || aadlen > INT32_MAX || ptlen == 0 || ptlen > INT32_MAX) goto done;
    if (EVP_EncryptInit_ex2(c, cipher, k, NULL, NULL) != 1) goto done;
    if (EVP_EncryptUpdate(c, NULL, &l, aad, (int)aadlen) != 1) goto done;
    if (EVP_EncryptUpdate(c, ct, &l, pt, (int)ptlen) != 1) goto done;
    if (EVP_EncryptFinal_ex(c, ct + ptlen, &l) != 1) goto done;
    ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, FIELD_SIV_LEN, siv) == 1;
done:
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(cipher);
    return ok;
}

/* §15.1, §15.2 and §15.6, in the order of §15.3's reading steps: the first
 * byte, the size, decryption under the data key (AES-256-GCM) or the key
 * derived from it (AES-256-SIV) with the location's associated data, then
 * the type and its payload size.  On success *plain (type byte and
 * payload) is the caller's to free; for a deterministic value the derived
 * key is left in siv_key and *deterministic set. */
static int field_open(const uint8_t *v, size_t n, const uint8_t key[32],
                      const Bytes where[FIELD_PARTS], uint32_t *key_ref, uint8_t **plain,
                      size_t *plainlen, int *deterministic, uint8_t siv_key[FIELD_SIV_KEY_LEN]) {
    *plain = NULL;
    *deterministic = 0;
    if (n == 0) return E_NOT_KEYWARD;
    if (v[0] >> 4 == 2) return E_UNSUPPORTED_VERSION; /* version 2 */
    if (v[0] >> 4 != 1) return E_NOT_KEYWARD;
    if (v[0] != FIELD_RANDOMIZED_V1 && v[0] != FIELD_DETERMINISTIC_V1)
        return E_UNSUPPORTED_VERSION; /* other treatments */
    int det = v[0] == FIELD_DETERMINISTIC_V1;
    if (n < (det ? FIELD_DET_OVERHEAD : FIELD_OVERHEAD)) return E_TRUNCATED;
    *key_ref = (uint32_t)be(v + 1, 4);

    size_t aadlen;
    uint8_t *aad = field_aad(v, where, det, &aadlen);
    size_t ctlen = det ? n - FIELD_HEADER - FIELD_SIV_LEN : n - FIELD_HEADER - 12 - TAG_LEN;
    uint8_t *out = malloc(ctlen + 16); /* room for a cipher's final block */
    if (!out) {
        fprintf(stderr, "internal error: out of memory\n");
        exit(2);
    }
    int ok;
    if (det) {
        *deterministic = 1;
        if (!field_siv_key(key, where, siv_key)) {
            fprintf(stderr, "internal error: HKDF-Expand failed\n");
            exit(2);
        }
        ok = siv_open(siv_key, aad, aadlen, v + FIELD_HEADER, v + FIELD_HEADER + FIELD_SIV_LEN,
                      ctlen, out);
    } else {
        ok = aead_open(EVP_aes_256_gcm(), key, v + FIELD_HEADER, aad, aadlen,
                       v + FIELD_HEADER + 12, ctlen, v + n - TAG_LEN, out);
    }
    free(aad);
    if (!ok) { free(out); return E_AUTHENTICATION_FAILED; }
    uint8_t type = out[0];
    if (type < 1 || type > 5 || ((type == 1 || type == 2) && ctlen - 1 != 8)) {
        OPENSSL_cleanse(out, ctlen);
        free(out);
        return E_MALFORMED_HEADER;
    }
    *plain = out;
    *plainlen = ctlen;
    return E_OK;
}

/* §15.6: a writer reproduces a deterministic value exactly, at any row
 * id.  1 if sealing plain again at `where` (its row id ignored) gives the
 * n bytes of v. */
static int field_reseal_matches(const uint8_t *v, size_t n, const uint8_t siv_key[FIELD_SIV_KEY_LEN],
                                const Bytes where[FIELD_PARTS], const uint8_t *plain,
                                size_t plainlen) {
    size_t aadlen;
    uint8_t *aad = field_aad(v, where, 1, &aadlen); /* header v[0..5) as stored */
    uint8_t *out = malloc(FIELD_HEADER + FIELD_SIV_LEN + plainlen + 16);
    int ok = 0;
    if (out) {
        memcpy(out, v, FIELD_HEADER);
        ok = siv_seal(siv_key, aad, aadlen, plain, plainlen, out + FIELD_HEADER,
                      out + FIELD_HEADER + FIELD_SIV_LEN) &&
             n == FIELD_HEADER + FIELD_SIV_LEN + plainlen && memcmp(out, v, n) == 0;
    }
    free(out);
    free(aad);
    return ok;
}

/* One vector of a field value file; 1 if it reads as recorded. */
static int run_field_vector(const JVal *v, int *valid, int *deterministic, char *why,
                            size_t whylen) {
    static const char *const part_name[FIELD_PARTS] = {"dataset", "table", "column", "tenant",
                                                       "row_id"};
    Bytes where[FIELD_PARTS];
    const JVal *stored = jget(v, "stored");
    const char *expected = jstr(v, "expected_error");
    uint8_t *key = NULL, *bin = NULL, *plain = NULL;
    size_t keylen = 0, binlen = 0, plainlen = 0;
    uint32_t key_ref = 0;
    uint8_t siv_key[FIELD_SIV_KEY_LEN];
    int ok = 0, det = 0;
    why[0] = '\0';
    *valid = expected == NULL;
    *deterministic = 0;
    for (int i = 0; i < FIELD_PARTS; i++) {
        const JVal *p = jget(v, part_name[i]);
        if (!p || p->type != J_STR) {
            snprintf(why, whylen, "no \"%s\"", part_name[i]);
            return 0;
        }
        where[i].p = (const uint8_t *)p->str;
        where[i].n = p->slen;
    }
    if (!stored || stored->type != J_STR || !jstr(v, "data_key") ||
        !unhex(jstr(v, "data_key"), &key, &keylen) || keylen != 32) {
        snprintf(why, whylen, "no valid \"stored\" or \"data_key\"");
        goto done;
    }
    int e = field_from_text(stored->str, stored->slen, &bin, &binlen);
    if (!e) e = field_open(bin, binlen, key, where, &key_ref, &plain, &plainlen, &det, siv_key);
    *deterministic = det;
    if (expected) {
        ok = strcmp(ERR_NAME[e], expected) == 0;
        if (ok)
            snprintf(why, whylen, "got %s", ERR_NAME[e]);
        else
            snprintf(why, whylen, "expected %s, got %s", expected, ERR_NAME[e]);
        goto done;
    }
    if (e) {
        snprintf(why, whylen, "must decrypt, got %s", ERR_NAME[e]);
        goto done;
    }
    const char *type = jstr(v, "type");
    if (!type || strcmp(type, FIELD_TYPE_NAME[plain[0]]) != 0) {
        snprintf(why, whylen, "type %s, expected %s", FIELD_TYPE_NAME[plain[0]], type ? type : "?");
        goto done;
    }
    if (!eq_hex(plain + 1, plainlen - 1, jstr(v, "payload"))) {
        snprintf(why, whylen, "payload differs");
        goto done;
    }
    if (!eq_num(v, "key_ref", (double)key_ref)) {
        snprintf(why, whylen, "key reference %lu differs", (unsigned long)key_ref);
        goto done;
    }
    if (det) {
        if (!eq_hex(siv_key, FIELD_SIV_KEY_LEN, jstr(v, "siv_key"))) {
            snprintf(why, whylen, "derived AES-SIV key differs from siv_key");
            goto done;
        }
        if (!field_reseal_matches(bin, binlen, siv_key, where, plain, plainlen)) {
            snprintf(why, whylen, "encrypting again does not give the stored bytes");
            goto done;
        }
    } else if (jget(v, "siv_key")) {
        snprintf(why, whylen, "siv_key on a randomized value");
        goto done;
    }
    ok = 1;
    snprintf(why, whylen, "%s%s, %zu bytes", det ? "deterministic " : "", type, plainlen - 1);
done:
    OPENSSL_cleanse(siv_key, sizeof siv_key);
    free(key);
    free(bin);
    free(plain);
    return ok;
}

/* A file of field value vectors (§15.5): every vector, then one summary. */
static int run_field_file(const char *path, const JVal *root) {
    JVal *vectors = jget(root, "vectors");
    size_t passed = 0, failed = 0, valid = 0, invalid = 0, det_valid = 0, det_invalid = 0;
    if (!vectors || vectors->type != J_ARR || vectors->n == 0) {
        fprintf(stderr, "%s: no vectors\n", path);
        failed++;
    }
    for (size_t i = 0; vectors && vectors->type == J_ARR && i < vectors->n; i++) {
        char why[256];
        int is_valid, is_det;
        const char *name = jstr(vectors->items[i], "name");
        int ok = run_field_vector(vectors->items[i], &is_valid, &is_det, why, sizeof why);
        printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name ? name : "(unnamed)", why[0] ? ": " : "", why);
        if (!ok) { failed++; continue; }
        passed++;
        if (is_valid) valid++; else invalid++;
        if (is_det && is_valid) det_valid++;
        if (is_det && !is_valid) det_invalid++;
    }
    printf("interop fields_v1 %s: %zu passed (%zu valid, %zu of them deterministic; %zu invalid, "
           "%zu of them read as deterministic), %zu failed\n",
           path, passed, valid, det_valid, invalid, det_invalid, failed);
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s <vector file> [<file with raw_keys>]\n", argv[0]);
        return 2;
    }
    JVal *root = load_json(argv[1]);
    if (!root) return 2;
    const char *format = jstr(root, "format");
    if (format && strcmp(format, "keyward field value v1") == 0) { /* §15.5 */
        int rc = argc == 2 ? run_field_file(argv[1], root) : 2;
        if (argc != 2) fprintf(stderr, "%s: a field value file takes no second file\n", argv[1]);
        jfree(root);
        return rc;
    }
    JVal *keyroot = argc == 3 ? load_json(argv[2]) : NULL;
    if (argc == 3 && !keyroot) { jfree(root); return 2; }

    RawKey keys[MAX_KEYS];
    int badkeys = 0;
    size_t nkeys = load_raw_keys(root, keys, 0, &badkeys);
    if (keyroot) nkeys = load_raw_keys(keyroot, keys, nkeys, &badkeys);

    JVal *vectors = jget(root, "vectors");
    size_t passed = 0, failed = (size_t)badkeys;
    if (!vectors || vectors->type != J_ARR || vectors->n == 0) {
        fprintf(stderr, "%s: no vectors\n", argv[1]);
        failed++;
    }
    for (size_t i = 0; vectors && vectors->type == J_ARR && i < vectors->n; i++) {
        char why[256];
        const char *name = jstr(vectors->items[i], "name");
        int ok = run_vector(vectors->items[i], keys, nkeys, why, sizeof why);
        printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name ? name : "(unnamed)", why[0] ? ": " : "", why);
        if (ok) passed++; else failed++;
    }
    printf("interop format_v1 %s: %zu passed, %zu failed\n", argv[1], passed, failed);
    jfree(root);
    jfree(keyroot);
    return failed == 0 ? 0 : 1;
}
