package ai.edgeq.demo;

import ai.edgeq.EdgeqModel;
import android.app.Activity;
import android.os.Bundle;
import android.widget.TextView;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;

/**
 * Loads assets/digits.edgeq (made by `edgeq pack`, which bundles test inputs and labels into the
 * blob), runs its bundled test inputs and shows predictions against the labels and the time per layer.
 */
public final class MainActivity extends Activity {
    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        TextView view = new TextView(this);
        setContentView(view);
        try (InputStream in = getAssets().open("digits.edgeq");
             EdgeqModel model = EdgeqModel.load(in, 64)) {
            view.setText(describe(model));
        } catch (IOException | RuntimeException e) {
            view.setText("edgeq: " + e.getMessage());
        }
    }

    private static String describe(EdgeqModel model) {
        ByteBuffer tests = model.testTensor(EdgeqModel.TEST_INPUT, 0);
        ByteBuffer labels = model.testTensor(EdgeqModel.TEST_LABEL, 0);
        if (tests == null) {
            return "the blob has no bundled test inputs (pack it with test data)";
        }
        int n = (int) Math.min(model.maxBatch(), tests.capacity() / model.input(0).sampleBytes);
        tests.limit((int) (n * model.input(0).sampleBytes));
        model.inputBuffer(0).put(tests);
        model.run(n);
        EdgeqModel.TensorInfo out = model.output(0);
        int classes = out.shape[out.shape.length - 1];
        FloatBuffer logits = model.outputBuffer(0).asFloatBuffer();
        StringBuilder text = new StringBuilder("kernel tier " + model.kernelTier() + "\n");
        int correct = 0;
        for (int s = 0; s < n; s++) {
            int best = 0;
            for (int c = 1; c < classes; c++) {
                if (logits.get(s * classes + c) > logits.get(s * classes + best)) {
                    best = c;
                }
            }
            int label = labels == null ? -1 : labels.getInt(4 * s);
            correct += best == label ? 1 : 0;
            text.append("sample ").append(s).append(": ").append(best).append(" (label ").append(label).append(")\n");
        }
        text.append(correct).append(" of ").append(n).append(" correct\nlayer ns (measured):");
        for (long ns : model.layerNanos()) {
            text.append(' ').append(ns);
        }
        return text.toString();
    }
}
