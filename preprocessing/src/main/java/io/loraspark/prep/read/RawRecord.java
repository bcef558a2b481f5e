package io.loraspark.prep.read;

import io.loraspark.prep.schema.RejectReason;
import java.io.Serializable;

/**
 * One input row before parsing: where it came from and its text, or why it could not even be read
 * as text.
 *
 * @param fileIndex {@link InputFile#index()}
 * @param file {@link InputFile#name()}
 * @param rowNumber 1-based line (JSONL), element (JSON array) or row (CSV, Parquet) number
 * @param raw the row's text (JSON for every format), never null
 * @param error null when readable; otherwise why not ({@link RejectReason#INVALID_UTF8}, ...)
 * @param errorMessage detail for {@code error}, or null
 */
public record RawRecord(
    int fileIndex, String file, long rowNumber, String raw, RejectReason error, String errorMessage)
    implements Serializable {

  /** A readable record. */
  public static RawRecord ok(int fileIndex, String file, long rowNumber, String raw) {
    return new RawRecord(fileIndex, file, rowNumber, raw, null, null);
  }

  /** {@code file:rowNumber}. */
  public String source() {
    return file + ":" + rowNumber;
  }
}
