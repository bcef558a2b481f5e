package io.loraspark.pipeline.generate;

import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.decode.AdapterMix;
import io.loraspark.train.decode.Request;
import io.loraspark.train.decode.Result;
import io.loraspark.train.decode.SamplingParams;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The text side of generation over one tokenizer: a prompt becomes a {@link Request} whose stop ids
 * are the model's EOS ids (generation_config.json's, else the tokenizer config's) plus any given,
 * and whose stop strings end it as soon as the generated text contains one; a {@link Result}
 * becomes the completion text, without the stop id or string (OpenAI's convention).
 */
public final class TextGeneration {
  private final TextTokenizer tokenizer;

  public TextGeneration(TextTokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  public TextTokenizer tokenizer() {
    return tokenizer;
  }

  /** The model's end-of-sequence ids (may be empty). */
  public Set<Integer> eosIds() {
    Set<Integer> ids = new HashSet<>();
    for (int id : tokenizer.eosIds()) {
      if (id >= 0) {
        ids.add(id);
      }
    }
    return ids;
  }

  /**
   * A request for {@code prompt} (BOS added as the tokenizer config says).
   *
   * @param params its stop ids are extended with the model's EOS ids
   * @param stops stop strings (none empty); the request ends once the text contains one
   */
  public Request request(String prompt, AdapterMix mix, SamplingParams params, List<String> stops) {
    return request(tokenizer.encode(prompt, true), mix, params, stops);
  }

  /** {@link #request(String, AdapterMix, SamplingParams, List)} for an already tokenized prompt. */
  public Request request(
      int[] promptIds, AdapterMix mix, SamplingParams params, List<String> stops) {
    for (String s : stops) {
      if (s == null || s.isEmpty()) {
        throw new IllegalArgumentException("a stop string must not be empty");
      }
    }
    Set<Integer> stopIds = new HashSet<>(params.stopIds());
    stopIds.addAll(eosIds());
    SamplingParams withEos =
        new SamplingParams(
            params.maxNewTokens(),
            params.temperature(),
            params.topK(),
            params.topP(),
            params.seed(),
            stopIds,
            params.logprobs());
    Request.StopCheck check =
        stops.isEmpty()
            ? null
            : (tokens, count) -> stopAt(decode(Arrays.copyOf(tokens, count)), stops) >= 0;
    return new Request(promptIds, mix, withEos, check, null);
  }

  /**
   * The generated text of {@code result}: its ids without a final stop id, decoded without special
   * tokens, cut before the first stop string.
   */
  public String completion(Result result, Set<Integer> stopIds, List<String> stops) {
    int[] ids = result.tokens();
    int n = ids.length;
    if (n > 0 && Result.STOP.equals(result.finishReason()) && stopIds.contains(ids[n - 1])) {
      n--;
    }
    String text = decode(Arrays.copyOf(ids, n));
    int cut = stopAt(text, stops);
    return cut >= 0 ? text.substring(0, cut) : text;
  }

  private String decode(int[] ids) {
    return tokenizer.decode(ids, true);
  }

  /** Where the earliest stop string starts in {@code text}, or -1. */
  public static int stopAt(String text, List<String> stops) {
    int first = -1;
    for (String s : stops) {
      int i = text.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) {
        first = i;
      }
    }
    return first;
  }
}
