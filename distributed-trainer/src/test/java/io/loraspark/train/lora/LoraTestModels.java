package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.TokenRow;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BiConsumer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Small models and adapters for the lora tests (checkpoints from {@link TestModels}). */
final class LoraTestModels {
  private LoraTestModels() {}

  /** The real pretrained tiny Llama bundled with the project (stories260K, tied head). */
  static final Path STORIES = TestModels.STORIES;

  /** A small random architecture: C=16, 2 layers, 4 heads, 2 kv heads, HD=4, F=24, V=37. */
  static String configJson(String arch, boolean tied, boolean attentionBias) {
    return TestModels.config(arch, tied, attentionBias);
  }

  /** The config of {@link #configJson} for an untied Llama without biases. */
  static ModelConfig smallLlama() {
    return parse(configJson("LlamaForCausalLM", false, false));
  }

  static ModelConfig parse(String json) {
    try {
      return ModelConfig.fromJson(new ObjectMapper().readTree(json));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Writes config.json and model.safetensors with N(0, 0.3) weights and norms near 1. */
  static Path writeRandomCheckpoint(Path dir, String configJson, long seed) throws IOException {
    return TestModels.writeRandom(dir, configJson, seed);
  }

  /** PEFT-initialised A (seeded) and a B filled with N(0, 0.05) values, so B·A is nonzero. */
  static LoraWeights adapter(ModelConfig model, LoraConfig config, long seed) {
    LoraWeights w = LoraWeights.init(model, config, seed, DataType.FLOAT);
    Random rnd = new Random(seed + 1);
    for (LoraWeights.Module m : w.modules()) {
      float[] v = new float[(int) m.b().length()];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (0.05 * rnd.nextGaussian());
      }
      m.b().assign(Nd4j.create(v, m.b().shape(), 'c'));
    }
    return w;
  }

  /**
   * An adapter initialised with {@code seed} in the base's precision, then moved off its init
   * module by module by {@code move}, which draws from one {@code Random(seed)}: a moved adapter
   * makes every term of a branch nonzero (an init often zeroes one).
   */
  static LoraWeights moved(
      ModelWeights base, LoraConfig c, long seed, BiConsumer<LoraWeights.Module, Random> move) {
    LoraWeights w = LoraWeights.init(base, c, seed, base.embed().dataType());
    Random rnd = new Random(seed);
    for (LoraWeights.Module m : w.modules()) {
      move.accept(m, rnd);
    }
    return w;
  }

  static LoraConfig lora(int rank, double alpha, List<Projection> targets) {
    return new LoraConfig(rank, alpha, 0.0, targets, false);
  }

  /** The raw IEEE bits of an array's values in C order. */
  static int[] bits(INDArray a) {
    float[] f = a.castTo(DataType.FLOAT).dup('c').data().asFloat();
    int[] out = new int[(int) a.length()];
    for (int i = 0; i < out.length; i++) {
      out[i] = Float.floatToRawIntBits(f[i]);
    }
    return out;
  }

  /**
   * Six rows of 12-31 tokens from ids 1 to {@code vocab} − 1 (seed 17), all but the first label
   * scored: held-out text for comparing an adapter with its merged or exported form.
   */
  static List<TokenRow> scoringRows(int vocab) {
    Random rnd = new Random(17);
    List<TokenRow> out = new ArrayList<>();
    for (int r = 0; r < 6; r++) {
      int len = 12 + rnd.nextInt(20);
      int[] ids = new int[len];
      int[] labels = new int[len];
      for (int i = 0; i < len; i++) {
        ids[i] = 1 + rnd.nextInt(vocab - 1);
        labels[i] = i == 0 ? Batch.IGNORE : ids[i];
      }
      out.add(new TokenRow(ids, labels));
    }
    return out;
  }

  /** The mean loss per scored token. */
  static double mean(LossStats s) {
    return s.totalNll() / s.totalCount();
  }
}
