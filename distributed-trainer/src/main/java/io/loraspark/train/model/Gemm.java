package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One float32 GEMM, {@code c ← alpha · op(a) · op(b) + beta · c}, with ND4J's argument order: the
 * adapters' low-rank products, whose one side is the rank (skinny GEMMs). Row-range views and
 * transposes are read in place.
 */
@FunctionalInterface
public interface Gemm {
  void gemm(
      INDArray a,
      INDArray b,
      INDArray c,
      boolean transA,
      boolean transB,
      double alpha,
      double beta);

  /** ND4J's (OpenBLAS). */
  static Gemm nd4j() {
    return Nd4j::gemm;
  }
}
