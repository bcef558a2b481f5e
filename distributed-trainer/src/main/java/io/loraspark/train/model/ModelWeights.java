package io.loraspark.train.model;

import io.loraspark.train.model.quant.QuantizedLinears;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The frozen base model: shared read-only by every adapter in a JVM.
 *
 * @param config the validated config
 * @param embed token embedding, [V, C]
 * @param layers the decoder layers, L of them
 * @param finalNorm final RMSNorm weight, [C]
 * @param lmHead output projection, [V, C]; the same array as {@code embed} when tied; null in a
 *     precision bf16 training base with an untied head, whose head is packed by {@code Bf16Gemms}
 * @param quantized the seven projections of every layer in quantized form, whose arrays in {@code
 *     layers} are then null; null for a float base
 */
public record ModelWeights(
    ModelConfig config,
    INDArray embed,
    List<LayerWeights> layers,
    INDArray finalNorm,
    INDArray lmHead,
    QuantizedLinears quantized) {

  /** A float base: every weight in its array. */
  public ModelWeights(
      ModelConfig config,
      INDArray embed,
      List<LayerWeights> layers,
      INDArray finalNorm,
      INDArray lmHead) {
    this(config, embed, layers, finalNorm, lmHead, null);
  }

  public ModelWeights {
    layers = List.copyOf(layers);
    if (layers.size() != config.numLayers()) {
      throw new IllegalArgumentException(
          "expected " + config.numLayers() + " layers but got " + layers.size());
    }
  }

  /**
   * The LM head, [V, C].
   *
   * @throws IllegalStateException in a bf16 training base whose untied head is held only packed
   */
  public INDArray lmHead() {
    if (lmHead == null) {
      throw new IllegalStateException(
          "lm_head is held only as packed bf16 (a precision bf16 training base): its GEMMs are"
              + " Bf16Gemms, not fp32 ones");
    }
    return lmHead;
  }

  /**
   * The frozen weight of projection {@code p} of layer {@code layer}, [out, in], for one GEMM: the
   * array itself, or for a quantized base this thread's dequantised buffer of that shape (valid
   * until the next call for the same shape).
   */
  public INDArray linear(int layer, Projection p) {
    if (quantized != null) {
      return quantized.weight(layer, p);
    }
    INDArray w = projection(layers.get(layer), p);
    if (w == null) {
      throw new IllegalStateException(
          p.shortName()
              + " of layer "
              + layer
              + " is held only as packed bf16 (a precision bf16 training base): its GEMMs are"
              + " Bf16Gemms, not fp32 ones");
    }
    return w;
  }

  /**
   * Projection {@code p}'s array in {@code w} (null when the base is quantized or a bf16 training
   * base, whose projections are packed by {@code Bf16Gemms}).
   */
  public static INDArray projection(LayerWeights w, Projection p) {
    return switch (p) {
      case Q -> w.wq();
      case K -> w.wk();
      case V -> w.wv();
      case O -> w.wo();
      case GATE -> w.wGate();
      case UP -> w.wUp();
      case DOWN -> w.wDown();
    };
  }

  /** Projection {@code p}'s bias in {@code w}, [out], or null when it has none. */
  public static INDArray bias(LayerWeights w, Projection p) {
    return switch (p) {
      case Q -> w.bq();
      case K -> w.bk();
      case V -> w.bv();
      case O -> w.bo();
      case GATE -> w.bGate();
      case UP -> w.bUp();
      case DOWN -> w.bDown();
    };
  }

  /** Bytes of the seven projections of every layer as stored (packed when quantized). */
  public long linearBytes() {
    if (quantized != null) {
      return quantized.storedBytes();
    }
    long n = 0;
    for (LayerWeights w : layers) {
      for (Projection p : Projection.values()) {
        n += bytes(projection(w, p));
      }
    }
    return n;
  }

  /** Bytes of the whole base as held: linear weights, embeddings, norms, biases and head. */
  public long totalBytes() {
    long n = linearBytes() + bytes(embed) + bytes(finalNorm);
    if (lmHead != embed) {
      n += bytes(lmHead);
    }
    for (LayerWeights w : layers) {
      n += bytes(w.inputNorm()) + bytes(w.postNorm());
      n += bytes(w.bq()) + bytes(w.bk()) + bytes(w.bv()) + bytes(w.bo());
      n += bytes(w.bGate()) + bytes(w.bUp()) + bytes(w.bDown());
    }
    return n;
  }

  private static long bytes(INDArray a) {
    return a == null ? 0 : a.length() * a.dataType().width();
  }
}
