package io.loraspark.train.lora;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The state of a Delta-LoRA module saved by an earlier version ({@link DeltaLoraParams#dense}),
 * which can be scored and merged but not trained further.
 *
 * @param delta the dense change ΔW [out, in] of the frozen weight
 */
public record DenseDeltaState(INDArray delta) implements ModuleState {

  /** The PEFT-style state-dict name of ΔW. */
  public static final String DELTA = "delta_weight";
}
