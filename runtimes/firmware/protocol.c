/*
 * The serial protocol of docs/protocol.md: COBS-framed requests with a sequence number and CRC32, one
 * reply each. A damaged frame is answered with a frame-level ERROR and the host resends; a resent
 * request identical to the last one gets the cached reply (so a lost reply never runs anything twice).
 * The blob runs only after VERIFY found the whole-blob CRC right, the signature hook accepted it and
 * the runtime's loader validated it; any upload activity revokes that.
 */
#include <string.h>

#include "edgeq/edgeq.h"
#include "edgeq/edgeq_blob.h"
#include "edgeq/edgeq_pal.h"
#include "fw.h"
#include "protocol.h"

uint32_t eq_crc32(uint32_t crc, const uint8_t *p, size_t n); /* the runtime's (zlib polynomial) */

#define BODY_MAX (EQP_HEADER + EQP_MAX_PAYLOAD + EQP_TRAILER)
#define ENCODED_MAX (BODY_MAX + BODY_MAX / 254 + 2)
#define IDLE_FRAME_END_HZ_DIV 100 /* a frame whose trailing delimiter was lost ends after 10 ms of silence */
#ifndef EDGEQ_FW_VERSION
#define EDGEQ_FW_VERSION "edgeq-fw 0.1"
#endif
#ifndef EDGEQ_CORE
#define EDGEQ_CORE "cortex-m"
#endif
#ifndef EDGEQ_REQUIRE_SIGNATURE
#define EDGEQ_REQUIRE_SIGNATURE 0
#endif
#if defined(EDGEQ_PUBLIC_KEY) || EDGEQ_REQUIRE_SIGNATURE
#define SIGNATURE_REQUIRED 1
#else
#define SIGNATURE_REQUIRED 0
#endif

extern uint8_t __edgeq_blob_start[], __edgeq_blob_end[];
extern uint8_t __edgeq_arena_start[], __edgeq_arena_end[];
extern uint8_t __edgeq_free_start[], __edgeq_free_end[];
extern uint8_t __edgeq_flash_start[], __edgeq_flash_limit[], __edgeq_image_end[];
extern uint8_t __edgeq_ram_start[], __edgeq_ram_limit[];

static uint8_t rx[ENCODED_MAX];
static size_t rx_len;
static int rx_overflow;
static uint8_t req[BODY_MAX];
static uint8_t reply[BODY_MAX];
static size_t reply_len;
static struct { int valid; uint8_t type, seq; uint32_t crc; } last; /* request the cached reply answers */

static struct { int active; uint32_t size, crc, received; } upload;
static struct {
    edgeq_model_t *model; /* non-NULL only after a successful VERIFY */
    const uint8_t *blob;
    uint32_t size, crc, max_batch, in_bytes, out_count, n_tests;
    uint8_t *staging;     /* host-written inputs, copied into the model before every run */
    uint32_t runs, ticks[EQP_MAX_RUNS];
} run;
static uint32_t runs_done, runs_refused;

static uint8_t *align64(uint8_t *p) { return (uint8_t *)(((uintptr_t)p + 63u) & ~(uintptr_t)63u); }
static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v); wr16(p + 2, v >> 16); }

/* ---- framing ---------------------------------------------------------------------------------- */

static void send_body(const uint8_t *body, size_t n) {
    size_t start = 0, j, i;
    board_uart_putc(0); /* ends whatever garbage the host may have half-received */
    for (;;) { /* COBS: each block = 1 + its count of non-zero bytes, then those bytes */
        for (j = start; j < n && body[j] != 0 && j - start < 254; j++) {}
        board_uart_putc((uint8_t)(j - start + 1));
        for (i = start; i < j; i++) board_uart_putc(body[i]);
        if (j == n) break;
        start = j - start < 254 ? j + 1 : j; /* a block shorter than 254 stands for the zero after it */
    }
    board_uart_putc(0);
}

