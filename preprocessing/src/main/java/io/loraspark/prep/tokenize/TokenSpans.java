package io.loraspark.prep.tokenize;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.jni.CharSpan;

/**
 * Token ids with the code-point range of the text each came from.
 *
 * @param ids token ids
 * @param starts first code point of each token's text; -1 for tokens the tokenizer added
 * @param ends code point after each token's text; -1 for tokens the tokenizer added
 */
public record TokenSpans(int[] ids, int[] starts, int[] ends) {

  /** Number of tokens. */
  public int size() {
    return ids.length;
  }

  /**
   * Assembles the encoding the way {@link TextTokenizer#encode} does: {@code prepend} (if >= 0)
   * first, {@code append} (if >= 0) last, and no second BOS after a leading {@code dedupeBos}.
   */
  static TokenSpans of(Encoding encoding, int prepend, int append, int dedupeBos) {
    long[] raw = encoding.getIds();
    CharSpan[] spans = encoding.getCharTokenSpans();
    long[] special = encoding.getSpecialTokenMask();
    int start = prepend >= 0 ? 1 : 0;
    int n = start + raw.length + (append >= 0 ? 1 : 0);
    int[] ids = new int[n];
    int[] starts = new int[n];
    int[] ends = new int[n];
    for (int i = 0; i < n; i++) {
      starts[i] = -1;
      ends[i] = -1;
    }
    if (start == 1) {
      ids[0] = prepend;
    }
    for (int i = 0; i < raw.length; i++) {
      ids[start + i] = Math.toIntExact(raw[i]);
      CharSpan span = spans == null || i >= spans.length ? null : spans[i];
      boolean added = special != null && i < special.length && special[i] == 1;
      if (span != null && !added) {
        starts[start + i] = span.getStart();
        ends[start + i] = span.getEnd();
      }
    }
    if (append >= 0) {
      ids[n - 1] = append;
    }
    if (dedupeBos >= 0 && n >= 2 && ids[0] == dedupeBos && ids[1] == dedupeBos) {
      return new TokenSpans(
          java.util.Arrays.copyOfRange(ids, 1, n),
          java.util.Arrays.copyOfRange(starts, 1, n),
          java.util.Arrays.copyOfRange(ends, 1, n));
    }
    return new TokenSpans(ids, starts, ends);
  }
}
