package io.loraspark.pipeline.serve;

import io.loraspark.pipeline.generate.TextGeneration;
import io.loraspark.prep.tokenize.TextTokenizer;
import java.util.Arrays;
import java.util.List;

/**
 * Incremental detokenization for streamed responses: after each token, the part of the completion
 * that can no longer change is sent. Held back: a trailing U+FFFD (a character whose bytes are not
 * all generated yet) and any ending that could be the start of a stop string. The final piece is
 * the rest of the non-streamed completion, so the deltas concatenate to exactly the non-streamed
 * text.
 */
final class StreamText {
  private final TextTokenizer tokenizer;
  private final List<String> stops;
  private int[] ids = new int[32];
  private int count;
  private String sent = "";

  StreamText(TextTokenizer tokenizer, List<String> stops) {
    this.tokenizer = tokenizer;
    this.stops = stops;
  }

  /** Adds a generated token; returns the text that may be sent now ("" when none). */
  String add(int id) {
    if (count == ids.length) {
      ids = Arrays.copyOf(ids, count * 2);
    }
    ids[count++] = id;
    String text = tokenizer.decode(Arrays.copyOf(ids, count), true);
    int cut = TextGeneration.stopAt(text, stops);
    if (cut >= 0) {
      text = text.substring(0, cut);
    } else {
      text = text.substring(0, text.length() - heldBack(text));
    }
    while (!text.isEmpty() && text.charAt(text.length() - 1) == '\uFFFD') {
      text = text.substring(0, text.length() - 1);
    }
    return advance(text);
  }

  /** The rest of the final completion text. */
  String finish(String completion) {
    return advance(completion);
  }

  private String advance(String text) {
    if (text.length() <= sent.length() || !text.startsWith(sent)) {
      return "";
    }
    String delta = text.substring(sent.length());
    sent = text;
    return delta;
  }

  /** The length of the longest ending of text that is a proper prefix of a stop string. */
  private int heldBack(String text) {
    int held = 0;
    for (String s : stops) {
      for (int k = Math.min(s.length() - 1, text.length()); k > held; k--) {
        if (text.endsWith(s.substring(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}