/* Builds, caches and sends a reply; payload may point into reply[] already. */
static void send_reply(uint8_t type, uint8_t seq, const uint8_t *payload, size_t n) {
    reply[0] = type;
    reply[1] = seq;
    wr16(reply + 2, (uint32_t)n);
    if (payload != reply + EQP_HEADER) memmove(reply + EQP_HEADER, payload, n);
    wr32(reply + EQP_HEADER + n, eq_crc32(0, reply, EQP_HEADER + n));
    reply_len = EQP_HEADER + n + EQP_TRAILER;
    send_body(reply, reply_len);
}

static void send_error(uint8_t seq, uint32_t code, uint32_t status, const char *msg) {
    uint8_t *p = reply + EQP_HEADER;
    size_t n = strlen(msg);
    if (n > EQP_MAX_PAYLOAD - 4) n = EQP_MAX_PAYLOAD - 4;
    wr16(p, code);
    wr16(p + 2, status);
    memcpy(p + 4, msg, n);
    send_reply(EQP_ERROR, seq, p, 4 + n);
}

/* Frame-level errors go out from their own buffer: the cached reply to the last good request survives,
 * so a resend of that request after line noise is still answered from the cache. */
static void frame_error(uint32_t code, const char *msg) {
    uint8_t body[EQP_HEADER + 4 + 48 + EQP_TRAILER];
    size_t n = strlen(msg);
    if (n > 48) n = 48;
    body[0] = EQP_ERROR;
    body[1] = 0;
    wr16(body + 2, (uint32_t)(4 + n));
    wr16(body + 4, code);
    wr16(body + 6, 0);
    memcpy(body + 8, msg, n);
    wr32(body + 8 + n, eq_crc32(0, body, 8 + n));
    send_body(body, 12 + n);
}

/* Decodes COBS in place into req[]; returns the body length or -1. */
static long cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t code = in[i++];
        size_t k;
        if (code == 0 || i + code - 1 > n) return -1;
        for (k = 1; k < code; k++) {
            if (o >= cap) return -1;
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < n) {
            if (o >= cap) return -1;
            out[o++] = 0;
        }
    }
    return (long)o;
}

/* ---- message helpers -------------------------------------------------------------------------- */

static size_t fmt_u(char *s, uint32_t v) { /* decimal, no printf on the device */
    char tmp[10];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++) s[i] = tmp[n - 1 - i];
    return n;
}

#define SAY_MAX 128 /* every buffer passed to say() holds at least this many bytes */
typedef char say_fits_diag_message[EDGEQ_MESSAGE_MAX >= SAY_MAX ? 1 : -1];

/* One line into buf (SAY_MAX bytes): fmt with up to two "%u"; cut short rather than overflow. */
static const char *say(char *buf, const char *fmt, uint32_t a, uint32_t b) {
    size_t o = 0;
    int arg = 0;
    for (; *fmt && o + 11 < SAY_MAX; fmt++) { /* room for a 10-digit number and the NUL */
        if (fmt[0] == '%' && fmt[1] == 'u') {
            o += fmt_u(buf + o, arg++ ? b : a);
            fmt++;
        } else {
            buf[o++] = *fmt;
        }
    }
    buf[o] = 0;
    return buf;
}

static void forget_model(void) {
    if (run.model) edgeq_destroy(run.model);
    memset(&run, 0, sizeof run);
}

#ifdef EDGEQ_PUBLIC_KEY
static const uint8_t public_key[32] = {EDGEQ_PUBLIC_KEY}; /* the image's trust anchor (edgeq deploy --pubkey) */
#endif

/* The image's key checks the blob's Ed25519 signature (header, sections, CRCs, signature; nothing else
 * parsed). Without a key: every blob passes, unless the board requires signatures. */
