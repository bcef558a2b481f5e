package io.loraspark.train.lora;

import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Bf16Gemms;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * One adapter's trainable state on one base model: for every (layer, projection) its config selects
 * ({@link LoraConfig#selects}), A [r_m, in] and B [out, r_m] with the module's own rank r_m ({@link
 * LoraConfig#rank(String)}: r unless a rank_pattern names it), the extra state its {@link
 * LoraMethod} needs, and the gradient accumulators of whatever trains; and each module's scaling
 * ({@link #scaling(Module)}). Mutated in place by training.
 */
public final class LoraWeights {

  /**
   * One adapted projection.
   *
   * @param a A, [r, in] (r the module's own rank); for VeRA a view of the adapter's shared frozen
   *     vera_A [r, in_max]
   * @param b B, [out, r]; for VeRA a view of the shared frozen vera_B [out_max, r]
   * @param gradA dLoss/dA accumulator, [r, in]; null when A is frozen (LoRA-FA, VeRA)
   * @param gradB dLoss/dB accumulator, [out, r]; null when B is frozen (VeRA)
   * @param magnitude DoRA's magnitude vector m, [out]; null for other methods
   * @param gradMagnitude dLoss/dm accumulator, [out]; null when there is no magnitude
   * @param base the frozen weight W [out, in] (the base model's own array, read only) for methods
   *     whose branch needs it (DoRA, PiSSA); null otherwise
   * @param a0 PiSSA's frozen initial A₀ [r, in], whose product with B₀ the branch subtracts; null
   *     for other methods
   * @param b0 PiSSA's frozen initial B₀ [out, r]; null for other methods
   * @param rankScale the trained per-rank vector between A and B: VeRA's λ_d [r], AdaLoRA's
   *     singular values E [r, 1]; null for other methods
   * @param gradRankScale dLoss/d(rankScale) accumulator; null when there is no rankScale
   * @param outScale VeRA's trained per-output vector λ_b [out]; null for other methods
   * @param gradOutScale dLoss/dλ_b accumulator, [out]; null when there is no outScale
   * @param delta the dense change ΔW [out, in] of the frozen weight of a Delta-LoRA adapter saved
   *     by an earlier version ({@link DeltaLoraParams#dense}); null otherwise
   * @param snapshot Delta-LoRA's frozen branch over its snapshot (A_K [r, in], B_K [out, r]),
   *     switched on with c = −λ·s once step K has been taken; null for other methods
   */
  public record Module(
      int layer,
      Projection proj,
      INDArray a,
      INDArray b,
      INDArray gradA,
      INDArray gradB,
      INDArray magnitude,
      INDArray gradMagnitude,
      INDArray base,
      INDArray a0,
      INDArray b0,
      INDArray rankScale,
      INDArray gradRankScale,
      INDArray outScale,
      INDArray gradOutScale,
      INDArray delta,
      FrozenBranch snapshot) {

    /** The Hugging Face module name, e.g. {@code model.layers.0.self_attn.q_proj}. */
    public String name() {
      return proj.hfModule(layer);
    }
  }

  /**
   * One trained tensor with its gradient, named as in the PEFT state dict and the optimizer state.
   *
   * @param name e.g. {@code model.layers.0.self_attn.q_proj.lora_B.weight}
   * @param loraPlusB whether LoRA+ gives it B's learning rate: B matrices and 1-D parameters, as in
   *     the reference LoRA+ code ({@code loraplus.py}, groupB)
   */
  public record Trainable(String name, INDArray value, INDArray grad, boolean loraPlusB) {}

  private final ModelConfig model;
  private final LoraConfig config;
  private final Map<String, Module> modules; // by module name, in layer order
  private final Map<String, Double> scalings; // s_m by module name
  private final Map<String, INDArray> shared; // VeRA's vera_A, vera_B; empty otherwise
  private final RankAllocator allocator; // AdaLoRA's; null otherwise

  private LoraWeights(
      ModelConfig model,
      LoraConfig config,
      Map<String, Module> modules,
      Map<String, INDArray> shared,
      RankAllocator allocator) {
    this.model = model;
    this.config = config;
    this.modules = Collections.unmodifiableMap(modules);
    Map<String, Double> s = new HashMap<>();
    for (String name : modules.keySet()) {
      s.put(name, config.scaling(name));
    }
    this.scalings = s;
    this.shared = Collections.unmodifiableMap(shared);
    this.allocator = allocator;
  }

  /**
   * PEFT's default initialisation: A Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in),
   * 1/sqrt(in)), and B zero, so the adapter starts as the identity; then the method's own state
   * (e.g. DoRA's magnitude ‖W‖ rows), which may need the frozen weights.
   *
   * @param seed the adapter's own seed; the same seed gives bit-identical weights
   * @throws IllegalArgumentException if the method needs the base weights (use {@link
   *     #init(ModelWeights, LoraConfig, long, DataType)})
   */
  public static LoraWeights init(ModelConfig model, LoraConfig config, long seed, DataType dt) {
    requireNoBase(config);
    return build(model, null, config, dt, kaimingA(model, seed, dt), seed);
  }

  /**
   * {@link #init(ModelConfig, LoraConfig, long, DataType)} on the frozen {@code base}, which every
   * method accepts; modules of methods that need W keep a reference to base's array (a copy when
   * {@code dt} differs from the base's dtype).
   */
  public static LoraWeights init(ModelWeights base, LoraConfig config, long seed, DataType dt) {
    return build(base.config(), base, config, dt, kaimingA(base.config(), seed, dt), seed);
  }

  /**
   * All-zero A, B and method state (to be filled, e.g. by loading a saved adapter).
   *
   * @throws IllegalArgumentException if the method needs the base weights
   */
  public static LoraWeights zeros(ModelConfig model, LoraConfig config, DataType dt) {
    requireNoBase(config);
    return build(model, null, config, dt, (p, a) -> {}, null);
  }

  /** All-zero A, B and method state on the frozen {@code base} (for any method). */
  public static LoraWeights zeros(ModelWeights base, LoraConfig config, DataType dt) {
    return build(base.config(), base, config, dt, (p, a) -> {}, null);
  }

  private static void requireNoBase(LoraConfig config) {
    if (config.method().variant().needsBase()) {
      throw new IllegalArgumentException(
          "method '"
              + config.method().key()
              + "' needs the frozen base weights; build the adapter from the ModelWeights");
    }
  }

  private interface InitA {
    void fill(Projection p, INDArray a);
  }

  private static InitA kaimingA(ModelConfig model, long seed, DataType dt) {
    SplittableRandom rnd = new SplittableRandom(seed);
    return (p, a) -> {
      double bound = 1.0 / Math.sqrt(p.inFeatures(model));
      double[] v = new double[(int) a.length()];
      for (int i = 0; i < v.length; i++) {
        v[i] = (rnd.nextDouble() * 2 - 1) * bound;
      }
      a.assign(Nd4j.createFromArray(v).reshape(a.shape()).castTo(dt));
    };
  }

  /** A (layer, projection) pair an adapter's config selects. */
  private record Site(int layer, Projection proj) {
    String name() {
      return proj.hfModule(layer);
    }
  }

  /**
   * The (layer, projection) pairs {@code config} adapts on {@code model}, in layer order.
   *
   * @throws IllegalArgumentException if there are none (e.g. layers_to_transform names only layers
   *     the model lacks)
   */
  private static List<Site> selected(ModelConfig model, LoraConfig config) {
    List<Site> out = new ArrayList<>();
    for (int l = 0; l < model.numLayers(); l++) {
      for (Projection p : config.targets()) {
        if (config.selects(l, p)) {
          out.add(new Site(l, p));
        }
      }
    }
    ModelConfig.require(
        !out.isEmpty(),
        "the adapter (targets %s, %s) selects no module of a model with %d layers",
        config.targets(),
        config.selection(),
        model.numLayers());
    return out;
  }

  /**
   * @param seed the adapter's seed for the variant's own init, or null for all-zero state (to be
   *     loaded)
   */
  private static LoraWeights build(
      ModelConfig model, ModelWeights base, LoraConfig config, DataType dt, InitA init, Long seed) {
    LoraVariant variant = config.method().variant();
    List<Site> selected = selected(model, config);
    Map<String, INDArray> shared =
        sharedProjections(model, config, selected, variant.moduleRank(config.rank()), dt, seed);
    SplittableRandom rnd = seed == null ? null : new SplittableRandom(~seed);
    Map<String, Module> modules = new LinkedHashMap<>();
    for (Site at : selected) {
      int r = variant.moduleRank(config.rank(at.name())); // r_m
      Module m = newModule(model, base, config, shared, at, r, dt);
      if (!variant.sharesProjections()) {
        init.fill(at.proj(), m.a());
      }
      if (seed != null) {
        variant.init(m, config.scaling(m.name()), rnd);
      }
      modules.put(m.name(), m);
    }
    RankAllocator allocator = variant.allocatesRanks() ? new RankAllocator() : null;
    return new LoraWeights(model, config, modules, shared, allocator);
  }

  /**
   * Module {@code at} of rank {@code r} with all-zero state (A and B views of VeRA's shared pair).
   */
  private static Module newModule(
      ModelConfig model,
      ModelWeights base,
      LoraConfig config,
      Map<String, INDArray> shared,
      Site at,
      int r,
      DataType dt) {
    LoraVariant variant = config.method().variant();
    Projection p = at.proj();
    int in = p.inFeatures(model);
    int out = p.outFeatures(model);
    INDArray a; // [r, in]
    INDArray b; // [out, r]
    if (variant.sharesProjections()) {
      a = shared.get(VeraVariant.A).get(NDArrayIndex.all(), NDArrayIndex.interval(0, in));
      b = shared.get(VeraVariant.B).get(NDArrayIndex.interval(0, out), NDArrayIndex.all());
    } else {
      a = Nd4j.create(dt, r, in);
      b = Nd4j.create(dt, out, r);
    }
    long[] rankScale = variant.rankScaleShape(r);
    boolean mag = variant.hasMagnitude();
    boolean copies = variant.keepsInitialFactors();
    boolean delta = config.deltaLora() != null && config.deltaLora().dense(); // an old ΔW
    boolean snapshot = variant.keepsSnapshot() && !delta;
    boolean outScale = variant.hasOutScale();
    return new Module(
        at.layer(),
        p,
        a,
        b,
        variant.trainsA() ? Nd4j.create(dt, r, in) : null,
        variant.trainsB() ? Nd4j.create(dt, out, r) : null,
        mag ? Nd4j.create(dt, out) : null,
        mag ? Nd4j.create(dt, out) : null,
        variant.needsBase() ? frozenWeight(base, at.layer(), p, dt) : null,
        copies ? Nd4j.create(dt, r, in) : null,
        copies ? Nd4j.create(dt, out, r) : null,
        rankScale == null ? null : Nd4j.create(dt, rankScale),
        rankScale == null ? null : Nd4j.create(dt, rankScale),
        outScale ? Nd4j.create(dt, out) : null,
        outScale ? Nd4j.create(dt, out) : null,
        delta ? Nd4j.create(dt, out, in) : null,
        snapshot ? new FrozenBranch(Nd4j.create(dt, r, in), Nd4j.create(dt, out, r)) : null);
  }

  /**
   * VeRA's one pair of frozen matrices for the whole adapter, vera_A [r, in_max] and vera_B
   * [out_max, r] over the selected modules (PEFT's {@code _find_dim}), initialised from {@code
   * seed} (zero when null); empty for other methods.
   */
  private static Map<String, INDArray> sharedProjections(
      ModelConfig model, LoraConfig config, List<Site> selected, int r, DataType dt, Long seed) {
    LoraVariant variant = config.method().variant();
    if (!variant.sharesProjections()) {
      return Map.of();
    }
    int inMax = selected.stream().mapToInt(m -> m.proj().inFeatures(model)).max().orElseThrow();
    int outMax = selected.stream().mapToInt(m -> m.proj().outFeatures(model)).max().orElseThrow();
    Map<String, INDArray> shared = new LinkedHashMap<>();
    shared.put(VeraVariant.A, Nd4j.create(dt, r, inMax));
    shared.put(VeraVariant.B, Nd4j.create(dt, outMax, r));
    if (seed != null) {
      variant.initShared(shared, seed);
    }
    return shared;
  }

  /** The frozen weight of projection {@code p} in layer {@code layer}, [out, in], in {@code dt}. */
  static INDArray frozenWeight(ModelWeights base, int layer, Projection p, DataType dt) {
    if (base.quantized() != null) { // a copy dequantised once: these methods read W itself
      return base.quantized().dequantized(layer, p).castTo(dt);
    }
    INDArray weight = ModelWeights.projection(base.layers().get(layer), p);
    if (weight == null) { // a bf16 training base: W as the packed GEMMs see it, a copy
      return Bf16Gemms.of(base).weight(layer, p).castTo(dt);
    }
    return weight.dataType() == dt ? weight : weight.castTo(dt);
  }

  public ModelConfig model() {
    return model;
  }

  public LoraConfig config() {
    return config;
  }

  /** The strategy of this adapter's method. */
  public LoraVariant variant() {
    return config.method().variant();
  }

  /**
   * The frozen tensors shared by every module, by PEFT name after {@code base_model.}: VeRA's
   * {@code vera_A} [r, in_max] and {@code vera_B} [out_max, r]; empty for other methods.
   */
  public Map<String, INDArray> shared() {
    return shared;
  }

  /** AdaLoRA's rank allocator (importance scores, rank pattern); null for other methods. */
  public RankAllocator allocator() {
    return allocator;
  }

  /**
   * s_m, the factor on module {@code m}'s branch: its method's scaling with the module's own r and
   * lora_alpha ({@link LoraConfig#scaling(String)}); exactly {@code config().scaling()} when no
   * rank or alpha pattern names it.
   *
   * @param m a module of this adapter (or one named as one of its modules)
   * @throws IllegalArgumentException if this adapter has no module of that name
   */
  public double scaling(Module m) {
    Double s = scalings.get(m.name());
    if (s == null) {
      throw new IllegalArgumentException("the adapter has no module " + m.name());
    }
    return s;
  }

  /**
   * The module at (layer, proj), or null when the adapter does not adapt it (an untargeted
   * projection, or a layer its selection leaves out).
   */
  public Module module(int layer, Projection proj) {
    return modules.get(proj.hfModule(layer));
  }

  /** Every adapted module, in layer order. */
  public Collection<Module> modules() {
    return modules.values();
  }

  /**
   * Every trained tensor, module by module in layer order: {@code lora_A} (unless frozen), {@code
   * lora_B} (unless frozen), then {@code lora_magnitude_vector} (DoRA), the per-rank vector (VeRA's
   * {@code vera_lambda_d}, AdaLoRA's {@code lora_E}) and {@code vera_lambda_b} (VeRA). The
   * optimizer and gradient clipping work on exactly these. LoRA+ gives B's learning rate to B and
   * to 1-D vectors, as PEFT's {@code create_loraplus_optimizer} does ({@code "lora_B" in name or
   * param.ndim == 1}): so to both VeRA λ vectors, but not to AdaLoRA's E, which PEFT shapes [r, 1].
   */
  public List<Trainable> trainables() {
    List<Trainable> out = new ArrayList<>();
    LoraVariant variant = variant();
    for (Module m : modules.values()) {
      if (m.gradA() != null) {
        out.add(new Trainable(m.name() + ".lora_A.weight", m.a(), m.gradA(), false));
      }
      if (m.gradB() != null) {
        out.add(new Trainable(m.name() + ".lora_B.weight", m.b(), m.gradB(), true));
      }
      if (m.magnitude() != null) {
        out.add(
            new Trainable(
                m.name() + "." + DoraVariant.MAGNITUDE, m.magnitude(), m.gradMagnitude(), true));
      }
      if (m.rankScale() != null) {
        out.add(
            new Trainable(
                m.name() + "." + variant.rankScaleName(),
                m.rankScale(),
                m.gradRankScale(),
                m.rankScale().rank() == 1));
      }
      if (m.outScale() != null) {
        out.add(
            new Trainable(
                m.name() + "." + VeraVariant.LAMBDA_B, m.outScale(), m.gradOutScale(), true));
      }
    }
    return out;
  }

  /**
   * Trainable parameter count, for the leaderboard: Σ r·(in + out) for LoRA, Σ r·out for LoRA-FA, Σ
   * r·(in + out) + out for DoRA, Σ r + out for VeRA, Σ init_r·(in + out + 1) for AdaLoRA.
   */
  public long parameterCount() {
    return trainables().stream().mapToLong(t -> t.value().length()).sum();
  }

  /** Zeroes every gradient accumulator. */
  public void zeroGrad() {
    for (Trainable t : trainables()) {
      Kernels.zero(t.grad());
    }
  }
}
