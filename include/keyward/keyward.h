/* The Keyward C API: a stable C interface over libkeyward for languages
 * that bind to C (Python's ctypes, Go's cgo, Rust's FFI).  Opaque handles,
 * integer status codes, and error objects with the code, the Keyward
 * error name and a message.  No C++ type crosses it.
 *
 * Every function that can fail returns a kw_code (KW_OK on success) and,
 * when `error` is not NULL, sets *error to an error object the caller frees
 * with kw_error_free (or NULL on success).  Output buffers are allocated by
 * the library and freed with kw_bytes_free, which wipes them first.
 *
 * An encryption context is passed as `count` pairs of NUL-terminated UTF-8
 * strings: keys[i] = values[i], each key once.  It is authenticated,
 * stored in the clear, and must not hold secrets.
 *
 * The ABI may change at each 0.x minor version (the SONAME says which);
 * within one, it is stable.
 *
 * Thread-safety: handles are safe for concurrent use from many threads;
 * kw_*_free must not race with other calls on the same handle.
 */
#ifndef KEYWARD_KEYWARD_H_
#define KEYWARD_KEYWARD_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The canonical status codes (the same numbers as gRPC and absl). */
typedef enum kw_code {
  KW_OK = 0,
  KW_CANCELLED = 1,
  KW_UNKNOWN = 2,
  KW_INVALID_ARGUMENT = 3,  /* bad input: not a message, malformed, options */
  KW_DEADLINE_EXCEEDED = 4,
  KW_NOT_FOUND = 5,         /* no such key */
  KW_ALREADY_EXISTS = 6,
  KW_PERMISSION_DENIED = 7, /* the policy refuses this principal */
  KW_RESOURCE_EXHAUSTED = 8,
  KW_FAILED_PRECONDITION = 9, /* another key, context or environment; a disabled version */
  KW_ABORTED = 10,
  KW_OUT_OF_RANGE = 11,
  KW_UNIMPLEMENTED = 12,
  KW_INTERNAL = 13,
  KW_UNAVAILABLE = 14,      /* keywardd unreachable (already retried): retry later */
  KW_DATA_LOSS = 15,        /* the message was altered or truncated */
  KW_UNAUTHENTICATED = 16
} kw_code;

/* How an expected context is compared with a message's. */
typedef enum kw_context_match {
  KW_CONTEXT_ANY = 0,      /* no expectation: any context (returned to check);
                              giving pairs with it is an error */
  KW_CONTEXT_EXACT = 1,    /* the same pairs, no more */
  KW_CONTEXT_AT_LEAST = 2  /* every expected pair; the message may carry more */
} kw_context_match;

typedef struct kw_error kw_error;
typedef struct kw_client kw_client;
typedef struct kw_encryptor kw_encryptor;
typedef struct kw_decrypted kw_decrypted;

/* "0.1.0". */
const char* kw_version(void);

kw_code kw_error_code(const kw_error* error);
/* The Keyward error name ("authentication-failed", "key-mismatch", ...), or
 * "" when the error has none.  Valid until kw_error_free. */
const char* kw_error_name(const kw_error* error);
const char* kw_error_message(const kw_error* error);
void kw_error_free(kw_error* error);

/* Connects to keywardd with a client config file (YAML; keyward dev init
 * writes one), checking the server's environment. */
kw_code kw_client_connect(const char* config_path, kw_client** client, kw_error** error);
void kw_client_free(kw_client* client);

/* An encryptor for one key (defaults: data key caches on, AES-256-GCM).
 * It keeps the client alive; the client may be freed first. */
kw_code kw_encryptor_new(kw_client* client, const char* key_name, kw_encryptor** encryptor,
                         kw_error** error);
void kw_encryptor_free(kw_encryptor* encryptor);

/* Encrypts `plaintext` under the encryptor's key; *message receives the
 * Keyward message (free it with kw_bytes_free). */
kw_code kw_encrypt(kw_encryptor* encryptor, const uint8_t* plaintext, size_t plaintext_len,
                   const char* const* keys, const char* const* values, size_t count,
                   uint8_t** message, size_t* message_len, kw_error** error);

/* Decrypts a message under the encryptor's key (another key's message:
 * KW_FAILED_PRECONDITION, "key-mismatch").  With KW_CONTEXT_EXACT or
 * KW_CONTEXT_AT_LEAST, `keys`/`values` are the expected context. */
kw_code kw_decrypt(kw_encryptor* encryptor, const uint8_t* message, size_t message_len,
                   const char* const* keys, const char* const* values, size_t count,
                   kw_context_match match, kw_decrypted** decrypted, kw_error** error);

/* The plaintext (valid until kw_decrypted_free, which wipes it). */
const uint8_t* kw_decrypted_plaintext(const kw_decrypted* decrypted, size_t* len);
/* The message's authenticated context, pair by pair. */
size_t kw_decrypted_context_count(const kw_decrypted* decrypted);
const char* kw_decrypted_context_key(const kw_decrypted* decrypted, size_t i);
const char* kw_decrypted_context_value(const kw_decrypted* decrypted, size_t i);
/* The key and version the message was made under. */
const char* kw_decrypted_key_name(const kw_decrypted* decrypted);
uint32_t kw_decrypted_key_version(const kw_decrypted* decrypted);
void kw_decrypted_free(kw_decrypted* decrypted);

/* Wipes and frees a buffer the library returned. */
void kw_bytes_free(uint8_t* bytes, size_t len);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* KEYWARD_KEYWARD_H_ */
