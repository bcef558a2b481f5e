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
   * @param state the method's own state ({@link LoraVariant#newState}): {@link ModuleState#NONE}
   *     for plain LoRA and LoRA-FA
   */
  public record Module(
      int layer,
      Projection proj,
      INDArray a,
      INDArray b,
      INDArray gradA,
      INDArray gradB,
      ModuleState state) {

    /** The Hugging Face module name, e.g. {@code model.layers.0.self_attn.q_proj}. */
    public String name() {
      return proj.hfModule(layer);
    }

    /**
     * The method state as {@code type}.
     *
     * @throws IllegalStateException when the module holds another method's state
     */
    public <S extends ModuleState> S state(Class<S> type) {
      if (!type.isInstance(state)) {
        throw new IllegalStateException(
            "module "
                + name()
                + " holds "
                + state.getClass().getSimpleName()
                + ", not "
                + type.getSimpleName());
      }
      return type.cast(state);
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
      // the native temporaries are freed now, not left to the collector (K adapters' worth of
      // them stayed resident through a bench's first steps, when no GC came)
      try (INDArray drawn = Nd4j.createFromArray(v)) {
        INDArray cast = drawn.castTo(dt);
        a.assign(cast.reshape(a.shape()));
        if (cast != drawn) {
          cast.close();
        }
      }
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
    int inMax = selected.stream().mapToInt(m -> m.proj().inFeatures(model)).max().orElseThrow();
    int outMax = selected.stream().mapToInt(m -> m.proj().outFeatures(model)).max().orElseThrow();
    Map<String, INDArray> shared =
        variant.newShared(variant.moduleRank(config.rank()), inMax, outMax, dt, seed);
    SplittableRandom rnd = seed == null ? null : new SplittableRandom(~seed);
    Map<String, Module> modules = new LinkedHashMap<>();
    for (Site at : selected) {
      int r = variant.moduleRank(config.rank(at.name())); // r_m
      Module m = newModule(model, base, config, shared, at, r, dt);
      if (shared.isEmpty()) { // the module's own A, drawn from the adapter's Kaiming stream
        init.fill(at.proj(), m.a());
      }
      if (seed != null) {
        variant.init(m, config.scaling(m.name()), rnd);
      }
      modules.put(m.name(), m);
    }
    return new LoraWeights(model, config, modules, shared, variant.newAllocator());
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
    INDArray[] factors = variant.newFactors(shared, r, in, out, dt); // A [r, in], B [out, r]
    ModuleState.Shape shape =
        new ModuleState.Shape(r, in, out, dt, config, () -> frozenWeight(base, at.layer(), p, dt));
    return new Module(
        at.layer(),
        p,
        factors[0],
        factors[1],
        variant.trainsA() ? Nd4j.create(dt, r, in) : null,
        variant.trainsB() ? Nd4j.create(dt, out, r) : null,
        variant.newState(shape));
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
   * lora_B} (unless frozen), then the method state's ({@link ModuleState#addTrainables}: DoRA's
   * {@code lora_magnitude_vector}, VeRA's {@code vera_lambda_d} and {@code vera_lambda_b},
   * AdaLoRA's {@code lora_E}). The optimizer and gradient clipping work on exactly these. LoRA+
   * gives B's learning rate to B and to 1-D vectors, as PEFT's {@code create_loraplus_optimizer}
   * does ({@code "lora_B" in name or param.ndim == 1}): so to both VeRA λ vectors, but not to
   * AdaLoRA's E, which PEFT shapes [r, 1].
   */
  public List<Trainable> trainables() {
    List<Trainable> out = new ArrayList<>();
    for (Module m : modules.values()) {
      if (m.gradA() != null) {
        out.add(new Trainable(m.name() + ".lora_A.weight", m.a(), m.gradA(), false));
      }
      if (m.gradB() != null) {
        out.add(new Trainable(m.name() + ".lora_B.weight", m.b(), m.gradB(), true));
      }
      m.state().addTrainables(m.name(), out);
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