__attribute__((weak)) int edgeq_fw_check_signature(const uint8_t *blob, size_t size, char *msg, size_t msg_size) {
#ifdef EDGEQ_PUBLIC_KEY
    edgeq_diag_t diag;
    edgeq_status_t st = edgeq_verify_signature(blob, size, public_key, &diag);
    if (st == EDGEQ_OK) return 0;
    strncpy(msg, diag.message, msg_size - 1);
    msg[msg_size - 1] = 0;
    return (int)st;
#else
    (void)blob;
    (void)size;
    if (!EDGEQ_REQUIRE_SIGNATURE) return 0;
    strncpy(msg, "this board requires signed blobs and the image holds no public key", msg_size - 1);
    msg[msg_size - 1] = 0;
    return EDGEQ_E_UNSIGNED;
#endif
}

static void signature_options(edgeq_options_t *opt) {
#ifdef EDGEQ_PUBLIC_KEY
    opt->require_signature = 1; /* the loader checks it again at create */
    opt->has_public_key = 1;
    memcpy(opt->public_key, public_key, sizeof public_key);
#else
    (void)opt;
#endif
}

/* ---- requests --------------------------------------------------------------------------------- */

static uint8_t *upload_base(void) { return align64(__edgeq_free_start); }
static uint32_t upload_capacity(void) { return (uint32_t)(__edgeq_free_end - upload_base()); }

static void on_hello(uint8_t seq) {
    uint8_t *p = reply + EQP_HEADER;
    const char *core = EDGEQ_CORE, *version = EDGEQ_FW_VERSION;
    size_t nc = strlen(core), nv = strlen(version), nb = strlen(board_name);
    uint32_t flags = (__edgeq_blob_end - __edgeq_blob_start ? EQP_INFO_LINKED_BLOB : 0) |
                     (run.model ? EQP_INFO_VERIFIED : 0) | (SIGNATURE_REQUIRED ? EQP_INFO_SIGNATURE_REQUIRED : 0);
    memset(p, 0, 56);
    p[0] = EQP_VERSION;
    p[1] = (uint8_t)edgeq_abi_version();
    p[2] = (uint8_t)flags;
    wr16(p + 4, EQP_MAX_PAYLOAD);
    wr16(p + 6, EQP_MAX_RUNS);
    wr32(p + 8, board_core_hz());
    wr32(p + 12, (uint32_t)edgeq_pal_ticks_per_second());
    wr32(p + 16, upload_capacity());
    wr32(p + 20, (uint32_t)(__edgeq_arena_end - __edgeq_arena_start));
    wr32(p + 24, (uint32_t)(__edgeq_blob_end - __edgeq_blob_start));
    wr32(p + 28, (uint32_t)(__edgeq_flash_limit - __edgeq_flash_start));
    wr32(p + 32, (uint32_t)(__edgeq_image_end - __edgeq_flash_start));
    wr32(p + 36, (uint32_t)(__edgeq_ram_limit - __edgeq_ram_start));
    wr32(p + 40, (uint32_t)(__edgeq_free_start - __edgeq_ram_start));
    wr32(p + 44, runs_done);
    wr32(p + 48, runs_refused);
    p[52] = (uint8_t)nc;
    p[53] = (uint8_t)(nv + 1 + nb);
    memcpy(p + 56, core, nc);
    memcpy(p + 56 + nc, version, nv);
    p[56 + nc + nv] = ' ';
    memcpy(p + 57 + nc + nv, board_name, nb); /* version text: "edgeq-fw 0.1 <board>" */
    send_reply(EQP_INFO, seq, p, 57 + nc + nv + nb);
}

static void send_load_status(uint8_t seq) {
    uint8_t p[8];
    wr32(p, upload.received);
    wr32(p + 4, upload.size);
    send_reply(EQP_LOAD_STATUS, seq, p, 8);
}

