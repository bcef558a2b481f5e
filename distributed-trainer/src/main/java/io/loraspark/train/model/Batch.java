package io.loraspark.train.model;

import java.util.Arrays;
import java.util.List;

/**
 * A padded batch of token rows, flattened row-major to {@code [B*T]}.
 *
 * <p>Labels follow Hugging Face's convention: aligned with {@code inputIds}, shifted inside the
 * loss (the logits at position t-1 are scored against {@code labels[t]}), {@value #IGNORE} for
 * positions that are not scored. {@code segments} separates examples: a token attends only to
 * earlier tokens of its own non-zero segment, so packed examples do not see each other and padding
 * (segment 0) is invisible; a label is never scored across a segment boundary. {@code rowGroups}
 * assigns each row to a loss group (an adapter slot in a fused batch); each group's loss is
 * averaged separately.
 *
 * @param rows B
 * @param seqLen T
 * @param inputIds token ids, [B*T]
 * @param labels target ids or {@value #IGNORE}, [B*T]
 * @param positions rotary positions, [B*T]
 * @param segments example id within a row, 0 for padding, [B*T]
 * @param rowGroups loss group of each row, [B]
 * @param groups number of loss groups (max of rowGroups + 1)
 */
public record Batch(
    int rows,
    int seqLen,
    int[] inputIds,
    int[] labels,
    int[] positions,
    int[] segments,
    int[] rowGroups,
    int groups) {

  /** The label value of positions that are not scored. */
  public static final int IGNORE = -100;

  public Batch {
    int n = rows * seqLen;
    ModelConfig.require(
        rows > 0 && seqLen > 0, "batch must be non-empty but was %dx%d", rows, seqLen);
    ModelConfig.require(
        inputIds.length == n && labels.length == n && positions.length == n && segments.length == n,
        "batch arrays must have %d entries",
        n);
    ModelConfig.require(rowGroups.length == rows, "rowGroups must have %d entries", rows);
    for (int g : rowGroups) {
      ModelConfig.require(g >= 0 && g < groups, "row group %d outside [0, %d)", g, groups);
    }
  }

  /** B*T. */
  public int tokens() {
    return rows * seqLen;
  }

  /**
   * The scored target of token row {@code n} (position t predicts t+1), or {@value #IGNORE} at the
   * last position, across a segment boundary, or where the label is ignored.
   */
  public int targetOf(int n) {
    int t = n % seqLen;
    if (t + 1 >= seqLen || segments[n] == 0 || segments[n + 1] != segments[n]) {
      return IGNORE;
    }
    return labels[n + 1];
  }

  /**
   * Right-pads unpacked sequences into one batch, each row its own example and loss group 0.
   *
   * @param ids one token-id array per row
   * @param labels one label array per row (same lengths), or null to score every next token
   * @param padId the id written at padded positions (never scored, never attended to)
   */
  public static Batch padded(List<int[]> ids, List<int[]> labels, int padId) {
    return padded(ids, labels, padId, new int[ids.size()], 1, 0);
  }

  /**
   * Right-pads rows, packed or not, to {@code max(longest, minLen)} with explicit loss groups:
   * segments and positions come from each row's {@link TokenRow#segmentIds()} (positions restart at
   * 0 in every packed example, as Hugging Face's packing collator's {@code position_ids} do).
   *
   * @param rowGroups loss group of each row
   * @param groups number of loss groups
   * @param minLen minimum padded length (lets callers reuse a workspace of fixed T)
   */
  public static Batch of(List<TokenRow> rows, int padId, int[] rowGroups, int groups, int minLen) {
    int b = rows.size();
    int t = minLen;
    for (TokenRow row : rows) {
      t = Math.max(t, row.length());
    }
    int[] in = new int[b * t];
    int[] lab = new int[b * t];
    int[] pos = new int[b * t];
    int[] seg = new int[b * t];
    Arrays.fill(in, padId);
    Arrays.fill(lab, IGNORE);
    for (int r = 0; r < b; r++) {
      TokenRow row = rows.get(r);
      System.arraycopy(row.inputIds(), 0, in, r * t, row.length());
      System.arraycopy(row.labels(), 0, lab, r * t, row.length());
      System.arraycopy(row.segmentIds(), 0, seg, r * t, row.length());
      int p = 0;
      for (int i = 0; i < row.length(); i++) {
        p = i > 0 && row.segmentIds()[i] != row.segmentIds()[i - 1] ? 0 : p;
        pos[r * t + i] = p++;
      }
    }
    return new Batch(b, t, in, lab, pos, seg, rowGroups.clone(), groups);
  }

  /**
   * Right-pads sequences to {@code max(longest, minLen)} with explicit loss groups.
   *
   * @param rowGroups loss group of each row
   * @param groups number of loss groups
   * @param minLen minimum padded length (lets callers reuse a workspace of fixed T)
   */
  public static Batch padded(
      List<int[]> ids, List<int[]> labels, int padId, int[] rowGroups, int groups, int minLen) {
    List<TokenRow> rows = new java.util.ArrayList<>(ids.size());
    for (int r = 0; r < ids.size(); r++) {
      int[] row = ids.get(r);
      int[] rowLabels = labels == null ? row : labels.get(r);
      ModelConfig.require(
          rowLabels.length == row.length,
          "row %d: labels has %d entries but input_ids has %d",
          r,
          rowLabels.length,
          row.length);
      rows.add(new TokenRow(row, rowLabels));
    }
    return of(rows, padId, rowGroups, groups, minLen);
  }
}
