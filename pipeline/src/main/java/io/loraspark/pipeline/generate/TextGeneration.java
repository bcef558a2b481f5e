package io.loraspark.pipeline.generate;

import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.decode.AdapterMix;
import io.loraspark.train.decode.Request;
import io.loraspark.train.decode.SamplingParams;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The text side of generation over one tokenizer: a prompt becomes a {@link Request} whose stop ids
 * are the model's EOS ids (generation_config.json's, else the tokenizer config's) plus any given,
 * and whose stop strings end it as soon as the generated text contains one; its {@link
 * CompletionText} gives the completion text, without the stop id or string (OpenAI's convention).
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
   * A request and the text of its completion.
   *
   * @param text fed by the request's stop check as tokens are generated; read it once the request
   *     is done ({@link CompletionText#completion}), or while it runs ({@link CompletionText#take})
   */
  public record TextRequest(Request request, CompletionText text) {}

  /**
   * A request for {@code prompt} (BOS added as the tokenizer config says).
   *
   * @param params its stop ids are extended with the model's EOS ids
   * @param stops stop strings (none empty); the request ends once the text contains one
   */
  public TextRequest request(
      String prompt, AdapterMix mix, SamplingParams params, List<String> stops) {
    return request(tokenizer.encode(prompt, true), mix, params, stops, true, null);
  }

  /**
   * {@link #request(String, AdapterMix, SamplingParams, List)} for an already tokenized prompt.
   *
   * @param eos whether the model's EOS ids end the request too (false: only {@code params}' stop
   *     ids and the stop strings do)
   * @param onText called on the decoding thread when more completion text can be taken (null: none)
   */
  public TextRequest request(
      int[] promptIds,
      AdapterMix mix,
      SamplingParams params,
      List<String> stops,
      boolean eos,
      Runnable onText) {
    for (String s : stops) {
      if (s == null || s.isEmpty()) {
        throw new IllegalArgumentException("a stop string must not be empty");
      }
    }
    Set<Integer> stopIds = new HashSet<>(params.stopIds());
    if (eos) {
      stopIds.addAll(eosIds());
    }
    SamplingParams stopping =
        new SamplingParams(
            params.maxNewTokens(),
            params.temperature(),
            params.topK(),
            params.topP(),
            params.seed(),
            stopIds,
            params.logprobs());
    CompletionText text = new CompletionText(tokenizer, stopIds, stops, onText);
    return new TextRequest(new Request(promptIds, mix, stopping, text, null), text);
  }
}