static void on_load_begin(uint8_t seq, const uint8_t *p, size_t n) {
    char msg[SAY_MAX];
    uint32_t size, crc;
    if (n != 8) return send_error(seq, EQP_E_BAD_REQUEST, 0, "LOAD_BEGIN takes size and crc32");
    size = rd32(p);
    crc = rd32(p + 4);
    forget_model(); /* the RAM the old blob used is about to change */
    if (size == 0 || size > upload_capacity()) {
        upload.active = 0;
        return send_error(seq, EQP_E_TOO_LARGE, 0,
                          say(msg, "blob of %u bytes does not fit: %u bytes of RAM free for uploads", size,
                              upload_capacity()));
    }
    if (!upload.active || upload.size != size || upload.crc != crc) { /* else: resume where it stopped */
        upload.active = 1;
        upload.size = size;
        upload.crc = crc;
        upload.received = 0;
    }
    send_load_status(seq);
}

static void on_load_chunk(uint8_t seq, const uint8_t *p, size_t n) {
    uint32_t offset, len;
    if (n < 5) return send_error(seq, EQP_E_BAD_REQUEST, 0, "LOAD_CHUNK takes an offset and bytes");
    if (!upload.active) return send_error(seq, EQP_E_STATE, 0, "LOAD_CHUNK without LOAD_BEGIN");
    offset = rd32(p);
    len = (uint32_t)n - 4;
    if (offset > upload.size || len > upload.size - offset)
        return send_error(seq, EQP_E_RANGE, 0, "chunk outside the blob");
    forget_model();
    if (offset <= upload.received) { /* a gap is not written: the reply tells the host where to resume */
        memcpy(upload_base() + offset, p + 4, len);
        if (offset + len > upload.received) upload.received = offset + len;
    }
    send_load_status(seq);
}

