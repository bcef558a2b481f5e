package io.loraspark.train.optim;

import io.loraspark.train.model.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Gradient-buffer operations shared by the trainers. */
public final class Grads {
  private Grads() {}

  /**
   * Sets every element of {@code g} to zero, in place: one vector pass for a float32 array, an ND4J
   * op otherwise.
   */
  public static void zero(INDArray g) {
    if (Kernels.vector(g)) {
      VectorOptim.zero(Kernels.buffer(g), Kernels.offset(g), Math.toIntExact(g.length()));
    } else {
      g.assign(0);
    }
  }
}
