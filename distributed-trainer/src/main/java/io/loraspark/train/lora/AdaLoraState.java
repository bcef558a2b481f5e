package io.loraspark.train.lora;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * AdaLoRA's state on one module ({@link AdaLoraVariant}); the rank mask that zeroes entries of E is
 * the adapter's {@link RankAllocator}'s.
 *
 * @param e the trained singular values E [r, 1] (r = init_r), PEFT's {@code lora_E}
 * @param gradE dLoss/dE accumulator [r, 1]
 */
public record AdaLoraState(INDArray e, INDArray gradE) implements ModuleState {

  /** The PEFT state-dict name of E. */
  public static final String E = "lora_E";

  /** LoRA+ keeps A's learning rate for E, which PEFT shapes [r, 1] (not 1-D). */
  @Override
  public void addTrainables(String module, List<LoraWeights.Trainable> out) {
    out.add(new LoraWeights.Trainable(module + "." + E, e, gradE, false));
  }
}
