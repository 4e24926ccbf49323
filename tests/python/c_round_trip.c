/* A C program on include/keyward/keyward.h: encrypt, decrypt with the
 * exact context, and a typed error for a tampered message. */
#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"

static int fail(const char* what, kw_error* e) {
  fprintf(stderr, "%s: %s [%s]\n", what, kw_error_message(e), kw_error_name(e));
  kw_error_free(e);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  kw_error* e = NULL;
  kw_client* client = NULL;
  kw_encryptor* cards = NULL;
  if (kw_client_connect(argv[1], &client, &e) != KW_OK) return fail("connect", e);
  if (kw_encryptor_new(client, argv[2], &cards, &e) != KW_OK) return fail("encryptor", e);
  kw_client_free(client); /* the encryptor keeps what it needs */
  const char* keys[] = {"tenant"};
  const char* values[] = {"acme"};
  const char* text = "4111 1111 1111 1111";
  uint8_t* m = NULL;
  size_t m_len = 0;
  if (kw_encrypt(cards, (const uint8_t*)text, strlen(text), keys, values, 1, &m, &m_len, &e) !=
      KW_OK) {
    return fail("encrypt", e);
  }
  kw_decrypted* d = NULL;
  if (kw_decrypt(cards, m, m_len, keys, values, 1, KW_CONTEXT_EXACT, &d, &e) != KW_OK) {
    return fail("decrypt", e);
  }
  size_t n = 0;
  const uint8_t* p = kw_decrypted_plaintext(d, &n);
  if (n != strlen(text) || memcmp(p, text, n) != 0) return fprintf(stderr, "differs\n"), 1;
  printf("C: %zu-byte message under %s v%u, context %s=%s\n", m_len, kw_decrypted_key_name(d),
         kw_decrypted_key_version(d), kw_decrypted_context_key(d, 0),
         kw_decrypted_context_value(d, 0));
  kw_decrypted_free(d);
  m[m_len - 3] ^= 1;
  kw_code c = kw_decrypt(cards, m, m_len, NULL, NULL, 0, KW_CONTEXT_ANY, &d, &e);
  if (c != KW_DATA_LOSS || strcmp(kw_error_name(e), "authentication-failed") != 0) {
    return fprintf(stderr, "tampered message: code %d\n", (int)c), 1;
  }
  printf("C: tampered message refused: %s\n", kw_error_name(e));
  kw_error_free(e);
  /* Pairs with KW_CONTEXT_ANY would be ignored: refused instead. */
  if (kw_decrypt(cards, m, m_len, keys, values, 1, KW_CONTEXT_ANY, &d, &e) != KW_INVALID_ARGUMENT) {
    return fprintf(stderr, "pairs with KW_CONTEXT_ANY were accepted\n"), 1;
  }
  kw_error_free(e);
  const char* twice[] = {"tenant", "tenant"};
  const char* two_values[] = {"acme", "evil"};
  if (kw_encrypt(cards, (const uint8_t*)text, strlen(text), twice, two_values, 2, &m, &m_len,
                 &e) != KW_INVALID_ARGUMENT) {
    return fprintf(stderr, "a repeated context key was accepted\n"), 1;
  }
  kw_error_free(e);
  if (kw_decrypted_key_name(NULL)[0] != '\0' || kw_decrypted_context_count(NULL) != 0) return 1;
  printf("C: pairs with KW_CONTEXT_ANY, a repeated key and NULL handles handled\n");
  kw_bytes_free(m, m_len);
  kw_encryptor_free(cards);
  return 0;
}
