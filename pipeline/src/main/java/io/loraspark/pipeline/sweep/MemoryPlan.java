package io.loraspark.pipeline.sweep;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What one executor needs for a sweep, estimated before any task starts, so that a plan that cannot
 * fit is refused up front with the numbers instead of dying of an off-heap allocation failure hours
 * in. One executor holds one FP32 base copy; each concurrently running task adds, per adapter, its
 * weights + gradients + two AdamW moments (16 bytes per parameter) and the activations of its
 * micro-batch (kept for the hand-written backward).
 */
public record MemoryPlan(
    long baseBytes,
    long perAdapterStateBytes,
    long perAdapterActivationBytes,
    int adaptersPerTask,
    int tasksPerExecutor) {

  private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([kKmMgGtT]?)[bB]?");

  /** Total bytes one executor needs. */
  public long totalBytes() {
    return baseBytes
        + (long) tasksPerExecutor
            * adaptersPerTask
            * (perAdapterStateBytes + perAdapterActivationBytes);
  }

  /**
   * Estimates the plan for the largest adapter of the sweep.
   *
   * @param maxSeqLen the longest training row
   * @param tasksPerExecutor tasks one executor runs at once (its cores / spark.task.cpus)
   */
  public static MemoryPlan estimate(
      ModelConfig c,
      List<AdapterSpec> adapters,
      int adaptersPerTask,
      int maxSeqLen,
      int tasksPerExecutor) {
    long base = 4L * baseParams(c);
    long state = 0;
    long activations = 0;
    for (AdapterSpec a : adapters) {
      long params = 0;
      for (Projection p : a.lora().targets()) {
        params += (long) a.lora().rank() * (p.inFeatures(c) + p.outFeatures(c)) * c.numLayers();
      }
      state = Math.max(state, 16 * params);
      long tokens = (long) a.train().batchSize() * maxSeqLen;
      activations = Math.max(activations, 4 * tokens * activationFloatsPerToken(c, maxSeqLen));
    }
    return new MemoryPlan(
        base,
        state,
        activations,
        Math.min(adaptersPerTask, adapters.size()),
        Math.max(1, tasksPerExecutor));
  }

  /** Throws when the plan exceeds {@code budgetBytes}, with the numbers and what to change. */
  public void check(long budgetBytes, String budgetSource) {
    if (totalBytes() > budgetBytes) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "the sweep needs about %s per executor (base model %s + %d tasks x %d adapters x"
                  + " (%s adapter state + %s activations)) but the executor may use %s (%s);"
                  + " lower adapters_per_task or batch_size, or raise the limit",
              human(totalBytes()),
              human(baseBytes),
              tasksPerExecutor,
              adaptersPerTask,
              human(perAdapterStateBytes),
              human(perAdapterActivationBytes),
              human(budgetBytes),
              budgetSource));
    }
  }

  /** Parses a JavaCPP/JVM size ("1500m", "10g", "123456"). */
  public static OptionalLong parseSize(String s) {
    Matcher m = SIZE.matcher(s.trim());
    if (!m.matches()) {
      return OptionalLong.empty();
    }
    long v = Long.parseLong(m.group(1));
    int shift =
        switch (m.group(2).toLowerCase(Locale.ROOT)) {
          case "k" -> 10;
          case "m" -> 20;
          case "g" -> 30;
          case "t" -> 40;
          default -> 0;
        };
    return OptionalLong.of(v << shift);
  }

  /** The value of {@code -Dname=...} in a JVM option string, if present. */
  public static OptionalLong sizeOption(String javaOptions, String name) {
    if (javaOptions == null) {
      return OptionalLong.empty();
    }
    Matcher m = Pattern.compile("-D" + Pattern.quote(name) + "=(\\S+)").matcher(javaOptions);
    return m.find() ? parseSize(m.group(1)) : OptionalLong.empty();
  }

  static long baseParams(ModelConfig c) {
    long perLayer = 2L * c.hiddenSize();
    for (Projection p : Projection.values()) {
      perLayer += (long) p.inFeatures(c) * p.outFeatures(c);
    }
    long embed = (long) c.vocabSize() * c.hiddenSize();
    return perLayer * c.numLayers() + embed * (c.tieWordEmbeddings() ? 1 : 2) + c.hiddenSize();
  }

  /**
   * Floats kept per token: per layer the residual stream, norms, q/k/v/attention output, the MLP's
   * gate/up/activation and their gradients' scratch, and the attention probabilities; plus the
   * logits over the vocabulary and their gradient.
   */
  static long activationFloatsPerToken(ModelConfig c, int seqLen) {
    long kv = (long) c.numKvHeads() * c.headDim();
    long q = (long) c.numHeads() * c.headDim();
    long perLayer =
        8L * c.hiddenSize()
            + 2 * q
            + 2 * kv
            + 4L * c.intermediateSize()
            + 2L * c.numHeads() * seqLen;
    return perLayer * c.numLayers() + 2L * c.vocabSize();
  }

  static String human(long bytes) {
    if (bytes >= 1L << 30) {
      return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }
    return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
  }
}
