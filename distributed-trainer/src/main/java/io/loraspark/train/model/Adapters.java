package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Trainable branches attached to the frozen projections (LoRA and its family).
 *
 * <p>Order of calls for one step: {@code forward} for every (layer, projection) in forward order,
 * then {@code backward} for the same pairs in reverse order, with the same {@code x} arrays. An
 * implementation knows which batch rows belong to which of its adapters and touches only those.
 */
public interface Adapters {

  /** No adapters: the plain frozen model. */
  Adapters NONE =
      new Adapters() {
        @Override
        public void forward(int layer, Projection proj, INDArray x, INDArray y) {}

        @Override
        public void backward(int layer, Projection proj, INDArray x, INDArray dy, INDArray dx) {}
      };

  /**
   * Adds the adapter branches' output to {@code y}.
   *
   * @param x projection input, [N, in]
   * @param y projection output (already holding W x + b), [N, out]; updated in place
   */
  void forward(int layer, Projection proj, INDArray x, INDArray y);

  /**
   * Accumulates the adapters' parameter gradients and adds the branches' input gradient to {@code
   * dx}.
   *
   * @param x the same projection input passed to forward, [N, in]
   * @param dy gradient of the loss with respect to the projection output, [N, out]
   * @param dx gradient with respect to the projection input, [N, in]; accumulated in place
   */
  void backward(int layer, Projection proj, INDArray x, INDArray dy, INDArray dx);
}
