package io.loraspark.train.bench;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;

/**
 * Floating-point operations of one LoRA training step, counted as the GEMMs a step needs (a
 * multiply-add is 2 FLOPs; elementwise work is not counted):
 *
 * <pre>
 *   FLOPs = N · (4·P + 12·L·T·NH·HD + 6·Σ_modules R·(in + out))
 * </pre>
 *
 * with N the tokens of the (fused) batch and P the frozen matmul parameters (the seven projections
 * of every layer plus lm_head). Frozen weights get no weight gradient, so they cost 2·P forward and
 * 2·P for the input gradient, not the 6·P of full training. Attention counts the full T×T score
 * matrix (QKᵀ and PV forward, four GEMMs backward), as both this engine and the PyTorch peer
 * compute it without skipping the causally masked half. Each LoRA module costs 2·R·(in+out) forward
 * and 4·R·(in+out) backward (dA, dB, the rank-R intermediate and the input gradient).
 */
public final class FlopCount {
  /** The formula as reported in the bench output. */
  public static final String FORMULA =
      "N*(4*P_frozen_matmul + 12*L*T*NH*HD + 6*sum_modules R*(in+out))";

  private FlopCount() {}

  /** P: parameters of the frozen matmuls (q, k, v, o, gate, up, down of every layer, lm_head). */
  public static long frozenMatmulParams(ModelConfig c) {
    long perLayer = 0;
    for (Projection p : Projection.values()) {
      perLayer += (long) p.inFeatures(c) * p.outFeatures(c);
    }
    return perLayer * c.numLayers() + (long) c.vocabSize() * c.hiddenSize();
  }

  /** Σ R·(in + out) over the adapted modules of one adapter. */
  public static long loraParams(ModelConfig c, BenchSpec s) {
    long perLayer = 0;
    for (Projection p : s.targets()) {
      perLayer += (long) s.rank() * (p.inFeatures(c) + p.outFeatures(c));
    }
    return perLayer * c.numLayers();
  }

  /** FLOPs of one training step over {@code tokens} tokens of sequence length T. */
  public static double perStep(ModelConfig c, BenchSpec s, long tokens) {
    double attention = 12.0 * c.numLayers() * s.seq() * c.qDim();
    return tokens * (4.0 * frozenMatmulParams(c) + attention + 6.0 * loraParams(c, s));
  }
}
