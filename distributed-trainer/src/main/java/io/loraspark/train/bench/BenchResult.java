package io.loraspark.train.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The measurements of one benchmark run, printed as one JSON line.
 *
 * @param spec what was run
 * @param base where the frozen weights came from: {@code synthetic} or the checkpoint directory
 * @param blas the OpenBLAS kernel in use
 * @param tokensPerSecond B·T·K tokens per second of wall time over the timed steps (all credited to
 *     adapters: every token of the fused batch trains exactly one adapter)
 * @param split median step time and its phases
 * @param finalLoss the mean loss over every adapter's tokens in the last timed step
 * @param flopsPerStep {@link FlopCount#perStep}
 * @param peak measured GEMM peaks with the same threads (fp32 always, bf16 in a bf16 run)
 * @param memory measured peak and the estimate it is compared with
 * @param precision the frozen projections' GEMM precision that ran: fp32 or bf16
 * @param gemmImpl what ran those GEMMs: oneDNN's implementation name for bf16, OpenBLAS for fp32
 */
public record BenchResult(
    BenchSpec spec,
    String base,
    BlasInfo blas,
    double tokensPerSecond,
    Split split,
    double finalLoss,
    double flopsPerStep,
    GemmPeak peak,
    Memory memory,
    String precision,
    String gemmImpl) {

  /**
   * Median times in ms over the timed steps.
   *
   * @param stepMs a whole step
   * @param forwardMs forward + loss
   * @param backwardMs backward
   * @param optimizerMs gradient clipping + AdamW + zero-grad, all adapters
   */
  public record Split(double stepMs, double forwardMs, double backwardMs, double optimizerMs) {}

  /** The GEMM peak MFU is measured against: bf16's in a bf16 run, fp32's otherwise. */
  public double gemmPeakGflops() {
    return peak.of(bf16());
  }

  /** Achieved FLOP/s over {@link #gemmPeakGflops()}. */
  public double mfu() {
    return flopsPerStep / (split.stepMs() / 1e3) / (gemmPeakGflops() * 1e9);
  }

  private boolean bf16() {
    return "bf16".equals(precision);
  }

  /**
   * Resident memory: the measured peak against {@code runtime + base + K·adapter + activations}.
   *
   * @param peakResidentBytes VmHWM at the end of the run
   * @param runtimeBytes VmRSS after the JVM, ND4J and the kernel warm-up started and their garbage
   *     was collected, before the model was built
   * @param baseBytes frozen weights, with their packed bf16 copies in bf16
   * @param perAdapterBytes one adapter's weights, gradients, two AdamW moments and AdamW scratch
   * @param activationBytes the workspace of the fused K·B-row batch (saved activations + scratch),
   *     plus in bf16 the thread's bf16 copies of activations
   */
  public record Memory(
      long peakResidentBytes,
      long runtimeBytes,
      long baseBytes,
      long perAdapterBytes,
      long activationBytes) {

    /** runtime + base + K · perAdapter + activations. */
    public long estimateBytes(int adapters) {
      return runtimeBytes + baseBytes + adapters * perAdapterBytes + activationBytes;
    }
  }

  /** Writes a model's shape (hidden, layers, heads, kv_heads, ffn, vocab, tied) into {@code o}. */
  static void putShape(ObjectNode o, io.loraspark.train.model.ModelConfig c) {
    o.put("hidden", c.hiddenSize());
    o.put("layers", c.numLayers());
    o.put("heads", c.numHeads());
    o.put("kv_heads", c.numKvHeads());
    o.put("ffn", c.intermediateSize());
    o.put("vocab", c.vocabSize());
    o.put("tied", c.tieWordEmbeddings());
  }

  /** One JSON object: spec, throughput, step split, FLOPs/MFU, memory and the BLAS kernel. */
  public String toJson() {
    ObjectMapper json = new ObjectMapper();
    ObjectNode o = json.createObjectNode();
    BenchSpec s = spec;
    putShape(o.putObject("model"), s.modelConfig());
    o.put("batch", s.batch());
    o.put("seq", s.seq());
    o.put("rank", s.rank());
    o.put("targets", String.join(",", s.targets().stream().map(p -> p.shortName()).toList()));
    o.put("adapters", s.adapters());
    o.put("threads", s.threads());
    o.put("op_threads", s.opThreads());
    o.put("steps", s.steps());
    o.put("warmup", s.warmup());
    o.put("base_quant", s.baseQuant().key());
    o.put("recompute_activations", s.recompute());
    o.put("base", base);
    o.put("precision", precision);
    o.put("gemm_impl", gemmImpl);
    o.put("tokens_per_s", round(tokensPerSecond));
    if (s.adapters() > 1) {
      o.put("adapter_tokens_per_s", round(tokensPerSecond));
    }
    o.put("step_ms", round(split.stepMs()));
    o.put("forward_ms", round(split.forwardMs()));
    o.put("backward_ms", round(split.backwardMs()));
    o.put("optimizer_ms", round(split.optimizerMs()));
    o.put("final_loss", Math.round(finalLoss * 1e4) / 1e4);
    o.put("flops_per_step", flopsPerStep);
    o.put("flops_formula", FlopCount.FORMULA);
    o.put("gemm_peak_gflops", round(peak.fp32Gflops()));
    if (bf16()) {
      o.put("bf16_gemm_peak_gflops", round(peak.bf16Gflops()));
    }
    o.put("mfu_peak", bf16() ? "bf16_gemm_peak_gflops" : "gemm_peak_gflops");
    o.put("achieved_gflops", round(flopsPerStep / (split.stepMs() / 1e3) / 1e9));
    o.put("mfu", Math.round(mfu() * 1000) / 1000.0);
    o.put("peak_rss_mb", mb(memory.peakResidentBytes()));
    ObjectNode est = o.putObject("memory_estimate_mb");
    est.put("formula", "runtime + base + K*(adapter+grads+adamw m,v,scratch) + activations");
    est.put("runtime", mb(memory.runtimeBytes()));
    est.put("base", mb(memory.baseBytes()));
    est.put("per_adapter", mb(memory.perAdapterBytes()));
    est.put("activations", mb(memory.activationBytes()));
    est.put("total", mb(memory.estimateBytes(s.adapters())));
    o.put("openblas_core", blas.coreName());
    o.put("openblas_config", blas.config());
    o.put("openblas_library", blas.library());
    o.put("openblas_coretype_env", blas.coretypeEnv());
    o.put("java", System.getProperty("java.version"));
    o.put("kernels", io.loraspark.train.model.Transformer.kernels());
    o.put("kernel_threads", io.loraspark.train.model.Kernels.threads());
    return o.toString();
  }

  private static double round(double v) {
    return Math.round(v * 10) / 10.0;
  }

  private static double mb(long bytes) {
    return round(bytes / (1024.0 * 1024.0));
  }
}