static void on_verify(uint8_t seq, const uint8_t *p, size_t n) {
    char msg[EDGEQ_MESSAGE_MAX];
    uint8_t *out = reply + EQP_HEADER, *free_at, *arena;
    edgeq_options_t opt;
    edgeq_diag_t diag;
    edgeq_tensor_info_t in, o, tests;
    edgeq_status_t st;
    size_t need, nt;
    int sig;
    uint32_t source, expect, crc, size;
    const uint8_t *blob;
    const char *tier;
    if (n != 8) return send_error(seq, EQP_E_BAD_REQUEST, 0, "VERIFY takes source, max_batch and crc32");
    source = p[0];
    expect = rd32(p + 4);
    forget_model();
    edgeq_default_options(&opt);
    opt.max_batch = rd16(p + 2) ? rd16(p + 2) : 1;
#ifdef EDGEQ_FW_TIER_ref
    opt.tier = EDGEQ_TIER_REF; /* an image built with TIER=ref, to compare the Cortex-M tiers against */
#endif
    if (source == 0) {
        if (!upload.active || upload.received != upload.size)
            return send_error(seq, EQP_E_STATE, 0,
                              say(msg, "upload incomplete: %u of %u bytes", upload.received, upload.size));
        blob = upload_base();
        size = upload.size;
        free_at = align64(upload_base() + size);
        if (expect != upload.crc) return send_error(seq, EQP_E_VERIFY, 0, "crc32 differs from LOAD_BEGIN's");
    } else if (source == 1) {
        blob = __edgeq_blob_start;
        size = (uint32_t)(__edgeq_blob_end - __edgeq_blob_start);
        free_at = upload_base();
        if (!size) return send_error(seq, EQP_E_STATE, 0, "this image has no linked blob");
    } else {
        return send_error(seq, EQP_E_BAD_REQUEST, 0, "VERIFY source must be 0 (uploaded) or 1 (linked)");
    }
    crc = eq_crc32(0, blob, size);
    if (crc != expect) {
        if (source == 0) upload.received = 0; /* damaged in RAM: the next LOAD_BEGIN starts it again */
        return send_error(seq, EQP_E_VERIFY, 0, say(msg, "blob crc32 %u, expected %u", crc, expect));
    }
    msg[0] = 0;
    if ((sig = edgeq_fw_check_signature(blob, size, msg, sizeof msg)) != 0)
        return send_error(seq, EQP_E_VERIFY, (uint32_t)sig, msg[0] ? msg : "signature refused");
    signature_options(&opt);
    if ((st = edgeq_arena_size(blob, size, &opt, &need, &diag)) != EDGEQ_OK)
        return send_error(seq, EQP_E_VERIFY, (uint32_t)st, diag.message);
    if (need <= (size_t)(__edgeq_arena_end - __edgeq_arena_start)) {
        arena = __edgeq_arena_start;
    } else {
        arena = free_at;
        free_at = align64(free_at + need);
    }
    if (free_at > __edgeq_free_end)
        return send_error(seq, EQP_E_TOO_LARGE, 0,
                          say(msg, "arena of %u bytes does not fit: %u bytes of RAM free after the blob",
                              (uint32_t)need, (uint32_t)(__edgeq_free_end - arena)));
    if ((st = edgeq_create(blob, size, &opt, arena, need, &run.model, &diag)) != EDGEQ_OK)
        return send_error(seq, EQP_E_VERIFY, (uint32_t)st, diag.message);
    edgeq_input(run.model, 0, &in);
    edgeq_output(run.model, 0, &o);
    run.in_bytes = (uint32_t)in.sample_bytes;
    run.staging = free_at;
    if (free_at + (size_t)run.in_bytes * opt.max_batch > __edgeq_free_end) {
        forget_model();
        return send_error(seq, EQP_E_TOO_LARGE, 0, "no RAM left for the input buffer");
    }
    nt = edgeq_test_tensor(run.model, EDGEQ_TENSOR_TEST_INPUT, 0, &tests) == EDGEQ_OK && in.sample_bytes
             ? tests.sample_bytes / in.sample_bytes : 0;
    run.blob = blob;
    run.size = size;
    run.crc = crc;
    run.max_batch = opt.max_batch;
    run.out_count = edgeq_num_outputs(run.model);
    run.n_tests = (uint32_t)nt;
    tier = edgeq_kernel_tier(run.model);
    wr32(out, size);
    wr32(out + 4, crc);
    wr32(out + 8, (uint32_t)need);
    wr32(out + 12, (uint32_t)(arena == __edgeq_arena_start ? __edgeq_arena_end - arena : __edgeq_free_end - arena));
    wr16(out + 16, edgeq_num_inputs(run.model));
    wr16(out + 18, run.out_count);
    wr16(out + 20, edgeq_num_layers(run.model));
    wr16(out + 22, run.max_batch);
    wr32(out + 24, run.in_bytes);
    wr32(out + 28, (uint32_t)o.sample_bytes);
    wr32(out + 32, run.n_tests);
    out[36] = (uint8_t)strlen(tier);
    memcpy(out + 37, tier, out[36]);
    send_reply(EQP_VERIFIED, seq, out, 37u + out[36]);
}

static void on_input(uint8_t seq, const uint8_t *p, size_t n) {
    uint32_t offset, len;
    uint8_t out[4];
    if (n < 4) return send_error(seq, EQP_E_BAD_REQUEST, 0, "INPUT takes an offset and bytes");
    if (!run.model) return send_error(seq, EQP_E_STATE, 0, "no verified blob: VERIFY first");
    offset = rd32(p);
    len = (uint32_t)n - 4;
    if (offset > run.in_bytes * run.max_batch || len > run.in_bytes * run.max_batch - offset)
        return send_error(seq, EQP_E_RANGE, 0, "input bytes outside max_batch samples of input 0");
    memcpy(run.staging + offset, p + 4, len);
    wr32(out, offset + len);
    send_reply(EQP_INPUT_STATUS, seq, out, 4);
}

