package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One adapter's trainable state on one base model: for every targeted (layer, projection), A [r,
 * in] and B [out, r] and their gradient accumulators. Mutated in place by training.
 */
public final class LoraWeights {

  /**
   * One adapted projection.
   *
   * @param a A, [r, in]
   * @param b B, [out, r]
   * @param gradA dLoss/dA accumulator, [r, in]
   * @param gradB dLoss/dB accumulator, [out, r]
   */
  public record Module(
      int layer, Projection proj, INDArray a, INDArray b, INDArray gradA, INDArray gradB) {

    /** The Hugging Face module name, e.g. {@code model.layers.0.self_attn.q_proj}. */
    public String name() {
      return proj.hfModule(layer);
    }
  }

  private final ModelConfig model;
  private final LoraConfig config;
  private final Map<String, Module> modules; // by module name, in layer order

  private LoraWeights(ModelConfig model, LoraConfig config, Map<String, Module> modules) {
    this.model = model;
    this.config = config;
    this.modules = Collections.unmodifiableMap(modules);
  }

  /**
   * PEFT's default initialisation: A Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in),
   * 1/sqrt(in)), and B zero, so the adapter starts as the identity.
   *
   * @param seed the adapter's own seed; the same seed gives bit-identical weights
   */
  public static LoraWeights init(ModelConfig model, LoraConfig config, long seed, DataType dt) {
    SplittableRandom rnd = new SplittableRandom(seed);
    return build(
        model,
        config,
        dt,
        (p, a) -> {
          double bound = 1.0 / Math.sqrt(p.inFeatures(model));
          double[] v = new double[(int) a.length()];
          for (int i = 0; i < v.length; i++) {
            v[i] = (rnd.nextDouble() * 2 - 1) * bound;
          }
          a.assign(Nd4j.createFromArray(v).reshape(a.shape()).castTo(dt));
        });
  }

  /** All-zero A and B (to be filled, e.g. by loading a saved adapter). */
  public static LoraWeights zeros(ModelConfig model, LoraConfig config, DataType dt) {
    return build(model, config, dt, (p, a) -> {});
  }

  private interface InitA {
    void fill(Projection p, INDArray a);
  }

  private static LoraWeights build(ModelConfig model, LoraConfig config, DataType dt, InitA init) {
    Map<String, Module> modules = new LinkedHashMap<>();
    int r = config.rank();
    for (int l = 0; l < model.numLayers(); l++) {
      for (Projection p : config.targets()) {
        int in = p.inFeatures(model);
        int out = p.outFeatures(model);
        INDArray a = Nd4j.create(dt, r, in);
        init.fill(p, a);
        Module m =
            new Module(
                l, p, a, Nd4j.create(dt, out, r), Nd4j.create(dt, r, in), Nd4j.create(dt, out, r));
        modules.put(m.name(), m);
      }
    }
    return new LoraWeights(model, config, modules);
  }

  public ModelConfig model() {
    return model;
  }

  public LoraConfig config() {
    return config;
  }

  /** The module at (layer, proj), or null when the adapter does not target it. */
  public Module module(int layer, Projection proj) {
    return modules.get(proj.hfModule(layer));
  }

  /** Every adapted module, in layer order. */
  public Collection<Module> modules() {
    return modules.values();
  }

  /** Trainable parameter count: Σ r·(in + out). */
  public long parameterCount() {
    long n = 0;
    for (Module m : modules.values()) {
      n += m.a().length() + m.b().length();
    }
    return n;
  }

  /** Zeroes every gradient accumulator. */
  public void zeroGrad() {
    for (Module m : modules.values()) {
      m.gradA().assign(0);
      m.gradB().assign(0);
    }
  }
}
