package io.loraspark.train.decode;

/**
 * One generation request: its prompt, adapters and sampling, and optional hooks.
 *
 * @param promptIds the prompt's token ids (BOS included when the model wants one), 1 to
 *     max_position_embeddings of them
 * @param mix the adapters its rows use ({@link AdapterMix#NONE} for the base)
 * @param params how its tokens are picked and when it ends
 * @param stop ends the request when it returns true for the tokens so far (stop strings: the caller
 *     decodes text); null for none
 * @param sink receives each token as it is picked (streaming); null for none
 */
public record Request(
    int[] promptIds, AdapterMix mix, SamplingParams params, StopCheck stop, TokenSink sink) {

  public Request {
    promptIds = promptIds.clone();
    if (mix == null) {
      mix = AdapterMix.NONE;
    }
  }

  /** A request with no hooks. */
  public Request(int[] promptIds, AdapterMix mix, SamplingParams params) {
    this(promptIds, mix, params, null, null);
  }

  /** Decides after each token whether the request is done (e.g. its text ends a stop string). */
  public interface StopCheck {
    /**
     * @param tokens the generated ids so far; only [0, count) are valid
     */
    boolean stop(int[] tokens, int count);
  }

  /** Receives a request's tokens as they are picked, on the decoding thread. */
  public interface TokenSink {
    /**
     * @param logprob the token's log-probability, or NaN when not requested
     */
    void token(int id, double logprob);
  }
}
