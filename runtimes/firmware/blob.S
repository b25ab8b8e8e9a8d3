/* The production image's blob, linked into flash where the runtime executes it in place (64-byte aligned,
 * as the loader requires). Assembled only when the build is given BLOB=path. */
    .section .edgeq_blob, "a"
    .balign 64
    .incbin EDGEQ_BLOB_PATH
