package io.loraspark.train.data;

import io.loraspark.train.model.Batch;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.TokenRow;

/**
 * What one model can take from a token row: every input id and scored label inside its vocabulary,
 * and no packed example longer than its context (positions restart at each segment). Checked when
 * rows are read, so a bad row fails before training with its file and line or row, not hours later
 * inside a batch.
 *
 * @param vocabSize V: ids must be in [0, V); labels too, or {@link Batch#IGNORE}
 * @param maxPositions the longest segment, {@code max_position_embeddings}
 */
public record TokenLimits(int vocabSize, int maxPositions) {

  public TokenLimits {
    ModelConfig.require(vocabSize > 0, "vocabSize must be > 0 but was %d", vocabSize);
    ModelConfig.require(maxPositions > 0, "maxPositions must be > 0 but was %d", maxPositions);
  }

  /** The limits of {@code config}'s model. */
  public static TokenLimits of(ModelConfig config) {
    return new TokenLimits(config.vocabSize(), config.maxPositions());
  }

  /**
   * Checks one row.
   *
   * @throws IllegalArgumentException naming the first offending position and value, and the valid
   *     range
   */
  public void check(TokenRow row) {
    int[] ids = row.inputIds();
    int[] labels = row.labels();
    for (int t = 0; t < ids.length; t++) {
      if (ids[t] < 0 || ids[t] >= vocabSize) {
        throw new IllegalArgumentException(
            String.format(
                "input_ids[%d] is %d, outside the model's vocabulary [0, %d)",
                t, ids[t], vocabSize));
      }
      if (labels[t] != Batch.IGNORE && (labels[t] < 0 || labels[t] >= vocabSize)) {
        throw new IllegalArgumentException(
            String.format(
                "labels[%d] is %d; a label must be %d (not scored) or inside the vocabulary [0,"
                    + " %d)",
                t, labels[t], Batch.IGNORE, vocabSize));
      }
    }
    checkSegments(row.segmentIds());
  }

  /** Each run of equal segment ids is one example; none may exceed the context. */
  private void checkSegments(int[] segments) {
    int start = 0;
    for (int t = 1; t <= segments.length; t++) {
      if (t == segments.length || segments[t] != segments[start]) {
        if (t - start > maxPositions) {
          String what =
              t - start == segments.length ? "the row" : "packed example " + segments[start];
          throw new IllegalArgumentException(
              String.format(
                  "%s has %d tokens but the model takes at most %d (max_position_embeddings);"
                      + " preprocess with --max-seq-len %d or less",
                  what, t - start, maxPositions, maxPositions));
        }
        start = t;
      }
    }
  }
}
