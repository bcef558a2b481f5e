package io.loraspark.train.lora;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * VeRA's state on one module ({@link VeraVariant}): the two trained vectors around the slices of
 * the adapter's shared frozen matrices.
 *
 * @param lambdaD λ_d [r], between A and B; PEFT's {@code vera_lambda_d}
 * @param gradLambdaD dLoss/dλ_d accumulator [r]
 * @param lambdaB λ_b [out], after B; PEFT's {@code vera_lambda_b}
 * @param gradLambdaB dLoss/dλ_b accumulator [out]
 */
public record VeraState(
    INDArray lambdaD, INDArray gradLambdaD, INDArray lambdaB, INDArray gradLambdaB)
    implements ModuleState {

  /** The PEFT state-dict name of λ_d. */
  public static final String LAMBDA_D = "vera_lambda_d";

  /** The PEFT state-dict name of λ_b. */
  public static final String LAMBDA_B = "vera_lambda_b";

  /** λ_d then λ_b; LoRA+ gives both B's learning rate (1-D parameters). */
  @Override
  public void addTrainables(String module, List<LoraWeights.Trainable> out) {
    out.add(new LoraWeights.Trainable(module + "." + LAMBDA_D, lambdaD, gradLambdaD, true));
    out.add(new LoraWeights.Trainable(module + "." + LAMBDA_B, lambdaB, gradLambdaB, true));
  }
}
