/*
 * JNI glue between ai.edgeq.EdgeqModel and the edgeq C ABI (docs/android.md).
 *
 * It is the app's platform layer: JNI_OnLoad hands the runtime its clock and allocator through
 * edgeq_pal_set_hooks (libedgeq.so itself links no C library). The blob is copied once into a
 * 64-byte aligned native block that lives as long as the model; the arena comes from the
 * allocator hook at create. Inputs and outputs are direct ByteBuffers over the arena: no copies
 * per run. With a public key the blob must carry a valid Ed25519 signature by it (docs/signing.md).
 * Failures throw ai.edgeq.EdgeqException(status, statusName, message).
 *
 * Tested on the host (tests/test_jni.py: OpenJDK 17, the runtime built by CMake with PAL=hooks);
 * the same file is what the Android app module compiles with the NDK.
 */
#define _POSIX_C_SOURCE 200112L
#include <jni.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgeq/edgeq.h"
#include "edgeq/edgeq_pal_hooks.h"

typedef struct {
    void *blob;
    edgeq_model_t *model;
    uint32_t max_batch;
} native_model_t;

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *aligned_block(size_t bytes, size_t align) {
    void *p = NULL;
    return posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, bytes ? bytes : 1) == 0 ? p : NULL;
}

static void throw_edgeq(JNIEnv *env, edgeq_status_t status, const char *message) {
    jclass cls = (*env)->FindClass(env, "ai/edgeq/EdgeqException");
    jmethodID ctor;
    jstring name, text;
    if (!cls) return; /* NoClassDefFoundError pending */
    ctor = (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;Ljava/lang/String;)V");
    name = (*env)->NewStringUTF(env, edgeq_status_name(status));
    text = (*env)->NewStringUTF(env, message && *message ? message : edgeq_strerror(status));
    if (ctor && name && text) (*env)->Throw(env, (jthrowable)(*env)->NewObject(env, cls, ctor, (jint)status, name, text));
}

static native_model_t *handle(JNIEnv *env, jlong h) {
    if (!h) {
        jclass cls = (*env)->FindClass(env, "java/lang/IllegalStateException");
        if (cls) (*env)->ThrowNew(env, cls, "model is closed");
    }
    return (native_model_t *)(intptr_t)h;
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
    static const edgeq_pal_hooks_t hooks = {EDGEQ_ABI_VERSION, 0, monotonic_ns, 1000000000ull, NULL, aligned_block, free};
    (void)vm;
    (void)reserved;
    /* A libedgeq.so of another ABI version is refused here (one without the hooks fails to load). */
    if (edgeq_abi_version() != EDGEQ_ABI_VERSION || edgeq_pal_set_hooks(&hooks) != EDGEQ_OK) return JNI_ERR;
    return JNI_VERSION_1_6;
}

JNIEXPORT jint JNICALL Java_ai_edgeq_EdgeqModel_nativeAbiVersion(JNIEnv *env, jclass cls) {
    (void)env;
    (void)cls;
    return (jint)edgeq_abi_version();
}

JNIEXPORT jlong JNICALL Java_ai_edgeq_EdgeqModel_nativeCreate(JNIEnv *env, jclass cls, jbyteArray bytes, jint max_batch,
                                                              jbyteArray public_key) {
    edgeq_options_t opt;
    edgeq_diag_t diag;
    edgeq_status_t st;
    native_model_t *m;
    jsize n = (*env)->GetArrayLength(env, bytes);
    (void)cls;
    if (max_batch < 1) {
        throw_edgeq(env, EDGEQ_E_BATCH, "maxBatch must be at least 1");
        return 0;
    }
    edgeq_default_options(&opt);
    opt.max_batch = (uint32_t)max_batch;
    if (public_key) {
        if ((*env)->GetArrayLength(env, public_key) != (jsize)sizeof opt.public_key) {
            throw_edgeq(env, EDGEQ_E_ARG, "publicKey must be 32 bytes (Ed25519)");
            return 0;
        }
        (*env)->GetByteArrayRegion(env, public_key, 0, (jsize)sizeof opt.public_key, (jbyte *)opt.public_key);
        opt.has_public_key = 1;
        opt.require_signature = 1;
    }
    m = calloc(1, sizeof *m);
    if (!m || !(m->blob = aligned_block((size_t)n, 64))) {
        free(m);
        throw_edgeq(env, EDGEQ_E_NO_MEMORY, "cannot allocate the blob copy");
        return 0;
    }
    (*env)->GetByteArrayRegion(env, bytes, 0, n, (jbyte *)m->blob);
    st = edgeq_create(m->blob, (size_t)n, &opt, NULL, 0, &m->model, &diag);
    if (st != EDGEQ_OK) {
        free(m->blob);
        free(m);
        throw_edgeq(env, st, diag.message);
        return 0;
    }
    m->max_batch = (uint32_t)max_batch;
    return (jlong)(intptr_t)m;
}

JNIEXPORT void JNICALL Java_ai_edgeq_EdgeqModel_nativeDestroy(JNIEnv *env, jclass cls, jlong h) {
    native_model_t *m = (native_model_t *)(intptr_t)h;
    (void)env;
    (void)cls;
    if (!m) return;
    edgeq_destroy(m->model);
    free(m->blob);
    free(m);
}

