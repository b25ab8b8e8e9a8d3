package ai.edgeq;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Signed blobs through the JNI glue (tests/test_jni.py).
 *
 *   java ai.edgeq.EdgeqSignatureCheck SIGNED.edgeq UNSIGNED.edgeq KEY.pub OTHER.pub
 *
 * Prints one line per case: the right key loads, an unsigned blob, another key and a key of the
 * wrong length are refused with their status names.
 */
public final class EdgeqSignatureCheck {
    private static byte[] hexKey(String path) throws Exception {
        String hex = Files.readString(Path.of(path)).trim();
        byte[] key = new byte[hex.length() / 2];
        for (int i = 0; i < key.length; i++) {
            key[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return key;
    }

    private static String attempt(byte[] blob, byte[] key) {
        try (EdgeqModel m = new EdgeqModel(blob, 1, key)) {
            return "loaded " + m.layerNanos().length + " layers";
        } catch (EdgeqException e) {
            return e.statusName();
        }
    }

    public static void main(String[] args) throws Exception {
        byte[] signed = Files.readAllBytes(Path.of(args[0]));
        byte[] unsigned = Files.readAllBytes(Path.of(args[1]));
        byte[] key = hexKey(args[2]);
        System.out.println("signed " + attempt(signed, key));
        System.out.println("unsigned " + attempt(unsigned, key));
        System.out.println("other-key " + attempt(signed, hexKey(args[3])));
        System.out.println("short-key " + attempt(signed, new byte[16]));
        System.out.println("no-key " + attempt(unsigned, null));
    }
}
