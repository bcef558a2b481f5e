package io.loraspark.train.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How one member of the LoRA family differs from plain LoRA (PEFT's {@code LoraVariant} in {@code
 * peft/tuners/lora/variants.py}, without its if/elif init chain): which factors train, what extra
 * per-module state it initialises, and, when its branch is not {@code y += s·B·A·x}, its own
 * forward/backward pair. Variants are stateless singletons; all state lives in {@link
 * LoraWeights.Module}. Plain LoRA is {@link #PLAIN}: every default, and {@link FusedLora} runs its
 * branch inline.
 *
 * <p>Order of calls: {@link #init} once per module when the weights are made; then per step, for a
 * variant that {@link #ownsBranch}, {@link #forward} then {@link #backward} with the same {@code
 * xd} and scratch; around each optimizer update of the adapter, {@link #beforeOptimizerStep} and
 * {@link #afterOptimizerStep}; {@link #merged} for export to a dense checkpoint.
 */
public interface LoraVariant {

  /** Plain LoRA: A and B train, the branch is {@code s·B·A·x}. */
  LoraVariant PLAIN = new LoraVariant() {};

  /**
   * Scratch arrays kept by the caller per (adapter, module, kind, shape) and reused across steps.
   */
  interface Scratch {
    /** A buffer of this shape in the adapter's dtype; contents are whatever the last user left. */
    INDArray get(String kind, long rows, long cols);
  }

  /** Whether A is trained: when false it has no gradient and no optimizer state. */
  default boolean trainsA() {
    return true;
  }

  /**
   * Whether the module needs the frozen weight W, kept by reference in {@link
   * LoraWeights.Module#base()}.
   */
  default boolean needsBase() {
    return false;
  }

  /** Whether the module carries a trained magnitude vector [out] (PEFT's lora_magnitude_vector). */
  default boolean hasMagnitude() {
    return false;
  }

  /** Whether the module keeps frozen initial factors A₀, B₀ (PiSSA's residual correction). */
  default boolean keepsInitialFactors() {
    return false;
  }

  /** Whether {@link #forward}/{@link #backward} replace the plain branch. */
  default boolean ownsBranch() {
    return false;
  }

  /**
   * Sets the variant's extra state of a module whose A and B are already initialised.
   *
   * @param s the adapter's scaling
   */
  default void init(LoraWeights.Module m, double s) {}

  /**
   * Adds the branch output to {@code y}.
   *
   * @param x the projection input rows of this adapter, [N, in]
   * @param xd {@code x} after the adapter's dropout ({@code x} itself when dropout is off), [N, in]
   * @param y the projection output rows of this adapter, [N, out]; updated in place
   */
  default void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    throw new UnsupportedOperationException("the plain branch runs inline in FusedLora");
  }

  /**
   * Accumulates the module's parameter gradients and the branch's input gradients.
   *
   * @param dy dLoss/dy for this adapter's rows, [N, out]
   * @param dx dLoss/dx, accumulated in place, [N, in]
   * @param dxd dLoss/dxd, accumulated in place, [N, in]; the caller applies the dropout mask and
   *     adds it to dx (the same array as {@code dx} when dropout is off)
   */
  default void backward(
      LoraWeights.Module m,
      double s,
      INDArray x,
      INDArray xd,
      INDArray dy,
      INDArray dx,
      INDArray dxd,
      Scratch scratch) {
    throw new UnsupportedOperationException("the plain branch runs inline in FusedLora");
  }

  /**
   * Called once per optimizer step of the adapter, after its gradients are final (accumulated and
   * clipped) and just before the optimizer updates its trainables.
   *
   * @param step the number of optimizer steps the adapter has taken before this one (0 first)
   * @param totalSteps the steps the adapter is configured to train
   */
  default void beforeOptimizerStep(LoraWeights w, long step, int totalSteps) {}

  /**
   * Called once per optimizer step of the adapter, just after the optimizer updated its trainables
   * (before the gradients are zeroed), with the same {@code step} as {@link #beforeOptimizerStep}.
   */
  default void afterOptimizerStep(LoraWeights w, long step, int totalSteps) {}

  /**
   * The config of the PEFT adapter this variant saves as (its own for LoRA and DoRA; plain LoRA for
   * LoRA-FA; PiSSA's converted rank-2r LoRA).
   */
  default LoraConfig exportConfig(LoraConfig c) {
    return c;
  }

  /**
   * The module's {A, B} as saved: arrays of the {@link #exportConfig} rank. Plain LoRA saves (and
   * loads straight into) its own A and B; a variant that returns other arrays must turn them back
   * into module state in {@link #importFactors}.
   */
  default INDArray[] exportFactors(LoraWeights.Module m) {
    return new INDArray[] {m.a(), m.b()};
  }

  /**
   * Sets the module from saved factors read into the arrays {@link #exportFactors} returned (a
   * no-op when those are the module's own).
   */
  default void importFactors(LoraWeights.Module m, INDArray[] saved) {}

  /**
   * The merged weight W' that makes the plain linear layer compute what W plus this branch
   * computes: {@code W + s·B·A} for plain LoRA.
   *
   * @param w the frozen weight [out, in], in double
   * @return a new double array [out, in]
   */
  default INDArray merged(LoraWeights.Module m, double s, INDArray w) {
    return m.b().castTo(DataType.DOUBLE).mmul(m.a().castTo(DataType.DOUBLE)).muli(s).addi(w);
  }
}