JNIEXPORT jint JNICALL Java_ai_edgeq_EdgeqModel_nativeCount(JNIEnv *env, jclass cls, jlong h, jboolean output) {
    native_model_t *m = handle(env, h);
    (void)cls;
    if (!m) return 0;
    return (jint)(output ? edgeq_num_outputs(m->model) : edgeq_num_inputs(m->model));
}

static int tensor(JNIEnv *env, native_model_t *m, jboolean output, jint i, edgeq_tensor_info_t *info) {
    edgeq_status_t st = i < 0 ? EDGEQ_E_ARG : output ? edgeq_output(m->model, (uint32_t)i, info)
                                                     : edgeq_input(m->model, (uint32_t)i, info);
    if (st != EDGEQ_OK) throw_edgeq(env, st, output ? "no such output" : "no such input");
    return st == EDGEQ_OK;
}

/* new EdgeqModel.TensorInfo(name, format, shape, qscale, qzero, sampleBytes) */
JNIEXPORT jobject JNICALL Java_ai_edgeq_EdgeqModel_nativeInfo(JNIEnv *env, jclass cls, jlong h, jboolean output, jint i) {
    native_model_t *m = handle(env, h);
    edgeq_tensor_info_t info;
    jclass info_cls;
    jmethodID ctor;
    jintArray shape;
    jint dims[4];
    int d;
    (void)cls;
    if (!m || !tensor(env, m, output, i, &info)) return NULL;
    info_cls = (*env)->FindClass(env, "ai/edgeq/EdgeqModel$TensorInfo");
    if (!info_cls) return NULL;
    ctor = (*env)->GetMethodID(env, info_cls, "<init>", "(Ljava/lang/String;I[IFIJ)V");
    shape = (*env)->NewIntArray(env, info.ndim);
    if (!ctor || !shape) return NULL;
    for (d = 0; d < info.ndim; d++) dims[d] = info.shape[d];
    (*env)->SetIntArrayRegion(env, shape, 0, info.ndim, dims);
    return (*env)->NewObject(env, info_cls, ctor, (*env)->NewStringUTF(env, info.name), (jint)info.format, shape,
                             (jfloat)info.qscale, (jint)info.qzero, (jlong)info.sample_bytes);
}

/* The tensor's arena buffer (max_batch samples), as a direct ByteBuffer: valid until close(). */
JNIEXPORT jobject JNICALL Java_ai_edgeq_EdgeqModel_nativeBuffer(JNIEnv *env, jclass cls, jlong h, jboolean output, jint i) {
    native_model_t *m = handle(env, h);
    edgeq_tensor_info_t info;
    (void)cls;
    if (!m || !tensor(env, m, output, i, &info)) return NULL;
    return (*env)->NewDirectByteBuffer(env, info.data, (jlong)(info.sample_bytes * m->max_batch));
}

/* Bundled test data (TEST_INPUT / TEST_LABEL tensors of the blob), read-only, or null. */
JNIEXPORT jobject JNICALL Java_ai_edgeq_EdgeqModel_nativeTestTensor(JNIEnv *env, jclass cls, jlong h, jint flag, jint i) {
    native_model_t *m = handle(env, h);
    edgeq_tensor_info_t info;
    jobject buf;
    (void)cls;
    if (!m || edgeq_test_tensor(m->model, (uint32_t)flag, i, &info) != EDGEQ_OK) return NULL;
    buf = (*env)->NewDirectByteBuffer(env, info.data, (jlong)info.sample_bytes);
    if (!buf) return NULL;
    return (*env)->CallObjectMethod(env, buf, (*env)->GetMethodID(env, (*env)->GetObjectClass(env, buf),
                                                                  "asReadOnlyBuffer", "()Ljava/nio/ByteBuffer;"));
}

JNIEXPORT void JNICALL Java_ai_edgeq_EdgeqModel_nativeRun(JNIEnv *env, jclass cls, jlong h, jint batch) {
    native_model_t *m = handle(env, h);
    edgeq_status_t st;
    (void)cls;
    if (!m) return;
    if (batch < 1) {
        throw_edgeq(env, EDGEQ_E_BATCH, "batch must be at least 1");
        return;
    }
    if ((st = edgeq_run(m->model, (uint32_t)batch)) != EDGEQ_OK) throw_edgeq(env, st, edgeq_last_error(m->model));
}

/* Per layer of the last run: nanoseconds (from the clock hook). */
JNIEXPORT jlongArray JNICALL Java_ai_edgeq_EdgeqModel_nativeLayerNanos(JNIEnv *env, jclass cls, jlong h) {
    native_model_t *m = handle(env, h);
    jlongArray out;
    uint32_t k, n;
    (void)cls;
    if (!m) return NULL;
    n = edgeq_num_layers(m->model);
    if (!(out = (*env)->NewLongArray(env, (jsize)n))) return NULL;
    for (k = 0; k < n; k++) {
        edgeq_layer_profile_t p;
        jlong ns;
        edgeq_layer_profile(m->model, k, &p);
        ns = (jlong)p.ns;
        (*env)->SetLongArrayRegion(env, out, (jsize)k, 1, &ns);
    }
    return out;
}

JNIEXPORT jstring JNICALL Java_ai_edgeq_EdgeqModel_nativeKernelTier(JNIEnv *env, jclass cls, jlong h) {
    native_model_t *m = handle(env, h);
    (void)cls;
    return m ? (*env)->NewStringUTF(env, edgeq_kernel_tier(m->model)) : NULL;
}
