package io.loraspark.train.decode;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks one request's next tokens from its logits ({@link SamplingParams}), from the request's own
 * seeded stream, so the same seed gives the same text whatever else is being decoded. Keeps its
 * scratch arrays: no allocation per token after the first.
 */
final class Sampler {
  private final SamplingParams params;
  private final SplittableRandom random;
  private float[] probs = new float[0]; // [V]
  private float[] sorted = new float[0]; // [V], for top-k / top-p thresholds

  Sampler(SamplingParams params) {
    this.params = params;
    this.random = new SplittableRandom(params.seed());
  }

  /** The next token from the logits at {@code off} (V floats). */
  int next(float[] logits, int off, int vocab) {
    if (params.greedy()) {
      return argmax(logits, off, vocab);
    }
    if (probs.length < vocab) {
      probs = new float[vocab];
      sorted = new float[vocab];
    }
    float max = logits[off + argmax(logits, off, vocab)];
    double invT = 1.0 / params.temperature();
    for (int i = 0; i < vocab; i++) {
      probs[i] = (float) StrictMath.exp((logits[off + i] - max) * invT);
    }
    float cutoff = cutoff(vocab);
    double kept = 0;
    for (int i = 0; i < vocab; i++) {
      if (probs[i] < cutoff) {
        probs[i] = 0;
      }
      kept += probs[i];
    }
    double target = random.nextDouble() * kept;
    double acc = 0;
    int last = -1;
    for (int i = 0; i < vocab; i++) {
      if (probs[i] == 0) {
        continue;
      }
      acc += probs[i];
      last = i;
      if (acc > target) {
        return i;
      }
    }
    return last; // rounding left target at the very top
  }

  /**
   * The smallest kept probability: that of the top-k-th token, raised to the last member of the
   * top-p nucleus taken within those k (Hugging Face's TopK then TopP warpers); 0 when neither
   * limits. Tokens tied at the cutoff are all kept.
   */
  private float cutoff(int vocab) {
    boolean limitK = params.topK() > 0 && params.topK() < vocab;
    boolean limitP = params.topP() < 1;
    if (!limitK && !limitP) {
      return 0f;
    }
    System.arraycopy(probs, 0, sorted, 0, vocab);
    Arrays.sort(sorted, 0, vocab); // ascending
    int keep = limitK ? params.topK() : vocab;
    float cutoff = sorted[vocab - keep];
    if (limitP) {
      double total = 0;
      for (int i = vocab - keep; i < vocab; i++) {
        total += sorted[i];
      }
      double mass = 0;
      for (int i = vocab - 1; i >= vocab - keep; i--) {
        mass += sorted[i];
        if (mass >= params.topP() * total) {
          return Math.max(cutoff, sorted[i]);
        }
      }
    }
    return cutoff;
  }

  /** The log-probability of {@code token} under softmax(logits) (temperature 1, no filters). */
  static double logprob(float[] logits, int off, int vocab, int token) {
    float max = logits[off + argmax(logits, off, vocab)];
    double sum = 0;
    for (int i = 0; i < vocab; i++) {
      sum += StrictMath.exp(logits[off + i] - max);
    }
    return logits[off + token] - max - StrictMath.log(sum);
  }

  /** The index of the largest logit; ties go to the lowest id, as torch.argmax. */
  static int argmax(float[] logits, int off, int vocab) {
    int best = 0;
    float bestValue = logits[off];
    for (int i = 1; i < vocab; i++) {
      if (logits[off + i] > bestValue) {
        bestValue = logits[off + i];
        best = i;
      }
    }
    return best;
  }
}
