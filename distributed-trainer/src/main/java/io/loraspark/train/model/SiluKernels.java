package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The SwiGLU gate of the MLP, {@code act = silu(gate) · up}, forward and backward, fused ({@link
 * VectorSilu}) or in ND4J ops ({@link Nd4jSilu}, the reference). {@link ModelKernels} picks one per
 * workspace. Every array is [N, F].
 */
interface SiluKernels {
  /** sig = σ(gate), act = silu(gate) · up = gate · sig · up. */
  void forward(INDArray gate, INDArray up, INDArray sig, INDArray act);

  /** dUp = dAct · silu(gate); dGate = dAct · up · sig · (1 + gate · (1 − sig)). */
  void backward(
      INDArray gate, INDArray up, INDArray sig, INDArray dAct, INDArray dGate, INDArray dUp);
}
