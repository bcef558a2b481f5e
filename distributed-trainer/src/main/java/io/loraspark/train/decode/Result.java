package io.loraspark.train.decode;

/**
 * A finished request.
 *
 * @param promptTokens the prompt's length
 * @param tokens the generated ids, a stop id included when one ended it
 * @param logprobs each token's log-probability, or null when not requested
 * @param finishReason {@code stop} (a stop id or stop check) or {@code length} (max new tokens or
 *     the context's end), OpenAI's words
 * @param prefillNanos submission to the end of the prompt's forward pass
 * @param firstTokenNanos submission to the first generated token (-1 when none)
 * @param totalNanos submission to the end
 */
public record Result(
    int promptTokens,
    int[] tokens,
    double[] logprobs,
    String finishReason,
    long prefillNanos,
    long firstTokenNanos,
    long totalNanos) {
  public static final String STOP = "stop";
  public static final String LENGTH = "length";
}
