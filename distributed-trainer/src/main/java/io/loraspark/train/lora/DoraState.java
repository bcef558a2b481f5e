package io.loraspark.train.lora;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * DoRA's state on one module ({@link DoraVariant}).
 *
 * @param base the frozen weight W [out, in], the base model's own array (read only) or a copy in
 *     the adapter's dtype
 * @param magnitude the trained magnitude vector m [out], PEFT's {@code lora_magnitude_vector}
 * @param gradMagnitude dLoss/dm accumulator [out]
 */
public record DoraState(INDArray base, INDArray magnitude, INDArray gradMagnitude)
    implements ModuleState {

  /** The PEFT state-dict name of the magnitude vector (saved without ".weight"). */
  public static final String MAGNITUDE = "lora_magnitude_vector";

  /** LoRA+ gives m B's learning rate (a 1-D parameter). */
  @Override
  public void addTrainables(String module, List<LoraWeights.Trainable> out) {
    out.add(new LoraWeights.Trainable(module + "." + MAGNITUDE, magnitude, gradMagnitude, true));
  }
}
