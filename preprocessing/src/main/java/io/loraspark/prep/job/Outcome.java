package io.loraspark.prep.job;

import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.shard.RejectedSchema;
import java.io.Serializable;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/** What became of an input row at one step of the job. */
sealed interface Outcome extends Serializable
    permits Outcome.Mapped, Outcome.Tokenized, Outcome.Rejected {

  /** Key for counting: {@code ok} or the reason code. */
  String kind();

  /**
   * A row mapped onto a conversation.
   *
   * @param fileIndex input file index
   * @param file input file name
   * @param rowNumber row number in the file
   * @param raw raw text, cut at the raw limit
   * @param rawLength full raw length
   * @param exampleId the conversation's id (dedupe key)
   * @param conversation the normalized conversation
   */
  record Mapped(
      int fileIndex,
      String file,
      long rowNumber,
      String raw,
      int rawLength,
      String exampleId,
      Conversation conversation)
      implements Outcome {
    @Override
    public String kind() {
      return "ok";
    }

    /** Whichever of two rows comes first in input order. */
    static Mapped earlier(Mapped a, Mapped b) {
      int c = Integer.compare(a.fileIndex, b.fileIndex);
      return c < 0 || (c == 0 && a.rowNumber <= b.rowNumber) ? a : b;
    }

    Rejected reject(RejectReason reason, String message) {
      return new Rejected(fileIndex, file, rowNumber, raw, rawLength, reason, message);
    }
  }

  /**
   * A tokenized, masked example with its split and shard.
   *
   * @param source file:row
   * @param exampleId the example id
   * @param inputIds token ids (at most max_seq_len)
   * @param labels labels
   * @param eval held out or not
   * @param shard shard index
   * @param order sort key within the shard
   * @param truncated whether tokens were cut
   */
  record Tokenized(
      String source,
      String exampleId,
      int[] inputIds,
      int[] labels,
      boolean eval,
      int shard,
      long order,
      boolean truncated)
      implements Outcome {
    @Override
    public String kind() {
      return "ok";
    }
  }

  /**
   * A rejected row.
   *
   * @param fileIndex input file index
   * @param file input file name
   * @param rowNumber row number
   * @param raw raw text, cut at the raw limit
   * @param rawLength full raw length in chars
   * @param reason reason
   * @param message detail
   */
  record Rejected(
      int fileIndex,
      String file,
      long rowNumber,
      String raw,
      int rawLength,
      RejectReason reason,
      String message)
      implements Outcome {
    @Override
    public String kind() {
      return reason.code();
    }

    /** The row of {@link RejectedSchema}. */
    Row toRow() {
      return RowFactory.create(
          file,
          rowNumber,
          file + ":" + rowNumber,
          reason.code(),
          message,
          raw,
          rawLength,
          raw.length() < rawLength);
    }
  }
}
