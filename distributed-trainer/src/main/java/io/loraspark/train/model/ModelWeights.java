package io.loraspark.train.model;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The frozen base model: shared read-only by every adapter in a JVM.
 *
 * @param config the validated config
 * @param embed token embedding, [V, C]
 * @param layers the decoder layers, L of them
 * @param finalNorm final RMSNorm weight, [C]
 * @param lmHead output projection, [V, C]; the same array as {@code embed} when tied
 */
public record ModelWeights(
    ModelConfig config,
    INDArray embed,
    List<LayerWeights> layers,
    INDArray finalNorm,
    INDArray lmHead) {

  public ModelWeights {
    layers = List.copyOf(layers);
    if (layers.size() != config.numLayers()) {
      throw new IllegalArgumentException(
          "expected " + config.numLayers() + " layers but got " + layers.size());
    }
  }
}