static void on_run(uint8_t seq, const uint8_t *p, size_t n) {
    char msg[SAY_MAX];
    uint8_t *out = reply + EQP_HEADER;
    edgeq_tensor_info_t in, tests;
    const uint8_t *src;
    uint32_t batch, runs, source, first, r;
    edgeq_status_t st;
    if (n != 12) return send_error(seq, EQP_E_BAD_REQUEST, 0, "RUN takes batch, runs, source and first");
    if (!run.model) {
        runs_refused++;
        return send_error(seq, EQP_E_STATE, 0, "no verified blob: VERIFY first");
    }
    batch = rd16(p);
    runs = rd16(p + 2);
    source = p[4];
    first = rd32(p + 8);
    if (batch < 1 || batch > run.max_batch || runs < 1 || runs > EQP_MAX_RUNS)
        return send_error(seq, EQP_E_BAD_REQUEST, 0,
                          say(msg, "batch must be 1..%u and runs 1..%u", run.max_batch, EQP_MAX_RUNS));
    src = run.staging;
    if (source == 1) {
        if (first > run.n_tests || batch > run.n_tests - first)
            return send_error(seq, EQP_E_RANGE, 0, say(msg, "bundled samples %u.. beyond the %u bundled", first,
                                                       run.n_tests));
        edgeq_test_tensor(run.model, EDGEQ_TENSOR_TEST_INPUT, 0, &tests);
        src = (const uint8_t *)tests.data + (size_t)first * run.in_bytes;
    } else if (source != 0) {
        return send_error(seq, EQP_E_BAD_REQUEST, 0, "RUN source must be 0 (input buffer) or 1 (bundled)");
    }
    edgeq_input(run.model, 0, &in);
    for (r = 0; r < runs; r++) {
        uint64_t t0, t;
        memcpy(in.data, src, (size_t)batch * run.in_bytes); /* the planner may reuse the input's bytes */
        t0 = edgeq_pal_ticks();
        st = edgeq_run(run.model, batch);
        t = edgeq_pal_ticks() - t0;
        if (st != EDGEQ_OK) return send_error(seq, EQP_E_RUNTIME, (uint32_t)st, edgeq_last_error(run.model));
        run.ticks[r] = t > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)t;
        runs_done++;
    }
    run.runs = runs;
    wr16(out, batch);
    wr16(out + 2, runs);
    wr32(out + 4, run.crc); /* which verified blob produced this result */
    for (r = 0; r < runs; r++) wr32(out + 8 + 4 * r, run.ticks[r]);
    send_reply(EQP_RESULT, seq, out, 8 + 4 * runs);
}

static void on_read_output(uint8_t seq, const uint8_t *p, size_t n) {
    uint8_t *out = reply + EQP_HEADER;
    edgeq_tensor_info_t o;
    uint32_t index, len, offset, total;
    if (n != 8) return send_error(seq, EQP_E_BAD_REQUEST, 0, "READ_OUTPUT takes output, length and offset");
    if (!run.model || !run.runs) return send_error(seq, EQP_E_STATE, 0, "nothing has run since VERIFY");
    index = p[0];
    len = rd16(p + 2);
    offset = rd32(p + 4);
    if (index >= run.out_count) return send_error(seq, EQP_E_RANGE, 0, "no such output");
    edgeq_output(run.model, index, &o);
    total = (uint32_t)(o.sample_bytes * run.max_batch);
    if (len > EQP_MAX_PAYLOAD - 4 || offset > total || len > total - offset)
        return send_error(seq, EQP_E_RANGE, 0, "output bytes outside the output buffer or frame");
    wr32(out, offset);
    memcpy(out + 4, (const uint8_t *)o.data + offset, len);
    send_reply(EQP_OUTPUT, seq, out, 4 + len);
}

