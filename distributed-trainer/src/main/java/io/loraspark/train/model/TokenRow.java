package io.loraspark.train.model;

/**
 * One tokenized example: ids and Hugging Face-aligned labels ({@link Batch#IGNORE} where not
 * scored).
 *
 * @param inputIds token ids, [T]
 * @param labels labels, [T]
 */
public record TokenRow(int[] inputIds, int[] labels) {
  public TokenRow {
    ModelConfig.require(inputIds.length > 0, "input_ids must not be empty");
    ModelConfig.require(
        labels.length == inputIds.length,
        "labels has %d entries but input_ids has %d",
        labels.length,
        inputIds.length);
  }

  /** A row whose every next token is scored. */
  public static TokenRow unmasked(int[] ids) {
    return new TokenRow(ids, ids.clone());
  }

  public int length() {
    return inputIds.length;
  }
}
