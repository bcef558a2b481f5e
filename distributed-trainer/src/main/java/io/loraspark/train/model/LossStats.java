package io.loraspark.train.model;

/**
 * Per-group causal-LM loss of one batch.
 *
 * @param nllSums summed next-token negative log-likelihood in nats, per group
 * @param counts number of scored tokens, per group
 */
public record LossStats(double[] nllSums, long[] counts) {

  /** The mean loss of group {@code g}, NaN when it scored no token. */
  public double mean(int g) {
    return counts[g] == 0 ? Double.NaN : nllSums[g] / counts[g];
  }

  /** Sum over all groups of the NLL. */
  public double totalNll() {
    double s = 0;
    for (double v : nllSums) {
      s += v;
    }
    return s;
  }

  /** Total scored tokens over all groups. */
  public long totalCount() {
    long s = 0;
    for (long c : counts) {
      s += c;
    }
    return s;
  }
}
