package io.loraspark.train.decode;

import io.loraspark.train.model.DecodeKernels;
import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One base's frozen projections and LM head packed for {@link DecodeKernels#matmul}, built once per
 * {@link ModelWeights} and shared by every {@link DecodeEngine} on it (a server's decoder and
 * router, each Spark task's generator). The packed copy is as large as the projections in fp32; the
 * ND4J arrays stay, since training, scoring and merging read them.
 */
final class DecodeWeights {
  private static final int P = Projection.values().length;
  private static final List<Entry> BUILT = new ArrayList<>();

  private record Entry(WeakReference<ModelWeights> base, DecodeWeights packed) {}

  final float[][] projections; // [layer * 7 + projection], packed [out, in]
  final float[] head; // packed [V, C]

  private DecodeWeights(ModelWeights base) {
    ModelConfig c = base.config();
    projections = new float[c.numLayers() * P][];
    IntStream.range(0, projections.length)
        .parallel()
        .forEach(
            i -> {
              Projection p = Projection.values()[i % P];
              INDArray w = ModelWeights.projection(base.layers().get(i / P), p);
              projections[i] = pack(w, p.outFeatures(c), p.inFeatures(c));
            });
    head = pack(base.lmHead(), c.vocabSize(), c.hiddenSize());
  }

  private static float[] pack(INDArray w, int out, int in) {
    return DecodeKernels.pack(DecodeEngine.buffer(w), Kernels.offset(w), out, in);
  }

  /** The packed weights of {@code base}: built on first use, then the same object. */
  static synchronized DecodeWeights of(ModelWeights base) {
    BUILT.removeIf(e -> e.base().get() == null);
    for (Entry e : BUILT) {
      if (e.base().get() == base) {
        return e.packed();
      }
    }
    DecodeWeights packed = new DecodeWeights(base);
    BUILT.add(new Entry(new WeakReference<>(base), packed));
    return packed;
  }
}
