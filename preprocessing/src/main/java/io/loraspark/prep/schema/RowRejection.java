package io.loraspark.prep.schema;

/**
 * Thrown while mapping, rendering or tokenizing one row to send it to {@code rejected/}. It is
 * control flow for data problems, so it carries no stack trace.
 */
public final class RowRejection extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final RejectReason reason;

  /**
   * @param reason the reason code
   * @param message what is wrong and, where it helps, what would be valid
   */
  public RowRejection(RejectReason reason, String message) {
    super(message, null, false, false);
    this.reason = reason;
  }

  /** The reason code. */
  public RejectReason reason() {
    return reason;
  }
}
