/*
 * Ed25519 verification of a blob's SIGNATURE section (edgeq_blob.h, docs/signing.md) with Monocypher's
 * optional RFC 8032 module (third_party/monocypher). The message is the whole blob with the CRC fields
 * and the signature bytes read as zero; it is streamed through SHA-512 exactly as crypto_ed25519_check
 * does (h = SHA-512(R || A || message) mod L, then crypto_eddsa_check_equation), so the read-only blob
 * (mmap, flash) is never copied or modified.
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "monocypher-ed25519.h"

#define CRC_AT offsetof(edgeq_header_t, header_crc) /* header_crc, file_crc */

static void hash_zeros(crypto_sha512_ctx *ctx, size_t n) {
    static const uint8_t zeros[64];
    while (n) {
        size_t chunk = n < sizeof zeros ? n : sizeof zeros;
        crypto_sha512_update(ctx, zeros, chunk);
        n -= chunk;
    }
}

static int hex_digit(unsigned v) { return "0123456789abcdef"[v & 15]; }

/* First 4 bytes of a key id as 8 hex digits, for messages. */
static void id_text(const uint8_t *id, char out[9]) {
    int i;
    for (i = 0; i < 4; i++) {
        out[2 * i] = (char)hex_digit(id[i] >> 4);
        out[2 * i + 1] = (char)hex_digit(id[i]);
    }
    out[8] = 0;
}

edgeq_status_t eq_check_signature(const uint8_t *p, size_t size, const edgeq_section_t *sig,
                                  const uint8_t *public_key, int require, edgeq_diag_t *diag) {
    const edgeq_signature_t *s;
    crypto_sha512_ctx ctx;
    uint8_t hash[64], h_ram[32];
    size_t holes[3][2], at = 0;
    char have[9], want[9];
    int i;
    if (require && !public_key)
        return eq_fail(diag, EDGEQ_E_ARG, "a signature is required but no public key was given");
    if (!sig) {
        if (require)
            return eq_fail(diag, EDGEQ_E_UNSIGNED, "blob is not signed and a signature is required (edgeq sign)");
        return EDGEQ_OK;
    }
    if (!public_key) return EDGEQ_OK; /* signed, but the caller has no key: CRCs only */
    if (sig->size != sizeof(edgeq_signature_t))
        return eq_fail(diag, EDGEQ_E_SIGNATURE, "signature section is %U bytes, expected %u",
                       (unsigned long long)sig->size, (unsigned)sizeof(edgeq_signature_t));
    s = (const edgeq_signature_t *)(const void *)(p + sig->offset);
    if (s->algorithm != EDGEQ_SIG_ED25519)
        return eq_fail(diag, EDGEQ_E_SIGNATURE, "unknown signature algorithm %u", (unsigned)s->algorithm);
    crypto_sha512(hash, public_key, EDGEQ_SIG_PUBLIC_KEY_BYTES);
    if (memcmp(hash, s->key_id, EDGEQ_SIG_KEY_ID_BYTES) != 0) {
        id_text(s->key_id, have);
        id_text(hash, want);
        return eq_fail(diag, EDGEQ_E_SIGNATURE_KEY, "blob signed by another key (key id %s...), not by the given one (%s...)",
                       have, want);
    }
    /* Zeroed spans in file order: CRC fields, the SIGNATURE entry's crc32, the signature bytes. */
    holes[0][0] = CRC_AT;
    holes[0][1] = 8;
    holes[1][0] = (size_t)((const uint8_t *)sig - p) + offsetof(edgeq_section_t, crc32);
    holes[1][1] = 4;
    holes[2][0] = (size_t)sig->offset + offsetof(edgeq_signature_t, signature);
    holes[2][1] = 64;
    crypto_sha512_init(&ctx);
    crypto_sha512_update(&ctx, s->signature, 32); /* R */
    crypto_sha512_update(&ctx, public_key, 32);   /* A */
    for (i = 0; i < 3; i++) {
        crypto_sha512_update(&ctx, p + at, holes[i][0] - at);
        hash_zeros(&ctx, holes[i][1]);
        at = holes[i][0] + holes[i][1];
    }
    crypto_sha512_update(&ctx, p + at, size - at);
    crypto_sha512_final(&ctx, hash);
    crypto_eddsa_reduce(h_ram, hash);
    if (crypto_eddsa_check_equation(s->signature, public_key, h_ram) != 0)
        return eq_fail(diag, EDGEQ_E_SIGNATURE_INVALID,
                       "signature does not verify: the blob was modified after it was signed");
    return EDGEQ_OK;
}
