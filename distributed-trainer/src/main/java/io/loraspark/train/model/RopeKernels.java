package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The rotary embedding's table fill and its forward/backward rotation ({@link Rope}), fused ({@link
 * VectorRope}) or in ND4J ops ({@link Nd4jRope}, the reference). {@link ModelKernels} picks one per
 * workspace. Order of calls per batch: {@code fillTables → forward*}, then {@code backward*} with
 * the same tables.
 */
interface RopeKernels {
  /**
   * Fills per-row cos and sin tables for a batch: row {@code n * heads + h} gets the angles of
   * position {@code positions[n]}.
   *
   * @param cos out, [N*heads, HD]
   * @param sin out, [N*heads, HD]
   */
  void fillTables(int[] positions, int heads, INDArray cos, INDArray sin);

  /**
   * Rotates {@code x} in place.
   *
   * @param x head vectors, [R, HD]
   * @param scratch scratch, [R, HD] (the ND4J path only)
   */
  void forward(INDArray x, INDArray cos, INDArray sin, INDArray scratch);

  /**
   * Turns the gradient with respect to the rotated vectors into the gradient with respect to the
   * unrotated ones, in place: {@code dx = dx' * cos + (dx' * sin) @ rotate^T}.
   *
   * @param scratch1 scratch, [R, HD] (the ND4J path only)
   * @param scratch2 scratch, [R, HD] (the ND4J path only)
   */
  void backward(INDArray dx, INDArray cos, INDArray sin, INDArray scratch1, INDArray scratch2);
}
