package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * An additive adapter in plain LoRA form: per adapted module a pair A [r, in], B [out, r] and a
 * scaling s with {@code ΔW = s·B·A} exactly, every method-specific factor folded in (VeRA's {@code
 * Λ_b B Λ_d A} with s = 1, AdaLoRA's {@code s·B·diag(E)·A}, rsLoRA's α/√r, a rank_pattern's
 * per-module r and α). This is what PEFT would load if the pair were saved as a LoRA adapter with
 * that scaling, so weighted combinations ({@link AdapterComposition}) follow PEFT's {@code
 * add_weighted_adapter} on it, and {@link LoraFormWriter} writes any list of weighted forms as one
 * PEFT LoRA directory.
 *
 * <p>DoRA (a rescaling of W, not an addition) and PiSSA held in memory (a re-based W; a saved PiSSA
 * adapter is already plain LoRA) have no such form. Delta-LoRA as earlier versions stored it
 * carries a dense ΔW per module, which is not low rank, and is refused too; today's Delta-LoRA
 * exports its update in low-rank form through {@link LoraVariant#exportFactors} and passes.
 *
 * @param name how messages and provenance name the adapter
 * @param model the base model shape it was made for
 * @param modules the pairs by Hugging Face module name, in layer order
 */
public record LoraForm(String name, ModelConfig model, Map<String, Factors> modules) {

  /**
   * One module's pair, in double.
   *
   * @param layer the layer index
   * @param proj the projection
   * @param a A [r, in]
   * @param b B [out, r]
   * @param scaling s, so that the module's update is {@code s·B·A}
   */
  public record Factors(int layer, Projection proj, INDArray a, INDArray b, double scaling) {
    /** r, the rows of A. */
    public int rank() {
      return (int) a.rows();
    }

    /** s·B [out, r], a new array. */
    public INDArray scaledB() {
      return b.mul(scaling);
    }

    /** The module's update ΔW = s·B·A [out, in], a new array. */
    public INDArray delta() {
      return b.mmul(a).muli(scaling);
    }
  }

  public LoraForm {
    modules = Collections.unmodifiableMap(new LinkedHashMap<>(modules));
  }

  /**
   * The LoRA form of trained or loaded adapter weights {@code w} (double copies; {@code w} is not
   * kept).
   *
   * @param name the adapter's name in messages (e.g. its directory)
   * @throws IllegalArgumentException naming the adapter and its method when the method is not
   *     additive or a module carries a dense ΔW
   */
  public static LoraForm of(String name, LoraWeights w) {
    requireAdditive(name, w.config().method());
    Map<String, Factors> modules = new LinkedHashMap<>();
    for (LoraWeights.Module m : w.modules()) {
      if (m.state() instanceof DenseDeltaState d) {
        throw new IllegalArgumentException(
            "adapter '"
                + name
                + "' is "
                + w.config().method().key()
                + " with a dense ΔW ["
                + d.delta().rows()
                + ", "
                + d.delta().columns()
                + "] per module, which is not low rank; fold it into the base with `merge`");
      }
      modules.put(m.name(), factors(w, m));
    }
    return new LoraForm(name, w.model(), modules);
  }

  /**
   * Refuses a method whose update does not add to other adapters' (DoRA rescales W, PiSSA re-bases
   * it).
   *
   * @throws IllegalArgumentException naming the adapter and the method
   */
  public static void requireAdditive(String name, LoraMethod method) {
    if (!method.variant().additive()) {
      throw new IllegalArgumentException(
          "adapter '"
              + name
              + "' is "
              + method.key()
              + ", whose update is not an addition s·B·A to W; only lora, lora-fa, vera, adalora"
              + " (and low-rank delta-lora) adapters have a LoRA form");
    }
  }

  /**
   * Module {@code m}'s pair with every method-specific factor folded in, in double ({@link
   * LoraVariant#loraFactors}: VeRA's {@code A' = Λ_d A}, {@code B' = Λ_b B} with s = 1, AdaLoRA's
   * {@code A' = diag(E) A}, otherwise the saved factors, e.g. PiSSA's {@code [A; A₀]}, {@code [B,
   * −B₀]}). Used for decoding too, where DoRA's rescaling and Delta-LoRA's dense ΔW are applied
   * apart.
   */
  public static Factors factors(LoraWeights w, LoraWeights.Module m) {
    return w.variant().loraFactors(m, w.scaling(m));
  }

  /** The largest rank of any module (0 when it has none). */
  public int maxRank() {
    return modules.values().stream().mapToInt(Factors::rank).max().orElse(0);
  }
}
