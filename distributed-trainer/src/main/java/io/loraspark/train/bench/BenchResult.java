package io.loraspark.train.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The measurements of one benchmark run, printed as one JSON line.
 *
 * @param spec what was run
 * @param blas the OpenBLAS kernel in use
 * @param tokensPerSecond B·T·K tokens per second of wall time over the timed steps
 * @param adapterTokensPerSecond tokens/s credited to adapters (equal to tokensPerSecond: every
 *     token of the fused batch trains exactly one adapter)
 * @param stepMs median step time
 * @param forwardMs median forward + loss time
 * @param backwardMs median backward time
 * @param optimizerMs median gradient clipping + AdamW + zero-grad time, all adapters
 * @param flopsPerStep {@link FlopCount#perStep}
 * @param gemmPeakGflops measured float32 GEMM peak with the same threads
 * @param mfu achieved FLOP/s over the GEMM peak
 * @param memory measured peak and the estimate it is compared with
 * @param precision the frozen projections' GEMM precision that ran: fp32 or bf16
 * @param gemmImpl what ran those GEMMs: oneDNN's implementation name for bf16, OpenBLAS for fp32
 */
public record BenchResult(
    BenchSpec spec,
    BlasInfo blas,
    double tokensPerSecond,
    double adapterTokensPerSecond,
    double stepMs,
    double forwardMs,
    double backwardMs,
    double optimizerMs,
    double flopsPerStep,
    double gemmPeakGflops,
    double mfu,
    Memory memory,
    String precision,
    String gemmImpl) {

  /**
   * Resident memory: the measured peak against {@code runtime + base + K·adapter + activations}.
   *
   * @param peakResidentBytes VmHWM at the end of the run
   * @param runtimeBytes VmRSS after the JVM, ND4J and the kernel warm-up started and their garbage
   *     was collected, before the model was built
   * @param baseBytes frozen weights, with their packed bf16 copies in bf16
   * @param perAdapterBytes one adapter's weights, gradients, two AdamW moments and AdamW scratch
   * @param activationBytes the workspace of the fused K·B-row batch (saved activations + scratch)
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
    o.put("precision", precision);
    o.put("gemm_impl", gemmImpl);
    o.put("tokens_per_s", round(tokensPerSecond));
    if (s.adapters() > 1) {
      o.put("adapter_tokens_per_s", round(adapterTokensPerSecond));
    }
    o.put("step_ms", round(stepMs));
    o.put("forward_ms", round(forwardMs));
    o.put("backward_ms", round(backwardMs));
    o.put("optimizer_ms", round(optimizerMs));
    o.put("flops_per_step", flopsPerStep);
    o.put("flops_formula", FlopCount.FORMULA);
    o.put("gemm_peak_gflops", round(gemmPeakGflops));
    o.put("achieved_gflops", round(flopsPerStep / (stepMs / 1e3) / 1e9));
    o.put("mfu", Math.round(mfu * 1000) / 1000.0);
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
