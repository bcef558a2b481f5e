package io.loraspark.prep.job;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.shard.ShardSchema;
import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * One pass over the tokenized outcomes: how many of each kind ({@code ok} or a reason code), the
 * length histogram of accepted examples (for exact percentiles), truncations and scored tokens.
 * Used with {@code RDD.aggregate}: {@link #add} per outcome, {@link #merge} across partitions.
 */
final class TokenizedSummary implements Serializable {
  private static final long serialVersionUID = 1L;

  final Map<String, Long> kinds = new HashMap<>();
  final Map<Integer, Long> lengths = new HashMap<>();
  long truncated;
  long labelTokens;

  TokenizedSummary add(Outcome o) {
    kinds.merge(o.kind(), 1L, Long::sum);
    if (o instanceof Outcome.Tokenized t) {
      lengths.merge(t.inputIds().length, 1L, Long::sum);
      truncated += t.truncated() ? 1 : 0;
      for (int l : t.labels()) {
        labelTokens += l != ShardSchema.IGNORE_INDEX ? 1 : 0;
      }
    }
    return this;
  }

  TokenizedSummary merge(TokenizedSummary other) {
    other.kinds.forEach((k, v) -> kinds.merge(k, v, Long::sum));
    other.lengths.forEach((k, v) -> lengths.merge(k, v, Long::sum));
    truncated += other.truncated;
    labelTokens += other.labelTokens;
    return this;
  }

  /**
   * p50/p90/p99 (linear interpolation between closest ranks, like Spark's {@code percentile}), max
   * and mean of the accepted lengths, plus truncated and scored-token totals.
   */
  ObjectNode tokenStats() {
    TreeMap<Integer, Long> sorted = new TreeMap<>(lengths);
    long n = sorted.values().stream().mapToLong(Long::longValue).sum();
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    out.put("p50", percentile(sorted, n, 0.5));
    out.put("p90", percentile(sorted, n, 0.9));
    out.put("p99", percentile(sorted, n, 0.99));
    out.put("max", sorted.isEmpty() ? 0 : sorted.lastKey());
    double sum = 0;
    for (Map.Entry<Integer, Long> e : sorted.entrySet()) {
      sum += (double) e.getKey() * e.getValue();
    }
    out.put("mean", n == 0 ? 0.0 : sum / n);
    out.put("truncated", truncated);
    out.put("label_tokens", labelTokens);
    return out;
  }

  static double percentile(TreeMap<Integer, Long> sorted, long n, double p) {
    if (n == 0) {
      return 0.0;
    }
    double position = p * (n - 1);
    long lower = (long) Math.floor(position);
    long upper = (long) Math.ceil(position);
    double lo = valueAt(sorted, lower);
    double hi = valueAt(sorted, upper);
    return lo + (position - lower) * (hi - lo);
  }

  /** The value at 0-based rank {@code rank} of the sorted multiset. */
  private static int valueAt(TreeMap<Integer, Long> sorted, long rank) {
    long seen = 0;
    for (Map.Entry<Integer, Long> e : sorted.entrySet()) {
      seen += e.getValue();
      if (rank < seen) {
        return e.getKey();
      }
    }
    throw new IllegalStateException("rank " + rank + " beyond " + seen + " values");
  }
}
