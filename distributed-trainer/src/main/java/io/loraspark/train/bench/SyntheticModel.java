package io.loraspark.train.bench;

import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.LayerWeights;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A random float32 Llama-family model of a given shape, initialised as the PyTorch peer baseline's
 * {@code make-model} does (projections N(0, 0.02²), norms 1 + N(0, 0.02²), embeddings N(0, 0.4²)),
 * so both engines train on comparable activations, except that a tied model's embedding, which is
 * also its head, is N(0, 0.02²) as an untied head is: at 0.4 the logits spread so far (loss ~94 at
 * V 49152 instead of ln V) that 9–13% of the softmax probabilities and their gradients were
 * subnormal floats, which CPUs without flush-to-zero (Intel's) process many times slower; at 0.02
 * none are. Throughput does not otherwise depend on the values. The values come from a {@link
 * SplittableRandom} of their own, so a seed gives the same model in every JVM (ND4J's native
 * generator gave other values in each process) and building one leaves ND4J's global random stream
 * (which a training run's other draws may use) untouched.
 */
public final class SyntheticModel {
  static final double STD = 0.02;
  static final double EMBED_STD = 0.4;

  private SyntheticModel() {}

  /** Builds the weights of {@code c} from {@code seed}. */
  public static ModelWeights create(ModelConfig c, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    int hd = c.headDim();
    INDArray embed =
        normal(rng, c.tieWordEmbeddings() ? STD : EMBED_STD, c.vocabSize(), c.hiddenSize());
    List<LayerWeights> layers = new ArrayList<>();
    for (int l = 0; l < c.numLayers(); l++) {
      layers.add(
          new LayerWeights(
              norm(rng, c.hiddenSize()),
              normal(rng, STD, c.numHeads() * hd, c.hiddenSize()),
              null,
              normal(rng, STD, c.numKvHeads() * hd, c.hiddenSize()),
              null,
              normal(rng, STD, c.numKvHeads() * hd, c.hiddenSize()),
              null,
              normal(rng, STD, c.hiddenSize(), c.numHeads() * hd),
              null,
              norm(rng, c.hiddenSize()),
              normal(rng, STD, c.intermediateSize(), c.hiddenSize()),
              normal(rng, STD, c.intermediateSize(), c.hiddenSize()),
              normal(rng, STD, c.hiddenSize(), c.intermediateSize()),
              null,
              null,
              null));
    }
    INDArray lmHead =
        c.tieWordEmbeddings() ? embed : normal(rng, STD, c.vocabSize(), c.hiddenSize());
    return new ModelWeights(c, embed, layers, norm(rng, c.hiddenSize()), lmHead);
  }

  private static INDArray normal(SplittableRandom rng, double std, long rows, long cols) {
    return gaussian(rng, 0.0, std, rows, cols);
  }

  private static INDArray norm(SplittableRandom rng, long c) {
    return gaussian(rng, 1.0, STD, c);
  }

  /**
   * Values mean + std·N(0, 1) drawn in row-major order from {@code rng}, written straight into the
   * array's native buffer: a float[] of the whole matrix first made G1 take regions for it (the
   * base's size in humongous garbage, which grew the committed heap and so the peak RSS).
   */
  private static INDArray gaussian(SplittableRandom rng, double mean, double std, long... shape) {
    INDArray a = Nd4j.createUninitialized(DataType.FLOAT, shape);
    FloatBuffer v = Kernels.buffer(a).asFloatBuffer();
    for (int i = 0; i < v.capacity(); i++) {
      v.put(i, (float) (mean + std * rng.nextGaussian()));
    }
    return a;
  }
}
