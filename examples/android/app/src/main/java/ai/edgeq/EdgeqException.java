package ai.edgeq;

/** A failure reported by the edgeq runtime: its status code (docs/error-codes.md), name and one-line message. */
public final class EdgeqException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int status;
    private final String statusName;

    public EdgeqException(int status, String statusName, String message) {
        super(statusName + ": " + message);
        this.status = status;
        this.statusName = statusName;
    }

    /** The EDGEQ_E_* code, e.g. 110 for EDGEQ_E_FILE_CRC. */
    public int status() {
        return status;
    }

    /** The EDGEQ_E_* name. */
    public String statusName() {
        return statusName;
    }
}
