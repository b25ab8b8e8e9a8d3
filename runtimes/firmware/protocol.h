/*
 * The edgeq serial protocol (docs/protocol.md), mirrored in edgeq/runner/mcu_protocol.py.
 *
 * Frame on the wire: 0x00, COBS(body), 0x00  where
 *   body = type u8 | seq u8 | length u16 LE | payload[length] | crc32 u32 LE (zlib CRC of the bytes before it)
 * Every request gets exactly one reply frame with the same seq (or an ERROR frame).
 */
#ifndef EDGEQ_PROTOCOL_H
#define EDGEQ_PROTOCOL_H

#define EQP_VERSION 1
#define EQP_MAX_PAYLOAD 256 /* bytes of payload in one frame, either direction */
#define EQP_HEADER 4
#define EQP_TRAILER 4
#define EQP_MAX_RUNS 32 /* timed runs per RUN request (ticks of each are returned) */

/* host -> device */
#define EQP_HELLO 0x01       /* -> INFO */
#define EQP_LOAD_BEGIN 0x02  /* size u32, crc32 u32 -> LOAD_STATUS (resumes a matching unfinished upload) */
#define EQP_LOAD_CHUNK 0x03  /* offset u32, bytes -> LOAD_STATUS */
#define EQP_VERIFY 0x04      /* source u8 (0 uploaded, 1 linked), pad u8, max_batch u16, crc32 u32 -> VERIFIED */
#define EQP_INPUT 0x05       /* offset u32, bytes into graph input 0 -> INPUT_STATUS */
#define EQP_RUN 0x06         /* batch u16, runs u16, source u8 (0 input buffer, 1 bundled tests), pad u8 x3,
                                first u32 (first bundled sample) -> RESULT */
#define EQP_READ_OUTPUT 0x07 /* output u8, pad u8, length u16, offset u32 -> OUTPUT */
#define EQP_PROFILE 0x08     /* first layer u16 -> LAYERS */

/* device -> host */
#define EQP_INFO 0x81
#define EQP_LOAD_STATUS 0x82  /* received u32 (contiguous bytes so far), size u32 */
#define EQP_VERIFIED 0x84
#define EQP_INPUT_STATUS 0x85 /* end u32 (offset + length just written) */
#define EQP_RESULT 0x86
#define EQP_OUTPUT 0x87       /* offset u32, bytes */
#define EQP_LAYERS 0x88
#define EQP_ERROR 0xE0        /* code u16, edgeq status u16, message (UTF-8, no NUL) */

/* ERROR codes. 1..15: the frame itself was damaged -- the host resends its request. */
#define EQP_E_FRAME_CRC 1
#define EQP_E_FRAME_LENGTH 2   /* length field disagrees with the frame, or frame shorter than a header */
#define EQP_E_FRAME_OVERFLOW 3 /* more bytes than the largest frame before a delimiter */
#define EQP_E_FRAME_COBS 4     /* not valid COBS */
#define EQP_E_UNKNOWN_TYPE 16
#define EQP_E_BAD_REQUEST 17   /* payload size or a field wrong for this type */
#define EQP_E_STATE 18         /* e.g. LOAD_CHUNK before LOAD_BEGIN, RUN before a successful VERIFY */
#define EQP_E_RANGE 19         /* offset/length outside the blob, input or output */
#define EQP_E_TOO_LARGE 20     /* blob or arena does not fit the RAM this image has free */
#define EQP_E_VERIFY 21        /* CRC mismatch, signature refused, or the runtime rejected the blob */
#define EQP_E_RUNTIME 22       /* edgeq_run failed */

/* INFO flags */
#define EQP_INFO_LINKED_BLOB 0x01
#define EQP_INFO_VERIFIED 0x02
#define EQP_INFO_SIGNATURE_REQUIRED 0x04

#endif
