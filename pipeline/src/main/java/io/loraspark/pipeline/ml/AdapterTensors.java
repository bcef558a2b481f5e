package io.loraspark.pipeline.ml;

import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.ModelConfig;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A trained adapter as plain F32 arrays, which is what crosses between JVMs: from the training task
 * to the driver, and broadcast from the driver to the scoring tasks. ND4J arrays live off-heap and
 * do not serialize; {@link LoraWeights} is rebuilt from these on the side that computes. F32 is
 * what PEFT files hold, so save → load through {@link io.loraspark.train.lora.PeftAdapter} is
 * bit-identical.
 *
 * @param lora the adapter's shape
 * @param modules A [r, in] and B [out, r] of every adapted projection, in layer order
 */
record AdapterTensors(LoraConfig lora, List<Module> modules) implements Serializable {

  /**
   * One adapted projection.
   *
   * @param name Hugging Face module name, e.g. {@code model.layers.0.self_attn.q_proj}
   * @param a A, [r, in] flattened in C order
   * @param b B, [out, r] flattened in C order
   */
  record Module(String name, float[] a, float[] b) implements Serializable {}

  AdapterTensors {
    modules = List.copyOf(modules);
  }

  /** Copies the values of {@code w} (not its gradients). */
  static AdapterTensors of(LoraWeights w) {
    List<Module> out = new ArrayList<>();
    for (LoraWeights.Module m : w.modules()) {
      out.add(new Module(m.name(), floats(m.a()), floats(m.b())));
    }
    return new AdapterTensors(w.config(), out);
  }

  /**
   * The adapter as weights of a model shaped like {@code model}, in {@code dt}.
   *
   * @throws IllegalArgumentException when the modules do not fit the model
   */
  LoraWeights toWeights(ModelConfig model, DataType dt) {
    LoraWeights w = LoraWeights.zeros(model, lora, dt);
    ModelConfig.require(
        w.modules().size() == modules.size(),
        "the adapter has %d modules but the model needs %d",
        modules.size(),
        w.modules().size());
    int i = 0;
    for (LoraWeights.Module m : w.modules()) {
      Module src = modules.get(i++);
      ModelConfig.require(
          src.name().equals(m.name()), "module %s where %s was expected", src.name(), m.name());
      assign(m.a(), src.a(), m.name());
      assign(m.b(), src.b(), m.name());
    }
    return w;
  }

  private static void assign(INDArray target, float[] values, String module) {
    ModelConfig.require(
        target.length() == values.length,
        "module %s: %d values for shape %s",
        module,
        values.length,
        Arrays.toString(target.shape()));
    target.assign(Nd4j.create(values, target.shape(), 'c').castTo(target.dataType()));
  }

  private static float[] floats(INDArray a) {
    INDArray c = a.castTo(DataType.FLOAT).dup('c');
    return Arrays.copyOf(c.data().asFloat(), (int) c.length());
  }
}
