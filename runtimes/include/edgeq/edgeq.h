/*
 * edgeq.h -- the public C ABI of the edgeq runtime.
 *
 * No allocation anywhere: the caller provides one work buffer (model state, tensor table and the
 * activation arena), sized by edgeq_work_size(). The blob is used in place (mmap or flash).
 */
#ifndef EDGEQ_H
#define EDGEQ_H

#include <stddef.h>
#include <stdint.h>

#define EDGEQ_ABI_VERSION 1

#if defined(__GNUC__)
#define EDGEQ_API __attribute__((visibility("default")))
#else
#define EDGEQ_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes, ranged: 1xx blob format, 2xx graph, 3xx runtime. docs/error-codes.md */
typedef enum {
    EDGEQ_OK = 0,
    EDGEQ_E_TRUNCATED = 100,
    EDGEQ_E_MAGIC = 101,
    EDGEQ_E_VERSION = 102,
    EDGEQ_E_HEADER_CRC = 103,
    EDGEQ_E_SECTION = 104,
    EDGEQ_E_SECTION_CRC = 105,
    EDGEQ_E_FILE_CRC = 106,
    EDGEQ_E_TENSOR = 107,
    EDGEQ_E_FORMAT = 108,
    EDGEQ_E_PAYLOAD = 109,
    EDGEQ_E_OP = 200,
    EDGEQ_E_INDEX = 201,
    EDGEQ_E_ORDER = 202,
    EDGEQ_E_SHAPE = 203,
    EDGEQ_E_UNSUPPORTED = 204,
    EDGEQ_E_WORK_TOO_SMALL = 300,
    EDGEQ_E_ARG = 301
} edgeq_status_t;

typedef struct edgeq_model edgeq_model_t;

typedef struct {
    int32_t op_index;
    uint16_t op;
    const char *kernel;
    uint64_t ns;
} edgeq_layer_time_t;

/* Bytes of work memory the blob needs (model state + tensor table + arena). */
EDGEQ_API edgeq_status_t edgeq_work_size(const void *blob, size_t blob_size, size_t *bytes);
/* Validates everything and plans the arena inside `work` (64-byte aligned). */
EDGEQ_API edgeq_status_t edgeq_load(const void *blob, size_t blob_size, void *work, size_t work_size,
                                    edgeq_model_t **model);
EDGEQ_API size_t edgeq_arena_size(const edgeq_model_t *model);
EDGEQ_API int edgeq_num_ops(const edgeq_model_t *model);
/* Graph input/output i: element count and pointer into the arena (F32 for the models packed by edgeq). */
EDGEQ_API float *edgeq_input(edgeq_model_t *model, int i, size_t *count);
EDGEQ_API const float *edgeq_output(edgeq_model_t *model, int i, size_t *count);
EDGEQ_API edgeq_status_t edgeq_run(edgeq_model_t *model);
/* Per-op times of the last run (n_ops entries). */
EDGEQ_API const edgeq_layer_time_t *edgeq_profile(const edgeq_model_t *model);
/* Bundled test data: input sample i of graph input 0, expected output of sample i. */
EDGEQ_API int edgeq_test_count(const edgeq_model_t *model);
EDGEQ_API const float *edgeq_test_input(const edgeq_model_t *model, int sample);
EDGEQ_API const float *edgeq_test_output(const edgeq_model_t *model, int sample);
EDGEQ_API const char *edgeq_strerror(edgeq_status_t status);
EDGEQ_API const char *edgeq_last_error(const edgeq_model_t *model);

#ifdef __cplusplus
}
#endif
#endif
