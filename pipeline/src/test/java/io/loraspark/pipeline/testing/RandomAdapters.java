package io.loraspark.pipeline.testing;

import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Adapters that change a base model's answers, for tests: on all seven projections, alpha = 2 ×
 * rank, no dropout, A as the method initialises it and B drawn from N(0, bStd²) (B is zero after
 * init, so such an adapter would change nothing), saved as a PEFT directory.
 */
public final class RandomAdapters {
  private RandomAdapters() {}

  /**
   * A rank-4 LoRA adapter whose A is initialised with {@code seed} and whose B is drawn from {@code
   * new Random(seed)}, saved with no base model name.
   *
   * @return {@code dir}
   */
  public static Path save(ModelWeights base, Path dir, long seed, double bStd) {
    return save(base, dir, LoraMethod.LORA, 4, seed, seed, bStd, null);
  }

  /**
   * An adapter of {@code method} and {@code rank} (alpha 2 × rank) on every projection.
   *
   * @param initSeed the seed {@link LoraWeights#init} initialises A (and the method's extras) with
   * @param bSeed the seed of the {@link Random} that draws B, one Gaussian per element in order
   * @param bStd the standard deviation of B's elements
   * @param baseModel written as the adapter's {@code base_model_name_or_path}; may be null
   * @return {@code dir}
   */
  public static Path save(
      ModelWeights base,
      Path dir,
      LoraMethod method,
      int rank,
      long initSeed,
      long bSeed,
      double bStd,
      String baseModel) {
    LoraConfig c = new LoraConfig(rank, 2.0 * rank, 0, List.of(Projection.values()), false, method);
    LoraWeights w = LoraWeights.init(base, c, initSeed, DataType.FLOAT);
    Random rnd = new Random(bSeed);
    for (LoraWeights.Module m : w.modules()) {
      float[] v = new float[(int) m.b().length()];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (bStd * rnd.nextGaussian());
      }
      m.b().assign(Nd4j.create(v, m.b().shape(), 'c'));
    }
    PeftAdapter.save(dir, w, baseModel);
    return dir;
  }
}
