package io.loraspark.pipeline.sweep;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.lora.LoraVariant;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What one executor needs for a sweep, estimated before any task starts, so that a plan that cannot
 * fit is refused up front with the numbers instead of dying of an off-heap allocation failure hours
 * in. One executor holds one base copy (FP32, or its projections as int8 / NF4 codes plus one FP32
 * dequantisation buffer per projection shape and task); each concurrently running task adds, per
 * adapter, its weights + gradients + two AdamW moments (16 bytes per parameter at the module rank;
 * 28 for AdaLoRA, at its initial rank, with its three importance averages), the FP32 state its
 * method keeps per targeted projection (Delta-LoRA's frozen snapshot A_K, B_K: r·(out + in); DoRA's
 * and PiSSA's own dequantised W [out, in] on a quantized or bf16 base) and the activations of its
 * micro-batch (kept for the hand-written backward; in bf16 also the task thread's bf16 copies of
 * the GEMMs' activation operands). A bf16 training base holds its projections as two packed bf16
 * copies and no fp32 one, and its LM head the same way: the bytes of the FP32 base, also when it
 * was quantized (bf16 packs the dequantised values instead of keeping the codes; auto keeps a
 * quantized base fp32), plus a tied head's two copies, since the embedding stays fp32.
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
   * @param baseQuant how the executor stores the base's projections
   * @param recompute whether backward recomputes activations (one layer's kept instead of L)
   * @param maxSeqLen the longest training row
   * @param tasksPerExecutor tasks one executor runs at once (its cores / spark.task.cpus)
   */
  public static MemoryPlan estimate(
      ModelConfig c,
      List<AdapterSpec> adapters,
      int adaptersPerTask,
      BaseQuant baseQuant,
      boolean recompute,
      int maxSeqLen,
      int tasksPerExecutor) {
    return estimate(
        c,
        adapters,
        adaptersPerTask,
        baseQuant,
        Precision.FP32,
        recompute,
        maxSeqLen,
        tasksPerExecutor);
  }

  /**
   * Estimates the plan as {@link #estimate(ModelConfig, List, int, BaseQuant, boolean, int, int)}
   * does, for the frozen GEMMs in {@code precision} (auto counted as the bf16 it may become).
   */
  public static MemoryPlan estimate(
      ModelConfig c,
      List<AdapterSpec> adapters,
      int adaptersPerTask,
      BaseQuant baseQuant,
      Precision precision,
      boolean recompute,
      int maxSeqLen,
      int tasksPerExecutor) {
    // bf16 on a quantized base packs its dequantised values in place of the codes
    BaseQuant stored = precision == Precision.BF16 ? BaseQuant.NONE : baseQuant;
    long base = baseBytes(c, stored, Math.max(1, tasksPerExecutor));
    boolean bf16 = stored == BaseQuant.NONE && precision != Precision.FP32; // a packed bf16 base
    if (bf16 && c.tieWordEmbeddings()) {
      base += 4L * c.vocabSize() * c.hiddenSize(); // the head's packed copies beside the embedding
    }
    long state = 0;
    long activations = 0;
    for (AdapterSpec a : adapters) {
      LoraVariant variant = a.lora().method().variant();
      boolean ownW = (baseQuant != BaseQuant.NONE || bf16) && variant.needsBase(); // [out, in]
      int r = variant.moduleRank(a.lora().rank()); // AdaLoRA's init_r
      long bytes = 0;
      for (Projection p : a.lora().targets()) {
        int in = p.inFeatures(c);
        int out = p.outFeatures(c);
        long perLayer = variant.stateBytes(r, in, out) + (ownW ? 4L * in * out : 0);
        bytes += perLayer * c.numLayers();
      }
      state = Math.max(state, bytes);
      long tokens = (long) a.train().batchSize() * maxSeqLen;
      long perToken =
          4 * activationFloatsPerToken(c, maxSeqLen, recompute)
              + (bf16 ? bf16CopyBytesPerToken(c, maxSeqLen) : 0);
      activations = Math.max(activations, tokens * perToken);
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

  /**
   * The base as one executor holds it: FP32, or int8 codes + a scale per row, or NF4 codes (½ byte)
   * + an 8-bit scale per 64 values (+ 4 bytes per 256 scales), plus per task one FP32
   * dequantisation buffer of each distinct projection shape; the rest stays FP32.
   */
  static long baseBytes(ModelConfig c, BaseQuant quant, int tasks) {
    if (quant == BaseQuant.NONE) {
      return 4L * baseParams(c);
    }
    long linear = 0;
    long rows = 0;
    java.util.Set<List<Integer>> shapes = new java.util.HashSet<>();
    long scratch = 0;
    for (Projection p : Projection.values()) {
      long n = (long) p.inFeatures(c) * p.outFeatures(c);
      linear += n * c.numLayers();
      rows += (long) p.outFeatures(c) * c.numLayers();
      if (shapes.add(List.of(p.outFeatures(c), p.inFeatures(c)))) {
        scratch += 4 * n;
      }
    }
    long stored =
        quant == BaseQuant.INT8
            ? linear + 4 * rows
            : linear / 2 + linear / 64 + 4 * linear / (64 * 256) + 8L * 7 * c.numLayers();
    return 4L * (baseParams(c) - linear) + stored + tasks * scratch;
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
   * Floats per token of a training {@code Workspace}, buffer by buffer: each layer's saved
   * activations (normed inputs, q/k/v and their head layouts, attention probabilities and output,
   * the MLP's gate/up/σ/product: 3C + 4q + 4kv + NH·T + 4F + 2), for every layer or, with {@code
   * recompute}, for one; the backward scratch (4C + 4q + 4kv + NH·T + 3F); the L+1 residual
   * streams, the attention mask, the rotary tables and their scratch, the final norm and the logits
   * (whose gradient is formed in place).
   */
  static long activationFloatsPerToken(ModelConfig c, int seqLen, boolean recompute) {
    long h = c.hiddenSize();
    long q = (long) c.numHeads() * c.headDim();
    long kv = (long) c.numKvHeads() * c.headDim();
    long f = c.intermediateSize();
    long scores = (long) c.numHeads() * seqLen;
    long layer = 3 * h + 4 * q + 4 * kv + scores + 4 * f + 2;
    long scratch = 4 * h + 4 * q + 4 * kv + scores + 3 * f;
    long fixed = (c.numLayers() + 1) * h + scores + 4 * q + 4 * kv + h + 1 + c.vocabSize();
    return layer * (recompute ? 1 : c.numLayers()) + scratch + fixed;
  }

  /**
   * Bytes per token of a bf16 task thread's two copies of activations, each grown to its largest
   * operand: the first holds A of every bf16 GEMM (at most dLogits' V, the MLP's F or attention's
   * NH·T scores per token), the second attention's other operand (queries: NH·HD per token).
   */
  static long bf16CopyBytesPerToken(ModelConfig c, int seqLen) {
    long q = (long) c.numHeads() * c.headDim();
    long widest =
        Math.max(
            Math.max(c.vocabSize(), c.intermediateSize()),
            Math.max((long) c.numHeads() * seqLen, Math.max(c.hiddenSize(), q)));
    return 2 * (widest + q);
  }

  static String human(long bytes) {
    if (bytes >= 1L << 30) {
      return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }
    return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
  }
}
