package io.loraspark.train.model;

/**
 * One tokenized training row: ids, Hugging Face-aligned labels ({@link Batch#IGNORE} where not
 * scored) and, for rows packed from several examples, the example each token belongs to.
 *
 * @param inputIds token ids, [T]
 * @param labels labels, [T]
 * @param segmentIds 1, 2, 3, … per packed example, non-decreasing from 1 (all 1 for one example);
 *     tokens attend only within their segment, positions restart at each segment, and no label is
 *     scored across a boundary
 */
public record TokenRow(int[] inputIds, int[] labels, int[] segmentIds) {
  public TokenRow {
    ModelConfig.require(inputIds.length > 0, "input_ids must not be empty");
    ModelConfig.require(
        labels.length == inputIds.length,
        "labels has %d entries but input_ids has %d",
        labels.length,
        inputIds.length);
    if (segmentIds == null) {
      segmentIds = new int[inputIds.length];
      java.util.Arrays.fill(segmentIds, 1);
    }
    ModelConfig.require(
        segmentIds.length == inputIds.length,
        "segment_ids has %d entries but input_ids has %d",
        segmentIds.length,
        inputIds.length);
    ModelConfig.require(
        segmentIds[0] == 1, "segment_ids must start at 1 but was %d", segmentIds[0]);
    for (int t = 1; t < segmentIds.length; t++) {
      int step = segmentIds[t] - segmentIds[t - 1];
      ModelConfig.require(
          step == 0 || step == 1,
          "segment_ids must count up by 0 or 1 but go from %d to %d at position %d",
          segmentIds[t - 1],
          segmentIds[t],
          t);
    }
  }

  /** One example (not packed). */
  public TokenRow(int[] inputIds, int[] labels) {
    this(inputIds, labels, null);
  }

  /** Number of examples packed in this row. */
  public int examples() {
    return segmentIds[segmentIds.length - 1];
  }

  /** A row whose every next token is scored. */
  public static TokenRow unmasked(int[] ids) {
    return new TokenRow(ids, ids.clone());
  }

  public int length() {
    return inputIds.length;
  }
}
