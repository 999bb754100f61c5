/* SHA1_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but they are the
   same assembly without EVP's per-call context allocation and provider lookup: for the
   60 bytes of a handshake's Sec-WebSocket-Accept that is about a tenth of the instructions.
   Only sb_sha1 below uses them, so the deprecation is silenced here and nowhere else. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <openssl/kdf.h>
#include <openssl/ec.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/pem.h>

/* SHA-1 of `count` bytes at `data` into the 20 bytes at `digest`; 1 on success. */
static inline int sb_sha1(const void *data, size_t count, unsigned char *digest) {
    SHA_CTX context;
    return SHA1_Init(&context) == 1 && SHA1_Update(&context, data, count) == 1 && SHA1_Final(digest, &context) == 1;
}
