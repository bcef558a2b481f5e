package io.loraspark.train.model;

import org.nd4j.linalg.api.buffer.DataType;

/**
 * The elementwise kernels of one forward/backward pass, one per family, chosen once per {@link
 * Workspace} from its dtype (see {@link Kernels} for why there are two): all fused on the Vector
 * API for float32 when the JVM has the module, else all ND4J ops, the reference the fused ones are
 * tested against. The callers ({@link Transformer}, {@link Attention}) make one call per step, with
 * no branch on the path.
 *
 * @param norm RMSNorm forward and backward
 * @param rope the rotary tables and rotation
 * @param softmax attention's masked softmax, its backward and the mask it reads
 * @param loss the cross-entropy over the vocabulary and its gradient
 * @param silu the MLP's SwiGLU gate and its backward
 * @param heads attention's copies between token rows and heads
 */
record ModelKernels(
    NormKernels norm,
    RopeKernels rope,
    SoftmaxKernels softmax,
    LossKernels loss,
    SiluKernels silu,
    HeadKernels heads) {

  /** The kernels for arrays of {@code dtype}: fused when {@link Kernels#fused} says so. */
  static ModelKernels of(ModelConfig c, DataType dtype) {
    return of(new Rope(c.headDim(), c.ropeTheta(), dtype), dtype);
  }

  /** {@link #of(ModelConfig, DataType)} with the rotary frequencies given. */
  static ModelKernels of(Rope rope, DataType dtype) {
    return Kernels.fused(dtype) ? fused(rope) : nd4j(rope, dtype);
  }

  /** The fused float32 kernels; only where {@link Kernels#fused} holds. */
  static ModelKernels fused(Rope rope) {
    return new ModelKernels(
        new VectorNorm(),
        new VectorRope(rope),
        new VectorSoftmax(),
        new VectorLoss(),
        new VectorSilu(),
        new BulkHeads());
  }

  /** The ND4J reference kernels, for any dtype. */
  static ModelKernels nd4j(Rope rope, DataType dtype) {
    return new ModelKernels(
        new Nd4jNorm(),
        new Nd4jRope(rope, dtype),
        new Nd4jSoftmax(),
        new Nd4jLoss(),
        new Nd4jSilu(),
        new Nd4jHeads());
  }
}
