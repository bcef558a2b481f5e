package io.loraspark.train.model.quant;

import io.loraspark.train.model.LayerWeights;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The seven projection weights of every layer of a base model in quantized form. {@link #weight}
 * dequantises one into a float32 buffer kept per calling thread and per shape, which the caller
 * uses for one GEMM before asking for the next weight: the model is shared by the threads of an
 * executor, and each thread then holds one fp32 copy per distinct projection shape (at most five)
 * instead of the whole base.
 */
public final class QuantizedLinears {
  private final BaseQuant kind;
  private final List<Map<Projection, QuantizedMatrix>> layers;
  private final ThreadLocal<Map<Long, Scratch>> scratch = ThreadLocal.withInitial(HashMap::new);

  /** A dequantisation target and its direct float view. */
  private record Scratch(INDArray array, FloatBuffer view) {}

  /**
   * @param layers per layer, every projection's quantized weight
   */
  public QuantizedLinears(BaseQuant kind, List<Map<Projection, QuantizedMatrix>> layers) {
    this.kind = kind;
    this.layers = layers.stream().map(m -> Map.copyOf(new EnumMap<>(m))).toList();
    for (Map<Projection, QuantizedMatrix> m : this.layers) {
      if (m.size() != Projection.values().length) {
        throw new IllegalArgumentException("every layer needs all seven projections");
      }
    }
  }

  /** Quantizes the seven projections of one layer (the other arrays are not touched). */
  public static Map<Projection, QuantizedMatrix> quantize(LayerWeights w, BaseQuant kind) {
    Map<Projection, QuantizedMatrix> out = new EnumMap<>(Projection.class);
    for (Projection p : Projection.values()) {
      INDArray a = ModelWeights.projection(w, p);
      out.put(p, kind.quantize(rowMajorFloats(a), (int) a.rows(), (int) a.columns()));
    }
    return out;
  }

  /**
   * Frees the seven float projection arrays of {@code w} now, for an owner that keeps only their
   * quantized form: left to the collector, a base's float projections stayed resident next to the
   * codes and made a quantized run's peak 10–29% over its memory estimate.
   */
  public static void closeProjections(LayerWeights w) {
    for (Projection p : Projection.values()) {
      INDArray a = ModelWeights.projection(w, p);
      if (a != null && a.closeable()) {
        a.close();
      }
    }
  }

  /**
   * {@code a}'s values in row-major order, read straight from its buffer when it is one plain
   * float32 block (a loaded or synthetic weight is), else through a row-major copy freed at once.
   */
  private static float[] rowMajorFloats(INDArray a) {
    if (a.dataType() == DataType.FLOAT
        && !a.isView()
        && a.ordering() == 'c'
        && a.length() == a.data().length()) {
      return a.data().asFloat();
    }
    INDArray copy = a.castTo(DataType.FLOAT).dup('c');
    try {
      return copy.data().asFloat();
    } finally {
      copy.close();
    }
  }

  /**
   * A copy of {@code fp32} whose projections are quantized ({@code kind} not NONE) and dropped from
   * the layers; embeddings, norms, biases and lm_head are shared with it. {@code fp32}'s
   * projections are left as they are ({@link #closeProjections} frees them).
   */
  public static ModelWeights quantize(ModelWeights fp32, BaseQuant kind) {
    List<Map<Projection, QuantizedMatrix>> q = new ArrayList<>();
    List<LayerWeights> layers = new ArrayList<>();
    for (LayerWeights w : fp32.layers()) {
      q.add(quantize(w, kind));
      layers.add(withoutProjections(w));
    }
    return new ModelWeights(
        fp32.config(),
        fp32.embed(),
        layers,
        fp32.finalNorm(),
        fp32.lmHead(),
        new QuantizedLinears(kind, q));
  }

  /** {@code w} with its seven projection arrays null: they live in the quantized store. */
  public static LayerWeights withoutProjections(LayerWeights w) {
    return new LayerWeights(
        w.inputNorm(),
        null,
        w.bq(),
        null,
        w.bk(),
        null,
        w.bv(),
        null,
        w.bo(),
        w.postNorm(),
        null,
        null,
        null,
        w.bGate(),
        w.bUp(),
        w.bDown());
  }

  public BaseQuant kind() {
    return kind;
  }

  /** The stored form of projection {@code p} of layer {@code layer}. */
  public QuantizedMatrix matrix(int layer, Projection p) {
    return layers.get(layer).get(p);
  }

  /**
   * Projection {@code p} of layer {@code layer} as float32 [out, in], dequantised into this
   * thread's buffer for that shape: valid until this thread asks for another weight of that shape.
   */
  public INDArray weight(int layer, Projection p) {
    QuantizedMatrix m = matrix(layer, p);
    long key = ((long) m.rows() << 32) | m.cols();
    Scratch s =
        scratch
            .get()
            .computeIfAbsent(
                key,
                k -> {
                  INDArray a = Nd4j.create(DataType.FLOAT, new long[] {m.rows(), m.cols()}, 'c');
                  return new Scratch(a, a.data().asNioFloat());
                });
    m.dequantize(s.view());
    return s.array();
  }

  /** Projection {@code p} of layer {@code layer} dequantised into a new float32 array. */
  public INDArray dequantized(int layer, Projection p) {
    QuantizedMatrix m = matrix(layer, p);
    return Nd4j.create(m.dequantize(), new long[] {m.rows(), m.cols()}, 'c');
  }

  /** Bytes of every stored code and scale. */
  public long storedBytes() {
    long n = 0;
    for (Map<Projection, QuantizedMatrix> l : layers) {
      for (QuantizedMatrix m : l.values()) {
        n += m.storedBytes();
      }
    }
    return n;
  }
}
