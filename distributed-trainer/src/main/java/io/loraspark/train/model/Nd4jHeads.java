package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/** {@link HeadKernels} as ND4J assignments through permuted views, for any dtype. */
final class Nd4jHeads implements HeadKernels {
  @Override
  public void toHeads(INDArray rows, INDArray heads, int b, int t, int h, int hd) {
    heads.reshape(b, h, t, hd).assign(rows.reshape(b, t, h, hd).permute(0, 2, 1, 3));
  }

  @Override
  public void toRows(INDArray heads, INDArray rows, int b, int t, int h, int hd) {
    rows.reshape(b, t, h, hd).assign(heads.reshape(b, h, t, hd).permute(0, 2, 1, 3));
  }
}
