package io.loraspark.pipeline.generate;

import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.decode.Request;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The text of one request's completion, detokenized incrementally as its tokens are generated, and
 * the request's stop-string check. Every caller's completion text comes from here (streamed or
 * not), so streamed deltas concatenate to exactly the non-streamed text.
 *
 * <p>Incremental detokenization as vLLM's {@code detokenize_incrementally}: each new token is
 * decoded together with the token before it (the context a tokenizer's decoder needs, e.g. the
 * leading-space rules of SentencePiece pieces), and only the text beyond that context is appended.
 * While the window's text ends in U+FFFD (a character whose bytes are not all generated yet)
 * nothing is appended and the window grows until it decodes whole. Per token this decodes a few
 * tokens, not the whole completion.
 *
 * <p>Stop strings: after each appended piece only the tail that can hold a new match (the last
 * {@code longest stop - 1} characters before it, and it) is searched; the text is cut before the
 * earliest match (OpenAI's semantics). Text released for streaming holds back an ending that could
 * still become a stop string.
 *
 * <p>Threads: {@link #stop} runs on the decoding thread; {@link #take} and {@link #finish} on the
 * thread that answers the client. {@link #finish} must be called after the request's result is
 * complete (so every token was fed).
 */
public final class CompletionText implements Request.StopCheck {
  private final TextTokenizer tokenizer;
  private final Set<Integer> stopIds;
  private final List<String> stops;
  private final int longestStop;
  private final Runnable onText;
  private int[] ids = new int[32]; // the completion's ids that carry text (stop ids left out)
  private int count;
  private int fed; // generated tokens seen, stop ids included
  private int prefixOffset; // where the decoding window starts
  private int readOffset; // ids before this are already in text
  private final StringBuilder text = new StringBuilder();
  private int stopCut = -1;
  private int released;
  private int taken;

  /**
   * @param stopIds ids that end the request; they are no part of the text
   * @param stops stop strings, none empty
   * @param onText called on the decoding thread when more text can be taken (null: none)
   */
  public CompletionText(
      TextTokenizer tokenizer, Set<Integer> stopIds, List<String> stops, Runnable onText) {
    this.tokenizer = tokenizer;
    this.stopIds = Set.copyOf(stopIds);
    this.stops = List.copyOf(stops);
    this.longestStop = stops.stream().mapToInt(String::length).max().orElse(0);
    this.onText = onText;
  }

  /** Feeds the tokens generated since the last call; true once the text holds a stop string. */
  @Override
  public boolean stop(int[] tokens, int count) {
    boolean more = false;
    synchronized (this) {
      for (; fed < count && stopCut < 0; fed++) {
        more |= add(tokens[fed]);
      }
    }
    if (more && onText != null) {
      onText.run();
    }
    return stopCut >= 0;
  }

  /** Text released since the last call ("" when none): safe to stream, it cannot change. */
  public synchronized String take() {
    if (released <= taken) {
      return "";
    }
    String delta = text.substring(taken, released);
    taken = released;
    return delta;
  }

  /**
   * The rest of the completion not yet taken: what is still held back, and the text of a last
   * character left incomplete (decoded with U+FFFD, as a whole-sequence decode would).
   */
  public synchronized String finish() {
    if (stopCut < 0 && readOffset < count) {
      String window = decode(prefixOffset, count);
      String prefix = decode(prefixOffset, readOffset);
      if (window.length() > prefix.length()) {
        append(window.substring(prefix.length()));
      }
      prefixOffset = readOffset = count;
    }
    released = stopCut >= 0 ? stopCut : text.length();
    return take();
  }

  /** The whole completion text: {@link #finish} and what was taken before it. */
  public synchronized String completion() {
    finish();
    return text.substring(0, released);
  }

  private boolean add(int id) {
    if (stopIds.contains(id)) {
      return false;
    }
    if (count == ids.length) {
      ids = Arrays.copyOf(ids, count * 2);
    }
    ids[count++] = id;
    String window = decode(prefixOffset, count);
    String prefix = decode(prefixOffset, readOffset);
    if (window.length() <= prefix.length() || window.endsWith("\uFFFD")) {
      return false;
    }
    append(window.substring(prefix.length()));
    prefixOffset = readOffset;
    readOffset = count;
    released = stopCut >= 0 ? stopCut : text.length() - heldBack();
    return released > taken;
  }

  /**
   * Appends a piece and looks for a stop string in the part of the text that can hold a new one.
   */
  private void append(String piece) {
    int from = Math.max(0, text.length() - longestStop + 1);
    text.append(piece);
    for (String s : stops) {
      int i = text.indexOf(s, from);
      if (i >= 0 && (stopCut < 0 || i < stopCut)) {
        stopCut = i;
      }
    }
  }

  /** The length of the longest ending of the text that is a proper prefix of a stop string. */
  private int heldBack() {
    int held = 0;
    int n = text.length();
    for (String s : stops) {
      for (int k = Math.min(s.length() - 1, n); k > held; k--) {
        if (endsWith(s, k)) {
          held = k;
          break;
        }
      }
    }
    return held;
  }

  /** Whether the text ends with the first {@code k} characters of {@code s}. */
  private boolean endsWith(String s, int k) {
    int start = text.length() - k;
    for (int i = 0; i < k; i++) {
      if (text.charAt(start + i) != s.charAt(i)) {
        return false;
      }
    }
    return true;
  }

  private String decode(int from, int to) {
    return from == to ? "" : tokenizer.decode(Arrays.copyOfRange(ids, from, to), true);
  }
}
