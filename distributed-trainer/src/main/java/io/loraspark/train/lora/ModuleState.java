package io.loraspark.train.lora;

import java.util.List;
import java.util.function.Supplier;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A method's own state on one adapted module, beside the A and B every method has: DoRA's magnitude
 * ({@link DoraState}), PiSSA's initial factors ({@link PissaState}), VeRA's λ vectors ({@link
 * VeraState}), AdaLoRA's singular values ({@link AdaLoraState}), Delta-LoRA's snapshot ({@link
 * DeltaState}) or an earlier version's dense ΔW ({@link DenseDeltaState}); {@link #NONE} for plain
 * LoRA and LoRA-FA. Made all-zero by its {@link LoraVariant#newState}, filled by {@link
 * LoraVariant#init} or a loader, mutated in place by training.
 */
public interface ModuleState {

  /** No state beyond A and B. */
  ModuleState NONE = new ModuleState() {};

  /**
   * What a variant's {@link LoraVariant#newState} is given for one module.
   *
   * @param r the module's rank (its {@link LoraVariant#moduleRank})
   * @param in the projection's input width
   * @param out the projection's output width
   * @param dt the adapter's dtype
   * @param config the adapter's config
   * @param base the frozen weight W [out, in] in {@code dt} (a reference to the base's own array
   *     when it has that dtype); only available for a method that {@link LoraVariant#needsBase}
   */
  record Shape(int r, int in, int out, DataType dt, LoraConfig config, Supplier<INDArray> base) {}

  /**
   * Appends the state's trained tensors, after the module's A and B, in the order the optimizer
   * state and the PEFT state dict name them ({@code <module>.<key>}); none by default.
   *
   * @param module the module's Hugging Face name
   */
  default void addTrainables(String module, List<LoraWeights.Trainable> out) {}
}
