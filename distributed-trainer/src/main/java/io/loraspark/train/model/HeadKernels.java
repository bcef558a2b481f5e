package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Attention's layout changes between token rows {@code [B·T, H·HD]}, the projections' layout, and
 * head-major {@code [B, H, T, HD]}, the batched GEMMs' layout. Both implementations only copy, so
 * they give the same bits.
 */
interface HeadKernels {
  /** Copies token rows {@code [B·T, H·HD]} into head-major {@code [B, H, T, HD]}. */
  void toHeads(INDArray rows, INDArray heads, int b, int t, int h, int hd);

  /** Copies head-major {@code [B, H, T, HD]} back into token rows {@code [B·T, H·HD]}. */
  void toRows(INDArray heads, INDArray rows, int b, int t, int h, int hd);
}
