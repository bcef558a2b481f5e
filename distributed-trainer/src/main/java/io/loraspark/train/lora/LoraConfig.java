package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.util.List;

/**
 * The shape of one LoRA adapter, as PEFT's {@code LoraConfig} describes it: {@code y = W x + b + s
 * · B(A(dropout(x)))} on every targeted projection of every layer, or its method's variant of that
 * branch.
 *
 * @param rank r, the inner dimension of A [r, in] and B [out, r] (VeRA's r; AdaLoRA's target_r, its
 *     modules starting at init_r, see {@link LoraVariant#moduleRank})
 * @param alpha lora_alpha; the scaling s is alpha / r, or alpha / sqrt(r) with rsLoRA (AdaLoRA:
 *     alpha / init_r; VeRA: unscaled; see {@link LoraVariant#scaling})
 * @param dropout probability of zeroing an input of the low-rank branch while training, in [0, 1)
 * @param targets the projections that carry the adapter, in layer order
 * @param rsLora use rank-stabilised scaling (Kalajdzievski 2023, arXiv:2312.03732)
 * @param method the member of the LoRA family (plain LoRA, LoRA-FA, DoRA, PiSSA, VeRA, AdaLoRA,
 *     Delta-LoRA); its {@link LoraVariant} decides what trains and how the branch computes
 */
public record LoraConfig(
    int rank,
    double alpha,
    double dropout,
    List<Projection> targets,
    boolean rsLora,
    LoraMethod method)
    implements java.io.Serializable {

  /** A plain LoRA adapter. */
  public LoraConfig(
      int rank, double alpha, double dropout, List<Projection> targets, boolean rsLora) {
    this(rank, alpha, dropout, targets, rsLora, LoraMethod.LORA);
  }

  public LoraConfig {
    ModelConfig.require(method != null, "method must be one of %s", List.of(LoraMethod.keys()));
    ModelConfig.require(rank > 0, "rank must be > 0 but was %d", rank);
    ModelConfig.require(alpha > 0, "alpha must be > 0 but was %s", alpha);
    ModelConfig.require(
        dropout >= 0 && dropout < 1, "dropout must be in [0, 1) but was %s", dropout);
    ModelConfig.require(
        method != LoraMethod.DELTA_LORA || dropout == 0,
        "dropout must be 0 for method delta-lora (the paper removes dropout from its branch) but"
            + " was %s",
        dropout);
    ModelConfig.require(!targets.isEmpty(), "targets must name at least one projection");
    targets = targets.stream().distinct().sorted().toList();
  }

  /**
   * s: the factor applied to the low-rank branch, by the method's rule ({@link
   * LoraVariant#scaling}).
   */
  public double scaling() {
    return method.variant().scaling(rank, alpha, rsLora);
  }

  /** This config with another method. */
  public LoraConfig withMethod(LoraMethod m) {
    return new LoraConfig(rank, alpha, dropout, targets, rsLora, m);
  }

  /** Whether projection {@code p} carries this adapter. */
  public boolean targets(Projection p) {
    return targets.contains(p);
  }
}
