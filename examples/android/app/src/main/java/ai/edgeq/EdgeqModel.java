package ai.edgeq;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * An edgeq model (a blob made by `edgeq pack`) on the stable C ABI, through the JNI glue
 * libedgeq_jni.so (docs/android.md).
 *
 * <pre>
 * try (EdgeqModel m = EdgeqModel.load(getAssets().open("digits.edgeq"), 8)) {
 *     float[] logits = m.run(pixels, batch);       // F32 input 0 -> F32 output 0
 * }
 * </pre>
 *
 * Inputs and outputs are also reachable without copies as direct ByteBuffers over the model's
 * memory ({@link #inputBuffer}, {@link #outputBuffer}). A model is not thread-safe: use one per
 * thread, or synchronize. Nothing is allocated per run.
 */
public final class EdgeqModel implements AutoCloseable {
    /** EDGEQ_FMT_F32 (edgeq_blob.h). */
    public static final int FORMAT_F32 = 1;
    /** Flags of bundled test data (EDGEQ_TENSOR_TEST_INPUT / _OUTPUT / _LABEL in edgeq_blob.h). */
    public static final int TEST_INPUT = 0x8;
    public static final int TEST_OUTPUT = 0x10;
    public static final int TEST_LABEL = 0x20;

    static {
        System.loadLibrary("edgeq_jni"); // which loads libedgeq.so, its dependency
    }

    /** Shape, format and quantization of a graph input or output; shape[0] is the batch axis. */
    public static final class TensorInfo {
        public final String name;
        public final int format;
        public final int[] shape;
        public final float qscale;
        public final int qzero;
        public final long sampleBytes;

        TensorInfo(String name, int format, int[] shape, float qscale, int qzero, long sampleBytes) {
            this.name = name;
            this.format = format;
            this.shape = shape;
            this.qscale = qscale;
            this.qzero = qzero;
            this.sampleBytes = sampleBytes;
        }

        @Override
        public String toString() {
            return name + Arrays.toString(shape) + " format " + format;
        }
    }

    private long handle;
    private final int maxBatch;

    /** Validates the blob completely (checksums, tensors, graph) and plans its memory for maxBatch samples. */
    public EdgeqModel(byte[] blob, int maxBatch) {
        this(blob, maxBatch, null);
    }

    /**
     * As above, and when publicKey (32 raw Ed25519 bytes, `edgeq keygen`'s .pub decoded from hex) is not
     * null the blob must be signed by it: EDGEQ_E_UNSIGNED, _SIGNATURE_KEY or _SIGNATURE_INVALID otherwise.
     */
    public EdgeqModel(byte[] blob, int maxBatch, byte[] publicKey) {
        this.handle = nativeCreate(blob, maxBatch, publicKey);
        this.maxBatch = maxBatch;
    }

    /** Reads a whole blob from a stream (e.g. AssetManager.open) and creates the model. */
    public static EdgeqModel load(InputStream in, int maxBatch) throws IOException {
        return load(in, maxBatch, null);
    }

    /** As {@link #load(InputStream, int)}, requiring a signature by publicKey when it is not null. */
    public static EdgeqModel load(InputStream in, int maxBatch, byte[] publicKey) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] chunk = new byte[1 << 16];
        for (int n; (n = in.read(chunk)) > 0; ) {
            out.write(chunk, 0, n);
        }
        return new EdgeqModel(out.toByteArray(), maxBatch, publicKey);
    }

    /** The ABI version of the loaded libedgeq.so (EDGEQ_ABI_VERSION). */
    public static int abiVersion() {
        return nativeAbiVersion();
    }

    public int maxBatch() {
        return maxBatch;
    }

    public int numInputs() {
        return nativeCount(handle, false);
    }

    public int numOutputs() {
        return nativeCount(handle, true);
    }

    public TensorInfo input(int i) {
        return nativeInfo(handle, false, i);
    }

    public TensorInfo output(int i) {
        return nativeInfo(handle, true, i);
    }

    /** Input i's memory (maxBatch samples back to back, native byte order): write, then {@link #run(int)}. */
    public ByteBuffer inputBuffer(int i) {
        return nativeBuffer(handle, false, i).order(ByteOrder.nativeOrder());
    }

    /** Output i's memory after {@link #run(int)}; valid until {@link #close()}. */
    public ByteBuffer outputBuffer(int i) {
        return nativeBuffer(handle, true, i).order(ByteOrder.nativeOrder());
    }

    /** Runs batch samples (1..maxBatch) already written to the input buffers. */
    public void run(int batch) {
        nativeRun(handle, batch);
    }

    /** F32 input 0 (batch samples back to back) in, F32 output 0 out. */
    public float[] run(float[] input, int batch) {
        TensorInfo in = input(0);
        TensorInfo out = output(0);
        if (in.format != FORMAT_F32 || out.format != FORMAT_F32) {
            throw new IllegalArgumentException("run(float[]) needs an F32 input 0 and output 0; use the buffers");
        }
        if (batch < 1 || batch > maxBatch || (long) input.length * 4 != in.sampleBytes * batch) {
            throw new IllegalArgumentException("input holds " + input.length + " floats, batch " + batch + " of "
                    + in + " needs " + in.sampleBytes / 4 * batch + " (maxBatch " + maxBatch + ")");
        }
        inputBuffer(0).asFloatBuffer().put(input);
        run(batch);
        float[] result = new float[(int) (out.sampleBytes / 4 * batch)];
        outputBuffer(0).asFloatBuffer().get(result);
        return result;
    }

    /** The blob's bundled test data: flag TEST_INPUT, TEST_OUTPUT or TEST_LABEL, graph input/output index i; null if none. */
    public ByteBuffer testTensor(int flag, int i) {
        ByteBuffer b = nativeTestTensor(handle, flag, i);
        return b == null ? null : b.order(ByteOrder.nativeOrder());
    }

    /** Nanoseconds per layer in the last run (the glue's monotonic clock). */
    public long[] layerNanos() {
        return nativeLayerNanos(handle);
    }

    /** The kernel tier that runs this model, e.g. "ref". */
    public String kernelTier() {
        return nativeKernelTier(handle);
    }

    /** Releases the native memory; buffers obtained from this model must not be used afterwards. */
    @Override
    public void close() {
        long h = handle;
        handle = 0;
        nativeDestroy(h);
    }

    private static native int nativeAbiVersion();
    private static native long nativeCreate(byte[] blob, int maxBatch, byte[] publicKey);
    private static native void nativeDestroy(long handle);
    private static native int nativeCount(long handle, boolean output);
    private static native TensorInfo nativeInfo(long handle, boolean output, int i);
    private static native ByteBuffer nativeBuffer(long handle, boolean output, int i);
    private static native ByteBuffer nativeTestTensor(long handle, int flag, int i);
    private static native void nativeRun(long handle, int batch);
    private static native long[] nativeLayerNanos(long handle);
    private static native String nativeKernelTier(long handle);
}
