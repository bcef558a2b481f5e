package io.loraspark.train.decode;

import java.util.Set;

/**
 * How a request picks its next tokens, with the meanings of Hugging Face's {@code generate} and
 * OpenAI's API: greedy when {@code temperature} is 0, else sampling from the softmax of logits /
 * temperature restricted to the {@code topK} most likely tokens (0: all) and then to the smallest
 * set whose probability reaches {@code topP} (1: all). The same seed gives the same tokens.
 *
 * @param maxNewTokens the most tokens to generate, ≥ 0
 * @param temperature ≥ 0; 0 is greedy (argmax, ties to the lowest id)
 * @param topK ≥ 0; 0 keeps every token
 * @param topP in (0, 1]
 * @param seed seeds the request's own random stream
 * @param stopIds token ids that end the request (generated, then finished): EOS and the like
 * @param logprobs whether to report each chosen token's log-probability under the model (unmodified
 *     by temperature, top-k or top-p, as vLLM reports them)
 */
public record SamplingParams(
    int maxNewTokens,
    double temperature,
    int topK,
    double topP,
    long seed,
    Set<Integer> stopIds,
    boolean logprobs) {

  public SamplingParams {
    stopIds = Set.copyOf(stopIds);
    require(maxNewTokens >= 0, "max_new_tokens must be >= 0 but was " + maxNewTokens);
    require(
        Double.isFinite(temperature) && temperature >= 0,
        "temperature must be a finite number >= 0 but was " + temperature);
    require(topK >= 0, "top_k must be >= 0 (0: no limit) but was " + topK);
    require(topP > 0 && topP <= 1, "top_p must be in (0, 1] but was " + topP);
  }

  /** Greedy decoding of at most {@code maxNewTokens}, stopping at {@code stopIds}. */
  public static SamplingParams greedy(int maxNewTokens, Set<Integer> stopIds) {
    return new SamplingParams(maxNewTokens, 0, 0, 1, 0, stopIds, false);
  }

  public boolean greedy() {
    return temperature == 0 || topK == 1;
  }

  private static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }
}
