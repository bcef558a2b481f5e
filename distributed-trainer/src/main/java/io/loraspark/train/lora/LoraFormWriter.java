package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Writes LoRA forms as one plain PEFT LoRA directory that every PEFT reader loads without {@code
 * rank_pattern}: one {@code r} for every module, {@code lora_alpha} = r (so PEFT's scaling α/r is
 * 1), no rsLoRA, {@code target_modules} the union of the inputs' projections on every layer.
 *
 * <p>A weighted list is written exactly ({@link #concatenate}, PEFT's {@code cat}): per module the
 * rows of the inputs' A and the columns of their B are concatenated, each input in its own block of
 * {@code r_i} = its largest module rank, each input's weight × scaling folded into its columns of
 * B, zeros where an input lacks the module or has a smaller rank there; so the written {@code B·A}
 * is {@code Σ_i w_i·s_i·B_i·A_i} and {@code r = Σ_i r_i}.
 */
public final class LoraFormWriter {
  private LoraFormWriter() {}

  /**
   * Writes {@code Σ_i weights[i] · ΔW_i} of {@code forms} exactly into {@code dir} (see {@link
   * #concatenate}, {@link #save}).
   *
   * @return the rank written, Σ r_i
   */
  public static int write(
      Path dir, List<LoraForm> forms, double[] weights, String baseModelNameOrPath) {
    LoraForm cat = concatenate(forms, weights);
    save(dir, cat, baseModelNameOrPath);
    return cat.maxRank();
  }

  /**
   * The exact weighted sum as one form with scaling 1: per module of the union, A [Σ r_i, in] and B
   * [out, Σ r_i] with input i in rows / columns {@code [off_i, off_i + r_i)}.
   *
   * @throws IllegalArgumentException if there are no forms, the weights are not one finite value
   *     per form, or the forms were made for differently shaped models
   */
  public static LoraForm concatenate(List<LoraForm> forms, double[] weights) {
    requireCompatible(forms, weights);
    int[] offsets = new int[forms.size() + 1];
    for (int i = 0; i < forms.size(); i++) {
      offsets[i + 1] = offsets[i] + forms.get(i).maxRank();
    }
    int rank = offsets[forms.size()];
    ModelConfig model = forms.get(0).model();
    Map<String, LoraForm.Factors> out = new LinkedHashMap<>();
    for (Map.Entry<String, LoraForm.Factors> site : union(forms).entrySet()) {
      LoraForm.Factors first = site.getValue();
      INDArray a = Nd4j.zeros(DataType.DOUBLE, rank, first.a().columns()); // [R, in]
      INDArray b = Nd4j.zeros(DataType.DOUBLE, first.b().rows(), rank); // [out, R]
      for (int i = 0; i < forms.size(); i++) {
        LoraForm.Factors f = forms.get(i).modules().get(site.getKey());
        if (f == null || f.rank() == 0) {
          continue; // zero block: input i does not adapt this module
        }
        int from = offsets[i];
        a.get(NDArrayIndex.interval(from, from + f.rank()), NDArrayIndex.all()).assign(f.a());
        b.get(NDArrayIndex.all(), NDArrayIndex.interval(from, from + f.rank()))
            .assign(f.b().mul(weights[i] * f.scaling()));
      }
      out.put(site.getKey(), new LoraForm.Factors(first.layer(), first.proj(), a, b, 1.0));
    }
    return new LoraForm("cat", model, out);
  }

  /**
   * Writes {@code form} as a PEFT LoRA adapter in {@code dir} (created if needed, files replaced
   * atomically, F32): r = its largest module rank (at least 1), lora_alpha = r, each module's
   * {@code s·B} in the first columns of lora_B and A in the first rows of lora_A, zeros elsewhere
   * and on every module of the union's projections the form lacks.
   *
   * @param baseModelNameOrPath written as base_model_name_or_path; may be null
   */
  public static void save(Path dir, LoraForm form, String baseModelNameOrPath) {
    PeftAdapter.save(dir, weights(form), baseModelNameOrPath);
  }

  /**
   * {@code form} as the plain LoRA adapter {@link #save} writes (F32, r = its largest module rank,
   * lora_alpha = r), in memory: what decoding loads for an adapter chain.
   */
  public static LoraWeights weights(LoraForm form) {
    ModelConfig.require(!form.modules().isEmpty(), "adapter '%s' adapts no module", form.name());
    int rank = Math.max(1, form.maxRank());
    List<Projection> targets =
        form.modules().values().stream().map(LoraForm.Factors::proj).distinct().toList();
    LoraConfig config = new LoraConfig(rank, rank, 0, targets, false, LoraMethod.LORA);
    LoraWeights w = LoraWeights.zeros(form.model(), config, DataType.FLOAT);
    for (LoraWeights.Module m : w.modules()) {
      LoraForm.Factors f = form.modules().get(m.name());
      if (f == null || f.rank() == 0) {
        continue;
      }
      m.a()
          .get(NDArrayIndex.interval(0, f.rank()), NDArrayIndex.all())
          .assign(f.a().castTo(DataType.FLOAT));
      m.b()
          .get(NDArrayIndex.all(), NDArrayIndex.interval(0, f.rank()))
          .assign(f.scaledB().castTo(DataType.FLOAT));
    }
    return w;
  }

  /** Every module any form adapts, once, in layer then projection order, with a first pair. */
  static Map<String, LoraForm.Factors> union(List<LoraForm> forms) {
    Map<String, LoraForm.Factors> first = new LinkedHashMap<>();
    for (LoraForm f : forms) {
      f.modules().forEach(first::putIfAbsent);
    }
    Map<String, LoraForm.Factors> sorted = new LinkedHashMap<>();
    first.entrySet().stream()
        .sorted(
            Comparator.comparingInt((Map.Entry<String, LoraForm.Factors> e) -> e.getValue().layer())
                .thenComparing(e -> e.getValue().proj()))
        .forEach(e -> sorted.put(e.getKey(), e.getValue()));
    return sorted;
  }

  /**
   * Refuses an empty list, weights that are not one finite value per form, and forms made for
   * models of different projection shapes.
   */
  static void requireCompatible(List<LoraForm> forms, double[] weights) {
    ModelConfig.require(!forms.isEmpty(), "need at least one adapter to compose");
    ModelConfig.require(
        weights.length == forms.size(),
        "need one weight per adapter: %d weights for %d adapters",
        weights.length,
        forms.size());
    ModelConfig first = forms.get(0).model();
    for (int i = 0; i < forms.size(); i++) {
      LoraForm f = forms.get(i);
      ModelConfig.require(
          Double.isFinite(weights[i]),
          "adapter '%s': weight must be finite but was %s",
          f.name(),
          weights[i]);
      ModelConfig.require(
          f.model().sameProjectionShapes(first),
          "adapter '%s' was made for a model of %d layers, hidden %d, intermediate %d, q/kv"
              + " widths %d/%d but adapter '%s' for %d layers, hidden %d, intermediate %d, q/kv"
              + " widths %d/%d; compose only adapters of one base model",
          f.name(),
          f.model().numLayers(),
          f.model().hiddenSize(),
          f.model().intermediateSize(),
          f.model().qDim(),
          f.model().kvDim(),
          forms.get(0).name(),
          first.numLayers(),
          first.hiddenSize(),
          first.intermediateSize(),
          first.qDim(),
          first.kvDim());
    }
  }
}