static void on_profile(uint8_t seq, const uint8_t *p, size_t n) {
    uint8_t *out = reply + EQP_HEADER;
    edgeq_layer_profile_t lp;
    uint32_t layer, layers, count = 0;
    size_t o = 4;
    if (n != 2) return send_error(seq, EQP_E_BAD_REQUEST, 0, "PROFILE takes the first layer");
    if (!run.model || !run.runs) return send_error(seq, EQP_E_STATE, 0, "nothing has run since VERIFY");
    layers = edgeq_num_layers(run.model);
    for (layer = rd16(p); layer < layers; layer++) {
        size_t kn;
        edgeq_layer_profile(run.model, layer, &lp);
        kn = strlen(lp.kernel);
        if (kn > 40) kn = 40;
        if (o + 8 + kn > EQP_MAX_PAYLOAD) break;
        wr16(out + o, lp.op);
        out[o + 2] = (uint8_t)kn;
        out[o + 3] = 0;
        wr32(out + o + 4, lp.ticks > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)lp.ticks);
        memcpy(out + o + 8, lp.kernel, kn);
        o += 8 + kn;
        count++;
    }
    wr16(out, rd16(p));
    wr16(out + 2, count);
    send_reply(EQP_LAYERS, seq, out, o);
}

static void handle_frame(void) {
    long n = cobs_decode(rx, rx_len, req, sizeof req);
    uint32_t len, crc;
    uint8_t type, seq;
    if (n < 0) return frame_error(EQP_E_FRAME_COBS, "not valid COBS, or too long");
    if (n < EQP_HEADER + EQP_TRAILER) return frame_error(EQP_E_FRAME_LENGTH, "shorter than header + crc");
    len = rd16(req + 2);
    if (len != (uint32_t)n - EQP_HEADER - EQP_TRAILER)
        return frame_error(EQP_E_FRAME_LENGTH, "length field disagrees with the frame");
    crc = rd32(req + EQP_HEADER + len);
    if (crc != eq_crc32(0, req, EQP_HEADER + len)) return frame_error(EQP_E_FRAME_CRC, "crc32 mismatch");
    type = req[0];
    seq = req[1];
    if (last.valid && last.type == type && last.seq == seq && last.crc == crc) { /* a resend: same answer */
        send_body(reply, reply_len);
        return;
    }
    switch (type) {
    case EQP_HELLO: on_hello(seq); break;
    case EQP_LOAD_BEGIN: on_load_begin(seq, req + EQP_HEADER, len); break;
    case EQP_LOAD_CHUNK: on_load_chunk(seq, req + EQP_HEADER, len); break;
    case EQP_VERIFY: on_verify(seq, req + EQP_HEADER, len); break;
    case EQP_INPUT: on_input(seq, req + EQP_HEADER, len); break;
    case EQP_RUN: on_run(seq, req + EQP_HEADER, len); break;
    case EQP_READ_OUTPUT: on_read_output(seq, req + EQP_HEADER, len); break;
    case EQP_PROFILE: on_profile(seq, req + EQP_HEADER, len); break;
    default: send_error(seq, EQP_E_UNKNOWN_TYPE, 0, "unknown frame type"); break;
    }
    last.valid = 1;
    last.type = type;
    last.seq = seq;
    last.crc = crc;
}

void fw_fault(const char *what) {
    send_error(0, EQP_E_RUNTIME, 0, what);
    for (;;) {}
}

void protocol_loop(void) {
    uint64_t idle_limit = edgeq_pal_ticks_per_second() / IDLE_FRAME_END_HZ_DIV, last_byte = 0;
    for (;;) {
        int c = board_uart_getc();
        if (c < 0) {
            if (!rx_len) board_idle(); /* between frames: sleep until the next byte */
            if (rx_len && edgeq_pal_ticks() - last_byte > idle_limit) c = 0; /* lost delimiter: end it here */
            else continue;
        } else {
            last_byte = edgeq_pal_ticks();
        }
        if (c != 0) {
            if (rx_len < sizeof rx) rx[rx_len++] = (uint8_t)c;
            else rx_overflow = 1;
            continue;
        }
        if (rx_overflow) frame_error(EQP_E_FRAME_OVERFLOW, "longer than the largest frame");
        else if (rx_len) handle_frame();
        rx_len = 0;
        rx_overflow = 0;
    }
}
