package io.loraspark.train.decode;

import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.PackedMatmul;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Precision;
import java.lang.ref.WeakReference;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One base's frozen projections and LM head packed for {@link PackedMatmul} in float32 or bfloat16,
 * built once per {@link ModelWeights} and format and shared by every {@link DecodeEngine} on it (a
 * server's decoder and router, each Spark task's generator). The packed copy is as large as the
 * projections in float32, half that in bf16; the ND4J arrays stay, since training, scoring and
 * merging read them.
 */
final class DecodeWeights {
  private static final int P = Projection.values().length;
  private static final List<Entry> BUILT = new ArrayList<>();

  private record Entry(
      WeakReference<ModelWeights> base, Precision precision, DecodeWeights packed) {}

  /**
   * {@link Precision#FP32}: the checkpoint's float32 weights, equal to the full forward; {@link
   * Precision#BF16}: each weight rounded to bfloat16, widened on load, products and sums in fp32.
   */
  final Precision precision;

  private final float[][] fp32; // [layer * 7 + projection], packed [out, in]; or null
  private final short[][] bf16; // the same in bf16; or null
  private final int headIndex; // the LM head's slot after the projections

  private DecodeWeights(ModelWeights base, Precision precision) {
    this.precision = precision;
    ModelConfig c = base.config();
    requireHeap(c, precision);
    headIndex = c.numLayers() * P;
    fp32 = precision == Precision.FP32 ? new float[headIndex + 1][] : null;
    bf16 = precision == Precision.BF16 ? new short[headIndex + 1][] : null;
    IntStream.rangeClosed(0, headIndex)
        .parallel()
        .forEach(
            i -> {
              if (i == headIndex) {
                pack(i, base.lmHead(), c.vocabSize(), c.hiddenSize());
              } else {
                Projection p = Projection.values()[i % P];
                INDArray w = ModelWeights.projection(base.layers().get(i / P), p);
                pack(i, w, p.outFeatures(c), p.inFeatures(c));
              }
            });
  }

  /**
   * Fails in one line, before packing, when the Java heap cannot hold the packed copy (it lives on
   * the heap, beside ND4J's off-heap arrays), naming the sizes and the two ways out.
   */
  private static void requireHeap(ModelConfig c, Precision precision) {
    long values = (long) c.vocabSize() * c.hiddenSize();
    for (Projection p : Projection.values()) {
      values += (long) c.numLayers() * p.outFeatures(c) * p.inFeatures(c);
    }
    long need = values * (precision == Precision.FP32 ? 4 : 2);
    Runtime rt = Runtime.getRuntime();
    long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    if (need > free) {
      throw new IllegalStateException(
          String.format(
              "KV-cached decoding packs the base's projections into %d MiB of Java heap (%s) but"
                  + " about %d MiB is free; raise -Xmx (LORA_SPARK_JAVA_OPTS for bin/lora-pipeline)"
                  + "%s",
              need >> 20,
              precision.key(),
              free >> 20,
              precision == Precision.FP32
                  ? " or decode with --precision bf16 (half the size)"
                  : ""));
    }
  }

  private void pack(int i, INDArray w, int out, int in) {
    ByteBuffer b = DecodeEngine.buffer(w);
    if (fp32 != null) {
      fp32[i] = PackedMatmul.pack(b, Kernels.offset(w), out, in);
    } else {
      bf16[i] = PackedMatmul.packBf16(b, Kernels.offset(w), out, in);
    }
  }

  /**
   * {@code y = x W^T} of projection {@code index} (layer * 7 + projection) for {@code rows} rows.
   */
  void project(int index, int out, int in, float[] x, int rows, float[] y) {
    if (fp32 != null) {
      PackedMatmul.matmul(fp32[index], out, in, x, rows, y);
    } else {
      PackedMatmul.matmul(bf16[index], out, in, x, rows, y);
    }
  }

  /** The LM head's logits of {@code rows} final hidden states: [rows, V]. */
  void head(int vocab, int hidden, float[] x, int rows, float[] y) {
    project(headIndex, vocab, hidden, x, rows, y);
  }

  /**
   * The packed weights of {@code base} in {@code precision} (fp32 or bf16): built on first use,
   * then the same.
   */
  static synchronized DecodeWeights of(ModelWeights base, Precision precision) {
    BUILT.removeIf(e -> e.base().get() == null);
    for (Entry e : BUILT) {
      if (e.base().get() == base && e.precision() == precision) {
        return e.packed();
      }
    }
    DecodeWeights packed = new DecodeWeights(base, precision);
    BUILT.add(new Entry(new WeakReference<>(base), precision, packed));
    return packed;
  }
}
