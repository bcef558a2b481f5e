package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.util.List;

/**
 * The shape of one LoRA adapter, as PEFT's {@code LoraConfig} describes it: {@code y = W x + b + s
 * · B(A(dropout(x)))} on every targeted projection of every layer.
 *
 * @param rank r, the inner dimension of A [r, in] and B [out, r]
 * @param alpha lora_alpha; the scaling s is alpha / r, or alpha / sqrt(r) with rsLoRA
 * @param dropout probability of zeroing an input of the low-rank branch while training, in [0, 1)
 * @param targets the projections that carry the adapter, in layer order
 * @param rsLora use rank-stabilised scaling (Kalajdzievski 2023, arXiv:2312.03732)
 */
public record LoraConfig(
    int rank, double alpha, double dropout, List<Projection> targets, boolean rsLora)
    implements java.io.Serializable {

  public LoraConfig {
    ModelConfig.require(rank > 0, "rank must be > 0 but was %d", rank);
    ModelConfig.require(alpha > 0, "alpha must be > 0 but was %s", alpha);
    ModelConfig.require(
        dropout >= 0 && dropout < 1, "dropout must be in [0, 1) but was %s", dropout);
    ModelConfig.require(!targets.isEmpty(), "targets must name at least one projection");
    targets = targets.stream().distinct().sorted().toList();
  }

  /** s: the factor applied to the low-rank branch. */
  public double scaling() {
    return rsLora ? alpha / Math.sqrt(rank) : alpha / rank;
  }

  /** Whether projection {@code p} carries this adapter. */
  public boolean targets(Projection p) {
    return targets.contains(p);
  }
}
