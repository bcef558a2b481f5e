package io.loraspark.prep.tokenize;

import io.loraspark.prep.shard.ShardSchema;
import java.util.Arrays;

/**
 * Token ids and HF-aligned labels of one example: {@code labels[t]} is {@code inputIds[t]} where
 * the token is scored and {@link ShardSchema#IGNORE_INDEX} elsewhere.
 *
 * @param inputIds token ids
 * @param labels labels, same length
 */
public record EncodedExample(int[] inputIds, int[] labels) {

  /** Requires equal lengths. */
  public EncodedExample {
    if (inputIds.length != labels.length) {
      throw new IllegalArgumentException(
          "input_ids has " + inputIds.length + " tokens but labels has " + labels.length);
    }
  }

  /** Number of tokens. */
  public int length() {
    return inputIds.length;
  }

  /** Number of scored positions. */
  public int labelTokens() {
    int n = 0;
    for (int l : labels) {
      if (l != ShardSchema.IGNORE_INDEX) {
        n++;
      }
    }
    return n;
  }

  /** The first {@code n} tokens (this example if it is not longer). */
  public EncodedExample truncate(int n) {
    return n >= inputIds.length
        ? this
        : new EncodedExample(Arrays.copyOf(inputIds, n), Arrays.copyOf(labels, n));
  }
}
