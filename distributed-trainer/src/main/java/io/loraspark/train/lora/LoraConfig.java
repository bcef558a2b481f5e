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
 * @param selection which layers of the targeted projections carry the adapter and which modules
 *     have their own r and lora_alpha (PEFT's layers_to_transform, exclude_modules, regex
 *     target_modules, rank_pattern, alpha_pattern); {@link ModuleSelection#ALL} for training
 *     configs. Per-module ranks need a method whose {@link LoraVariant#perModuleRank} allows them
 * @param deltaLora Delta-LoRA's λ and K ({@link DeltaLoraParams#DEFAULTS} when null for that
 *     method); always null for every other method
 */
public record LoraConfig(
    int rank,
    double alpha,
    double dropout,
    List<Projection> targets,
    boolean rsLora,
    LoraMethod method,
    ModuleSelection selection,
    DeltaLoraParams deltaLora)
    implements java.io.Serializable {

  /** A plain LoRA adapter. */
  public LoraConfig(
      int rank, double alpha, double dropout, List<Projection> targets, boolean rsLora) {
    this(rank, alpha, dropout, targets, rsLora, LoraMethod.LORA);
  }

  /** An adapter on every layer of its targets, with one rank and alpha. */
  public LoraConfig(
      int rank,
      double alpha,
      double dropout,
      List<Projection> targets,
      boolean rsLora,
      LoraMethod method) {
    this(rank, alpha, dropout, targets, rsLora, method, ModuleSelection.ALL);
  }

  /** An adapter with its method's default settings (Delta-LoRA's λ and K). */
  public LoraConfig(
      int rank,
      double alpha,
      double dropout,
      List<Projection> targets,
      boolean rsLora,
      LoraMethod method,
      ModuleSelection selection) {
    this(rank, alpha, dropout, targets, rsLora, method, selection, null);
  }

  public LoraConfig {
    ModelConfig.require(method != null, "method must be one of %s", List.of(LoraMethod.keys()));
    selection = selection == null ? ModuleSelection.ALL : selection;
    if (method != LoraMethod.DELTA_LORA) {
      deltaLora = null;
    } else if (deltaLora == null) {
      deltaLora = DeltaLoraParams.DEFAULTS;
    }
    ModelConfig.require(
        !selection.hasPatterns() || method.variant().perModuleRank(),
        "rank_pattern and alpha_pattern are not supported for method %s (one rank and scaling for"
            + " every module); use lora, lora-fa, dora or delta-lora",
        method.key());
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
   * LoraVariant#scaling}), for every module that no rank or alpha pattern names ({@link
   * LoraWeights#scaling} gives each module's own).
   */
  public double scaling() {
    return method.variant().scaling(rank, alpha, rsLora);
  }

  /**
   * The scaling of module {@code name} (e.g. {@code model.layers.0.self_attn.q_proj}): {@link
   * #scaling()} with that module's r and lora_alpha from the patterns; exactly {@link #scaling()}
   * when no pattern names it.
   */
  public double scaling(String name) {
    int r = rank(name);
    double a = alpha(name);
    return r == rank && a == alpha ? scaling() : method.variant().scaling(r, a, rsLora);
  }

  /** The r of module {@code name}: its rank_pattern value, or {@link #rank}. */
  public int rank(String name) {
    return selection.rank(name, rank);
  }

  /** The lora_alpha of module {@code name}: its alpha_pattern value, or {@link #alpha}. */
  public double alpha(String name) {
    return selection.alpha(name, alpha);
  }

  /**
   * The record's usual text, without {@code selection} when it is {@link ModuleSelection#ALL}, so
   * training configs print (and hash into run-plan keys) as they did before selections existed;
   * {@code deltaLora} only for Delta-LoRA.
   */
  @Override
  public String toString() {
    return "LoraConfig[rank="
        + rank
        + ", alpha="
        + alpha
        + ", dropout="
        + dropout
        + ", targets="
        + targets
        + ", rsLora="
        + rsLora
        + ", method="
        + method
        + (selection.equals(ModuleSelection.ALL) ? "" : ", selection=" + selection)
        + (deltaLora == null ? "" : ", deltaLora=" + deltaLora)
        + "]";
  }

  /** This config with another method (Delta-LoRA's settings kept when it stays Delta-LoRA). */
  public LoraConfig withMethod(LoraMethod m) {
    return new LoraConfig(rank, alpha, dropout, targets, rsLora, m, selection, deltaLora);
  }

  /** This Delta-LoRA config with λ and K {@code d}. */
  public LoraConfig withDeltaLora(DeltaLoraParams d) {
    ModelConfig.require(
        method == LoraMethod.DELTA_LORA,
        "delta_update_ratio and delta_start_step apply to method delta-lora only, not %s",
        method.key());
    return new LoraConfig(rank, alpha, dropout, targets, rsLora, method, selection, d);
  }

  /** Whether projection {@code p} carries this adapter (in at least the selected layers). */
  public boolean targets(Projection p) {
    return targets.contains(p);
  }

  /**
   * Whether projection {@code p} of layer {@code layer} carries this adapter: {@code p} is a target
   * and the {@link #selection} keeps it.
   */
  public boolean selects(int layer, Projection p) {
    return targets.contains(p)
        && selection.selects(p.hfModule(layer), List.of(p.shortName() + "_proj"));
  }
}
