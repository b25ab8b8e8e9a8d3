package ai.edgeq;

import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Drives ai.edgeq.EdgeqModel through the real JNI glue on the host (tests/test_jni.py).
 *
 *   java ai.edgeq.EdgeqModelCheck BLOB INPUT.f32 BATCH EXPECTED.f32
 *
 * Runs BATCH samples of INPUT, compares output 0 bit for bit with EXPECTED (the host reference),
 * runs the blob's bundled test inputs through the zero-copy buffers, and checks the error paths.
 * Prints one line per fact; exits 1 on any mismatch.
 */
public final class EdgeqModelCheck {
    private static float[] floats(String path) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(Path.of(path))).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    private static int[] argmax(float[] rows, int cols) {
        int[] out = new int[rows.length / cols];
        for (int r = 0; r < out.length; r++) {
            for (int c = 1; c < cols; c++) {
                if (rows[r * cols + c] > rows[r * cols + out[r]]) {
                    out[r] = c;
                }
            }
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        byte[] blob = Files.readAllBytes(Path.of(args[0]));
        float[] x = floats(args[1]);
        int batch = Integer.parseInt(args[2]);
        float[] want = floats(args[3]);
        boolean ok = true;
        EdgeqModel m = EdgeqModel.load(new ByteArrayInputStream(blob), batch);
        try {
            EdgeqModel.TensorInfo out = m.output(0);
            int cols = out.shape[out.shape.length - 1];
            System.out.println("abi " + EdgeqModel.abiVersion() + " tier " + m.kernelTier() + " inputs "
                    + m.numInputs() + " outputs " + m.numOutputs() + " in " + m.input(0) + " out " + out);
            float[] got = m.run(x, batch);
            int bad = 0;
            for (int i = 0; i < want.length; i++) {
                bad += Float.floatToRawIntBits(got[i]) == Float.floatToRawIntBits(want[i]) ? 0 : 1;
            }
            ok &= got.length == want.length && bad == 0;
            System.out.println("outputs " + got.length + " differing " + bad);
            System.out.println("predictions " + Arrays.toString(argmax(got, cols)));
            long[] ns = m.layerNanos();
            System.out.println("layers " + ns.length + " timed " + Arrays.stream(ns).filter(t -> t > 0).count());

            ByteBuffer tests = m.testTensor(EdgeqModel.TEST_INPUT, 0);
            ByteBuffer expected = m.testTensor(EdgeqModel.TEST_OUTPUT, 0);
            if (tests != null && expected != null) {
                int n = (int) (tests.capacity() / m.input(0).sampleBytes);
                m.inputBuffer(0).put(tests);
                m.run(n);
                ByteBuffer result = m.outputBuffer(0);
                result.limit((int) (out.sampleBytes * n));
                boolean same = result.equals(expected);
                ok &= same;
                System.out.println("bundled " + n + (same ? " equal" : " DIFFER"));
            }
            try {
                m.run(batch + 1);
                ok = false;
            } catch (EdgeqException e) {
                System.out.println("over-batch " + e.statusName() + " " + e.status() + ": " + e.getMessage());
            }
        } finally {
            m.close();
        }
        try {
            m.run(1);
            ok = false;
        } catch (IllegalStateException e) {
            System.out.println("closed " + e.getMessage());
        }
        blob[blob.length - 1] ^= 0x55;
        try {
            new EdgeqModel(blob, 1).close();
            ok = false;
        } catch (EdgeqException e) {
            System.out.println("corrupt " + e.statusName() + ": " + e.getMessage());
        }
        System.out.println(ok ? "ok" : "FAILED");
        System.exit(ok ? 0 : 1);
    }
}
